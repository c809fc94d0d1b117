//! The default plugin, `nacos`: users, roles and permissions in the [`UserRepo`] of whichever
//! backend is configured, BCrypt password hashes (rows written by Java Nacos log in), and JWT
//! tokens as Nacos issues them ([`crate::jwt`]).
//!
//! Hot path: a decoded token is cached until shortly before it expires; the roles of a user
//! and the permissions of a role are cached for [`DECISION_TTL`], so a changed role or
//! permission takes effect within that time on every node (at once on the node that changed
//! it, which calls [`AuthPlugin::invalidate`]). A token of a user that has been deleted or
//! disabled stops working within the same time.
//!
//! Failed logins are counted per user (from any address) and per client address (for any
//! user); either counter at its limit refuses logins for [`LOGIN_LOCKOUT`]. An attempt is
//! counted before its password is checked, so parallel tries cannot overshoot the limit.
//! BCrypt runs on the blocking pool, and an unknown or disabled user is checked against a
//! dummy hash of the same cost, so the answer time does not tell which users exist.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use moka::ops::compute::Op;
use moka::sync::Cache;
use nacos_core::{
    Action, AuthError, AuthPlugin, IdentityContext, LoginResult, MatchMode, PageRequest,
    Permission, Principal, RepoError, Resource, User, UserRepo, auth::fixed, glob_match,
};
use sha2::Sha256;

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
/// Failed logins of one user (from any address) before that user's logins are refused for
/// [`LOGIN_LOCKOUT`].
pub const MAX_LOGIN_FAILURES: u32 = 5;
/// Failed logins from one client address (for any users) before logins from that address are
/// refused for [`LOGIN_LOCKOUT`].
pub const MAX_SOURCE_FAILURES: u32 = 20;
/// How long a counter lasts after its last counted failure.
pub const LOGIN_LOCKOUT: Duration = Duration::from_secs(60);

const IDENTITY_NAMES: &[&str] = &["Authorization", "accessToken", "username", "password"];

/// BCrypt cost of hashes this server writes (Nacos's `$2a$10$`).
const BCRYPT_COST: u32 = 10;

/// A BCrypt hash (cost [`BCRYPT_COST`]) of a random password nobody knows. Users that do not
/// exist or are disabled are verified against it, so they cost the time of a wrong password.
const DUMMY_HASH: &str = "$2a$10$u33dAu2p781q705LDY4VSOVTON1kxPLz4XgG1a.UxFyxboKLMRZVe";

fn bcrypt_hash(password: &str) -> Result<String, String> {
    bcrypt::hash_with_result(password, BCRYPT_COST)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| format!("cannot hash password: {e}"))
}

/// A BCrypt hash in Nacos's `$2a$` form, computed on the blocking pool.
pub async fn hash_password(password: &str) -> Result<String, String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt_hash(&password))
        .await
        .map_err(|e| format!("cannot hash password: {e}"))?
}

/// The hash a password is checked against: the user's own when the user exists and is
/// enabled, else [`DUMMY_HASH`]; and whether a match may count.
fn hash_to_verify(user: Option<User>) -> (String, bool) {
    match user {
        Some(user) if user.enabled => (user.password_hash, true),
        _ => (DUMMY_HASH.to_string(), false),
    }
}

/// BCrypt verification on the blocking pool; always one full verification, whoever the user.
async fn verify_password(password: &str, user: Option<User>) -> bool {
    let (hash, counts) = hash_to_verify(user);
    let password = password.to_string();
    let matched = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(false);
    matched && counts
}

/// What a login failure is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ThrottleKey {
    /// Lower-cased and trimmed: databases with case-insensitive collations treat `Nacos` and
    /// `nacos ` as the same user, so they share a counter.
    User(String),
    Source(String),
}

/// Failure counters per user and per client address. A count includes attempts in flight: an
/// attempt is reserved before the password is checked and released unless it failed.
struct LoginThrottle {
    counts: Cache<ThrottleKey, u32>,
}

impl LoginThrottle {
    fn new() -> Self {
        Self {
            counts: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(LOGIN_LOCKOUT)
                .build(),
        }
    }

    /// Add one to `key` unless it is at `limit`, atomically.
    fn reserve(&self, key: &ThrottleKey, limit: u32) -> bool {
        let result = self.counts.entry_by_ref(key).and_compute_with(|current| {
            let n = current.map(|e| e.into_value()).unwrap_or(0);
            if n >= limit { Op::Nop } else { Op::Put(n + 1) }
        });
        matches!(
            result,
            moka::ops::compute::CompResult::Inserted(_)
                | moka::ops::compute::CompResult::ReplacedWith(_)
        )
    }

    fn release(&self, key: &ThrottleKey) {
        self.counts.entry_by_ref(key).and_compute_with(|current| {
            match current.map(|e| e.into_value()) {
                Some(n) if n > 1 => Op::Put(n - 1),
                Some(_) => Op::Remove,
                None => Op::Nop,
            }
        });
    }

    /// Reserve an attempt against the user and the address, or `None` when either is at its
    /// limit.
    fn begin(&self, username: &str, client_ip: &str) -> Option<Attempt<'_>> {
        let user = ThrottleKey::User(username.trim().to_lowercase());
        let source = ThrottleKey::Source(client_ip.to_string());
        if !self.reserve(&user, MAX_LOGIN_FAILURES) {
            return None;
        }
        if !self.reserve(&source, MAX_SOURCE_FAILURES) {
            self.release(&user);
            return None;
        }
        Some(Attempt {
            throttle: self,
            keys: [user, source],
            failed: false,
        })
    }
}

/// A reserved login attempt: released when dropped, unless [`Attempt::failed`] keeps it as a
/// counted failure. (A request abandoned mid-check is released; its client never learns the
/// answer.)
struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [ThrottleKey; 2],
    failed: bool,
}

impl Attempt<'_> {
    fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed {
            for key in &self.keys {
                self.throttle.release(key);
            }
        }
    }
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
    /// Random key of the password digests (never leaves the process).
    digest_key: [u8; 32],
    /// Built on first use: seven caches are about 200 KB, which a server with auth off and
    /// nobody logging in to the console never needs.
    caches: std::sync::OnceLock<Caches>,
}

/// What the plugin remembers for a short while.
struct Caches {
    /// token → (user, exp).
    tokens: Cache<String, (String, i64)>,
    /// user → keyed digest of the password recently verified for a username/password
    /// identity.
    passwords: Cache<String, [u8; 32]>,
    /// user → whether it exists and is enabled (tokens of deleted users stop working).
    active: Cache<String, bool>,
    roles: Cache<String, Arc<Vec<String>>>,
    permissions: Cache<String, Arc<Vec<Permission>>>,
    throttle: LoginThrottle,
}

impl Caches {
    fn new() -> Self {
        Self {
            tokens: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            passwords: short_lived(10_000),
            active: short_lived(100_000),
            roles: short_lived(100_000),
            permissions: short_lived(10_000),
            throttle: LoginThrottle::new(),
        }
    }
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
            digest_key: random_key(),
            caches: std::sync::OnceLock::new(),
        }
    }

    fn caches(&self) -> &Caches {
        self.caches.get_or_init(Caches::new)
    }

    /// Whether `username` exists and is enabled (cached for [`DECISION_TTL`]).
    async fn is_active(&self, username: &str) -> Result<bool, AuthError> {
        if let Some(active) = self.caches().active.get(username) {
            return Ok(active);
        }
        let active = self
            .users
            .get_user(username)
            .await
            .map_err(unavailable)?
            .is_some_and(|u| u.enabled);
        self.caches().active.insert(username.to_string(), active);
        Ok(active)
    }

    /// The roles of a user (cached for [`DECISION_TTL`]).
    pub async fn roles_of(&self, username: &str) -> Result<Arc<Vec<String>>, AuthError> {
        if let Some(roles) = self.caches().roles.get(username) {
            return Ok(roles);
        }
        let page = self
            .users
            .list_roles(username, "", MatchMode::Exact, PageRequest::new(1, 10_000))
            .await
            .map_err(unavailable)?;
        let roles = Arc::new(page.items.into_iter().map(|b| b.role).collect::<Vec<_>>());
        self.caches()
            .roles
            .insert(username.to_string(), Arc::clone(&roles));
        Ok(roles)
    }

    async fn permissions_of(&self, role: &str) -> Result<Arc<Vec<Permission>>, AuthError> {
        if let Some(perms) = self.caches().permissions.get(role) {
            return Ok(perms);
        }
        let page = self
            .users
            .list_permissions(role, MatchMode::Exact, PageRequest::new(1, 10_000))
            .await
            .map_err(unavailable)?;
        let perms = Arc::new(page.items);
        self.caches()
            .permissions
            .insert(role.to_string(), Arc::clone(&perms));
        Ok(perms)
    }

    fn check_token(&self, token: &str) -> Result<String, AuthError> {
        let now = now_secs();
        if let Some((user, exp)) = self.caches().tokens.get(token) {
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
        self.caches()
            .tokens
            .insert(token.to_string(), (user.clone(), exp));
        Ok(user)
    }

    /// Check a password against the stored hash, rate limited per user and per address.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<(), AuthError> {
        let Some(attempt) = self.caches().throttle.begin(username, client_ip) else {
            tracing::warn!(username, client_ip, "login refused: too many failures");
            return Err(AuthError::TooManyAttempts);
        };
        let user = self.users.get_user(username).await.map_err(unavailable)?;
        if verify_password(password, user).await {
            Ok(())
        } else {
            attempt.failed();
            Err(AuthError::UserNotFound)
        }
    }

    fn password_digest(&self, username: &str, password: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.digest_key) else {
            return [0; 32];
        };
        mac.update(username.as_bytes());
        mac.update(&[0u8]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// 32 random bytes (from two v4 UUIDs).
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
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
            let name = self.check_token(token)?;
            // A valid signature outlives the user: refuse tokens of deleted or disabled users.
            if !self.is_active(&name).await? {
                return Err(AuthError::UserNotFound);
            }
            return Ok(Principal { name });
        }
        match (identity.get("username"), identity.get("password")) {
            (Some(username), Some(password)) => {
                let digest = self.password_digest(username, password);
                if self
                    .caches()
                    .passwords
                    .get(username)
                    .is_some_and(|known| crate::ct_eq(&known, &digest))
                {
                    return Ok(Principal {
                        name: username.to_string(),
                    });
                }
                self.check_password(username, password, &identity.client_ip)
                    .await?;
                self.caches().passwords.insert(username.to_string(), digest);
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
        // Caches never built hold nothing to forget; building them here would only cost.
        if let Some(caches) = self.caches.get() {
            caches.roles.invalidate_all();
            caches.permissions.invalidate_all();
            caches.passwords.invalidate_all();
            caches.active.invalidate_all();
        }
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
                password_hash: hash_password("devpw").await.expect("hash"),
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
        // Per user, from any address: each failure comes from another address.
        for i in 0..MAX_LOGIN_FAILURES {
            assert_eq!(
                p.login("dev", "nope", &format!("9.9.9.{i}"))
                    .await
                    .expect_err("bad"),
                AuthError::UserNotFound
            );
        }
        for ip in ["9.9.9.0", "8.8.8.8"] {
            assert_eq!(
                p.login("dev", "devpw", ip).await.expect_err("locked"),
                AuthError::TooManyAttempts,
                "the user is locked from {ip} too"
            );
        }
        assert_eq!(
            p.login("DEV ", "devpw", "8.8.8.8")
                .await
                .expect_err("locked"),
            AuthError::TooManyAttempts,
            "another spelling of the name shares the counter"
        );
        p.login("nacos", "nacos", "9.9.9.0")
            .await
            .expect("another user from a used address is not locked");

        // Per address, for any users: unknown names count too.
        let (p, _dir) = plugin().await;
        for i in 0..MAX_SOURCE_FAILURES {
            assert_eq!(
                p.login(&format!("ghost{i}"), "nope", "7.7.7.7")
                    .await
                    .expect_err("bad"),
                AuthError::UserNotFound
            );
        }
        assert_eq!(
            p.login("nacos", "nacos", "7.7.7.7")
                .await
                .expect_err("address locked"),
            AuthError::TooManyAttempts
        );
        p.login("nacos", "nacos", "6.6.6.6")
            .await
            .expect("the user is fine from another address");
    }

    #[tokio::test]
    async fn successes_do_not_reset_the_user_counter() {
        let (p, _dir) = plugin().await;
        for _ in 0..MAX_LOGIN_FAILURES - 1 {
            p.login("dev", "nope", "1.1.1.1").await.expect_err("bad");
        }
        p.login("dev", "devpw", "2.2.2.2")
            .await
            .expect("still one left");
        p.login("dev", "nope", "1.1.1.1").await.expect_err("bad");
        assert_eq!(
            p.login("dev", "devpw", "2.2.2.2")
                .await
                .expect_err("locked"),
            AuthError::TooManyAttempts
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_wrong_tries_never_exceed_the_limit() {
        let (p, _dir) = plugin().await;
        let p = Arc::new(p);
        let mut tries = tokio::task::JoinSet::new();
        for i in 0..30 {
            let p = Arc::clone(&p);
            tries.spawn(async move { p.login("dev", "nope", &format!("5.5.5.{i}")).await });
        }
        let mut checked = 0;
        while let Some(result) = tries.join_next().await {
            match result.expect("task") {
                Err(AuthError::UserNotFound) => checked += 1,
                Err(AuthError::TooManyAttempts) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(checked, MAX_LOGIN_FAILURES, "passwords checked");
        assert_eq!(
            p.login("dev", "devpw", "4.4.4.4")
                .await
                .expect_err("locked"),
            AuthError::TooManyAttempts
        );
    }

    #[tokio::test]
    async fn unknown_and_disabled_users_verify_the_dummy_hash() {
        let parts: bcrypt::HashParts = DUMMY_HASH.parse().expect("dummy is a bcrypt hash");
        assert_eq!(parts.get_cost(), BCRYPT_COST, "same work as a stored hash");
        assert_eq!(hash_to_verify(None), (DUMMY_HASH.to_string(), false));
        let disabled = User {
            username: "off".into(),
            password_hash: STOCK_HASH.into(),
            enabled: false,
        };
        assert_eq!(
            hash_to_verify(Some(disabled.clone())),
            (DUMMY_HASH.into(), false)
        );
        let enabled = User {
            enabled: true,
            ..disabled.clone()
        };
        assert_eq!(
            hash_to_verify(Some(enabled.clone())),
            (STOCK_HASH.into(), true)
        );
        // A disabled user's right password does not log in.
        assert!(!verify_password("nacos", Some(disabled)).await);
        assert!(verify_password("nacos", Some(enabled)).await);
        assert!(!verify_password("nacos", None).await);
    }

    #[tokio::test]
    async fn tokens_of_deleted_users_stop_working() {
        let (p, _dir) = plugin().await;
        let login = p.login("dev", "devpw", "1.1.1.1").await.expect("login");
        let mut id = IdentityContext::new("1.1.1.1");
        id.offer("accessToken", &login.access_token);
        p.validate_identity(&id)
            .await
            .expect("valid while the user exists");
        assert!(p.users.delete_user("dev").await.expect("delete"));
        p.invalidate();
        assert_eq!(
            p.validate_identity(&id).await.expect_err("deleted"),
            AuthError::UserNotFound
        );
    }

    #[tokio::test]
    async fn password_identities_are_cached_by_keyed_digest() {
        let (p, _dir) = plugin().await;
        let mut id = IdentityContext::new("1.1.1.1");
        id.offer("username", "dev");
        id.offer("password", "devpw");
        p.validate_identity(&id).await.expect("valid");
        assert!(p.caches().passwords.get("dev").is_some());
        let mut wrong = IdentityContext::new("1.1.1.1");
        wrong.offer("username", "dev");
        wrong.offer("password", "other");
        assert_eq!(
            p.validate_identity(&wrong).await.expect_err("wrong"),
            AuthError::UserNotFound,
            "the cache holds one password, not any"
        );
    }

    #[tokio::test]
    async fn hashes_are_2a() {
        let h = hash_password("x").await.expect("hash");
        assert!(h.starts_with("$2a$10$"), "{h}");
        assert!(bcrypt::verify("x", &h).expect("verify"));
    }
}
