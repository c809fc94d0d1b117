//! The web console: the files of `server/console/` (plain ES modules, CSS and one HTML page),
//! compiled into the binary and served under the context path (`/nacos/`, `/nacos/index.html`,
//! `/nacos/ui/<file>`) on the main HTTP port.
//!
//! Every answer carries an ETag (the file's SHA-256) and `Cache-Control: no-cache`, so browsers
//! keep the files and revalidate them with a cheap 304; and a Content-Security-Policy that
//! allows scripts, styles and connections only from this origin (no inline script).

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use super::secured::{M, OPEN, Routes};

/// The console's files, embedded at build time (in debug builds too).
#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

/// What the console's pages may load: only this origin's scripts, styles and API; no inline
/// script, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Routes {
    Routes::new()
        .route("/", get(index), &[(M::Get, OPEN)])
        .route("/index.html", get(index), &[(M::Get, OPEN)])
        .route("/ui/{*file}", get(asset), &[(M::Get, OPEN)])
}

/// Whether the console is compiled in (it always is; reported by `/v1/console/server/state`).
pub fn enabled() -> bool {
    Assets::get("index.html").is_some()
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    // The part after `/ui/`: the matched wildcard, taken from the path as sent.
    let path = uri.path();
    let file = path
        .find("/ui/")
        .map(|i| &path[i + "/ui/".len()..])
        .unwrap_or("");
    if file.is_empty() || file.split('/').any(|part| part == ".." || part.is_empty()) {
        return not_found(path);
    }
    serve(file, &headers)
}

fn not_found(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        format!("no such console file: {path}"),
    )
        .into_response()
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or("") {
        "html" => "text/html;charset=UTF-8",
        "js" | "mjs" => "text/javascript;charset=UTF-8",
        "css" => "text/css;charset=UTF-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(file: &str, request: &HeaderMap) -> Response {
    let Some(found) = Assets::get(file) else {
        return not_found(file);
    };
    let etag = format!("\"{}\"", &hex(&found.metadata.sha256_hash())[..32]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = found.data.into_owned().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(file)),
        );
        r
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_embedded_without_inline_script() {
        let index = Assets::get("index.html").expect("index.html embedded");
        let html = String::from_utf8_lossy(&index.data).to_ascii_lowercase();
        // Scripts only by src; no event-handler attributes.
        for (i, _) in html.match_indices("<script") {
            let tag_end = html[i..].find('>').map_or(html.len(), |e| i + e);
            assert!(
                html[i..tag_end].contains("src="),
                "inline script in index.html"
            );
        }
        assert!(!html.contains(" onclick="), "inline handler in index.html");
        assert!(!html.contains(" onload="), "inline handler in index.html");
    }
}
