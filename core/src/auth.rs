//! The auth plugin contract: what a plugin author implements ([`AuthPlugin`]) and the values
//! that cross it: the identity a request carries ([`IdentityContext`]), who it turned out to be
//! ([`Principal`]), what it wants to touch ([`Resource`], [`Action`]) and Nacos's refusals
//! ([`AuthError`]). Nothing here knows about HTTP, gRPC or storage; the server builds the
//! identity context from headers, parameters or gRPC metadata and calls the plugin.

use std::fmt;

use async_trait::async_trait;

use crate::rules::normalise_namespace;

/// What a request wants to do with a resource. Stored permissions spell it `r`, `w` or `rw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    /// The letter Nacos stores and matches (`r` / `w`).
    pub fn letter(self) -> &'static str {
        match self {
            Action::Read => "r",
            Action::Write => "w",
        }
    }
}

/// Fixed resources Nacos compares verbatim (fact sheet §2.3).
pub mod fixed {
    pub const CONSOLE_USERS: &str = "console/users";
    pub const CONSOLE_ROLES: &str = "console/roles";
    pub const CONSOLE_PERMISSIONS: &str = "console/permissions";
    pub const CONSOLE_NAMESPACES: &str = "console/namespaces";
    pub const CONSOLE_USER_PASSWORD: &str = "console/user/password";
    pub const NAMING_SWITCHES: &str = "naming/switches";
    pub const NACOS_ADMIN: &str = "nacos/admin";
    pub const CORE_CLUSTER: &str = "/v1/core/cluster";
    pub const CORE_LOADER: &str = "/v2/core/loader";
    pub const CONFIG_LISTENER: &str = "/v1/cs/listener";
}

/// A resource as Nacos spells it. Namespaces are normalised (`public`, `null` and blank are the
/// default namespace `""`); an empty group reads as `*` and an empty name as `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `<ns>:<group>:config/<dataId>`.
    Config {
        namespace: String,
        group: String,
        data_id: String,
    },
    /// `<ns>:<group>:naming/<service>` (the bare service name, without `group@@`).
    Naming {
        namespace: String,
        group: String,
        service: String,
    },
    /// One of the [`fixed`] resources, compared verbatim.
    Fixed(String),
}

fn or_star(s: &str) -> &str {
    let s = s.trim();
    if s.is_empty() { "*" } else { s }
}

impl Resource {
    pub fn config(namespace: &str, group: &str, data_id: &str) -> Self {
        Resource::Config {
            namespace: normalise_namespace(namespace).to_string(),
            group: group.trim().to_string(),
            data_id: data_id.trim().to_string(),
        }
    }

    /// A naming resource; a `group@@name` service name supplies the group when `group` is blank.
    pub fn naming(namespace: &str, group: &str, service: &str) -> Self {
        let service = service.trim();
        let (embedded_group, bare) = match service.split_once("@@") {
            Some((g, s)) => (g, s),
            None => ("", service),
        };
        let group = if group.trim().is_empty() {
            embedded_group
        } else {
            group.trim()
        };
        Resource::Naming {
            namespace: normalise_namespace(namespace).to_string(),
            group: group.to_string(),
            service: bare.to_string(),
        }
    }

    /// The resource of a validated config key.
    pub fn of_config(key: &crate::ConfigKey) -> Self {
        Resource::config(&key.namespace, &key.group, &key.data_id)
    }

    /// The resource of a validated service key (its group and bare name, never re-split).
    pub fn of_service(key: &crate::ServiceKey) -> Self {
        Resource::Naming {
            namespace: normalise_namespace(&key.namespace).to_string(),
            group: key.group.clone(),
            service: key.name.clone(),
        }
    }

    pub fn fixed(name: &str) -> Self {
        Resource::Fixed(name.to_string())
    }

    /// Whether this is a `console/*` resource (admin only).
    pub fn is_console(&self) -> bool {
        matches!(self, Resource::Fixed(name) if name.starts_with("console/"))
    }

    /// The string stored permissions are matched against.
    pub fn to_nacos(&self) -> String {
        match self {
            Resource::Config {
                namespace,
                group,
                data_id,
            } => format!("{namespace}:{}:config/{}", or_star(group), or_star(data_id)),
            Resource::Naming {
                namespace,
                group,
                service,
            } => format!("{namespace}:{}:naming/{}", or_star(group), or_star(service)),
            Resource::Fixed(name) => name.clone(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nacos())
    }
}

/// The identity a request carries: the values of the names a plugin reads
/// ([`AuthPlugin::identity_names`]), from headers first, then parameters (HTTP) or from
/// `metadata.headers` (gRPC). Names are matched case-insensitively. Values are secrets: the
/// `Debug` impl prints only the names.
#[derive(Clone, Default)]
pub struct IdentityContext {
    entries: Vec<(String, String)>,
    /// The client's address (`X-Forwarded-For`, `X-Real-IP`, the peer), for rate limits.
    pub client_ip: String,
}

impl fmt::Debug for IdentityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("IdentityContext")
            .field("names", &names)
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

impl IdentityContext {
    pub fn new(client_ip: impl Into<String>) -> Self {
        Self {
            entries: Vec::new(),
            client_ip: client_ip.into(),
        }
    }

    /// Record a value unless the name is already set (the first source wins). Blank values are
    /// ignored.
    pub fn offer(&mut self, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() || self.get(name).is_some() {
            return;
        }
        self.entries.push((name.to_string(), value.to_string()));
    }

    /// The value of a name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Who a request turned out to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    pub name: String,
}

/// A successful login.
#[derive(Clone)]
pub struct LoginResult {
    pub access_token: String,
    /// Seconds the token stays valid.
    pub token_ttl: u64,
    pub global_admin: bool,
    pub username: String,
}

impl fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResult")
            .field("token_ttl", &self.token_ttl)
            .field("global_admin", &self.global_admin)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused. `Display` is Nacos's message; every variant but `Unavailable`
/// is an HTTP 403 (gRPC errorCode 403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Credentials missing, blank or wrong.
    #[error("user not found!")]
    UserNotFound,
    /// Not three dot-separated parts, or an unreadable payload.
    #[error("token invalid!")]
    TokenInvalid,
    #[error("unsupported signature algorithm")]
    UnsupportedAlgorithm,
    #[error("Invalid signature")]
    InvalidSignature,
    #[error("token expired!")]
    TokenExpired,
    /// No permission matches.
    #[error("authorization failed!")]
    AuthorizationFailed,
    /// Too many failed logins from this user and address; retry later.
    #[error("too many failed login attempts, retry later")]
    TooManyAttempts,
    /// The plugin offers no login.
    #[error("login is not supported by this auth plugin")]
    LoginUnsupported,
    /// Storage behind the plugin failed (HTTP 500).
    #[error("auth storage unavailable: {0}")]
    Unavailable(String),
}

/// What an auth plugin implements. The server calls it only when `nacos.core.auth.enabled` is
/// true and the endpoint or payload type is secured; requests between nodes carrying the
/// server identity never reach it.
///
/// Order per request: [`AuthPlugin::validate_identity`] on the identity context, then
/// [`AuthPlugin::validate_authority`] for the resource and action the endpoint declares.
/// Both are on the hot path: cache what you can.
#[async_trait]
pub trait AuthPlugin: Send + Sync + fmt::Debug {
    /// The name `nacos.core.auth.system.type` selects.
    fn name(&self) -> &str;

    /// Header / parameter names the server collects into the [`IdentityContext`], in priority
    /// order. Matched case-insensitively.
    fn identity_names(&self) -> &[&'static str];

    /// Whether `POST /v1/auth/login` is offered.
    fn login_enabled(&self) -> bool {
        false
    }

    /// Check a username and password and issue a token.
    async fn login(
        &self,
        _username: &str,
        _password: &str,
        _client_ip: &str,
    ) -> Result<LoginResult, AuthError> {
        Err(AuthError::LoginUnsupported)
    }

    /// Who the identity is, or why it is refused.
    async fn validate_identity(&self, identity: &IdentityContext) -> Result<Principal, AuthError>;

    /// Whether `principal` may perform `action` on `resource`.
    async fn validate_authority(
        &self,
        principal: &Principal,
        resource: &Resource,
        action: Action,
    ) -> Result<(), AuthError>;

    /// Whether `principal` is a global admin (passes every check).
    async fn is_admin(&self, principal: &Principal) -> Result<bool, AuthError>;

    /// Users, roles or permissions changed: drop cached decisions.
    fn invalidate(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_strings() {
        assert_eq!(
            Resource::config("public", "DEFAULT_GROUP", "app.yaml").to_nacos(),
            ":DEFAULT_GROUP:config/app.yaml"
        );
        assert_eq!(Resource::config("dev", "", "").to_nacos(), "dev:*:config/*");
        assert_eq!(
            Resource::naming("dev", "", "DEFAULT_GROUP@@order").to_nacos(),
            "dev:DEFAULT_GROUP:naming/order"
        );
        assert!(Resource::fixed(fixed::CONSOLE_USERS).is_console());
        assert!(!Resource::fixed(fixed::NAMING_SWITCHES).is_console());
    }

    #[test]
    fn identity_first_wins_and_debug_hides_values() {
        let mut id = IdentityContext::new("1.2.3.4");
        id.offer("accessToken", "secret-token");
        id.offer("ACCESSTOKEN", "other");
        id.offer("username", "  ");
        assert_eq!(id.get("accesstoken"), Some("secret-token"));
        assert_eq!(id.get("username"), None);
        assert!(!format!("{id:?}").contains("secret-token"));
    }
}
