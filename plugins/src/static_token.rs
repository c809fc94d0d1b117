//! `static-token`: a deliberately small second plugin to copy from. Tokens are fixed in the
//! properties; there are no users, no login and no storage.
//!
//! ```properties
//! nacos.core.auth.system.type=static-token
//! # name:token:grant, comma separated; grant is r, rw or admin
//! nacos.core.auth.plugin.static-token.tokens=reader:3c1f...:r, deployer:9b2e...:rw
//! ```
//!
//! A request presents its token as `Authorization: Bearer <token>` or `accessToken`. `r`
//! allows reads of every config and service, `rw` reads and writes, `admin` everything
//! including the console resources.

use async_trait::async_trait;
use nacos_core::{Action, AuthError, AuthPlugin, IdentityContext, Principal, Resource};

use crate::PluginContext;

pub const NAME: &str = "static-token";
pub const TOKENS: &str = "nacos.core.auth.plugin.static-token.tokens";
/// Tokens shorter than this are refused at start.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    Read,
    ReadWrite,
    Admin,
}

struct Entry {
    name: String,
    token: String,
    grant: Grant,
}

/// The `static-token` plugin.
pub struct StaticTokenPlugin {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for StaticTokenPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and grants only: tokens are secrets.
        let names: Vec<(&str, Grant)> = self
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.grant))
            .collect();
        f.debug_struct("StaticTokenPlugin")
            .field("entries", &names)
            .finish()
    }
}

impl StaticTokenPlugin {
    /// Parse [`TOKENS`]. With auth enabled at least one token is required.
    pub fn from_context(ctx: &PluginContext) -> Result<Self, String> {
        let raw = ctx.property(TOKENS).unwrap_or_default();
        let mut entries = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let parts: Vec<&str> = item.split(':').map(str::trim).collect();
            let [name, token, grant] = parts.as_slice() else {
                return Err(format!(
                    "{TOKENS}: entry #{} is not name:token:grant",
                    entries.len() + 1
                ));
            };
            let grant = match *grant {
                "r" => Grant::Read,
                "rw" => Grant::ReadWrite,
                "admin" => Grant::Admin,
                other => {
                    return Err(format!(
                        "{TOKENS}: grant of '{name}' is '{other}'; use r, rw or admin"
                    ));
                }
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "{TOKENS}: the token of '{name}' is shorter than {MIN_TOKEN_LEN} characters"
                ));
            }
            entries.push(Entry {
                name: name.to_string(),
                token: token.to_string(),
                grant,
            });
        }
        if ctx.enabled && entries.is_empty() {
            return Err(format!("auth is enabled with {NAME} but {TOKENS} is empty"));
        }
        Ok(Self { entries })
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[async_trait]
impl AuthPlugin for StaticTokenPlugin {
    fn name(&self) -> &str {
        NAME
    }

    fn identity_names(&self) -> &[&'static str] {
        &["Authorization", "accessToken"]
    }

    async fn validate_identity(&self, identity: &IdentityContext) -> Result<Principal, AuthError> {
        let presented = identity
            .get("Authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| identity.get("accessToken"))
            .ok_or(AuthError::UserNotFound)?;
        self.entries
            .iter()
            .find(|e| crate::ct_eq(e.token.as_bytes(), presented.trim().as_bytes()))
            .map(|e| Principal {
                name: e.name.clone(),
            })
            .ok_or(AuthError::TokenInvalid)
    }

    async fn validate_authority(
        &self,
        principal: &Principal,
        resource: &Resource,
        action: Action,
    ) -> Result<(), AuthError> {
        let grant = self
            .entry(&principal.name)
            .map(|e| e.grant)
            .ok_or(AuthError::UserNotFound)?;
        let allowed = match grant {
            Grant::Admin => true,
            _ if matches!(resource, Resource::Fixed(_)) => false,
            Grant::ReadWrite => true,
            Grant::Read => action == Action::Read,
        };
        if allowed {
            Ok(())
        } else {
            Err(AuthError::AuthorizationFailed)
        }
    }

    async fn is_admin(&self, principal: &Principal) -> Result<bool, AuthError> {
        Ok(self
            .entry(&principal.name)
            .is_some_and(|e| e.grant == Grant::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::context;

    fn plugin() -> StaticTokenPlugin {
        let ctx = context(
            true,
            &[(
                TOKENS,
                "reader:reader-token-0123456:r, ops:ops-token-0123456789:rw, root:root-token-01234567:admin",
            )],
        );
        StaticTokenPlugin::from_context(&ctx).expect("parse")
    }

    async fn who(p: &StaticTokenPlugin, token: &str) -> Result<Principal, AuthError> {
        let mut id = IdentityContext::new("127.0.0.1");
        id.offer("accessToken", token);
        p.validate_identity(&id).await
    }

    #[tokio::test]
    async fn grants() {
        let p = plugin();
        let cfg = Resource::config("", "G", "d");
        let reader = who(&p, "reader-token-0123456").await.expect("reader");
        p.validate_authority(&reader, &cfg, Action::Read)
            .await
            .expect("read");
        assert_eq!(
            p.validate_authority(&reader, &cfg, Action::Write).await,
            Err(AuthError::AuthorizationFailed)
        );
        let ops = who(&p, "ops-token-0123456789").await.expect("ops");
        p.validate_authority(&ops, &cfg, Action::Write)
            .await
            .expect("write");
        let users = Resource::fixed(nacos_core::auth::fixed::CONSOLE_USERS);
        assert!(
            p.validate_authority(&ops, &users, Action::Read)
                .await
                .is_err()
        );
        let root = who(&p, "root-token-01234567").await.expect("root");
        assert!(p.is_admin(&root).await.expect("admin"));
        assert_eq!(who(&p, "nope").await, Err(AuthError::TokenInvalid));
        assert_eq!(
            p.validate_identity(&IdentityContext::new("x")).await,
            Err(AuthError::UserNotFound)
        );
    }

    #[test]
    fn bad_config_is_refused() {
        for bad in ["x:short:r", "x:long-enough-token-123:rx", "just-a-token"] {
            let ctx = context(true, &[(TOKENS, bad)]);
            assert!(StaticTokenPlugin::from_context(&ctx).is_err(), "{bad}");
        }
        assert!(StaticTokenPlugin::from_context(&context(true, &[])).is_err());
        assert!(!format!("{:?}", plugin()).contains("reader-token"));
    }
}
