//! The `config` module over gRPC: query, publish, remove, batch listen, and the
//! `ConfigChangeNotifyRequest` push to every connection listening to a key that changed —
//! through any edge, since every write goes through the one [`ConfigService`].

use std::collections::HashMap;

use nacos_core::validate::ParamError;
use nacos_core::{ConfigKey, DEFAULT_CONFIG_TYPE, Operator, Resource};
use serde::Deserialize;

use super::dispatch::{CONFIG_R, CONFIG_W, Ctx, Handlers, Secured};
use super::error::{GrpcError, GrpcResult, code};
use crate::foundation::protocol::message::{grpc_request, grpc_response};
use crate::services::config::Selected;
use crate::services::config::ops::{self, PublishInput};

grpc_response!(ConfigQueryResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_data_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    last_modified: i64,
    beta: bool,
    /// Only when a tag variant was served (Go and Python clients read `tag` as a bool).
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
});
grpc_response!(ConfigPublishResponse {});
grpc_response!(ConfigRemoveResponse {});
grpc_response!(ConfigChangeBatchListenResponse {
    changed_configs: Vec<ChangedConfig>,
});

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedConfig {
    pub group: String,
    pub data_id: String,
    /// Echoed as the client sent it.
    pub tenant: String,
}

grpc_request!(ConfigQueryRequest => ConfigQueryResponse {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    tag: Option<String>,
});
grpc_request!(ConfigPublishRequest => ConfigPublishResponse {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    content: Option<String>,
    cas_md5: Option<String>,
    addition_map: Option<HashMap<String, Option<String>>>,
});
grpc_request!(ConfigRemoveRequest => ConfigRemoveResponse {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    tag: Option<String>,
});
grpc_request!(ConfigBatchListenRequest => ConfigChangeBatchListenResponse {
    /// `true` when absent (Java's default).
    listen: Option<bool>,
    config_listen_contexts: Option<Vec<ListenContext>>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenContext {
    pub data_id: Option<String>,
    pub group: Option<String>,
    pub tenant: Option<String>,
    pub md5: Option<String>,
}

/// The key of a request naming one config by `tenant`, `group`, `dataId`: what its handler
/// touches and what the guard authorizes.
fn config_key_of(
    tenant: &Option<String>,
    group: &Option<String>,
    data_id: &Option<String>,
) -> Result<ConfigKey, ParamError> {
    ops::config_key(
        tenant.as_deref().unwrap_or(""),
        group.as_deref().unwrap_or(""),
        data_id.as_deref().unwrap_or(""),
    )
}

macro_rules! one_config {
    ($($request:ty),*) => {$(
        impl $request {
            fn key(&self) -> Result<ConfigKey, ParamError> {
                config_key_of(&self.tenant, &self.group, &self.data_id)
            }
        }

        impl Secured for $request {
            fn resources(&self) -> GrpcResult<Vec<Resource>> {
                Ok(vec![Resource::of_config(&self.key()?)])
            }
        }
    )*};
}

one_config!(
    ConfigQueryRequest,
    ConfigPublishRequest,
    ConfigRemoveRequest
);

impl ListenContext {
    fn key(&self) -> Result<ConfigKey, ParamError> {
        config_key_of(&self.tenant, &self.group, &self.data_id)
    }
}

impl Secured for ConfigBatchListenRequest {
    /// Every listened config, not only the first.
    fn resources(&self) -> GrpcResult<Vec<Resource>> {
        self.config_listen_contexts
            .iter()
            .flatten()
            .map(|c| Ok(Resource::of_config(&c.key()?)))
            .collect()
    }
}

pub fn register(handlers: &mut Handlers) {
    handlers
        .add(CONFIG_R, query)
        .add(CONFIG_W, publish)
        .add(CONFIG_W, remove)
        .add(CONFIG_R, batch_listen);
}

fn non_blank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The tag named by `Vipserver-Tag` in the request headers, else in the connection's labels.
fn auto_tag(ctx: &Ctx) -> Option<String> {
    ctx.header("Vipserver-Tag")
        .or_else(|| ctx.conn.meta.label("Vipserver-Tag"))
        .map(str::to_string)
}

async fn query(ctx: Ctx, req: ConfigQueryRequest) -> GrpcResult<ConfigQueryResponse> {
    let key = req.key()?;
    ctx.app.metrics.config.get_config.inc();
    let tag = ops::optional_tag(req.tag.as_deref())?;
    let auto_tag = auto_tag(&ctx);
    let state = ctx.app.config.state(&key).await?;
    let Some(selected) = state.select(
        &ctx.conn.meta.client_ip,
        tag.as_deref(),
        auto_tag.as_deref(),
    ) else {
        return Err(GrpcError::fail(
            code::NOT_FOUND_OR_STARTING,
            "config data not exist",
        ));
    };
    let content_type = state
        .formal
        .as_ref()
        .map_or(DEFAULT_CONFIG_TYPE, |f| f.config_type.as_str());
    let served_tag = match selected {
        Selected::Tag(g) => match &g.gray {
            nacos_core::Gray::Tag(t) => Some(t.clone()),
            nacos_core::Gray::Beta => None,
        },
        _ => None,
    };
    Ok(ConfigQueryResponse {
        content: Some(selected.content().to_string()),
        encrypted_data_key: Some(selected.encrypted_data_key().to_string()),
        content_type: Some(content_type.to_string()),
        md5: Some(selected.md5().to_string()),
        last_modified: selected.modified_ms(),
        beta: matches!(selected, Selected::Beta(_)),
        tag: served_tag,
        ..Default::default()
    })
}

async fn publish(ctx: Ctx, req: ConfigPublishRequest) -> GrpcResult<ConfigPublishResponse> {
    let key = req.key()?;
    let mut addition: HashMap<String, String> = req
        .addition_map
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let mut take = |name: &str| non_blank(addition.remove(name));
    let input = PublishInput {
        key,
        content: req.content.unwrap_or_default(),
        tag: take("tag"),
        beta_ips: take("betaIps"),
        cas_md5: non_blank(req.cas_md5),
        app_name: take("appName"),
        encrypted_data_key: take("encryptedDataKey"),
        config_tags: take("config_tags"),
        desc: take("desc"),
        usage: take("use"),
        effect: take("effect"),
        schema: take("schema"),
        config_type: take("type"),
        operator: Operator {
            user: take("src_user").unwrap_or_default(),
            ip: ctx.client_ip.clone(),
        },
    };
    ops::publish(&ctx.app.config, ctx.app.settings.max_content, input).await?;
    ctx.app.metrics.config.publish.inc();
    Ok(ConfigPublishResponse::default())
}

async fn remove(ctx: Ctx, req: ConfigRemoveRequest) -> GrpcResult<ConfigRemoveResponse> {
    let key = req.key()?;
    let operator = Operator {
        user: String::new(),
        ip: ctx.client_ip.clone(),
    };
    ops::remove(&ctx.app.config, &key, req.tag.as_deref(), &operator).await?;
    Ok(ConfigRemoveResponse::default())
}

async fn batch_listen(
    ctx: Ctx,
    req: ConfigBatchListenRequest,
) -> GrpcResult<ConfigChangeBatchListenResponse> {
    let listen = req.listen.unwrap_or(true);
    let contexts = req.config_listen_contexts.unwrap_or_default();
    let mut parsed = Vec::with_capacity(contexts.len());
    for c in contexts {
        let key = c.key()?;
        parsed.push((key, c.tenant.unwrap_or_default(), c.md5.unwrap_or_default()));
    }
    let listeners = &ctx.app.config_listeners;
    let conn_id = &ctx.conn.id;
    if !listen {
        for (key, _, _) in &parsed {
            listeners.unlisten(conn_id, key);
        }
        return Ok(ConfigChangeBatchListenResponse::default());
    }
    let auto_tag = auto_tag(&ctx);
    let mut changed = Vec::new();
    for (key, tenant, md5) in parsed {
        // Record first, compare second: a change in between is then pushed, not lost.
        listeners.listen(conn_id, key.clone(), tenant.clone(), md5.clone());
        let state = ctx.app.config.state(&key).await?;
        if state.listen_md5(&ctx.conn.meta.client_ip, auto_tag.as_deref()) != md5 {
            changed.push(ChangedConfig {
                group: key.group,
                data_id: key.data_id,
                tenant,
            });
        }
    }
    // The connection may have gone while we recorded; its cleanup already ran then.
    if ctx.conn.is_closed() {
        listeners.remove_connection(conn_id);
    }
    Ok(ConfigChangeBatchListenResponse {
        changed_configs: changed,
        ..Default::default()
    })
}
