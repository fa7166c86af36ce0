//! SIP final status → ITU-T Q.850 cause, and the Reason header (RFC 3326 / RFC 6432).
//!
//! The CDR keeps both the SIP status and the cause so that a carrier can recompute its own
//! statistics; a cause the carrier sent explicitly in `Reason: Q.850;cause=N` wins over the table.

/// Q.850 cause for a final SIP status, following the table of RFC 3398 §8.2.6.1.
///
/// Where RFC 3398 gives no fixed value we choose one (each choice is commented). Codes the table
/// does not list are treated as the x00 code of their class, as RFC 3261 §8.1.3.2 tells a UAC to do.
/// Provisional and out-of-range statuses have no cause.
pub fn cause_for_sip(status: u16) -> Option<u8> {
    let cause = match status {
        // A completed call clears normally.
        200..=299 => 16,
        // RFC 3398 has no 3xx row (a gateway would follow the redirect); we do not follow
        // redirects, so report Q.850 23 "redirection to new destination".
        300..=399 => 23,
        400 => 41,
        401 | 402 | 403 | 407 => 21,
        404 | 485 | 604 => 1,
        405 => 63,
        406 | 415 => 79,
        408 => 102,
        410 => 22,
        413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => 127,
        480 => 18,
        481 => 41,
        482 | 483 => 25,
        484 => 28,
        486 | 600 => 17,
        // RFC 3398 lists 487 with no mapping, because a 487 only answers a CANCEL and the cause
        // belongs to whoever cancelled. Here that is the caller abandoning before answer (or a
        // ring timer), which the PSTN reports as 16 "normal call clearing". 127 "interworking,
        // unspecified" would make every abandoned call look like a gateway fault in carrier stats.
        487 => 16,
        // RFC 3398 maps 488 and 606 "by Warning header", which we do not interpret. The reverse
        // table (ISUP → SIP) maps 65 "bearer capability not implemented" to 488, and a codec
        // mismatch is what these responses mean in practice, so we report 65.
        488 | 606 => 65,
        500 | 503 => 41,
        501 => 79,
        // RFC 3398 says 38 "network out of order". (27 "destination out of order" is the other
        // direction: ISUP 27 → SIP 502.)
        502 => 38,
        504 => 102,
        // RFC 8197 (607 Unwanted) and RFC 8688 (608 Rejected) both interwork with 21.
        603 | 607 | 608 => 21,
        // Unlisted codes: the x00 code of the class (RFC 3261 §8.1.3.2).
        _ => match status / 100 {
            4 | 5 => 41,
            6 => 17,
            _ => return None,
        },
    };
    Some(cause)
}

/// The Q.850 cause from a Reason header value, e.g. `Q.850;cause=16;text="Normal"`.
///
/// Accepts several comma-separated reason values (`SIP;cause=200, Q.850;cause=16`), a leading
/// `Reason:` header name, any letter case and whitespace, and quoted text containing `;` or `,`.
/// Returns the first valid Q.850 cause (1–127); None if there is none.
pub fn parse_reason_header(value: &str) -> Option<u8> {
    let value = strip_header_name(value.trim());
    for reason in split_unquoted(value, ',') {
        let mut parts = split_unquoted(reason, ';').into_iter();
        let protocol = parts.next().unwrap_or_default().trim();
        if !protocol.eq_ignore_ascii_case("Q.850") {
            continue;
        }
        for param in parts {
            let Some((name, val)) = param.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("cause") {
                continue;
            }
            let val = val.trim();
            if val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match val.parse::<u32>() {
                Ok(c @ 1..=127) => return Some(c as u8),
                _ => continue,
            }
        }
    }
    None
}

/// The cause to record: the carrier's explicit Q.850 Reason if it sent one, else the table.
pub fn resolve_cause(status: u16, reason_header: Option<&str>) -> Option<u8> {
    reason_header
        .and_then(parse_reason_header)
        .or_else(|| cause_for_sip(status))
}

fn strip_header_name(v: &str) -> &str {
    match v.split_once(':') {
        Some((name, rest)) if name.trim().eq_ignore_ascii_case("reason") => rest.trim(),
        _ => v,
    }
}

/// Split on `sep` outside double-quoted strings (which may contain `\"` escapes).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let table: &[(u16, Option<u8>)] = &[
            (100, None),
            (180, None),
            (183, None),
            (200, Some(16)),
            (302, Some(23)),
            (400, Some(41)),
            (401, Some(21)),
            (403, Some(21)),
            (404, Some(1)),
            (405, Some(63)),
            (406, Some(79)),
            (407, Some(21)),
            (408, Some(102)),
            (410, Some(22)),
            (415, Some(79)),
            (420, Some(127)),
            (480, Some(18)),
            (481, Some(41)),
            (482, Some(25)),
            (483, Some(25)),
            (484, Some(28)),
            (485, Some(1)),
            (486, Some(17)),
            (487, Some(16)),
            (488, Some(65)),
            (429, Some(41)),
            (500, Some(41)),
            (501, Some(79)),
            (502, Some(38)),
            (503, Some(41)),
            (504, Some(102)),
            (505, Some(127)),
            (580, Some(41)),
            (600, Some(17)),
            (603, Some(21)),
            (604, Some(1)),
            (606, Some(65)),
            (607, Some(21)),
            (699, Some(17)),
            (0, None),
            (700, None),
        ];
        for &(status, want) in table {
            assert_eq!(cause_for_sip(status), want, "status {status}");
        }
    }

    #[test]
    fn reason_header() {
        let cases: &[(&str, Option<u8>)] = &[
            ("Q.850;cause=16;text=\"Normal call clearing\"", Some(16)),
            ("Reason: Q.850;cause=17", Some(17)),
            ("q.850 ; CAUSE = 34 ; text=\"x\"", Some(34)),
            ("SIP;cause=200;text=\"Call completed elsewhere\"", None),
            ("SIP;cause=480, Q.850;cause=18", Some(18)),
            ("Q.850;text=\"a;cause=99, b\";cause=21", Some(21)),
            ("Q.850;text=\"esc \\\" ;cause=5\";cause=41", Some(41)),
            ("Q.850;cause=0", None),
            ("Q.850;cause=128", None),
            ("Q.850;cause=-1", None),
            ("Q.850;cause=1x", None),
            ("Q.850;cause=", None),
            ("Q.850", None),
            ("Q.8500;cause=16", None),
            ("", None),
            ("Q.850;cause=99999999999999999999", None),
        ];
        for &(value, want) in cases {
            assert_eq!(parse_reason_header(value), want, "{value:?}");
        }
    }

    #[test]
    fn explicit_cause_wins() {
        assert_eq!(resolve_cause(503, Some("Q.850;cause=34")), Some(34));
        assert_eq!(resolve_cause(503, Some("SIP;cause=503")), Some(41));
        assert_eq!(resolve_cause(486, None), Some(17));
    }
}
