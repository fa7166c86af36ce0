//! Query-string parameters shared by the resources: each error names its parameter.

use chrono::{DateTime, Utc};

use super::error::ApiError;

/// A parameter given twice is refused (which one would win is nobody's guess).
pub(crate) fn unique(pairs: &[(String, String)]) -> Result<(), ApiError> {
    for (i, (key, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(k, _)| k == key) {
            return Err(ApiError::bad(key, "given more than once"));
        }
    }
    Ok(())
}

/// RFC 3339, or a UTC date-time / day.
pub(crate) fn time_param(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    crate::monitor::complaint_csv::parse_time(value)
        .ok_or_else(|| ApiError::bad(field, "not RFC 3339 (2026-11-27T09:00:00Z) or YYYY-MM-DD"))
}

/// A phone number, normalized like the numbers of calls: an optional `+`, then 3 to 20 digits
/// that spaces, dots, dashes and parentheses may separate (`schemas::NUMBER_PATTERN`; no SIP
/// URI, no surrounding white space).
pub(crate) fn number_param(field: &str, value: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad(field, "not a phone number (+8610…, 3 to 20 digits)");
    let rest = value.strip_prefix('+').unwrap_or(value);
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')'))
    {
        return Err(bad());
    }
    crate::model::normalize_number(value).ok_or_else(bad)
}

/// A text filter of 1 to 256 characters.
pub(crate) fn text_param(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > 256 {
        return Err(ApiError::bad(field, "must be 1 to 256 characters"));
    }
    Ok(value.to_string())
}

/// A page size, 1 to `max`.
pub(crate) fn limit_param(value: &str, max: u32) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::bad("limit", format!("must be 1 to {max}")))
}

/// Shared by the resources' query-parsing tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::ApiError;

    pub(crate) fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The field a 400 names.
    pub(crate) fn field<T: std::fmt::Debug>(r: Result<T, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }
}
