//! Auth plugins of the Nacos-compatible server, and the registry the server picks one from by
//! the name in `nacos.core.auth.system.type`.
//!
//! # Layout
//! - [`nacos`]: the default plugin (users, roles, permissions in the storage backend; BCrypt;
//!   JWT), and [`jwt`], its token format.
//! - [`static_token`]: a small plugin with fixed tokens, the one to copy when writing your own
//!   (see `plugins/README.md`).
//! - [`PluginRegistry`]: name → factory; [`PluginContext`]: what a factory gets.
//!
//! The contract itself ([`nacos_core::AuthPlugin`]) lives in `nacos-core`.

pub mod jwt;
pub mod nacos;
pub mod static_token;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use nacos_core::{AuthPlugin, UserRepo};

/// Equality of secrets (tokens, signatures, digests, the server identity) in time that does
/// not depend on where the inputs differ. The length is not hidden.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// What a plugin factory gets: whether auth is enforced, the `nacos.core.auth.*` properties and
/// the user repository of the configured backend. `Debug` prints property names only.
#[derive(Clone)]
pub struct PluginContext {
    /// `nacos.core.auth.enabled`. Factories refuse unsafe settings only when this is true.
    pub enabled: bool,
    /// Properties under `nacos.core.auth.` (full keys).
    pub properties: HashMap<String, String>,
    pub users: Arc<dyn UserRepo>,
}

impl fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.properties.keys().collect();
        keys.sort();
        f.debug_struct("PluginContext")
            .field("enabled", &self.enabled)
            .field("property_keys", &keys)
            .finish_non_exhaustive()
    }
}

impl PluginContext {
    /// A property value, trimmed; blank counts as unset.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Builds a plugin, or says which property is wrong.
pub type Factory = fn(&PluginContext) -> Result<Arc<dyn AuthPlugin>, String>;

/// Plugin name → factory.
#[derive(Clone)]
pub struct PluginRegistry {
    entries: Vec<(&'static str, Factory)>,
}

impl fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for PluginRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PluginRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The plugins in this crate: `nacos` and `static-token`.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(nacos::NAME, |ctx| {
            Ok(Arc::new(nacos::NacosAuthPlugin::from_context(ctx)?))
        });
        r.register(static_token::NAME, |ctx| {
            Ok(Arc::new(static_token::StaticTokenPlugin::from_context(
                ctx,
            )?))
        });
        r
    }

    /// Add (or replace) a plugin.
    pub fn register(&mut self, name: &'static str, factory: Factory) -> &mut Self {
        self.entries.retain(|(n, _)| *n != name);
        self.entries.push((name, factory));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(n, _)| *n).collect()
    }

    /// Build the plugin called `name`; an unknown name lists the known ones.
    pub fn create(&self, name: &str, ctx: &PluginContext) -> Result<Arc<dyn AuthPlugin>, String> {
        match self.entries.iter().find(|(n, _)| *n == name) {
            Some((_, factory)) => factory(ctx),
            None => Err(format!(
                "unknown auth plugin '{name}' in nacos.core.auth.system.type; known plugins: {}",
                self.names().join(", ")
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn context(enabled: bool, props: &[(&str, &str)]) -> PluginContext {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = nacos_storage_embedded::open_repos(dir.path()).expect("open");
        // The store keeps its file open; the directory may go.
        PluginContext {
            enabled,
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            users: repos.users,
        }
    }

    #[test]
    fn registry_selects_by_name_and_lists_known_names() {
        let reg = PluginRegistry::builtin();
        let ctx = context(
            true,
            &[(
                nacos::SECRET_KEY,
                "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5YWI=",
            )],
        );
        assert_eq!(reg.create("nacos", &ctx).expect("nacos").name(), "nacos");
        let err = reg.create("ldap", &ctx).expect_err("unknown");
        assert!(err.contains("nacos, static-token"), "{err}");
        let sample = context(true, &[(nacos::SECRET_KEY, jwt::SAMPLE_SECRETS[0])]);
        let err = reg.create("nacos", &sample).expect_err("sample key");
        assert!(err.contains(nacos::SECRET_KEY), "{err}");
        assert!(!format!("{ctx:?}").contains("MDEy"));
    }
}
