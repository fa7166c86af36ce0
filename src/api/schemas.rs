//! The document's schemas of parameters and fields that the server checks beyond their JSON
//! type: each says the format, pattern, length or values the parsers in `params` and the
//! resources accept, and nothing they refuse (tests/api_contract.rs runs schemathesis over the
//! document against a gateway). Used through `#[param(schema_with = …)]` and
//! `#[schema(schema_with = …)]`.

use serde_json::json;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{Object, RefOr};

pub(crate) mod trunk_body;

/// A phone number as the API reads it: an optional `+`, then 3 to 20 digits, which spaces,
/// dots, dashes and parentheses may separate (`params::number_param`).
pub(crate) const NUMBER_PATTERN: &str = r"^\+?[ .()-]*([0-9][ .()-]*){3,20}$";

/// A reason code as CDRs store it (`CdrQuery::is_reason_code`).
pub(crate) const REASON_CODE_PATTERN: &str = "^[a-z0-9_]{1,64}$";

/// An anomaly's id (`CdrQuery::is_anomaly_id`).
pub(crate) const ANOMALY_ID_PATTERN: &str = "^[0-9]{1,40}$";

/// A CDR page's cursor: the hex of `<ms> <id>` as `cdrs::encode_cursor` writes it.
pub(crate) const CDR_CURSOR_PATTERN: &str = "^(2d)?(3[0-9]){1,15}20([2-7][0-9a-f]){1,400}$";

/// An audit page's cursor: the last row's id.
pub(crate) const AUDIT_CURSOR_PATTERN: &str = "^[0-9]{1,18}$";

/// How long a step lasts (checked in `enforcement::impose` before `parse_duration`).
pub(crate) const DURATION_PATTERN: &str = "^[1-9][0-9]{0,6}[smhd]$";

/// Text that must say something: at least one character that is not white space.
pub(crate) const SAYS_SOMETHING_PATTERN: &str = r"\S";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn pattern(p: &str) -> Object {
    string().pattern(Some(p)).build()
}

fn one_of(values: &[&str]) -> Object {
    string().enum_values(Some(values.iter().copied())).build()
}

/// A time: RFC 3339 (`params::time_param` also reads a bare `YYYY-MM-DD` as that day's UTC
/// midnight, which the document leaves out so that it stays one format).
pub(crate) fn time() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

pub(crate) fn number() -> Object {
    pattern(NUMBER_PATTERN)
}

pub(crate) fn reason_code() -> Object {
    pattern(REASON_CODE_PATTERN)
}

pub(crate) fn anomaly_id() -> Object {
    pattern(ANOMALY_ID_PATTERN)
}

pub(crate) fn cdr_cursor() -> Object {
    pattern(CDR_CURSOR_PATTERN)
}

pub(crate) fn audit_cursor() -> Object {
    pattern(AUDIT_CURSOR_PATTERN)
}

/// A non-empty name or filter (a trunk, a token, a call id): 1 to 256 characters.
pub(crate) fn name() -> Object {
    string().min_length(Some(1)).max_length(Some(256)).build()
}

/// A reason an operator gives: something besides white space.
pub(crate) fn reason() -> Object {
    pattern(SAYS_SOMETHING_PATTERN)
}

/// A hold's reason: something besides white space, at most 2,000 characters.
pub(crate) fn hold_reason() -> Object {
    string()
        .pattern(Some(SAYS_SOMETHING_PATTERN))
        .max_length(Some(2000))
        .build()
}

/// `schema`, or `null` (an optional field: `null` is the same as leaving it out).
fn nullable(mut schema: Object) -> Object {
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

pub(crate) fn optional_hold_reason() -> Object {
    nullable(hold_reason())
}

pub(crate) fn optional_time() -> Object {
    nullable(time())
}

pub(crate) fn optional_complaint_source() -> Object {
    nullable(one_of(&crate::monitor::complaint_csv::SOURCES))
}

/// An operator's order (`enforcement::ImposeOrder`): on the trunk (no `number`: alert,
/// throttle or suspend_trunk) or on one of its caller IDs (alert, throttle or suspend_number).
pub(crate) fn impose_order() -> RefOr<Schema> {
    let variant = |number: serde_json::Value, steps: &[&str], required: &[&str]| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": required,
            "properties": {
                "trunk": {"type": "string", "minLength": 1, "maxLength": 256,
                          "description": "A trunk's name (404 when there is none)"},
                "number": number,
                "step": {"type": "string", "enum": steps},
                "duration": {"type": ["string", "null"], "pattern": DURATION_PATTERN,
                             "description": "How long (90s, 30m, 2h, 7d); absent: until lifted"},
                "reason": {"type": "string", "pattern": SAYS_SOMETHING_PATTERN},
            }
        })
    };
    let doc = json!({
        "description": "An operator's order: on the trunk (no `number`) or on one of its caller \
                        IDs (404 when the number is not one of the trunk's).",
        "oneOf": [
            variant(json!({"type": "null"}), &["alert", "throttle", "suspend_trunk"],
                    &["trunk", "step", "reason"]),
            variant(json!({"type": "string", "pattern": NUMBER_PATTERN}),
                    &["alert", "throttle", "suspend_number"],
                    &["trunk", "number", "step", "reason"]),
        ]
    });
    match serde_json::from_value::<Schema>(doc) {
        Ok(schema) => RefOr::T(schema),
        Err(e) => {
            tracing::error!(error = %e, "the impose order's schema does not parse");
            RefOr::T(Schema::Object(Object::new()))
        }
    }
}

fn page_size(max: u32) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(max))
        .build()
}

pub(crate) fn cdr_page_size() -> Object {
    page_size(super::cdrs::MAX_LIMIT)
}

pub(crate) fn audit_page_size() -> Object {
    page_size(super::audit_log::MAX_LIMIT)
}

pub(crate) fn disposition() -> Object {
    one_of(&[
        "answered",
        "busy",
        "no_answer",
        "cancelled",
        "rejected",
        "failed",
        "refused",
    ])
}

pub(crate) fn subject_kind() -> Object {
    one_of(&["trunk", "caller_id", "callee"])
}

pub(crate) fn bucket() -> Object {
    one_of(&["hour", "day"])
}

pub(crate) fn report_format() -> Object {
    one_of(&["json", "csv"])
}

/// A SIP trace's `format`.
pub(crate) fn sip_trace_format() -> Object {
    one_of(&["json", "text"])
}

pub(crate) fn complaint_category() -> Object {
    one_of(&crate::monitor::complaint_csv::CATEGORIES)
}

/// A recording download's `format`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Documents the parameter; `recordings::download` reads it as text.
pub(crate) enum RecordingFormat {
    Wav,
    Pcap,
}

#[cfg(test)]
mod tests {
    use crate::api::params::number_param;

    #[test]
    fn the_api_reads_numbers_as_the_pattern_says() {
        // The pattern's language, by hand (schemathesis checks it against the server too).
        for ok in [
            "+861012345678",
            "123",
            "+86 (10) 1234-5678",
            "1.2.3 ",
            "(1)-2-3",
        ] {
            assert!(number_param("n", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "12",
            "+",
            "abc",
            "+86x",
            " +123",
            "sip:123",
            "1234567890123456789012",
            "<123>",
            "123@host",
        ] {
            assert!(number_param("n", bad).is_err(), "{bad}");
        }
    }
}
