//! The frame of every page: the language, a skip link, the header with the navigation the role
//! may use, who is signed in and the sign-out form, the main content; and the error pages.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::guard::{api_allows, Ctx, CSRF_FIELD};
use super::i18n::{Lang, T};
use crate::api::{ApiState, Role};

/// The navigation: each page, the API route its role rule comes from, its label.
const NAV: &[(&str, &str, T)] = &[
    ("/console/calls", super::CDR_SEARCH, T::NavCalls),
    ("/console/live", super::LIVE, T::NavLive),
    ("/console/trunks", super::TRUNKS, T::NavTrunks),
    ("/console/kpis", super::KPIS, T::NavKpis),
    ("/console/anomalies", super::ANOMALIES, T::NavAnomalies),
    (
        "/console/enforcement",
        super::ENFORCEMENT,
        T::NavEnforcement,
    ),
];

/// The first page of the navigation this role may use.
pub fn first_page(state: &ApiState, role: Role) -> Option<&'static str> {
    NAV.iter()
        .find(|(_, api, _)| api_allows(state, &Method::GET, api, role))
        .map(|(path, _, _)| *path)
}

/// The role in words.
pub fn role_words(role: Role, lang: Lang) -> &'static str {
    match role {
        Role::Admin => T::RoleAdmin.text(lang),
        Role::Compliance => T::RoleCompliance.text(lang),
        Role::Carrier => T::RoleCarrier.text(lang),
        Role::Agent => T::RoleAgent.text(lang),
    }
}

/// A whole page: `title` in the tab and as the page's heading, `body` as its content.
pub fn frame(state: Option<&ApiState>, ctx: &Ctx, title: &str, body: Markup) -> Markup {
    let lang = ctx.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.html()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (T::AppName.text(lang)) }
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("console.js")) defer {}
            }
            body {
                a.skip href="#main" { (T::SkipToContent.text(lang)) }
                header.top {
                    a.brand href="/console/" { (T::AppName.text(lang)) }
                    @if let (Some(state), Some(who)) = (state, &ctx.who) {
                        nav aria-label=(T::MainNav.text(lang)) {
                            ul {
                                @for (path, api, key) in NAV {
                                    @if api_allows(state, &Method::GET, api, who.role) {
                                        li {
                                            a href=(path) aria-current=[ctx.path.starts_with(path).then_some("page")] {
                                                (key.text(lang))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (language_switch(ctx))
                    @if let Some(who) = &ctx.who {
                        div.who {
                            span { (T::SignedInAs.fill(lang, &[("name", &who.name), ("role", role_words(who.role, lang))])) }
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf());
                                button type="submit" { (T::SignOut.text(lang)) }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// Links to the other language, coming back to this page.
fn language_switch(ctx: &Ctx) -> Markup {
    let back = super::guard::urlencode(&ctx.path);
    html! {
        div.lang role="group" aria-label=(ctx.t(T::Language)) {
            @for lang in Lang::ALL {
                @if lang == ctx.lang {
                    span aria-current="true" lang=(lang.html()) { (lang.own_name()) }
                } @else {
                    a href={ "/console/lang/" (lang.code()) "?back=" (back) } lang=(lang.html()) hreflang=(lang.html()) {
                        (lang.own_name())
                    }
                }
            }
        }
    }
}

/// An HTML answer with `status`.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// An error page (no navigation: it may be shown without a session).
pub fn error_page(lang: Lang, status: StatusCode, title: T, text: T) -> Response {
    let ctx = Ctx {
        lang,
        secure: false,
        who: None,
        session: None,
        session_id: None,
        path: "/console/".into(),
    };
    let body = html! {
        p.notice.error role="alert" { (text.text(lang)) }
        p { a href="/console/" { (T::AppName.text(lang)) } }
    };
    html_response(status, frame(None, &ctx, title.text(lang), body))
}

/// A notice under the heading (`role=status`), or an alert.
pub fn notice(text: &str, alert: bool) -> Markup {
    html! {
        @if alert {
            p.notice.error role="alert" { (text) }
        } @else {
            p.notice role="status" { (text) }
        }
    }
}

/// A hidden CSRF field for a form of this session.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf()); }
}
