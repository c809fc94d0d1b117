//! Request parameters the way Nacos reads them: query string and form body merged (query
//! first), for every method. SDKs put `content`, `beat`, `Listening-Configs` and credentials in
//! the form body, even on PUT and DELETE.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use bytes::Bytes;
use http_body_util::BodyExt;

use super::error::ServiceError;
use crate::app::AppState;

/// Parameters that select what a request touches, or who sends it. Nacos clients send each
/// once; a repeated one is refused (see [`Params::read`]).
const SINGLE_VALUED: &[&str] = &[
    "tenant",
    "namespaceId",
    "namespace",
    "group",
    "groupName",
    "dataId",
    "serviceName",
    "key",
    "id",
    "ids",
    "nid",
    "delType",
    "import",
    "search",
    "Listening-Configs",
    "accessToken",
    "username",
];

/// Merged parameters plus the request headers and the client's address.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The socket peer, when the server knows it.
    peer: Option<std::net::SocketAddr>,
    /// The client address, worked out on first use (most reads never need it).
    client_ip: std::sync::OnceLock<String>,
    /// The raw body when it was not a form (JSON bodies of clone, multipart of import).
    pub body: Bytes,
}

impl Params {
    /// First `X-Forwarded-For` entry, else `X-Real-IP`, else the socket peer.
    pub fn client_ip(&self) -> &str {
        self.client_ip
            .get_or_init(|| client_ip(&self.headers, self.peer))
    }

    pub fn from_query(query: &str) -> Self {
        let mut params = Params::default();
        params.extend(query.as_bytes());
        params
    }

    fn extend(&mut self, encoded: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(encoded).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// First non-blank value of a name matched case-insensitively (identity names: the
    /// token may come as `accessToken` or `accesstoken`).
    pub fn get_ci(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A name that picks what the request touches or who sends it, given more than once:
    /// such a request is ambiguous and refused rather than read one way or the other.
    fn repeated_selector(&self) -> Option<&'static str> {
        SINGLE_VALUED.iter().copied().find(|name| {
            self.pairs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .nth(1)
                .is_some()
        })
    }

    /// Read the parameters of a request: the query, then (except on GET and HEAD) a form body,
    /// or the raw body of any other content type. Bodies over `limit` are refused with 413.
    pub(crate) async fn read(
        parts: &Parts,
        body: Body,
        limit: usize,
    ) -> Result<Self, ServiceError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let mut params = Params {
            peer,
            headers: parts.headers.clone(),
            ..Params::default()
        };
        if let Some(query) = parts.uri.query() {
            params.extend(query.as_bytes());
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let bytes = read_limited(body, limit).await?;
            let is_form = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    ct.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
            if is_form {
                params.extend(&bytes);
            } else {
                params.body = bytes;
            }
        }
        if let Some(name) = params.repeated_selector() {
            return Err(ServiceError::param(
                name,
                format!("parameter '{name}' is given more than once"),
            ));
        }
        Ok(params)
    }

    /// First value of `name`, untrimmed.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of `name`, trimmed; blank counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The first of several aliases that is present.
    pub fn get_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    pub fn required(&self, name: &'static str) -> Result<&str, ServiceError> {
        self.get(name).ok_or(ServiceError::missing(name))
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// Parse `name` if present; a malformed value is a 400 that names the parameter.
    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ServiceError::param(name, format!("invalid value for parameter '{name}': {v}"))
            }),
        }
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ServiceError> {
        Ok(self.parse(name)?.unwrap_or(default))
    }

    /// Booleans as Spring binds them (`true`/`false`, case-insensitive).
    pub fn bool(&self, name: &'static str) -> Result<Option<bool>, ServiceError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ServiceError::param(
                name,
                format!("invalid value for parameter '{name}': {v}, expected true or false"),
            )),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

pub(crate) fn client_ip(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(first) = header("x-forwarded-for")
        .and_then(|f| f.split(',').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return first.to_string();
    }
    if let Some(real) = header("x-real-ip") {
        return real.to_string();
    }
    peer.map(|p| p.ip().to_string()).unwrap_or_default()
}

impl FromRequest<AppState> for Params {
    type Rejection = ServiceError;

    /// The parameters the auth guard already read (so handler and guard see the same values),
    /// or read here when no guard ran.
    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        if let Some(params) = parts.extensions.remove::<Params>() {
            return Ok(params);
        }
        Params::read(&parts, body, state.settings.max_body).await
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ServiceError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ServiceError::PayloadTooLarge(
            format!("request body over {limit} bytes"),
        )),
        Err(e) => Err(ServiceError::bad(format!("cannot read request body: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_aliases() {
        let p = Params::from_query("a=1&b=+x+&a=2&empty=&n=12z&t=TRUE");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x"));
        assert_eq!(p.get("empty"), None);
        assert!(p.has("empty"));
        assert_eq!(p.get_any(&["missing", "a"]), Some("1"));
        assert!(p.parse::<u16>("n").is_err());
        assert_eq!(p.bool("t").expect("bool"), Some(true));
        assert_eq!(
            p.required("zzz").expect_err("missing").to_string(),
            "Required parameter 'zzz' is missing"
        );
    }

    #[test]
    fn client_ip_precedence() {
        let mut h = HeaderMap::new();
        let peer = Some("10.0.0.9:1234".parse().expect("addr"));
        assert_eq!(client_ip(&h, peer), "10.0.0.9");
        h.insert("x-real-ip", "10.0.0.8".parse().expect("hv"));
        assert_eq!(client_ip(&h, peer), "10.0.0.8");
        h.insert("x-forwarded-for", "10.0.0.7, 10.0.0.6".parse().expect("hv"));
        assert_eq!(client_ip(&h, peer), "10.0.0.7");
    }
}
