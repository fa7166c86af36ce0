//! Our id for a call (`20261207T051500-3Ab7dE9xYz`): the INVITE's time to the second, its
//! microsecond within that second in four characters, then six random characters. Sortable by
//! time, unique, safe as a file name (recordings are named by it).
//!
//! CDRs are listed and paged in (INVITE time, id) order, and the stored time has milliseconds:
//! two INVITEs in one millisecond (a refusal and the next call, on a fast machine) tie on the
//! time, and the id is what orders them. Its microseconds keep that order the order of arrival
//! on a node; the random part keeps ids of different nodes apart.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::sip::message;

/// The id of a call whose INVITE came at `now`. The time's digits are written by hand: chrono's
/// `format` parses its pattern anew at each call, which cost more than the rest of the id.
pub(super) fn new_call_id(now: DateTime<Utc>) -> String {
    let mut id = String::with_capacity(26);
    push_time(&mut id, now);
    id.push('-');
    push_micros(&mut id, now);
    message::push_random_token(&mut id, 6);
    id
}

/// Digits of base 62 in ASCII order, so that bytewise comparison (SQLite, and PostgreSQL's
/// `COLLATE "C"` on the id column) orders them as numbers of one width.
const SORTED_BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `now`'s microsecond within its second in four base-62 digits (62⁴ > 10⁶). A leap second's
/// nanoseconds past 10⁹ are clamped: the time part already says 60.
fn push_micros(id: &mut String, now: DateTime<Utc>) {
    let micros = (now.nanosecond() / 1_000).min(999_999);
    push_digits(id, micros, 4, SORTED_BASE62);
}

/// `now` as chrono's `%Y%m%dT%H%M%S` writes it.
fn push_time(id: &mut String, now: DateTime<Utc>) {
    let year = now.year();
    // `%Y` signs and widens years outside 0–9999, `%S` writes a leap second as 60: no clock
    // gives these, and chrono still writes them if one does.
    if !(0..=9999).contains(&year) || now.nanosecond() >= 1_000_000_000 {
        id.push_str(&now.format("%Y%m%dT%H%M%S").to_string());
        return;
    }
    push_digits(id, year.unsigned_abs(), 4, DECIMAL);
    push_digits(id, now.month(), 2, DECIMAL);
    push_digits(id, now.day(), 2, DECIMAL);
    id.push('T');
    push_digits(id, now.hour(), 2, DECIMAL);
    push_digits(id, now.minute(), 2, DECIMAL);
    push_digits(id, now.second(), 2, DECIMAL);
}

/// The decimal digits: the first ten of `SORTED_BASE62`.
const DECIMAL: &[u8] = SORTED_BASE62.split_at(10).0;

/// `value`'s last `width` digits in the base of `digits` (its length), zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32, digits: &[u8]) {
    let base = digits.len() as u32;
    for place in (0..width).rev() {
        let digit = value / base.pow(place) % base;
        out.push(char::from(digits[digit as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_part_as_chrono_writes_it() {
        let times = [
            "2026-12-07T05:15:00Z",
            "1999-01-31T23:59:59.999Z",
            "0042-03-04T00:00:09Z",
            "9999-12-31T23:59:59Z",
        ];
        for text in times {
            let now: DateTime<Utc> = text.parse().unwrap();
            let mut written = String::new();
            push_time(&mut written, now);
            assert_eq!(written, now.format("%Y%m%dT%H%M%S").to_string(), "{text}");
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap()
            .and_utc();
        let mut written = String::new();
        push_time(&mut written, leap);
        assert_eq!(written, "20161231T235960");
    }

    #[test]
    fn id_is_time_then_microseconds_then_six_random_characters() {
        let now: DateTime<Utc> = "2026-12-07T05:15:00.000123Z".parse().unwrap();
        let id = new_call_id(now);
        let (time, token) = id.split_once('-').unwrap();
        assert_eq!(time, "20261207T051500");
        assert_eq!(token.len(), 10);
        // 123 = 1·62 + 61
        assert_eq!(&token[..4], "001z");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_call_id(now)[20..], id[20..], "the random part differs");
    }

    #[test]
    fn ids_of_one_second_sort_by_their_microseconds() {
        let second: DateTime<Utc> = "2026-12-07T05:15:00Z".parse().unwrap();
        let micros = [
            0, 1, 9, 10, 35, 36, 61, 62, 999, 1_000, 3_843, 3_844, 500_000, 999_999,
        ];
        let ids: Vec<String> = micros
            .iter()
            .map(|&us| new_call_id(second + chrono::Duration::microseconds(us)))
            .collect();
        for pair in ids.windows(2) {
            assert!(pair[0].as_bytes() < pair[1].as_bytes(), "{pair:?}");
        }
        // The next second's first id sorts after this second's last.
        let next = new_call_id(second + chrono::Duration::seconds(1));
        assert!(ids[ids.len() - 1] < next);
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_999_999))
            .unwrap()
            .and_utc();
        assert!(
            new_call_id(leap).starts_with("20161231T235960-4C91"),
            "{}",
            new_call_id(leap)
        );
    }
}
