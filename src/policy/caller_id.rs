//! Who is calling whom: caller-ID authorization (outbound), called-number ownership (inbound),
//! anonymity (RFC 3323 / RFC 3325) and the forms in which numbers arrive in SIP.

use super::decision::{AdmissionRequest, Refusal};
use super::trunks::Trunk;
use crate::model::number::strip_scheme;
use crate::model::{normalize_number, RefusalReason};

/// The parties of an INVITE that passed the identity checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parties {
    pub caller: Option<String>,
    pub callee: String,
    /// The trunk number whose per-number slot the call takes.
    pub line: String,
    /// Every number the call presents, screened against the block list.
    pub screened: Vec<String>,
}

/// The addr-spec inside `Display Name <uri>;params`, or the trimmed input when it has no `<>`.
pub(super) fn addr_spec(raw: &str) -> &str {
    if let Some(open) = raw.find('<') {
        let rest = &raw[open + 1..];
        if let Some(close) = rest.find('>') {
            return rest[..close].trim();
        }
    }
    raw.trim()
}

/// Split an addr-spec into (user, host) with the scheme, params and port removed.
fn user_host(spec: &str) -> (&str, &str) {
    let s = strip_scheme(spec);
    match s.split_once('@') {
        Some((user, host)) => {
            let user = user.split(';').next().unwrap_or("");
            let host = host.split([';', ':', '?', '>']).next().unwrap_or("");
            (user, host)
        }
        None => (s.split(';').next().unwrap_or(""), ""),
    }
}

/// RFC 3323 §4.1.1.3 anonymous URI: user `anonymous` or host `anonymous.invalid`.
fn is_anonymous_uri(spec: &str) -> bool {
    let (user, host) = user_host(spec);
    user.eq_ignore_ascii_case("anonymous") || host.eq_ignore_ascii_case("anonymous.invalid")
}

/// The number a URI presents, or `None` when it is anonymous or no phone number.
pub(super) fn presented_number(uri: &str) -> Option<String> {
    let spec = addr_spec(uri);
    if is_anonymous_uri(spec) {
        return None;
    }
    normalize_number(spec)
}

/// Whether a Privacy header asks to withhold the caller's identity. Tokens are `;`-separated
/// (RFC 3323 §4.2; `,` too, for joined header instances) and case-insensitive. `id` (RFC 3325),
/// `user` (anonymize user-level headers) and `header` (strip identifying headers) all hide who
/// calls; `session` hides media only, `none` and `critical` hide nothing by themselves.
pub(super) fn privacy_hides_identity(privacy: Option<&str>) -> bool {
    privacy.is_some_and(|p| {
        p.split([';', ',']).map(str::trim).any(|t| {
            ["id", "user", "header"]
                .iter()
                .any(|h| t.eq_ignore_ascii_case(h))
        })
    })
}

/// The refusal for a callee that is no phone number. RFC 3261 §21.4.22: 484 Address Incomplete
/// invites the caller to send more digits (overlap dialling), which is right only when the user
/// part is a digit string too short to be a number; otherwise (letters, too many digits) the
/// number definitively does not exist: §21.4.4 404 Not Found.
pub(super) fn invalid_callee(req: &AdmissionRequest<'_>, caller: Option<String>) -> Refusal {
    let mut r = Refusal::new(RefusalReason::InvalidNumber, 0, caller, None);
    let (user, _) = user_host(addr_spec(req.callee_uri));
    let user = user.strip_prefix('+').unwrap_or(user);
    let digits: Vec<char> = user
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if !digits.is_empty() && digits.len() < 3 && digits.iter().all(char::is_ascii_digit) {
        r.status = 484;
        r.phrase = "Address Incomplete".to_string();
    }
    r
}

/// Outbound (PBX → carrier): every number presented must be the trunk's; a hidden identity needs
/// `allow_anonymous` and an authorized P-Asserted-Identity, because the carrier must always know
/// which authorized line is calling.
pub(super) fn outbound(trunk: &Trunk, req: &AdmissionRequest<'_>) -> Result<Parties, Refusal> {
    let from = presented_number(req.from_uri);
    let pai = req.pai_uri.map(presented_number);
    let pai_num = pai.clone().flatten();
    let caller = from.clone().or_else(|| pai_num.clone());
    let callee = normalize_number(addr_spec(req.callee_uri));
    let refuse = |reason| Err(Refusal::new(reason, 0, caller.clone(), callee.clone()));
    let authorized = |n: &Option<String>| n.as_ref().is_some_and(|n| trunk.numbers.contains(n));

    // A number that is presented but not ours is spoofing: refuse it before anything else,
    // whether or not privacy was asked for.
    if from.is_some() && !authorized(&from) {
        return refuse(RefusalReason::CallerIdNotAuthorized);
    }
    if pai.is_some() && !authorized(&pai_num) {
        return refuse(RefusalReason::CallerIdNotAuthorized);
    }
    if from.is_none() || privacy_hides_identity(req.privacy) {
        if !trunk.config.allow_anonymous {
            return refuse(RefusalReason::AnonymousNotAllowed);
        }
        if pai_num.is_none() {
            return refuse(RefusalReason::CallerIdNotAuthorized);
        }
    }
    // The From number is the caller ID (the line); P-Asserted-Identity stands in when From is
    // anonymous. Both were checked above, so `line` is an authorized number.
    let Some(line) = caller.clone() else {
        return refuse(RefusalReason::CallerIdNotAuthorized);
    };
    let Some(callee) = callee else {
        return Err(invalid_callee(req, caller));
    };
    let screened = [from, pai_num, Some(callee.clone())].into_iter().flatten();
    Ok(Parties {
        caller,
        screened: screened.collect(),
        callee,
        line,
    })
}

/// Inbound (carrier → PBX): the called number must be the trunk's; the remote caller is not
/// authorized against the list (it is a customer) but is still screened against blocks.
pub(super) fn inbound(trunk: &Trunk, req: &AdmissionRequest<'_>) -> Result<Parties, Refusal> {
    let from = presented_number(req.from_uri);
    let pai_num = req.pai_uri.and_then(presented_number);
    let caller = from.clone().or_else(|| pai_num.clone());
    let Some(callee) = normalize_number(addr_spec(req.callee_uri)) else {
        return Err(invalid_callee(req, caller));
    };
    if !trunk.numbers.contains(&callee) {
        let reason = RefusalReason::UnknownNumber;
        return Err(Refusal::new(reason, 0, caller, Some(callee)));
    }
    let screened = [from, pai_num, Some(callee.clone())].into_iter().flatten();
    Ok(Parties {
        caller,
        screened: screened.collect(),
        line: callee.clone(),
        callee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_spec_strips_display_name_and_params() {
        assert_eq!(
            addr_spec("\"Bob\" <sip:+861012345678@pbx;user=phone>;tag=x"),
            "sip:+861012345678@pbx;user=phone"
        );
        assert_eq!(addr_spec(" sip:1@h "), "sip:1@h");
    }

    #[test]
    fn anonymous_forms() {
        assert_eq!(presented_number("sip:anonymous@anonymous.invalid"), None);
        assert_eq!(presented_number("\"Anonymous\" <sip:Anonymous@pbx>"), None);
        assert_eq!(
            presented_number("sip:+861012345678@anonymous.invalid"),
            None
        );
        assert_eq!(presented_number("sip:alice@pbx"), None);
        assert_eq!(presented_number("\"Zoë\" <sé:anonymous@x>"), None);
        assert_eq!(
            presented_number("<tel:+86-10-1234-5678>"),
            Some("861012345678".to_string())
        );
    }

    #[test]
    fn privacy_tokens() {
        assert!(privacy_hides_identity(Some("id")));
        assert!(privacy_hides_identity(Some("ID")));
        assert!(privacy_hides_identity(Some("header; critical")));
        assert!(privacy_hides_identity(Some("session;user")));
        assert!(privacy_hides_identity(Some("none, id")));
        assert!(!privacy_hides_identity(Some("none")));
        assert!(!privacy_hides_identity(Some("session")));
        assert!(!privacy_hides_identity(Some("identity")));
        assert!(!privacy_hides_identity(None));
    }
}
