//! Authentication and authorization, written once for both edges: the [`Auth`] service (the
//! selected [`AuthPlugin`], the server identity), built at start from
//! `nacos.core.auth.*`. The HTTP edge declares per route what it needs
//! ([`crate::edges::http::secured`]); the gRPC edge per payload type ([`crate::edges::grpc::dispatch`]).
//!
//! Order per secured request, as Nacos: auth disabled → pass; the request carries the server
//! identity header (`nacos.core.auth.server.identity.key` = `…value`) → pass; otherwise the
//! plugin validates the identity, then the authority for the declared resource and action.
//! There is no User-Agent bypass.

use std::fmt;
use std::sync::Arc;

use nacos_core::{Action, AuthError, AuthPlugin, IdentityContext, Principal, Resource, UserRepo};
use nacos_plugins::{PluginContext, PluginRegistry};

use crate::foundation::settings::Properties;

pub const ENABLED: &str = "nacos.core.auth.enabled";
pub const SYSTEM_TYPE: &str = "nacos.core.auth.system.type";
pub const IDENTITY_KEY: &str = "nacos.core.auth.server.identity.key";
pub const IDENTITY_VALUE: &str = "nacos.core.auth.server.identity.value";
/// The identity pair in Nacos's shipped `application.properties` (refused with auth on).
pub const SAMPLE_IDENTITY: (&str, &str) = ("serverIdentity", "security");

/// The auth service of a running server.
pub struct Auth {
    enabled: bool,
    plugin: Arc<dyn AuthPlugin>,
    identity_key: String,
    identity_value: String,
}

/// The server identity `(key, value)` nodes send each other on every node-to-node call, auth
/// on or off; `None` when none is configured.
pub fn server_identity(props: &Properties) -> Option<(String, String)> {
    let key = props.get(IDENTITY_KEY).unwrap_or("").trim();
    let value = props.get(IDENTITY_VALUE).unwrap_or("");
    (!key.is_empty() && !value.is_empty()).then(|| (key.to_string(), value.to_string()))
}

/// Whether the identity is Nacos's sample pair (the key is a header name: any case; the value
/// as given, surrounding blanks aside).
fn is_sample_identity(key: &str, value: &str) -> bool {
    key.trim().eq_ignore_ascii_case(SAMPLE_IDENTITY.0) && value.trim() == SAMPLE_IDENTITY.1
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("plugin", &self.plugin.name())
            .field("identity_key", &self.identity_key)
            .field("identity_value", &"<redacted>")
            .finish()
    }
}

impl Auth {
    /// Build from properties with the built-in plugins.
    pub fn open(props: &Properties, users: Arc<dyn UserRepo>) -> Result<Self, String> {
        Self::open_with(props, users, &PluginRegistry::builtin())
    }

    /// Build from properties, picking the plugin from `registry`. With auth enabled, an empty
    /// server identity key or value is refused, naming the property.
    pub fn open_with(
        props: &Properties,
        users: Arc<dyn UserRepo>,
        registry: &PluginRegistry,
    ) -> Result<Self, String> {
        let enabled = props.bool_or(ENABLED, false).map_err(|e| e.to_string())?;
        let system_type = props.get_or(SYSTEM_TYPE, nacos_plugins::nacos::NAME);
        let identity_key = props.get(IDENTITY_KEY).unwrap_or("").to_string();
        let identity_value = props.get(IDENTITY_VALUE).unwrap_or("").to_string();
        if enabled {
            for (name, value) in [
                (IDENTITY_KEY, &identity_key),
                (IDENTITY_VALUE, &identity_value),
            ] {
                if value.is_empty() {
                    return Err(format!(
                        "auth is enabled but {name} is empty; set {IDENTITY_KEY} and \
                         {IDENTITY_VALUE} to the same non-empty values on every node (requests \
                         between nodes carry them)"
                    ));
                }
            }
            if is_sample_identity(&identity_key, &identity_value) {
                return Err(format!(
                    "{IDENTITY_KEY}={} with {IDENTITY_VALUE}={} is the sample pair from Nacos's \
                     application.properties, which anyone can send to pass as a cluster node; \
                     set {IDENTITY_VALUE} (and {IDENTITY_KEY}) to your own values, the same on \
                     every node",
                    SAMPLE_IDENTITY.0, SAMPLE_IDENTITY.1
                ));
            }
        }
        let ctx = PluginContext {
            enabled,
            properties: props.with_prefix("nacos.core.auth."),
            users,
        };
        let plugin = registry.create(system_type, &ctx)?;
        if enabled {
            tracing::info!(plugin = plugin.name(), "auth enabled");
        }
        Ok(Self {
            enabled,
            plugin,
            identity_key,
            identity_value,
        })
    }

    /// `nacos.core.auth.enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn plugin(&self) -> &Arc<dyn AuthPlugin> {
        &self.plugin
    }

    /// Whether a server identity is configured (then node-to-node calls must carry it, auth on
    /// or off).
    pub fn has_server_identity(&self) -> bool {
        !self.identity_key.trim().is_empty() && !self.identity_value.is_empty()
    }

    /// Whether a request carries the server identity (header lookup is the caller's, so HTTP
    /// headers and gRPC metadata both work). Never true when no identity is configured.
    pub fn is_server_request<'a>(&self, header: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.identity_key.is_empty()
            && header(&self.identity_key)
                .is_some_and(|v| nacos_plugins::ct_eq(v.as_bytes(), self.identity_value.as_bytes()))
    }

    /// Identity, then authority. Returns who the request is.
    pub async fn authorize(
        &self,
        identity: &IdentityContext,
        resource: &Resource,
        action: Action,
    ) -> Result<Principal, AuthError> {
        let principal = self.plugin.validate_identity(identity).await?;
        self.plugin
            .validate_authority(&principal, resource, action)
            .await?;
        Ok(principal)
    }

    /// Collect the plugin's identity names: `header` first, then `param`.
    pub fn identity<'a>(
        &self,
        client_ip: &str,
        header: impl Fn(&str) -> Option<&'a str>,
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> IdentityContext {
        let mut identity = IdentityContext::new(client_ip);
        for name in self.plugin.identity_names() {
            if let Some(v) = header(name).or_else(|| param(name)) {
                identity.offer(name, v);
            }
        }
        identity
    }
}
