//! `/v1/ns`: the naming OpenAPI (placeholder until the naming module lands).

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
