//! `calling_hours = "09:00-12:00,13:30-20:00"`: local-time windows in which calls may be placed.

use chrono::NaiveTime;
use serde::Deserialize;

/// A window of local time, minutes since midnight; `end` may be 1440 ("24:00").
/// A window whose end is before its start wraps midnight ("20:00-08:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_min: u16,
    pub end_min: u16,
}

impl TimeRange {
    fn contains(&self, minute: u16) -> bool {
        if self.start_min <= self.end_min {
            minute >= self.start_min && minute < self.end_min
        } else {
            minute >= self.start_min || minute < self.end_min
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingHours {
    pub ranges: Vec<TimeRange>,
}

impl CallingHours {
    pub fn always() -> Self {
        CallingHours {
            ranges: vec![TimeRange {
                start_min: 0,
                end_min: 1440,
            }],
        }
    }

    /// Whether a local wall-clock time lies inside one of the windows.
    pub fn allows(&self, local: NaiveTime) -> bool {
        use chrono::Timelike;
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.ranges.iter().any(|r| r.contains(minute))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (a, b) = part
                .split_once('-')
                .ok_or_else(|| format!("`{part}` is not HH:MM-HH:MM"))?;
            let start_min = parse_hhmm(a.trim())?;
            let end_min = parse_hhmm(b.trim())?;
            if start_min == 1440 {
                return Err(format!("`{part}` cannot start at 24:00"));
            }
            if start_min == end_min {
                return Err(format!("`{part}` is an empty window"));
            }
            ranges.push(TimeRange { start_min, end_min });
        }
        Ok(CallingHours { ranges })
    }
}

fn parse_hhmm(s: &str) -> Result<u16, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not HH:MM"))?;
    let h: u16 = h.parse().map_err(|_| format!("`{s}` is not HH:MM"))?;
    let m: u16 = m.parse().map_err(|_| format!("`{s}` is not HH:MM"))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("`{s}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

impl<'de> Deserialize<'de> for CallingHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CallingHours::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn whole_day() {
        let c = CallingHours::parse("00:00-24:00").unwrap();
        assert!(c.allows(t(0, 0)));
        assert!(c.allows(t(23, 59)));
    }

    #[test]
    fn office_hours_with_lunch() {
        let c = CallingHours::parse("09:00-12:00, 13:30-20:00").unwrap();
        assert!(!c.allows(t(8, 59)));
        assert!(c.allows(t(9, 0)));
        assert!(!c.allows(t(12, 0)));
        assert!(c.allows(t(13, 30)));
        assert!(!c.allows(t(20, 0)));
    }

    #[test]
    fn wraps_midnight() {
        let c = CallingHours::parse("20:00-08:00").unwrap();
        assert!(c.allows(t(23, 0)));
        assert!(c.allows(t(7, 59)));
        assert!(!c.allows(t(8, 0)));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(CallingHours::parse("9-17").is_err());
        assert!(CallingHours::parse("25:00-26:00").is_err());
        assert!(CallingHours::parse("10:00-10:00").is_err());
    }
}
