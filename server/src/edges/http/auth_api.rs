//! `/v1/auth`: login (any plugin that offers it) and the user, role and permission management
//! of the default `nacos` plugin (Nacos's `/v1/auth/users`, `/roles`, `/permissions`), over the backend's [`nacos_core::UserRepo`].

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nacos_core::{
    AuthError, MatchMode, Page, PageRequest, Permission, Principal, RepoError, RoleBinding, User,
};
use nacos_plugins::nacos::{DEFAULT_ADMIN, ROLE_ADMIN, hash_password};
use serde_json::{Value, json};

use super::secured::{
    self, M, OPEN, PASSWORD_W, PERMISSIONS_R, PERMISSIONS_W, ROLES_R, ROLES_W, Routes, USERS_R,
    USERS_W,
};
use super::{Params, ServiceError, ServiceResult, rest_result};
use crate::app::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .route("/v1/auth/login", post(login), &[(M::Post, OPEN)])
        .route("/v1/auth/users/login", post(login), &[(M::Post, OPEN)])
        .route("/v1/auth/users/admin", post(init_admin), &[(M::Post, OPEN)])
        .route(
            "/v1/auth/users",
            get(list_users)
                .post(create_user)
                .delete(delete_user)
                .put(update_password),
            &[
                (M::Get, USERS_R),
                (M::Post, USERS_W),
                (M::Delete, USERS_W),
                (M::Put, PASSWORD_W),
            ],
        )
        .route(
            "/v1/auth/users/search",
            get(search_users),
            &[(M::Get, USERS_R)],
        )
        .route(
            "/v1/auth/roles",
            get(list_roles).post(add_role).delete(remove_role),
            &[(M::Get, ROLES_R), (M::Post, ROLES_W), (M::Delete, ROLES_W)],
        )
        .route(
            "/v1/auth/roles/search",
            get(search_roles),
            &[(M::Get, ROLES_R)],
        )
        .route(
            "/v1/auth/permissions",
            get(list_permissions)
                .post(add_permission)
                .delete(remove_permission),
            &[
                (M::Get, PERMISSIONS_R),
                (M::Post, PERMISSIONS_W),
                (M::Delete, PERMISSIONS_W),
            ],
        )
}

fn auth_error(error: AuthError) -> Response {
    match error {
        AuthError::Unavailable(m) => ServiceError::Unavailable(m).into_response(),
        other => secured::forbidden(&other.to_string(), "/v1/auth/users/login"),
    }
}

async fn login(State(app): State<AppState>, params: Params) -> Response {
    let plugin = app.auth.plugin();
    if !plugin.login_enabled() {
        return ServiceError::NotImplemented(format!(
            "auth plugin '{}' offers no login",
            plugin.name()
        ))
        .into_response();
    }
    let username = params.get("username").unwrap_or("");
    let password = params.raw("password").unwrap_or("");
    match plugin.login(username, password, params.client_ip()).await {
        Ok(result) => {
            let body = json!({
                "accessToken": result.access_token,
                "tokenTtl": result.token_ttl,
                "globalAdmin": result.global_admin,
                "username": result.username,
            });
            let mut response = axum::Json(body).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", result.access_token)) {
                response.headers_mut().insert(header::AUTHORIZATION, value);
            }
            response
        }
        Err(error) => auth_error(error),
    }
}

fn rest_code(code: u16, message: &str) -> Response {
    axum::Json(json!({ "code": code, "message": message, "data": null })).into_response()
}

pub(crate) async fn has_admin(app: &AppState) -> ServiceResult<bool> {
    let page = app
        .repos
        .users
        .list_roles("", ROLE_ADMIN, MatchMode::Exact, PageRequest::new(1, 1))
        .await?;
    Ok(page.total_count > 0)
}

const HAVE_ADMIN: &str = "have admin user cannot use it";

/// Whether the first admin may be created by this client. With auth on, anyone may while no
/// admin exists (as Nacos). With auth off only a loopback client may: nothing checks who calls,
/// and an admin planted now would hold the keys once auth is turned on.
fn bootstrap_allowed(auth_enabled: bool, client_ip: &str) -> Result<(), String> {
    let loopback = client_ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if auth_enabled || loopback {
        Ok(())
    } else {
        Err(format!(
            "auth is disabled ({}=false): the first admin can only be created from this host \
             (loopback), or with auth enabled",
            crate::services::auth::ENABLED
        ))
    }
}

/// `POST /v1/auth/users/admin`: create the first admin while none exists. The user is created
/// only if absent, so of racing calls exactly one wins and an existing password is never
/// replaced.
async fn init_admin(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    bootstrap_allowed(app.auth.enabled(), params.client_ip()).map_err(ServiceError::Forbidden)?;
    if has_admin(&app).await? {
        return Ok(rest_code(409, HAVE_ADMIN));
    }
    let password = params
        .raw("password")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let hash = hash_password(&password)
        .await
        .map_err(ServiceError::Internal)?;
    let users = &app.repos.users;
    match users
        .create_user(User {
            username: DEFAULT_ADMIN.to_string(),
            password_hash: hash,
            enabled: true,
        })
        .await
    {
        Ok(()) => {}
        Err(RepoError::AlreadyExists(_)) => return Ok(rest_code(409, HAVE_ADMIN)),
        Err(e) => return Err(e.into()),
    }
    match users
        .add_role(RoleBinding {
            role: ROLE_ADMIN.to_string(),
            username: DEFAULT_ADMIN.to_string(),
        })
        .await
    {
        Ok(()) | Err(RepoError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    app.auth.plugin().invalidate();
    Ok(axum::Json(json!({ "username": DEFAULT_ADMIN, "password": password })).into_response())
}

fn page_request(params: &Params) -> ServiceResult<(PageRequest, MatchMode)> {
    let page_no = params.parse_or("pageNo", 1u32)?.max(1);
    let page_size = params.parse_or("pageSize", 100u32)?.min(1000);
    let mode = if params.get("search") == Some("blur") {
        MatchMode::Blur
    } else {
        MatchMode::Exact
    };
    Ok((PageRequest::new(page_no, page_size), mode))
}

/// Blur filters match as "contains", as Nacos's `like %x%`.
fn blur(filter: &str, mode: MatchMode) -> String {
    if mode == MatchMode::Blur && !filter.is_empty() && !filter.contains('*') {
        format!("*{filter}*")
    } else {
        filter.to_string()
    }
}

fn page_json<T>(page: Page<T>, item: impl Fn(T) -> Value) -> Response {
    axum::Json(json!({
        "totalCount": page.total_count,
        "pageNumber": page.page_number,
        "pagesAvailable": page.pages_available,
        "pageItems": page.items.into_iter().map(item).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn done(app: &AppState, message: &str) -> Response {
    app.auth.plugin().invalidate();
    rest_result(Value::String(message.to_string()), None)
}

async fn list_users(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let (page, mode) = page_request(&params)?;
    let username = blur(params.get("username").unwrap_or(""), mode);
    let users = app.repos.users.list_users(&username, mode, page).await?;
    Ok(page_json(
        users,
        |u| json!({ "username": u.username, "password": u.password_hash }),
    ))
}

async fn search_users(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let username = blur(params.get("username").unwrap_or(""), MatchMode::Blur);
    let users = app
        .repos
        .users
        .list_users(&username, MatchMode::Blur, PageRequest::new(1, 1000))
        .await?;
    let names: Vec<String> = users.items.into_iter().map(|u| u.username).collect();
    Ok(axum::Json(names).into_response())
}

async fn create_user(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let username = params.required("username")?;
    let password = params
        .raw("password")
        .filter(|p| !p.is_empty())
        .ok_or(ServiceError::missing("password"))?;
    if username == DEFAULT_ADMIN {
        return Ok(rest_code(
            409,
            "User `nacos` is default admin user. Please use `/nacos/v1/auth/users/admin` API to init `nacos` users. Detail see `https://nacos.io/docs/latest/manual/admin/auth/#31-%E8%AE%BE%E7%BD%AE%E7%AE%A1%E7%90%86%E5%91%98%E5%AF%86%E7%A0%81`",
        ));
    }
    let hash = hash_password(password)
        .await
        .map_err(ServiceError::Internal)?;
    match app
        .repos
        .users
        .create_user(User {
            username: username.to_string(),
            password_hash: hash,
            enabled: true,
        })
        .await
    {
        Ok(()) => Ok(done(&app, "create user ok!")),
        Err(RepoError::AlreadyExists(_)) => Err(ServiceError::bad(format!(
            "user '{username}' already exist!"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn delete_user(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let username = params.required("username")?;
    let roles = app
        .repos
        .users
        .list_roles(
            username,
            ROLE_ADMIN,
            MatchMode::Exact,
            PageRequest::new(1, 1),
        )
        .await?;
    if roles.total_count > 0 {
        return Err(ServiceError::bad(format!(
            "cannot delete admin: {username}"
        )));
    }
    app.repos.users.delete_user(username).await?;
    Ok(done(&app, "delete user ok!"))
}

async fn update_password(
    State(app): State<AppState>,
    principal: Option<Extension<Principal>>,
    params: Params,
) -> ServiceResult<Response> {
    let username = params.required("username")?;
    let password = params
        .raw("newPassword")
        .filter(|p| !p.is_empty())
        .ok_or(ServiceError::missing("newPassword"))?;
    if app.auth.enabled()
        && let Some(Extension(who)) = &principal
        && who.name != username
    {
        let admin = app
            .auth
            .plugin()
            .is_admin(who)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if !admin {
            return Err(ServiceError::Forbidden(
                AuthError::AuthorizationFailed.to_string(),
            ));
        }
    }
    let hash = hash_password(password)
        .await
        .map_err(ServiceError::Internal)?;
    match app.repos.users.update_password(username, &hash).await {
        Ok(()) => Ok(done(&app, "update user ok!")),
        Err(RepoError::NotFound(_)) => {
            Err(ServiceError::bad(format!("user {username} not exist!")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn list_roles(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let (page, mode) = page_request(&params)?;
    let username = blur(params.get("username").unwrap_or(""), mode);
    let role = blur(params.get("role").unwrap_or(""), mode);
    let roles = app
        .repos
        .users
        .list_roles(&username, &role, mode, page)
        .await?;
    Ok(page_json(
        roles,
        |r| json!({ "role": r.role, "username": r.username }),
    ))
}

async fn search_roles(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let role = blur(params.get("role").unwrap_or(""), MatchMode::Blur);
    let roles = app
        .repos
        .users
        .list_roles("", &role, MatchMode::Blur, PageRequest::new(1, 1000))
        .await?;
    let mut names: Vec<String> = roles.items.into_iter().map(|r| r.role).collect();
    names.dedup();
    Ok(axum::Json(names).into_response())
}

async fn add_role(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let role = params.required("role")?;
    let username = params.required("username")?;
    if role == ROLE_ADMIN {
        return Err(ServiceError::bad(format!(
            "role '{ROLE_ADMIN}' is not permitted to create!"
        )));
    }
    if app.repos.users.get_user(username).await?.is_none() {
        return Err(ServiceError::bad(format!("user '{username}' not found!")));
    }
    match app
        .repos
        .users
        .add_role(RoleBinding {
            role: role.to_string(),
            username: username.to_string(),
        })
        .await
    {
        Ok(()) => Ok(done(&app, "add role ok!")),
        Err(RepoError::AlreadyExists(_)) => Err(ServiceError::bad(format!(
            "user '{username}' already bound to the role '{role}'!"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn remove_role(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let role = params.required("role")?;
    if role == ROLE_ADMIN {
        return Err(ServiceError::bad(format!(
            "role '{ROLE_ADMIN}' is not permitted to delete!"
        )));
    }
    app.repos
        .users
        .remove_role(role, params.get("username"))
        .await?;
    Ok(done(&app, "delete role of user ok!"))
}

async fn list_permissions(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let (page, mode) = page_request(&params)?;
    let role = blur(params.get("role").unwrap_or(""), mode);
    let perms = app.repos.users.list_permissions(&role, mode, page).await?;
    Ok(page_json(
        perms,
        |p| json!({ "role": p.role, "resource": p.resource, "action": p.action }),
    ))
}

fn permission(params: &Params) -> ServiceResult<Permission> {
    let action = params.required("action")?;
    if !matches!(action, "r" | "w" | "rw") {
        return Err(ServiceError::param("action", "action must be r, w or rw"));
    }
    Ok(Permission {
        role: params.required("role")?.to_string(),
        resource: params.required("resource")?.to_string(),
        action: action.to_string(),
    })
}

async fn add_permission(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let permission = permission(&params)?;
    let bound = app
        .repos
        .users
        .list_roles(
            "",
            &permission.role,
            MatchMode::Exact,
            PageRequest::new(1, 1),
        )
        .await?;
    if bound.total_count == 0 {
        return Err(ServiceError::bad(format!(
            "role {} not found!",
            permission.role
        )));
    }
    match app.repos.users.add_permission(permission).await {
        Ok(()) | Err(RepoError::AlreadyExists(_)) => Ok(done(&app, "add permission ok!")),
        Err(e) => Err(e.into()),
    }
}

async fn remove_permission(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let permission = permission(&params)?;
    app.repos.users.remove_permission(&permission).await?;
    Ok(done(&app, "delete permission ok!"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_with_auth_off_is_for_loopback_clients_only() {
        for ip in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(bootstrap_allowed(false, ip), Ok(()), "{ip}");
        }
        for ip in [
            "192.0.2.2",
            "10.0.0.1",
            "fd00::2",
            "0.0.0.0",
            "",
            "localhost",
        ] {
            let err = bootstrap_allowed(false, ip).expect_err(ip);
            assert!(err.contains("nacos.core.auth.enabled=false"), "{err}");
        }
        assert_eq!(bootstrap_allowed(true, "192.0.2.2"), Ok(()));
    }
}
