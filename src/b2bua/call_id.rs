//! Our id for a call (`20261207T051500-Ab3dE9xYz0`): the INVITE's time to the second, then ten
//! random characters. Sortable by time, unique, safe as a file name (recordings are named by it).

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::sip::message;

/// The id of a call whose INVITE came at `now`. The time's digits are written by hand: chrono's
/// `format` parses its pattern anew at each call, which cost more than the rest of the id.
pub(super) fn new_call_id(now: DateTime<Utc>) -> String {
    let mut id = String::with_capacity(26);
    push_time(&mut id, now);
    id.push('-');
    message::push_random_token(&mut id, 10);
    id
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
    push_digits(id, year.unsigned_abs(), 4);
    push_digits(id, now.month(), 2);
    push_digits(id, now.day(), 2);
    id.push('T');
    push_digits(id, now.hour(), 2);
    push_digits(id, now.minute(), 2);
    push_digits(id, now.second(), 2);
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
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
    fn id_is_time_then_ten_random_characters() {
        let now: DateTime<Utc> = "2026-12-07T05:15:00Z".parse().unwrap();
        let id = new_call_id(now);
        let (time, token) = id.split_once('-').unwrap();
        assert_eq!(time, "20261207T051500");
        assert_eq!(token.len(), 10);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
