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

/// A phone number, normalized like the numbers of calls.
pub(crate) fn number_param(field: &str, value: &str) -> Result<String, ApiError> {
    crate::policy::normalize_number(value).ok_or_else(|| ApiError::bad(field, "not a phone number"))
}
