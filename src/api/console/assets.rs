//! The console's static files, compiled into the binary (no CDN, nothing fetched at run time):
//! one stylesheet and one script. Their URLs carry a digest of their content (`?v=`), so a
//! browser may keep them for a day and still gets a new version at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// (name, content type, content).
const FILES: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
];

/// Each file's URL with its content's digest.
static URLS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, _, body)| {
            let digest = Sha256::digest(body.as_bytes());
            let v: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            (*name, format!("/console/assets/{name}?v={v}"))
        })
        .collect()
});

/// The URL of an asset (its name alone when there is no such asset: a 404 in the browser).
pub fn url(name: &str) -> String {
    URLS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, u)| u.clone())
        .unwrap_or_else(|| format!("/console/assets/{name}"))
}

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
