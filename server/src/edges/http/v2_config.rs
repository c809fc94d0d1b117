//! `/v2/cs`: the v2 config OpenAPI. Same operations as v1 (shared functions in
//! [`super::v1_config`] and [`crate::services::config::ops`]), wrapped in the v2 `Result` envelope.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::config_ops;
use super::config_params::{self, CONFIG_R, CONFIG_W, NAMESPACE_CONFIGS_R};
use super::secured::{M, Routes};
use super::v2::{V2Error, V2Result, ok};
use super::{Params, ServiceError};
use crate::app::AppState;

pub fn routes() -> Routes {
    let read = &[(M::Get, CONFIG_R)];
    Routes::new()
        .route(
            "/v2/cs/config",
            get(get_config).post(publish).delete(remove),
            &[
                (M::Get, CONFIG_R),
                (M::Post, CONFIG_W),
                (M::Delete, CONFIG_W),
            ],
        )
        .route("/v2/cs/config/searchDetail", get(search_detail), read)
        .route("/v2/cs/history/list", get(history_list), read)
        .route("/v2/cs/history", get(history_entry), read)
        .route("/v2/cs/history/previous", get(history_previous), read)
        .route(
            "/v2/cs/history/configs",
            get(history_configs),
            &[(M::Get, NAMESPACE_CONFIGS_R)],
        )
}

async fn get_config(State(app): State<AppState>, params: Params) -> V2Result {
    let key = config_params::config_key(&params)?;
    app.metrics.config.get_config.inc();
    let tag = config_params::optional_tag(&params)?;
    let auto_tag = params.header("Vipserver-Tag").map(str::to_string);
    let state = config_ops::read_state(&app, &params, &key).await?;
    match state.select(params.client_ip(), tag.as_deref(), auto_tag.as_deref()) {
        Some(selected) => Ok(ok(selected.content())),
        None => Err(V2Error::with_code(
            ServiceError::NotFound("config data not exist".to_string()),
            20004,
            "resource not found",
        )),
    }
}

async fn publish(State(app): State<AppState>, params: Params) -> V2Result {
    config_ops::publish(&app, &params).await?;
    Ok(ok(true))
}

async fn remove(State(app): State<AppState>, params: Params) -> V2Result {
    let key = config_params::config_key(&params)?;
    config_ops::remove(&app, &params, key).await?;
    Ok(ok(true))
}

/// Answers a bare Page, as Nacos does for this one v2 endpoint.
async fn search_detail(State(app): State<AppState>, params: Params) -> Result<Response, V2Error> {
    let mode = params.get("search").unwrap_or("blur").to_string();
    Ok(config_ops::search(&app, &params, &mode)
        .await?
        .into_response())
}

async fn history_list(State(app): State<AppState>, params: Params) -> V2Result {
    Ok(ok(config_ops::history_page(&app, &params).await?))
}

async fn history_entry(State(app): State<AppState>, params: Params) -> V2Result {
    Ok(ok(config_ops::history_entry(&app, &params).await?))
}

async fn history_previous(State(app): State<AppState>, params: Params) -> V2Result {
    Ok(ok(config_ops::previous_history(&app, &params).await?))
}

async fn history_configs(State(app): State<AppState>, params: Params) -> V2Result {
    Ok(ok(config_ops::namespace_configs(&app, &params).await?))
}
