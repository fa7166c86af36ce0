//! The scaffolding every console form shares: a field's label, its control, its help and the
//! message of a refused value beside it, tied together for assistive technology (`for`,
//! `aria-describedby`, `aria-invalid`). The control itself (input, select) is the page's: it
//! takes its id, `described_by()` and `invalid()` from the `Field`.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use maud::{html, Markup};

/// A GET form's non-empty values (trimmed), in the form's order of `fields`; anything else
/// in the query is left out.
pub(crate) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    fields: &[&str],
) -> Vec<(String, String)> {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    fields
        .iter()
        .filter_map(|f| {
            pairs
                .iter()
                .find(|(k, v)| k == f && !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.trim().to_string()))
        })
        .collect()
}

/// A field's value in `pairs` ('' when absent).
pub(crate) fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// One field of a form.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    /// The control's id (the help and the message get `<id>-help`, `<id>-error`).
    pub id: &'a str,
    pub label: &'a str,
    help: Option<&'a str>,
    /// Another element that describes the control (a help shared by several fields).
    also: Option<&'a str>,
    error: Option<&'a str>,
    /// The server's messages are English: said so (`lang="en"`) after a lead in the page's
    /// language.
    server_lead: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(id: &'a str, label: &'a str) -> Field<'a> {
        Field {
            id,
            label,
            help: None,
            also: None,
            error: None,
            server_lead: None,
        }
    }

    /// A help text under the control.
    pub fn help(mut self, help: &'a str) -> Field<'a> {
        self.help = Some(help);
        self
    }

    /// An element elsewhere on the page that describes this control too.
    pub fn described_also(mut self, id: &'a str) -> Field<'a> {
        self.also = Some(id);
        self
    }

    /// The message of a refused value, if any.
    pub fn error(mut self, error: Option<&'a str>) -> Field<'a> {
        self.error = error;
        self
    }

    /// The server's message (English) about the value, after `lead` in the page's language.
    pub fn server_error(mut self, lead: &'a str, message: Option<&'a str>) -> Field<'a> {
        self.error = message;
        self.server_lead = Some(lead);
        self
    }

    fn help_id(&self) -> String {
        format!("{}-help", self.id)
    }

    fn error_id(&self) -> String {
        format!("{}-error", self.id)
    }

    /// The control's `aria-describedby`: the help, the shared help, the message.
    pub fn described_by(&self) -> Option<String> {
        let ids: Vec<String> = [
            self.also.map(str::to_string),
            self.help.map(|_| self.help_id()),
            self.error.map(|_| self.error_id()),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    /// The control's `aria-invalid`.
    pub fn invalid(&self) -> Option<&'static str> {
        self.error.map(|_| "true")
    }

    pub fn label(&self) -> Markup {
        html! { label for=(self.id) { (self.label) } }
    }

    /// The help and the message, as they follow the control.
    pub fn notes(&self) -> Markup {
        html! {
            @if let Some(h) = self.help {
                p.help id=(self.help_id()) { (h) }
            }
            @if let Some(e) = self.error {
                p.field-error id=(self.error_id()) {
                    @if let Some(lead) = self.server_lead {
                        (lead) " " span lang="en" { (e) }
                    } @else {
                        (e)
                    }
                }
            }
        }
    }

    /// The whole field (`div.field`): the label, `control`, the help and the message.
    pub fn render(&self, control: Markup) -> Markup {
        html! {
            div.field {
                (self.label())
                (control)
                (self.notes())
            }
        }
    }
}

/// The period (`from`, `to`: dates) and `trunk` fields a filter form starts with (calls' KPIs,
/// anomalies), each made by the caller with its label, error and help.
pub(crate) fn period_and_trunk(
    [from, to]: [Field<'_>; 2],
    trunk: Field<'_>,
    pairs: &[(String, String)],
    trunks: &[String],
    any: &str,
) -> Markup {
    let v = |name: &str| value(pairs, name);
    html! {
        @for p in [from, to] {
            (p.render(html! {
                input id=(p.id) name=(p.id) type="date" value=(v(p.id))
                    aria-describedby=[p.described_by()] aria-invalid=[p.invalid()];
            }))
        }
        (trunk.render(html! {
            select #trunk name="trunk" aria-invalid=[trunk.invalid()] aria-describedby=[trunk.described_by()] {
                option value="" { (any) }
                @for name in trunks {
                    option value=(name) selected[v("trunk") == name] { (name) }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_ties_its_label_help_and_message_to_its_control() {
        let f = Field::new("max_cps", "Calls per second")
            .help("A number above 0.")
            .error(Some("must be above 0"));
        assert_eq!(
            f.described_by().as_deref(),
            Some("max_cps-help max_cps-error")
        );
        assert_eq!(f.invalid(), Some("true"));
        let html = f.render(html! { input #max_cps; }).into_string();
        assert!(html.contains(r#"<label for="max_cps">Calls per second</label>"#));
        assert!(html.contains(r#"<p class="field-error" id="max_cps-error">must be above 0</p>"#));
        let plain = Field::new("to", "Until").described_also("zone-help");
        assert_eq!(plain.described_by().as_deref(), Some("zone-help"));
        assert_eq!(plain.invalid(), None);
        assert_eq!(Field::new("x", "X").described_by(), None);
        assert!(!plain.notes().into_string().contains("<p"));
        let server = Field::new("x", "X").server_error("Refused:", Some("2 > 1"));
        assert!(server
            .notes()
            .into_string()
            .contains(r#"Refused: <span lang="en">2 &gt; 1</span>"#));
    }
}
