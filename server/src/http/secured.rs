//! Per-route auth declarations and their enforcement. Every route is added through
//! [`Routes::route`] with the guard of each method it serves, so the declaration sits next to
//! the route and [`crate::http::route_table`] lists them all (the matrix test walks it). A
//! method served without a declaration is refused while auth is on ("no auth declaration").

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use nacos_core::auth::fixed;
use nacos_core::{Action, AuthError, Resource};

use crate::AppState;

/// What a route method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Left open by Nacos (health, metrics, login, ...).
    Open,
    /// A config resource from `tenant`/`namespaceId`, `group`, `dataId`.
    Config(Action),
    /// A naming resource from `namespaceId`, `groupName` (or `group@@`), `serviceName`.
    Naming(Action),
    /// A fixed resource ([`fixed`]).
    Fixed(&'static str, Action),
}

pub const OPEN: Guard = Guard::Open;
pub const CONFIG_R: Guard = Guard::Config(Action::Read);
pub const CONFIG_W: Guard = Guard::Config(Action::Write);
pub const NAMING_R: Guard = Guard::Naming(Action::Read);
pub const NAMING_W: Guard = Guard::Naming(Action::Write);
pub const NAMESPACES_R: Guard = Guard::Fixed(fixed::CONSOLE_NAMESPACES, Action::Read);
pub const NAMESPACES_W: Guard = Guard::Fixed(fixed::CONSOLE_NAMESPACES, Action::Write);
/// Admin-only views (`nacos/admin`; no ordinary grant names it).
pub const ADMIN_R: Guard = Guard::Fixed(fixed::NACOS_ADMIN, Action::Read);
pub const ADMIN_W: Guard = Guard::Fixed(fixed::NACOS_ADMIN, Action::Write);
pub const CLUSTER_R: Guard = Guard::Fixed(fixed::CORE_CLUSTER, Action::Read);
pub const USERS_R: Guard = Guard::Fixed(fixed::CONSOLE_USERS, Action::Read);
pub const USERS_W: Guard = Guard::Fixed(fixed::CONSOLE_USERS, Action::Write);
pub const ROLES_R: Guard = Guard::Fixed(fixed::CONSOLE_ROLES, Action::Read);
pub const ROLES_W: Guard = Guard::Fixed(fixed::CONSOLE_ROLES, Action::Write);
pub const PERMISSIONS_R: Guard = Guard::Fixed(fixed::CONSOLE_PERMISSIONS, Action::Read);
pub const PERMISSIONS_W: Guard = Guard::Fixed(fixed::CONSOLE_PERMISSIONS, Action::Write);
pub const PASSWORD_W: Guard = Guard::Fixed(fixed::CONSOLE_USER_PASSWORD, Action::Write);

/// HTTP methods of declarations (plain `Copy` values, so tables can be `&[...]` literals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum M {
    Get,
    Post,
    Put,
    Delete,
    Patch,
}

impl M {
    pub const ALL: [M; 5] = [M::Get, M::Post, M::Put, M::Delete, M::Patch];

    pub fn method(self) -> Method {
        match self {
            M::Get => Method::GET,
            M::Post => Method::POST,
            M::Put => Method::PUT,
            M::Delete => Method::DELETE,
            M::Patch => Method::PATCH,
        }
    }

    fn matches(self, method: &Method) -> bool {
        self.method() == method || (self == M::Get && method == Method::HEAD)
    }
}

/// One declared (path, method, guard); the path is relative to the context path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteDecl {
    pub path: &'static str,
    pub method: M,
    pub guard: Guard,
}

/// Routes that carry their auth declarations. They become a router only in
/// [`Routes::into_router`], which knows the context path and whether auth is on.
#[derive(Debug, Default)]
pub struct Routes {
    entries: Vec<Entry>,
    pub(crate) decls: Vec<RouteDecl>,
}

#[derive(Debug)]
struct Entry {
    path: &'static str,
    methods: MethodRouter<AppState>,
    declared: Arc<[(M, Guard)]>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a route and the guard of every method it serves.
    pub fn route(
        mut self,
        path: &'static str,
        methods: MethodRouter<AppState>,
        guards: &[(M, Guard)],
    ) -> Self {
        self.decls
            .extend(guards.iter().map(|&(method, guard)| RouteDecl {
                path,
                method,
                guard,
            }));
        self.entries.push(Entry {
            path,
            methods,
            declared: guards.into(),
        });
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.entries.extend(other.entries);
        self.decls.extend(other.decls);
        self
    }

    /// The router: every path under the context path (registered whole rather than nested,
    /// so no request URI is rewritten), each route behind its guard when auth is on. With auth
    /// off the guard layer is left out entirely: it would only pass every request through.
    pub fn into_router(self, app: &AppState) -> Router<AppState> {
        let context = app.settings.context_path.as_str();
        let mut router = Router::new();
        for Entry {
            path,
            methods,
            declared,
        } in self.entries
        {
            let methods = if app.auth.enabled() {
                let app = Arc::clone(app);
                methods.route_layer(axum::middleware::from_fn(
                    move |req: Request, next: Next| {
                        let app = Arc::clone(&app);
                        let declared = Arc::clone(&declared);
                        async move { enforce(&app, &declared, path, req, next).await }
                    },
                ))
            } else {
                methods
            };
            router = router.route(&format!("{context}{path}"), methods);
        }
        router
    }
}

/// A 403 the way Nacos's auth filter sends it (Spring Boot's error JSON; the message is
/// Nacos's text).
pub fn forbidden(message: &str, path: &str) -> Response {
    let body = serde_json::json!({
        "timestamp": nacos_core::now_millis(),
        "status": 403,
        "error": "Forbidden",
        "message": message,
        "path": path,
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn refusal(error: &AuthError, path: &str) -> Response {
    match error {
        AuthError::Unavailable(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
            error.to_string(),
        )
            .into_response(),
        _ => forbidden(&error.to_string(), path),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The resource a guard names, read from the request parameters.
pub fn resource(
    guard: Guard,
    param: impl Fn(&str) -> Option<String>,
) -> Option<(Resource, Action)> {
    let get = |names: &[&str]| names.iter().find_map(|n| param(n)).unwrap_or_default();
    match guard {
        Guard::Open => None,
        Guard::Config(action) => Some((
            Resource::config(
                &get(&["tenant", "namespaceId"]),
                &get(&["group"]),
                &get(&["dataId"]),
            ),
            action,
        )),
        // `/v1/ns/instance/statuses` names its service only in `key` (`[ns##]group@@svc`);
        // the resource is taken from there, so the key cannot reach another namespace.
        Guard::Naming(action) if param("serviceName").is_none() && param("key").is_some() => {
            let key = param("key").unwrap_or_default();
            let (namespace, grouped) = key.split_once("##").unwrap_or(("", key.as_str()));
            let (group, service) = grouped
                .split_once("@@")
                .unwrap_or((nacos_core::DEFAULT_GROUP, grouped));
            Some((Resource::naming(namespace, group, service), action))
        }
        Guard::Naming(action) => Some((
            Resource::naming(
                &get(&["namespaceId"]),
                &get(&["groupName"]),
                &get(&["serviceName"]),
            ),
            action,
        )),
        Guard::Fixed(name, action) => Some((Resource::fixed(name), action)),
    }
}

async fn enforce(
    app: &AppState,
    declared: &[(M, Guard)],
    path: &str,
    req: Request,
    next: Next,
) -> Response {
    let auth = &app.auth;
    if !auth.enabled() {
        return next.run(req).await;
    }
    let Some(guard) = declared
        .iter()
        .find(|(m, _)| m.matches(req.method()))
        .map(|(_, g)| *g)
    else {
        let message = format!("no auth declaration for {} {path}", req.method());
        tracing::error!("{message}");
        return forbidden(&message, path);
    };
    if guard == Guard::Open {
        return next.run(req).await;
    }
    if auth.is_server_request(|name| req.headers().get(name).and_then(|v| v.to_str().ok())) {
        return next.run(req).await;
    }
    // Parameters: query, then a form body (read here and handed on unchanged).
    let (mut parts, body) = req.into_parts();
    let mut pairs: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = if is_form(&parts.headers) {
        let limited = http_body_util::Limited::new(body, app.settings.max_body);
        match http_body_util::BodyExt::collect(limited).await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                pairs.extend(form_urlencoded::parse(&bytes).into_owned());
                Body::from(bytes)
            }
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read request body: {e}"),
                )
                    .into_response();
            }
        }
    } else {
        body
    };
    let param = |name: &str| -> Option<String> {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    };
    let param_ci = |name: &str| -> Option<&str> {
        pairs
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    };
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client_ip = super::params::client_ip(&parts.headers, peer, &app.settings.trusted_proxies);
    let identity = auth.identity(
        &client_ip,
        |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
        param_ci,
    );
    let Some((resource, action)) = resource(guard, param) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    match auth.authorize(&identity, &resource, action).await {
        Ok(principal) => {
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => {
            tracing::debug!(%resource, %error, "refused");
            refusal(&error, path)
        }
    }
}
