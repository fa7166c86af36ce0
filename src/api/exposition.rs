//! The Prometheus text exposition format (0.0.4): a writer of families and samples, and a strict
//! parser that checks a whole exposition (what `/metrics` serves, in the tests) and reads its
//! samples back.

use std::collections::HashSet;
use std::fmt::Write;

/// Writes families and samples; a sample whose `trunk` label `visible` refuses is left out.
pub struct Exposition<'a> {
    text: String,
    visible: &'a dyn Fn(&str) -> bool,
}

impl<'a> Exposition<'a> {
    pub fn new(visible: &'a dyn Fn(&str) -> bool) -> Exposition<'a> {
        Exposition {
            text: String::new(),
            visible,
        }
    }

    /// The HELP and TYPE lines that start a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the family last started.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if let Some((_, trunk)) = labels.iter().find(|(k, _)| *k == "trunk") {
            if !(self.visible)(trunk) {
                return;
            }
        }
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A label value as the text format wants it.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample's labels, in the order written.
pub type Labels = Vec<(String, String)>;

/// One sample read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `(name, value)` of `want` is among its labels.
    pub fn has(&self, want: &[(&str, &str)]) -> bool {
        want.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// The sum of the samples of `name` whose labels include `want` (0 when none).
pub fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && s.has(want))
        .fold(0.0, |total, s| total + s.value)
}

const TYPES: [&str; 5] = ["counter", "gauge", "histogram", "summary", "untyped"];

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The labels after a sample's `{`, up to its `}` (values may hold `}`, `,`, `=`): the labels,
/// escapes undone, and the text after the `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = s
            .split_once("=\"")
            .ok_or_else(|| format!("label without =\": {s}"))?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} twice"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of {name}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        s = &rest[end + 1..];
        if let Some(more) = s.strip_prefix(',') {
            s = more;
        } else if !s.starts_with('}') {
            return Err(format!("expected , or }} after {name}: {s}"));
        }
    }
}

/// Checks a whole exposition and returns its samples. Errors name the line. Checked: line
/// shapes, names, label syntax and escapes, values; HELP and TYPE at most once per family and
/// before its samples; every sample typed; a family's samples together; no series twice;
/// counters named `…_total`, never negative.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line has no line feed".into());
    }
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut sampled: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut samples = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let keyword = words.next().unwrap_or("");
            let name = words.next().unwrap_or("");
            let rest = words.next().unwrap_or("");
            match keyword {
                "HELP" | "TYPE" if !is_metric_name(name) => {
                    return Err(at(format!("bad metric name {name:?}")))
                }
                "HELP" => {
                    if !helped.insert(name.to_string()) {
                        return Err(at("HELP twice".into()));
                    }
                }
                "TYPE" => {
                    if !TYPES.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    if typed.iter().any(|(n, _)| n == name) {
                        return Err(at("TYPE twice".into()));
                    }
                    if sampled.contains(name) {
                        return Err(at("TYPE after samples".into()));
                    }
                    typed.push((name.to_string(), rest.to_string()));
                }
                _ => continue, // a plain comment
            }
            if current.as_deref() != Some(name) {
                current = None; // another family's lines: the current one has ended
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        let (labels, value_text) = match line[name_end..].strip_prefix('{') {
            Some(rest) => parse_labels(rest).map_err(at)?,
            None => (Vec::new(), &line[name_end..]),
        };
        let value_text = value_text
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        if !is_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let mut value_words = value_text.split(' ');
        let value = value_words
            .next()
            .and_then(parse_value)
            .ok_or_else(|| at("bad value".into()))?;
        if let Some(ts) = value_words.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if value_words.next().is_some() {
            return Err(at("trailing words".into()));
        }
        let Some((family, kind)) = family_of(&typed, name) else {
            return Err(at("sample without TYPE".into()));
        };
        if kind == "counter" && (!name.ends_with("_total") || value < 0.0 || value.is_nan()) {
            return Err(at("a counter is named …_total and never negative".into()));
        }
        if kind == "histogram"
            && name.ends_with("_bucket")
            && !labels.iter().any(|(k, _)| k == "le")
        {
            return Err(at("a histogram bucket has an `le` label".into()));
        }
        if current.as_deref() != Some(family.as_str()) {
            if sampled.contains(&family) {
                return Err(at("family's samples not together".into()));
            }
            current = Some(family.clone());
        }
        sampled.insert(family);
        let mut key: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        key.sort();
        if !series.insert(format!("{name}{{{}}}", key.join(","))) {
            return Err(at("series twice".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The family a sample belongs to and its type: its own name, or for a histogram's
/// `…_bucket`, `…_sum` and `…_count` the histogram's.
fn family_of(typed: &[(String, String)], name: &str) -> Option<(String, String)> {
    if let Some((n, kind)) = typed.iter().find(|(n, _)| n == name) {
        return Some((n.clone(), kind.clone()));
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        let (n, kind) = typed.iter().find(|(n, _)| n == base)?;
        (kind == "histogram").then(|| (n.clone(), kind.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_parse_as_one_family() {
        let ok = "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                  h_sum 0.3\nh_count 2\n";
        assert_eq!(parse(ok).unwrap().len(), 4);
        let no_le = "# TYPE h histogram\nh_bucket 1\n";
        assert!(parse(no_le).is_err());
        let gauge_suffix = "# TYPE g gauge\ng_count 1\n";
        assert!(parse(gauge_suffix).is_err(), "only a histogram owns _count");
    }

    #[test]
    fn samples_escape_and_filter_by_trunk() {
        let visible = |t: &str| t == "a";
        let mut out = Exposition::new(&visible);
        out.family("m_total", "counter", "Help with \\ and\nbreak.");
        out.sample("m_total", &[("trunk", "a"), ("reason", "x\"y\\z\n")], 1);
        out.sample("m_total", &[("trunk", "b")], 2);
        out.family("g", "gauge", "A gauge.");
        out.sample("g", &[], 3);
        let text = out.finish();
        assert_eq!(
            text,
            "# HELP m_total Help with \\\\ and\\nbreak.\n# TYPE m_total counter\n\
             m_total{trunk=\"a\",reason=\"x\\\"y\\\\z\\n\"} 1\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 3\n"
        );
        let samples = parse(&text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].label("reason"), Some("x\"y\\z\n"));
        assert_eq!(sum(&samples, "m_total", &[("trunk", "a")]), 1.0);
        assert_eq!(sum(&samples, "g", &[]), 3.0);
    }

    #[test]
    fn parser_refuses_what_prometheus_would() {
        let ok = "# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n";
        assert!(parse(ok).is_ok());
        let bad = [
            ("a_total 1\n", "sample without TYPE"),
            ("# TYPE a_total counter\na_total 1", "no line feed"),
            (
                "# TYPE a_total counter\na_total 1\na_total 2\n",
                "series twice",
            ),
            (
                "# TYPE a_total counter\na_total{x=\"1\",y=\"2\"} 1\na_total{y=\"2\",x=\"1\"} 1\n",
                "series twice",
            ),
            ("# TYPE a counter\na 1\n", "counter"),
            ("# TYPE a_total counter\na_total -1\n", "counter"),
            ("# TYPE g gauge\ng one\n", "bad value"),
            ("# TYPE g gauge\ng{x=\"1} 1\n", "unterminated"),
            ("# TYPE g gauge\ng{x=\"\\t\"} 1\n", "bad escape"),
            ("# TYPE g gauge\ng{1x=\"a\"} 1\n", "bad label name"),
            ("# TYPE g gauge\ng{x=\"a\",x=\"b\"} 1\n", "twice"),
            ("# TYPE g gauge\ng 1\n# TYPE g gauge\n", "TYPE twice"),
            ("# HELP g a\n# HELP g b\n", "HELP twice"),
            (
                "# TYPE g gauge\ng 1\n# TYPE h gauge\ng{x=\"1\"} 2\n",
                "not together",
            ),
            ("# TYPE g gauge\ng{} 1 2 3\n", "trailing"),
            ("# TYPE g meter\n", "unknown type"),
            ("# TYPE 9g gauge\n", "bad metric name"),
        ];
        for (text, why) in bad {
            let e = parse(text).expect_err(text);
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let odd = parse("# TYPE g gauge\ng{a=\"x} y,z=\\\"w\",} 1\n").unwrap();
        assert_eq!(
            odd[0].label("a"),
            Some("x} y,z=\"w"),
            "a value holding }} , = and a quote"
        );
        let special =
            "# TYPE g gauge\ng{a=\"1\"} NaN\ng{a=\"2\"} +Inf\ng{a=\"3\"} 1.5e3 1700000000000\n";
        let s = parse(special).unwrap();
        assert!(s[0].value.is_nan() && s[1].value.is_infinite() && s[2].value == 1500.0);
    }
}
