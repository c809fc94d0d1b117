//! Request parameters the way Nacos reads them: query string and form body merged (query
//! first), for every method. SDKs put `content`, `beat`, `Listening-Configs` and credentials in
//! the form body, even on PUT and DELETE.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use nacos_core::SmolStr;

use super::error::ServiceError;
use crate::app::AppState;
use crate::foundation::trusted_proxies::TrustedProxies;

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
    /// Names and values, held inline when short (most are), so a read allocates little.
    pairs: Vec<(SmolStr, SmolStr)>,
    pub headers: HeaderMap,
    /// The socket peer, when the server knows it.
    peer: Option<std::net::SocketAddr>,
    /// `nacos.core.auth.trusted.proxies`: whose forwarding headers [`Params::client_ip`] reads.
    trusted: TrustedProxies,
    /// The client address, worked out on first use (most reads never need it).
    client_ip: std::sync::OnceLock<String>,
    /// The raw body when it was not a form (JSON bodies of clone, multipart of import).
    pub body: Bytes,
    /// The request path as sent (still percent-encoded), for routes that name their key in it.
    path: SmolStr,
}

impl Params {
    /// The client address: the socket peer, or what a trusted proxy says (see [`client_ip`]).
    pub fn client_ip(&self) -> &str {
        self.client_ip
            .get_or_init(|| client_ip(&self.headers, self.peer, &self.trusted))
    }

    pub fn from_query(query: &str) -> Self {
        let mut params = Params::default();
        params.extend(query.as_bytes());
        params
    }

    /// Parameters of a request sent to `path` (unit tests of path-keyed routes).
    #[cfg(test)]
    pub(crate) fn at_path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    fn extend(&mut self, encoded: &[u8]) {
        self.pairs.extend(
            form_urlencoded::parse(encoded).map(|(k, v)| (SmolStr::new(k), SmolStr::new(v))),
        );
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
        // Most requests carry a handful of parameters: comparing them pairwise is cheaper
        // than looking for each selector, and a name given once cannot be repeated. Many
        // parameters go the other way, so the work stays linear in their number.
        if self.pairs.len() <= 8 {
            return self.pairs.iter().enumerate().find_map(|(i, (name, _))| {
                let repeated = self.pairs[i + 1..]
                    .iter()
                    .any(|(other, _)| other.eq_ignore_ascii_case(name));
                repeated
                    .then(|| {
                        SINGLE_VALUED
                            .iter()
                            .copied()
                            .find(|s| s.eq_ignore_ascii_case(name))
                    })
                    .flatten()
            });
        }
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
    /// `headers` are the request's, handed over (or copied, when the request goes on).
    pub(crate) async fn read(
        parts: &Parts,
        headers: HeaderMap,
        body: Body,
        limit: usize,
        trusted: &TrustedProxies,
    ) -> Result<Self, ServiceError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let mut params = Params {
            peer,
            trusted: trusted.clone(),
            headers,
            path: parts.uri.path().into(),
            ..Params::default()
        };
        if let Some(query) = parts.uri.query() {
            params.extend(query.as_bytes());
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let bytes = read_limited(body, limit).await?;
            let is_form = params
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

    /// The last segment of the request path, percent-decoded (`/statuses/{key}`); `None` when
    /// it is blank or not UTF-8.
    pub fn last_path_segment(&self) -> Option<String> {
        let raw = self.path.rsplit('/').next()?;
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        let decoded = decoded.trim();
        (!decoded.is_empty()).then(|| decoded.to_string())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// `X-Forwarded-For`, a trusted proxy's `X-Real-IP` is used. Otherwise: the socket peer.
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trusted: &TrustedProxies,
) -> String {
    fn address(entry: &str) -> Option<std::net::IpAddr> {
        let entry = entry.trim();
        entry
            .parse::<std::net::IpAddr>()
            .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
            .or_else(|_| {
                let bracketed = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']'));
                bracketed.unwrap_or(entry).parse::<std::net::IpAddr>()
            })
            .ok()
            .map(|ip| ip.to_canonical())
    }
    let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
        return String::new();
    };
    if !trusted.contains(peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !hops.is_empty() {
        let mut source = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = address(hop) else { break };
            source = ip;
            if !trusted.contains(ip) {
                break;
            }
        }
        return source.to_string();
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(address)
        .unwrap_or(peer)
        .to_string()
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
        // The request ends here, so its headers move into the parameters.
        let headers = std::mem::take(&mut parts.headers);
        Params::read(
            &parts,
            headers,
            body,
            state.settings.max_body,
            &state.settings.trusted_proxies,
        )
        .await
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
    fn a_selector_given_twice_is_found_however_many_parameters_come() {
        let filler: String = (0..20).map(|i| format!("&p{i}=v")).collect();
        for extra in ["", "&a=1&b=2", filler.as_str()] {
            let repeated = Params::from_query(&format!("dataId=a&group=g{extra}&DATAID=b"));
            assert_eq!(repeated.repeated_selector(), Some("dataId"), "{extra}");
            let others = Params::from_query(&format!("x=1&dataId=a{extra}&x=2&y=&y="));
            assert_eq!(others.repeated_selector(), None, "{extra}");
        }
        assert_eq!(Params::from_query("").repeated_selector(), None);
    }

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
    fn client_ip_trusts_headers_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let trusted = TrustedProxies::parse("10.0.0.0/24, 127.0.0.1/32").expect("cidrs");
        let proxy = Some("10.0.0.9:1234".parse().expect("addr"));
        let stranger = Some("192.0.2.7:1234".parse().expect("addr"));
        let mut h = HeaderMap::new();
        assert_eq!(client_ip(&h, proxy, &trusted), "10.0.0.9");
        assert_eq!(client_ip(&h, None, &trusted), "");
        h.insert("x-real-ip", "203.0.113.8".parse().expect("hv"));
        assert_eq!(client_ip(&h, proxy, &trusted), "203.0.113.8");
        assert_eq!(client_ip(&h, proxy, &none), "10.0.0.9", "nothing trusted");
        assert_eq!(client_ip(&h, stranger, &trusted), "192.0.2.7");
        // The right-most entry that is not a trusted proxy; the left part is the client's own.
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.0.0.3".parse().expect("hv"),
        );
        assert_eq!(client_ip(&h, proxy, &trusted), "203.0.113.7");
        assert_eq!(client_ip(&h, stranger, &trusted), "192.0.2.7");
        assert_eq!(client_ip(&h, proxy, &none), "10.0.0.9");
        // Several headers are one list; ports and brackets are dropped.
        h.insert("x-forwarded-for", "6.6.6.6".parse().expect("hv"));
        h.append("x-forwarded-for", "[2001:db8::5]:443".parse().expect("hv"));
        assert_eq!(client_ip(&h, proxy, &trusted), "2001:db8::5");
        h.insert("x-forwarded-for", "198.51.100.1:8080".parse().expect("hv"));
        assert_eq!(client_ip(&h, proxy, &trusted), "198.51.100.1");
        // All trusted: the left-most. Garbage: the trusted hop that passed it on.
        h.insert("x-forwarded-for", "10.0.0.4, 10.0.0.5".parse().expect("hv"));
        assert_eq!(client_ip(&h, proxy, &trusted), "10.0.0.4");
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, unknown, 10.0.0.5".parse().expect("hv"),
        );
        assert_eq!(client_ip(&h, proxy, &trusted), "10.0.0.5");
        // IPv4-mapped peers are IPv4.
        let mapped = Some("[::ffff:10.0.0.9]:80".parse().expect("addr"));
        assert_eq!(client_ip(&HeaderMap::new(), mapped, &none), "10.0.0.9");
    }
}
