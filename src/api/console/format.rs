//! Times, lengths and sizes as people read them. A call's times are shown in its trunk's time
//! zone, named (`2026-11-27 09:00:03 Asia/Shanghai`); the search's period is read in the chosen
//! trunk's zone (UTC when no trunk is chosen).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A time in `tz`, to the second, with the zone's name.
pub fn time_in(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} {}",
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"),
        tz.name()
    )
}

/// A time in `tz`, to the second, without the zone (a column names it).
pub fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time in `tz` for a `datetime-local` input (`2026-11-27T09:00`).
pub fn input_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// A `datetime-local` value (or a date alone: its midnight) read in `tz`. In a gap of a
/// daylight-saving change, the first instant after it; in a fold, the earlier one.
pub fn parse_input_time(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        LocalResult::None => (1..=180).find_map(|m| {
            match tz.from_local_datetime(&(naive + chrono::Duration::minutes(m))) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    Some(t.with_timezone(&Utc))
                }
                LocalResult::None => None,
            }
        }),
    }
}

/// Milliseconds as `m:ss.t` (`1:02:03.4` past an hour).
pub fn length(ms: i64) -> String {
    let ms = ms.max(0);
    let tenths = (ms % 1000) / 100;
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{tenths}")
    } else {
        format!("{m}:{s:02}.{tenths}")
    }
}

/// Bytes in KiB or MiB.
pub fn size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// A figure with at most `places` decimals; `–` for none.
pub fn figure(x: Option<f64>, places: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.places$}"),
        _ => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_lengths_and_sizes_read_well() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 3).unwrap();
        assert_eq!(
            time_in(t, chrono_tz::Asia::Shanghai),
            "2026-11-27 09:00:03 Asia/Shanghai"
        );
        assert_eq!(input_time(t, chrono_tz::UTC), "2026-11-27T01:00");
        assert_eq!(
            parse_input_time("2026-11-27T09:00", chrono_tz::Asia::Shanghai),
            Some(Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap())
        );
        assert_eq!(
            parse_input_time("2026-11-27", chrono_tz::UTC),
            Some(Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap())
        );
        // 02:30 does not exist in Berlin on 2026-03-29: the first instant after the gap.
        assert_eq!(
            parse_input_time("2026-03-29T02:30", chrono_tz::Europe::Berlin),
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap())
        );
        assert_eq!(parse_input_time("yesterday", chrono_tz::UTC), None);
        assert_eq!(length(2_150), "0:02.1");
        assert_eq!(length(3_723_400), "1:02:03.4");
        assert_eq!(length(-5), "0:00.0");
        assert_eq!(size(500), "500 B");
        assert_eq!(size(16_044), "15.7 KiB");
        assert_eq!(figure(Some(4.3987), 2), "4.40");
        assert_eq!(figure(None, 2), "–");
        assert_eq!(figure(Some(f64::NAN), 2), "–");
    }
}
