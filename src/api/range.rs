//! HTTP `Range` requests on a file of known length (RFC 9110 §14): `bytes=a-b`, `bytes=a-` and
//! `bytes=-n`. Several ranges in one request are answered with the first one only (a single-part
//! 206, never multipart/byteranges: players seek with one range). A header that is not a valid
//! byte range is ignored (the whole file, as the RFC allows); a valid one that starts at or beyond
//! the end is unsatisfiable (416 with `Content-Range: bytes */len`).

/// What to send for a request's `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// 200: the whole file.
    Full,
    /// 206: bytes `start..=end` (both within the file).
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

impl RangeAnswer {
    /// How many bytes the answer carries for a file of `len` bytes.
    pub(crate) fn body_len(self, len: u64) -> u64 {
        match self {
            RangeAnswer::Full => len,
            RangeAnswer::Partial { start, end } => end - start + 1,
            RangeAnswer::Unsatisfiable => 0,
        }
    }
}

/// The answer to `range` (the header's value, if any) for a file of `len` bytes.
pub(crate) fn answer(range: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    let Some(first) = spec.split(',').map(str::trim).find(|s| !s.is_empty()) else {
        return RangeAnswer::Full;
    };
    let Some((a, b)) = first.split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // More digits than u64 holds: beyond any file, so as good as u64::MAX.
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(b) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len - n.min(len),
                end: len - 1,
            },
        },
        // bytes=a-: from a to the end.
        (false, true) => match number(a) {
            None => RangeAnswer::Full,
            Some(start) if start >= len => RangeAnswer::Unsatisfiable,
            Some(start) => RangeAnswer::Partial {
                start,
                end: len - 1,
            },
        },
        // bytes=a-b: from a to b, b cut at the end.
        (false, false) => match (number(a), number(b)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial {
                        start,
                        end: end.min(len - 1),
                    }
                }
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn single_ranges() {
        let len = 1000;
        assert_eq!(answer(None, len), Full);
        assert_eq!(
            answer(Some("bytes=0-99"), len),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=500-"), len),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            answer(Some("bytes=-100"), len),
            Partial {
                start: 900,
                end: 999
            }
        );
        // The end is cut at the file's end; a suffix longer than the file is the whole file.
        assert_eq!(
            answer(Some("bytes=990-5000"), len),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            answer(Some("bytes=-5000"), len),
            Partial { start: 0, end: 999 }
        );
        assert_eq!(
            answer(Some("bytes=999-999"), len),
            Partial {
                start: 999,
                end: 999
            }
        );
        assert_eq!(answer(Some(" bytes= 10 - 20 "), len).body_len(len), 11);
    }

    #[test]
    fn unsatisfiable_ranges() {
        let len = 1000;
        assert_eq!(answer(Some("bytes=1000-"), len), Unsatisfiable);
        assert_eq!(answer(Some("bytes=1000-2000"), len), Unsatisfiable);
        assert_eq!(answer(Some("bytes=-0"), len), Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(answer(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(
            answer(Some("bytes=99999999999999999999999-"), len),
            Unsatisfiable
        );
    }

    #[test]
    fn invalid_headers_are_ignored() {
        let len = 1000;
        for h in [
            "bytes=",
            "bytes=abc",
            "bytes=5-1",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=+1-2",
            "items=0-10",
            "0-10",
            "bytes=0x10-20",
        ] {
            assert_eq!(answer(Some(h), len), Full, "{h}");
        }
    }

    #[test]
    fn several_ranges_get_the_first() {
        assert_eq!(
            answer(Some("bytes=0-9, 20-29, -5"), 1000),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            answer(Some("bytes=, 20-29"), 1000),
            Partial { start: 20, end: 29 }
        );
    }
}
