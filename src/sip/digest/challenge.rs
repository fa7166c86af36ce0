//! Parsing `WWW-Authenticate` / `Proxy-Authenticate` values (RFC 7235 §4.1, RFC 7616 §3.3,
//! RFC 3261 §25.1). The input comes from the carrier, i.e. from the network: the parser is
//! total (never panics, never indexes inside a UTF-8 sequence), bounded (value, parameter and
//! challenge counts), and drops a challenge whose values could break the header we echo them
//! into (control characters).

use super::{Algorithm, Challenge, Kind, Qop};

/// Longest header value looked at; a longer one is ignored whole.
const MAX_VALUE: usize = 8 * 1024;
/// Longest parameter value kept (a nonce is usually 32–64 characters).
const MAX_PARAM: usize = 1024;
/// Parameters per challenge, challenges per header value.
const MAX_PARAMS: usize = 32;
const MAX_CHALLENGES: usize = 8;

/// One challenge as written: its scheme and its `name=value` parameters, unquoted.
#[derive(Debug, Default)]
pub(super) struct Raw {
    scheme: String,
    params: Vec<(String, String)>,
    /// A parameter was over a limit or malformed: the challenge is not answered.
    broken: bool,
}

impl Raw {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The text of `s[a..b]`; the slice ends sit on ASCII delimiters or the ends of the value, but
/// lossy conversion keeps this total whatever the bytes.
fn text(s: &[u8], a: usize, b: usize) -> String {
    String::from_utf8_lossy(s.get(a..b).unwrap_or_default()).into_owned()
}

/// A quoted-string starting at the quote `s[i]`: its unescaped content and the index after the
/// closing quote. An unterminated string runs to the end (and is marked broken).
fn quoted(s: &[u8], i: usize) -> (Vec<u8>, usize, bool) {
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'"' => return (out, j + 1, false),
            b'\\' if j + 1 < s.len() => {
                out.push(s[j + 1]);
                j += 2;
            }
            b => {
                out.push(b);
                j += 1;
            }
        }
    }
    (out, j, true)
}

/// Every challenge in one header value, in order.
pub(super) fn split(value: &str) -> Vec<Raw> {
    let mut out: Vec<Raw> = Vec::new();
    if value.len() > MAX_VALUE {
        return out;
    }
    let s = value.as_bytes();
    let mut i = 0;
    while i < s.len() {
        i = skip_ws(s, i);
        if i >= s.len() {
            break;
        }
        if s[i] == b',' {
            i += 1;
            continue;
        }
        if !is_tchar(s[i]) {
            // Garbage where a name belongs: whatever challenge it sits in is not answered.
            if let Some(c) = out.last_mut() {
                c.broken = true;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && is_tchar(s[i]) {
            i += 1;
        }
        let name = text(s, start, i);
        let after = skip_ws(s, i);
        if after < s.len() && s[after] == b'=' {
            // name=value: a parameter of the current challenge (token68 padding `==` ends up
            // as an empty-named parameter of a scheme we do not answer anyway).
            let v = skip_ws(s, after + 1);
            let (bytes, next, broken) = if v < s.len() && s[v] == b'"' {
                quoted(s, v)
            } else {
                let mut j = v;
                while j < s.len() && !matches!(s[j], b',' | b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                (s.get(v..j).unwrap_or_default().to_vec(), j, false)
            };
            i = next;
            let Some(current) = out.last_mut() else {
                continue;
            };
            let value = String::from_utf8_lossy(&bytes).into_owned();
            if broken || value.len() > MAX_PARAM || current.params.len() >= MAX_PARAMS {
                current.broken = true;
            } else {
                current.params.push((name, value));
            }
        } else {
            if out.len() >= MAX_CHALLENGES {
                break;
            }
            out.push(Raw {
                scheme: name,
                ..Raw::default()
            });
            i = after;
        }
    }
    out
}

/// A value we will write back between quotes: no control character (CR/LF would end the
/// header), nothing empty where the RFC needs something.
fn echoable(v: &str) -> bool {
    !v.chars().any(char::is_control)
}

/// The Digest challenges of one header value that we can answer, in order. Others (Basic,
/// unknown algorithms, only unknown qop values, missing realm or nonce, broken syntax) are
/// left out.
pub fn parse(kind: Kind, value: &str) -> Vec<Challenge> {
    split(value)
        .into_iter()
        .filter(|raw| !raw.broken && raw.scheme.eq_ignore_ascii_case("digest"))
        .filter_map(|raw| digest(kind, &raw))
        .collect()
}

fn digest(kind: Kind, raw: &Raw) -> Option<Challenge> {
    let realm = raw.get("realm")?;
    let nonce = raw.get("nonce")?;
    if nonce.is_empty() || !echoable(realm) || !echoable(nonce) {
        return None;
    }
    let opaque = raw.get("opaque");
    if opaque.is_some_and(|o| !echoable(o)) {
        return None;
    }
    let algorithm = match raw.get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::from_name(a)?,
    };
    let qop = match raw.get("qop") {
        None => None,
        Some(list) => {
            let offered: Vec<&str> = list.split(',').map(str::trim).collect();
            if offered.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
                Some(Qop::Auth)
            } else if offered.iter().any(|q| q.eq_ignore_ascii_case("auth-int")) {
                Some(Qop::AuthInt)
            } else {
                return None;
            }
        }
    };
    let flag = |name| {
        raw.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    Some(Challenge {
        kind,
        realm: realm.to_string(),
        nonce: nonce.to_string(),
        opaque: opaque.map(str::to_string),
        algorithm,
        qop,
        stale: flag("stale"),
        userhash: flag("userhash"),
    })
}
