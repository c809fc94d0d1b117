//! Per-route auth declarations and their enforcement. Every route is added through
//! [`Routes::route`] with the guard of each method it serves, so the declaration sits next to
//! the route and [`crate::edges::http::route_table`] lists them all (the matrix test walks it). A
//! method served without a declaration is refused while auth is on ("no auth declaration").
//!
//! The guard decides on exactly what the handler will execute:
//! - the request's parameters are parsed once ([`Params`]) and handed to the handler through
//!   the request extensions, so both read the same values by the same rules;
//! - a guard's resources come from a [`Resolve`] function that the route's module writes with
//!   the very key functions its handlers use (a config key, a service key, the probes of a long
//!   poll), and a request naming several keys is authorized for every one of them;
//! - requests that touch keys known only after a lookup (config ids, import entries, history
//!   ids) check each of them in the handler through the [`Caller`] the guard leaves behind.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use nacos_core::auth::fixed;
use nacos_core::{Action, AuthError, Principal, Resource};

use super::params::Params;
use super::{ServiceError, ServiceResult};
use crate::app::AppState;
use crate::foundation::metrics::HttpStats;
use crate::foundation::middleware::RouteTable;

/// How a guard finds the resources of a request: written next to the handlers with their own
/// key functions. An `Err` is the handler's own parameter error, answered before anything runs.
pub type Resolve = fn(&Params) -> ServiceResult<Vec<Resource>>;

/// What a route method needs.
#[derive(Clone, Copy)]
pub enum Guard {
    /// Left open by Nacos (health, metrics, login, ...).
    Open,
    /// Config resources, read from the request by the route's resolver.
    Config(Action, Resolve),
    /// Naming resources, read from the request by the route's resolver.
    Naming(Action, Resolve),
    /// A fixed resource ([`fixed`]).
    Fixed(&'static str, Action),
}

impl Guard {
    pub fn is_open(&self) -> bool {
        matches!(self, Guard::Open)
    }

    /// The fixed resource this guard names, if any.
    pub fn fixed_name(&self) -> Option<&'static str> {
        match self {
            Guard::Fixed(name, _) => Some(name),
            _ => None,
        }
    }

    /// The resources and the action of a request (`None`: open).
    pub fn resources(&self, params: &Params) -> ServiceResult<Option<(Vec<Resource>, Action)>> {
        Ok(match *self {
            Guard::Open => None,
            Guard::Config(action, resolve) | Guard::Naming(action, resolve) => {
                Some((resolve(params)?, action))
            }
            Guard::Fixed(name, action) => Some((vec![Resource::fixed(name)], action)),
        })
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Guard::Open => f.write_str("Open"),
            Guard::Config(action, _) => write!(f, "Config({action:?})"),
            Guard::Naming(action, _) => write!(f, "Naming({action:?})"),
            Guard::Fixed(name, action) => write!(f, "Fixed({name}, {action:?})"),
        }
    }
}

pub const OPEN: Guard = Guard::Open;

/// The guards of a resource route: `read` for GET, `write` for POST, DELETE, PUT and PATCH (in
/// that order, so `&rw[..4]` leaves PATCH out).
pub const fn read_write(read: Guard, write: Guard) -> [(M, Guard); 5] {
    [
        (M::Get, read),
        (M::Post, write),
        (M::Delete, write),
        (M::Put, write),
        (M::Patch, write),
    ]
}
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
#[derive(Clone, Copy, Debug)]
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
    ///
    /// Every route's series (`uri` = its template) goes into `timed`, which times requests
    /// around the router, so refusals are counted too.
    pub fn into_router(self, app: &AppState, timed: &mut RouteTable) -> Router<AppState> {
        let context = app.settings.context_path.as_str();
        let http = app.metrics.http.get_or_init(|| {
            HttpStats::new(
                [ROOT_URI, NOT_FOUND_URI]
                    .into_iter()
                    .chain(self.entries.iter().map(|e| e.path)),
            )
        });
        let mut router = Router::new();
        for (
            index,
            Entry {
                path,
                methods,
                declared,
            },
        ) in self.entries.into_iter().enumerate()
        {
            let stats = http.route(index + FIRST_ROUTE, path);
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
            let full = format!("{context}{path}");
            timed.insert(&full, stats);
            router = router.route(&full, methods);
        }
        router
    }
}

/// The `uri` of the context path's own redirect (Spring's label for it).
pub const ROOT_URI: &str = "root";
/// The `uri` of every request no route matched: one series, whatever the raw paths.
pub const NOT_FOUND_URI: &str = "NOT_FOUND";
/// Index in [`HttpStats`] of the first declared route (after the two above).
const FIRST_ROUTE: usize = 2;

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

/// The most a caller who has not shown valid credentials yet may make the server buffer: a
/// form body carrying the token has to be read to find it. Spring Boot's default form limit
/// (2 MiB), so Nacos clients that put the token in the form are not affected.
pub const UNAUTHENTICATED_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Who a request is, as the guard decided: handlers that touch keys found only after a lookup
/// (config ids, import entries, history ids) check each of them through it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// Auth is off, or the request carries the server identity.
    Trusted,
    /// An authenticated user.
    User(Principal),
}

impl Caller {
    /// Whether the caller may perform `action` on `resource`; a refusal is a 403.
    pub async fn check(
        &self,
        app: &AppState,
        resource: &Resource,
        action: Action,
    ) -> ServiceResult<()> {
        let Caller::User(principal) = self else {
            return Ok(());
        };
        match app
            .auth
            .plugin()
            .validate_authority(principal, resource, action)
            .await
        {
            Ok(()) => Ok(()),
            Err(AuthError::Unavailable(m)) => Err(ServiceError::Internal(m)),
            Err(e) => {
                tracing::debug!(%resource, error = %e, "refused");
                Err(ServiceError::Forbidden(format!("{e} ({resource})")))
            }
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ServiceError;

    /// The guard's decision; with auth on and no decision recorded the request is refused
    /// (fail closed), with auth off every caller is trusted.
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> ServiceResult<Self> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(caller.clone()),
            None if !app.auth.enabled() => Ok(Caller::Trusted),
            None => Err(ServiceError::Forbidden(
                "no authorization decision for this request".to_string(),
            )),
        }
    }
}

/// The check of a route whose guard depends on a setting (declared [`OPEN`], as Nacos leaves
/// it): a server identity, or a token in a header or the query whose user holds `guard`'s
/// fixed resource. Refusals are answered as [`enforce`] answers them.
pub async fn require_fixed(
    app: &AppState,
    parts: &Parts,
    guard: Guard,
    path: &str,
) -> Result<(), Response> {
    let auth = &app.auth;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if auth.is_server_request(header) {
        return Ok(());
    }
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client_ip = super::params::client_ip(&parts.headers, peer, &app.settings.trusted_proxies);
    let query = Params::from_query(parts.uri.query().unwrap_or(""));
    let identity = auth.identity(&client_ip, header, |name| query.get_ci(name));
    let principal = match auth.plugin().validate_identity(&identity).await {
        // No credentials at all: whatever the plugin makes of that, nobody is known.
        Ok(_) if identity.is_empty() => return Err(refusal(&AuthError::UserNotFound, path)),
        Ok(p) => p,
        Err(e) => return Err(refusal(&e, path)),
    };
    if let Ok(Some((resources, action))) = guard.resources(&query) {
        for resource in &resources {
            auth.plugin()
                .validate_authority(&principal, resource, action)
                .await
                .map_err(|e| refusal(&e, path))?;
        }
    }
    Ok(())
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
    if guard.is_open() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    if auth.is_server_request(|name| parts.headers.get(name).and_then(|v| v.to_str().ok())) {
        parts.extensions.insert(Caller::Trusted);
        return next.run(Request::from_parts(parts, body)).await;
    }
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client_ip = super::params::client_ip(&parts.headers, peer, &app.settings.trusted_proxies);

    // Credentials in a header or the query are checked before any body is read, so an
    // unauthenticated caller cannot make the server buffer a large body.
    let query = Params::from_query(parts.uri.query().unwrap_or(""));
    let early = auth.identity(
        &client_ip,
        |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
        |name| query.get_ci(name),
    );
    let mut principal = None;
    if !early.is_empty() {
        match auth.plugin().validate_identity(&early).await {
            Ok(p) => principal = Some(p),
            Err(error) => return refusal(&error, path),
        }
    } else if !is_form(&parts.headers) {
        // No credentials anywhere the request could still carry them.
        let error = match auth.plugin().validate_identity(&early).await {
            Ok(_) => AuthError::UserNotFound,
            Err(error) => error,
        };
        return refusal(&error, path);
    }
    let limit = if principal.is_some() {
        app.settings.max_body
    } else {
        app.settings.max_body.min(UNAUTHENTICATED_BODY_LIMIT)
    };
    let headers = parts.headers.clone();
    let params =
        match Params::read(&parts, headers, body, limit, &app.settings.trusted_proxies).await {
            Ok(params) => params,
            Err(error) => return error.into_response(),
        };
    let principal = match principal {
        Some(p) => p,
        None => {
            let identity = auth.identity(
                &client_ip,
                |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
                |name| params.get_ci(name),
            );
            match auth.plugin().validate_identity(&identity).await {
                Ok(p) => p,
                Err(error) => return refusal(&error, path),
            }
        }
    };
    let (resources, action) = match guard.resources(&params) {
        Ok(Some(found)) => found,
        Ok(None) => (Vec::new(), Action::Read),
        Err(error) => return error.into_response(),
    };
    for resource in &resources {
        if let Err(error) = auth
            .plugin()
            .validate_authority(&principal, resource, action)
            .await
        {
            tracing::debug!(%resource, %error, "refused");
            return refusal(&error, path);
        }
    }
    parts.extensions.insert(params);
    parts.extensions.insert(principal.clone());
    parts.extensions.insert(Caller::User(principal));
    next.run(Request::from_parts(parts, axum::body::Body::empty()))
        .await
}
