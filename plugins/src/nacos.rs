//! The default plugin, `nacos`: users, roles and permissions in the [`UserRepo`] of whichever
//! backend is configured, BCrypt password hashes (rows written by Java Nacos log in), and JWT
//! tokens as Nacos issues them ([`crate::jwt`]).
//!
//! Hot path: a decoded token is cached until shortly before it expires; the roles of a user
//! and the permissions of a role are cached for [`DECISION_TTL`], so a changed role or
//! permission takes effect within that time on every node (at once on the node that changed
//! it, which calls [`AuthPlugin::invalidate`]). Failed logins are counted per
//! (user, client address) and refused for a while after [`MAX_LOGIN_FAILURES`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use moka::sync::Cache;
use nacos_core::{
    Action, AuthError, AuthPlugin, IdentityContext, LoginResult, MatchMode, PageRequest,
    Permission, Principal, RepoError, Resource, UserRepo, auth::fixed, glob_match,
};
use sha2::{Digest, Sha256};

use crate::PluginContext;
use crate::jwt::{JwtKey, check_secret};

pub const NAME: &str = "nacos";
/// The global admin role.
pub const ROLE_ADMIN: &str = "ROLE_ADMIN";
/// The user `POST /v1/auth/users/admin` creates.
pub const DEFAULT_ADMIN: &str = "nacos";
/// The token issued when auth is disabled and no secret is configured.
pub const AUTH_DISABLED_TOKEN: &str = "AUTH_DISABLED";

pub const SECRET_KEY: &str = "nacos.core.auth.plugin.nacos.token.secret.key";
pub const EXPIRE_SECONDS: &str = "nacos.core.auth.plugin.nacos.token.expire.seconds";
pub const DEFAULT_EXPIRE_SECONDS: u64 = 18_000;

/// How long cached roles and permissions are trusted.
pub const DECISION_TTL: Duration = Duration::from_secs(3);
/// Failed logins per (user, address) before logins are refused for [`LOGIN_LOCKOUT`].
pub const MAX_LOGIN_FAILURES: u32 = 5;
pub const LOGIN_LOCKOUT: Duration = Duration::from_secs(60);

const IDENTITY_NAMES: &[&str] = &["Authorization", "accessToken", "username", "password"];

/// BCrypt cost of hashes this server writes (Nacos's `$2a$10$`).
const BCRYPT_COST: u32 = 10;

/// A BCrypt hash in Nacos's `$2a$` form.
pub fn hash_password(password: &str) -> Result<String, String> {
    bcrypt::hash_with_result(password, BCRYPT_COST)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| format!("cannot hash password: {e}"))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unavailable(e: RepoError) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

/// Whether a stored permission grants `action` on the requested resource string: each `*` of
/// the stored resource matches any run of characters, over the whole string; the stored action
/// (`r`, `w`, `rw`) must contain the requested letter.
pub fn permission_grants(permission: &Permission, requested: &str, action: Action) -> bool {
    permission.action.contains(action.letter()) && glob_match(&permission.resource, requested)
}

fn short_lived<K, V>(capacity: u64) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(DECISION_TTL)
        .build()
}

/// The `nacos` plugin.
pub struct NacosAuthPlugin {
    users: Arc<dyn UserRepo>,
    /// `None` only when auth is disabled and no secret is set (login hands out
    /// [`AUTH_DISABLED_TOKEN`]).
    key: Option<JwtKey>,
    expire_secs: u64,
    /// token → (user, exp).
    tokens: Cache<String, (String, i64)>,
    /// sha256(user, password) of a recently verified username/password identity → user.
    passwords: Cache<[u8; 32], String>,
    roles: Cache<String, Arc<Vec<String>>>,
    permissions: Cache<String, Arc<Vec<Permission>>>,
    failures: Cache<String, u32>,
}

impl std::fmt::Debug for NacosAuthPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NacosAuthPlugin")
            .field("key", &self.key)
            .field("expire_secs", &self.expire_secs)
            .finish_non_exhaustive()
    }
}

impl NacosAuthPlugin {
    /// Build from the plugin context. With auth enabled the secret must pass
    /// [`check_secret`]; the error names the property to set.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, String> {
        let secret = ctx.property(SECRET_KEY).unwrap_or_default();
        let key = if ctx.enabled {
            Some(JwtKey::new(check_secret(secret, SECRET_KEY)?))
        } else if secret.trim().is_empty() {
            None
        } else {
            Some(JwtKey::from_base64(secret))
        };
        let expire_secs = match ctx.property(EXPIRE_SECONDS) {
            None => DEFAULT_EXPIRE_SECONDS,
            Some(v) => v.trim().parse().map_err(|_| {
                format!("bad value for property '{EXPIRE_SECONDS}': '{v}' (seconds)")
            })?,
        };
        Ok(Self::new(Arc::clone(&ctx.users), key, expire_secs))
    }

    pub fn new(users: Arc<dyn UserRepo>, key: Option<JwtKey>, expire_secs: u64) -> Self {
        Self {
            users,
            key,
            expire_secs,
            tokens: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            passwords: short_lived(10_000),
            roles: short_lived(100_000),
            permissions: short_lived(10_000),
            failures: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOGIN_LOCKOUT)
                .build(),
        }
    }

    /// The roles of a user (cached for [`DECISION_TTL`]).
    pub async fn roles_of(&self, username: &str) -> Result<Arc<Vec<String>>, AuthError> {
        if let Some(roles) = self.roles.get(username) {
            return Ok(roles);
        }
        let page = self
            .users
            .list_roles(username, "", MatchMode::Exact, PageRequest::new(1, 10_000))
            .await
            .map_err(unavailable)?;
        let roles = Arc::new(page.items.into_iter().map(|b| b.role).collect::<Vec<_>>());
        self.roles.insert(username.to_string(), Arc::clone(&roles));
        Ok(roles)
    }

    async fn permissions_of(&self, role: &str) -> Result<Arc<Vec<Permission>>, AuthError> {
        if let Some(perms) = self.permissions.get(role) {
            return Ok(perms);
        }
        let page = self
            .users
            .list_permissions(role, MatchMode::Exact, PageRequest::new(1, 10_000))
            .await
            .map_err(unavailable)?;
        let perms = Arc::new(page.items);
        self.permissions
            .insert(role.to_string(), Arc::clone(&perms));
        Ok(perms)
    }

    fn check_token(&self, token: &str) -> Result<String, AuthError> {
        let now = now_secs();
        if let Some((user, exp)) = self.tokens.get(token) {
            return if exp < now {
                Err(AuthError::TokenExpired)
            } else {
                Ok(user)
            };
        }
        let Some(key) = &self.key else {
            return Err(AuthError::TokenInvalid);
        };
        let (user, exp) = key.decode(token)?;
        if exp < now {
            return Err(AuthError::TokenExpired);
        }
        self.tokens.insert(token.to_string(), (user.clone(), exp));
        Ok(user)
    }

    fn failure_key(username: &str, client_ip: &str) -> String {
        format!("{username}\u{0}{client_ip}")
    }

    /// Check a password against the stored hash, rate limited per (user, address).
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<(), AuthError> {
        let failure_key = Self::failure_key(username, client_ip);
        if self
            .failures
            .get(&failure_key)
            .is_some_and(|n| n >= MAX_LOGIN_FAILURES)
        {
            tracing::warn!(username, client_ip, "login refused: too many failures");
            return Err(AuthError::TooManyAttempts);
        }
        let user = self.users.get_user(username).await.map_err(unavailable)?;
        let ok = match user {
            Some(user) if user.enabled => {
                let password = password.to_string();
                tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &user.password_hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false)
            }
            _ => false,
        };
        if ok {
            self.failures.invalidate(&failure_key);
            Ok(())
        } else {
            let n = self.failures.get(&failure_key).unwrap_or(0) + 1;
            self.failures.insert(failure_key, n);
            Err(AuthError::UserNotFound)
        }
    }

    fn password_digest(username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(username.as_bytes());
        h.update([0u8]);
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

#[async_trait]
impl AuthPlugin for NacosAuthPlugin {
    fn name(&self) -> &str {
        NAME
    }

    fn identity_names(&self) -> &[&'static str] {
        IDENTITY_NAMES
    }

    fn login_enabled(&self) -> bool {
        true
    }

    async fn login(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<LoginResult, AuthError> {
        if username.trim().is_empty() || password.is_empty() {
            return Err(AuthError::UserNotFound);
        }
        self.check_password(username, password, client_ip).await?;
        let global_admin = self
            .roles_of(username)
            .await?
            .iter()
            .any(|r| r == ROLE_ADMIN);
        let access_token = match &self.key {
            Some(key) => {
                let exp = now_secs() + self.expire_secs as i64;
                key.sign(username, exp)
            }
            None => AUTH_DISABLED_TOKEN.to_string(),
        };
        Ok(LoginResult {
            access_token,
            token_ttl: self.expire_secs,
            global_admin,
            username: username.to_string(),
        })
    }

    async fn validate_identity(&self, identity: &IdentityContext) -> Result<Principal, AuthError> {
        let bearer = identity
            .get("Authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(token) = bearer.or_else(|| identity.get("accessToken")) {
            return self.check_token(token).map(|name| Principal { name });
        }
        match (identity.get("username"), identity.get("password")) {
            (Some(username), Some(password)) => {
                let digest = Self::password_digest(username, password);
                if self.passwords.get(&digest).is_some() {
                    return Ok(Principal {
                        name: username.to_string(),
                    });
                }
                self.check_password(username, password, &identity.client_ip)
                    .await?;
                self.passwords.insert(digest, username.to_string());
                Ok(Principal {
                    name: username.to_string(),
                })
            }
            _ => Err(AuthError::UserNotFound),
        }
    }

    async fn validate_authority(
        &self,
        principal: &Principal,
        resource: &Resource,
        action: Action,
    ) -> Result<(), AuthError> {
        let roles = self.roles_of(&principal.name).await?;
        if roles.iter().any(|r| r == ROLE_ADMIN) {
            return Ok(());
        }
        if let Resource::Fixed(name) = resource {
            // The password endpoint lets the handler decide (admin or the same user).
            if name == fixed::CONSOLE_USER_PASSWORD {
                return Ok(());
            }
            if resource.is_console() {
                return Err(AuthError::AuthorizationFailed);
            }
        }
        let requested = resource.to_nacos();
        for role in roles.iter() {
            let perms = self.permissions_of(role).await?;
            if perms
                .iter()
                .any(|p| permission_grants(p, &requested, action))
            {
                return Ok(());
            }
        }
        Err(AuthError::AuthorizationFailed)
    }

    async fn is_admin(&self, principal: &Principal) -> Result<bool, AuthError> {
        Ok(self
            .roles_of(&principal.name)
            .await?
            .iter()
            .any(|r| r == ROLE_ADMIN))
    }

    fn invalidate(&self) {
        self.roles.invalidate_all();
        self.permissions.invalidate_all();
        self.passwords.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::{RoleBinding, User};

    const STOCK_HASH: &str = "$2a$10$EuWPZHzz32dJN7jexM34MOeYirDdFAZm2kuWj7VEOJhhZkDrxfvUu";

    async fn plugin() -> (NacosAuthPlugin, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = nacos_storage_embedded::open_repos(dir.path()).expect("open");
        let users = Arc::clone(&repos.users);
        users
            .create_user(User {
                username: "nacos".into(),
                password_hash: STOCK_HASH.into(),
                enabled: true,
            })
            .await
            .expect("admin");
        users
            .add_role(RoleBinding {
                role: ROLE_ADMIN.into(),
                username: "nacos".into(),
            })
            .await
            .expect("admin role");
        users
            .create_user(User {
                username: "dev".into(),
                password_hash: hash_password("devpw").expect("hash"),
                enabled: true,
            })
            .await
            .expect("dev");
        users
            .add_role(RoleBinding {
                role: "devs".into(),
                username: "dev".into(),
            })
            .await
            .expect("dev role");
        users
            .add_permission(Permission {
                role: "devs".into(),
                resource: "dev:*:*".into(),
                action: "r".into(),
            })
            .await
            .expect("perm");
        let key = JwtKey::new(b"0123456789abcdef0123456789abcdef".to_vec());
        (NacosAuthPlugin::new(users, Some(key), 18_000), dir)
    }

    #[tokio::test]
    async fn java_hash_logs_in_and_token_identifies() {
        let (p, _dir) = plugin().await;
        let login = p.login("nacos", "nacos", "1.1.1.1").await.expect("login");
        assert!(login.global_admin);
        assert_eq!(login.token_ttl, 18_000);
        let mut id = IdentityContext::new("1.1.1.1");
        id.offer("Authorization", &format!("Bearer {}", login.access_token));
        let who = p.validate_identity(&id).await.expect("identity");
        assert_eq!(who.name, "nacos");
        assert!(p.is_admin(&who).await.expect("admin"));
        assert_eq!(
            p.login("nacos", "wrong", "1.1.1.1").await.expect_err("bad"),
            AuthError::UserNotFound
        );
    }

    #[tokio::test]
    async fn permissions_match_like_nacos() {
        let (p, _dir) = plugin().await;
        let dev = Principal { name: "dev".into() };
        let read = Resource::config("dev", "DEFAULT_GROUP", "a.yaml");
        p.validate_authority(&dev, &read, Action::Read)
            .await
            .expect("read granted");
        assert_eq!(
            p.validate_authority(&dev, &read, Action::Write).await,
            Err(AuthError::AuthorizationFailed)
        );
        assert_eq!(
            p.validate_authority(&dev, &Resource::config("", "G", "a"), Action::Read)
                .await,
            Err(AuthError::AuthorizationFailed)
        );
        assert_eq!(
            p.validate_authority(&dev, &Resource::fixed(fixed::CONSOLE_USERS), Action::Read)
                .await,
            Err(AuthError::AuthorizationFailed)
        );
    }

    #[tokio::test]
    async fn failed_logins_are_rate_limited_per_user_and_address() {
        let (p, _dir) = plugin().await;
        for _ in 0..MAX_LOGIN_FAILURES {
            assert_eq!(
                p.login("dev", "nope", "9.9.9.9").await.expect_err("bad"),
                AuthError::UserNotFound
            );
        }
        assert_eq!(
            p.login("dev", "devpw", "9.9.9.9")
                .await
                .expect_err("locked"),
            AuthError::TooManyAttempts
        );
        p.login("dev", "devpw", "8.8.8.8")
            .await
            .expect("another address is not locked");
    }

    #[test]
    fn hashes_are_2a() {
        let h = hash_password("x").expect("hash");
        assert!(h.starts_with("$2a$10$"), "{h}");
        assert!(bcrypt::verify("x", &h).expect("verify"));
    }
}
