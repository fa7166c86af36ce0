//! The typed values of the command line. Clap checks every value as it parses, so a command
//! runs with typed arguments only and a misspelling is a usage error naming the option.
//!
//! Where the library already has the enum (report `Bucket`, enforcement `Step`, token `Role`),
//! it is the value itself: its `ValueEnum` takes the spellings from the library's codes, so a
//! code is defined once. `OutputFormat` is the command line's own word.

use chrono::{DateTime, Utc};
use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::api::Role;
use crate::config::parse_duration;
use crate::model::Step;
use crate::model::{Disposition, SubjectKind};
use crate::monitor::complaint_csv::parse_time;
use crate::monitor::report::{Bucket, Format};
use crate::store::CdrQuery;

/// How a command prints rows: a text table, CSV or JSON (lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Table => Format::Table,
            OutputFormat::Csv => Format::Csv,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// The kind of a KPI subject (`model::SubjectKind`), spelled as its code.
impl ValueEnum for SubjectKind {
    fn value_variants<'a>() -> &'a [Self] {
        SubjectKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for Bucket {
    fn value_variants<'a>() -> &'a [Self] {
        &[Bucket::Hour, Bucket::Day]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }))
    }
}

impl ValueEnum for Step {
    fn value_variants<'a>() -> &'a [Self] {
        Step::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.code()))
    }
}

impl ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Admin, Role::Compliance, Role::Carrier, Role::Agent]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        // Exhaustive on purpose: a new role does not compile until it is listed above.
        match self {
            Role::Admin | Role::Compliance | Role::Carrier | Role::Agent => {
                Some(PossibleValue::new(self.as_str()))
            }
        }
    }
}

/// A time: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or `YYYY-MM-DD` (UTC midnight).
pub fn time_value(value: &str) -> Result<DateTime<Utc>, String> {
    parse_time(value).ok_or_else(|| "not RFC 3339 (2026-11-27T09:00:00Z) or YYYY-MM-DD".to_string())
}

/// A number, normalized like the numbers of calls.
pub fn number_value(value: &str) -> Result<String, String> {
    crate::model::normalize_number(value).ok_or_else(|| "not a phone number".to_string())
}

/// A duration like 90s, 30m, 2h or 7d.
pub fn duration_value(value: &str) -> Result<chrono::Duration, String> {
    parse_duration(value)
}

/// A row limit: at least 1.
pub fn limit_value(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A CDR disposition, by its stored code.
pub fn disposition_value(value: &str) -> Result<Disposition, String> {
    value.parse().map_err(|_| {
        "not answered, busy, no_answer, cancelled, rejected, failed or refused".to_string()
    })
}

/// A refusal or end reason code (its shape: the store matches it exactly).
pub fn reason_value(value: &str) -> Result<String, String> {
    if CdrQuery::is_reason_code(value) {
        Ok(value.to_string())
    } else {
        Err("not a reason code (e.g. number_blocked, busy)".to_string())
    }
}

/// An anomaly's id.
pub fn anomaly_value(value: &str) -> Result<String, String> {
    if CdrQuery::is_anomaly_id(value) {
        Ok(value.to_string())
    } else {
        Err("not an anomaly id".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling the command line accepts is the one the library parses back.
    #[test]
    fn spellings_are_the_librarys() {
        for b in Bucket::value_variants() {
            let name = b.to_possible_value().unwrap();
            assert_eq!(name.get_name().parse::<Bucket>(), Ok(*b));
        }
        for r in Role::value_variants() {
            let name = r.to_possible_value().unwrap();
            assert_eq!(name.get_name().parse::<Role>(), Ok(*r));
        }
        for s in Step::value_variants() {
            let name = s.to_possible_value().unwrap();
            assert_eq!(Step::from_code(name.get_name()), Some(*s));
        }
        for f in OutputFormat::value_variants() {
            let name = f.to_possible_value().unwrap();
            assert_eq!(name.get_name().parse::<Format>(), Ok(Format::from(*f)));
        }
        for k in SubjectKind::value_variants() {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.as_str());
        }
    }

    #[test]
    fn values_are_checked() {
        assert!(time_value("2026-11-27").is_ok());
        assert!(time_value("yesterday").is_err());
        assert_eq!(
            number_value("+86 10 1234 5678").ok(),
            crate::model::normalize_number("+861012345678")
        );
        assert!(number_value("abc").is_err());
        assert_eq!(duration_value("2h").unwrap().num_seconds(), 7200);
        assert!(duration_value("soon").is_err());
        assert_eq!(disposition_value("refused"), Ok(Disposition::Refused));
        assert!(disposition_value("maybe").is_err());
        assert!(reason_value("number_blocked").is_ok());
        assert!(reason_value("Number Blocked").is_err());
        assert!(anomaly_value("42").is_ok());
        assert!(anomaly_value("x").is_err());
        assert_eq!(limit_value("5"), Ok(5));
        assert!(limit_value("0").is_err() && limit_value("x").is_err());
    }
}
