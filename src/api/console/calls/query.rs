//! The calls search's form read into the store's CDR query: each value checked (an error names
//! its field), the period read in the page's time zone.

use chrono_tz::Tz;

use super::super::format::parse_input_time;
use super::super::i18n::T;
use super::PAGE;
use crate::api::cdrs::decode_cursor;
use crate::model::{Direction, Disposition, RefusalReason};
use crate::store::{CdrQuery, NumberMatch, NumberPart};

/// The form as sent (kept to fill it in again) and what it asks for.
#[derive(Debug, Default)]
pub(super) struct Search {
    /// (name, value) of every field given, in the form's order.
    raw: Vec<(String, String)>,
    pub(super) query: CdrQuery,
    /// (field, message) for each value that could not be read.
    pub(super) errors: Vec<(&'static str, T)>,
    /// The zone the period is read in and times are shown in.
    pub(super) zone: Option<Tz>,
}

impl Search {
    pub(super) fn value(&self, name: &str) -> &str {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub(super) fn error(&self, field: &str) -> Option<T> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| *t)
    }

    /// The query string of this search without paging (for the export and the first page).
    pub(super) fn link(&self, drop: &[&str]) -> String {
        let kept: Vec<(&str, &str)> = self
            .raw
            .iter()
            .filter(|(k, v)| !v.is_empty() && !drop.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// The names the form sends, in order (anything else is ignored).
const FIELDS: &[&str] = &[
    "number",
    "match",
    "trunk",
    "direction",
    "from",
    "to",
    "disposition",
    "reason",
    "status",
    "talk_min",
    "talk_max",
    "anomaly",
    "recording",
    "hold",
    "order",
    "cursor",
];

/// The zone of a page: the chosen trunk's; else the one zone all its trunks share; else UTC.
fn zone_of(trunks: &[(String, Tz)], chosen: Option<&str>) -> Tz {
    if let Some(tz) = chosen.and_then(|c| trunks.iter().find(|(n, _)| n == c).map(|(_, tz)| *tz)) {
        return tz;
    }
    match trunks.first() {
        Some((_, tz)) if trunks.iter().all(|(_, t)| t == tz) => *tz,
        _ => chrono_tz::UTC,
    }
}

pub(super) fn parse(pairs: Vec<(String, String)>, trunks: &[(String, Tz)]) -> Search {
    let mut s = Search {
        query: CdrQuery {
            limit: PAGE,
            newest_first: true,
            ..CdrQuery::default()
        },
        ..Search::default()
    };
    for name in FIELDS {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == name) {
            s.raw.push((name.to_string(), v.trim().to_string()));
        }
    }
    let zone = zone_of(trunks, Some(s.value("trunk")).filter(|t| !t.is_empty()));
    s.zone = Some(zone);
    let raw = s.raw.clone();
    for (name, value) in &raw {
        if value.is_empty() {
            continue;
        }
        let q = &mut s.query;
        let bad = match name.as_str() {
            "number" => {
                let digits: String = value
                    .chars()
                    .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
                    .collect();
                let at = match s
                    .raw
                    .iter()
                    .find(|(k, _)| k == "match")
                    .map(|(_, v)| v.as_str())
                {
                    Some("prefix") => Some(NumberMatch::Prefix),
                    Some("suffix") => Some(NumberMatch::Suffix),
                    Some("whole") => None,
                    _ => Some(NumberMatch::Anywhere),
                };
                match at {
                    Some(at) => match NumberPart::new(&digits, at) {
                        Some(part) => {
                            q.number_part = Some(part);
                            None
                        }
                        None => Some(T::BadNumber),
                    },
                    None => match crate::model::normalize_number(value) {
                        Some(n) => {
                            q.number = Some(n);
                            None
                        }
                        None => Some(T::BadNumber),
                    },
                }
            }
            "trunk" => {
                q.trunks = Some(vec![value.clone()]);
                None
            }
            "direction" => match value.parse::<Direction>() {
                Ok(d) => {
                    q.direction = Some(d.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "from" | "to" => match parse_input_time(value, zone) {
                Some(t) => {
                    if name == "from" {
                        q.from = Some(t);
                    } else {
                        q.to = Some(t);
                    }
                    None
                }
                None => Some(T::BadTime),
            },
            "disposition" => match value.parse::<Disposition>() {
                Ok(d) => {
                    q.disposition = Some(d.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "reason" => match value.parse::<RefusalReason>() {
                Ok(r) => {
                    q.reason = Some(r.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "status" => match value.parse::<u16>() {
                Ok(n) if (100..=699).contains(&n) => {
                    q.final_status = Some(n);
                    None
                }
                _ => Some(T::BadStatus),
            },
            "talk_min" | "talk_max" => match value.parse::<u32>() {
                Ok(secs) => {
                    let ms = i64::from(secs) * 1000;
                    if name == "talk_min" {
                        q.min_talk_ms = Some(ms);
                    } else {
                        q.max_talk_ms = Some(ms + 999);
                    }
                    None
                }
                Err(_) => Some(T::BadSeconds),
            },
            "anomaly" => {
                if CdrQuery::is_anomaly_id(value) {
                    q.anomaly = Some(value.clone());
                    None
                } else {
                    Some(T::BadAnomalyId)
                }
            }
            "recording" => match value.as_str() {
                "kept" => {
                    q.has_recording = Some(true);
                    None
                }
                "none" => {
                    q.has_recording = Some(false);
                    None
                }
                _ => Some(T::BadChoice),
            },
            "hold" => match value.as_str() {
                "on" => {
                    q.on_hold = Some(true);
                    None
                }
                "off" => {
                    q.on_hold = Some(false);
                    None
                }
                _ => Some(T::BadChoice),
            },
            "order" => {
                q.newest_first = value != "oldest";
                None
            }
            "cursor" => match decode_cursor(value) {
                Ok(k) => {
                    q.after = Some(k);
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            _ => None,
        };
        if let Some(t) = bad {
            s.errors.push((field_name(name), t));
        }
    }
    if let (Some(from), Some(to)) = (s.query.from, s.query.to) {
        if to <= from {
            s.errors.push(("to", T::BadPeriod));
        }
    }
    s
}

/// The static name of a form field (errors keep it).
fn field_name(name: &str) -> &'static str {
    FIELDS.iter().find(|f| **f == name).copied().unwrap_or("")
}
