//! Online backup and restore of a running server (admin only): `GET /v1/console/backup`
//! streams a consistent export of the store in the dump format of
//! [`crate::services::transfer`]; `POST /v1/console/restore` imports one batch of dump record
//! lines (the `restore --server` tool sends a file batch by batch, each within the request body
//! limit) and answers the records as the store keeps them, for the tool's verification. In an
//! embedded cluster each batch is one Raft entry, whichever node receives it.
//!
//! An embedded cluster node first passes a Raft read barrier, so its dump holds every write
//! committed before the request, then exports its own applied state (one redb read
//! transaction). The dump holds BCrypt hashes of the users' passwords, so it is served only
//! while auth is on.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::secured::{ADMIN_R, ADMIN_W, M, Routes};
use super::{Params, ServiceError, ServiceResult};
use nacos_core::transfer::Record;

use crate::app::AppState;
use crate::services::transfer::{self, TransferError};

pub fn routes() -> Routes {
    Routes::new()
        .route("/v1/console/backup", get(backup), &[(M::Get, ADMIN_R)])
        .route(
            "/v1/console/restore",
            axum::routing::post(restore),
            &[(M::Post, ADMIN_W)],
        )
}

/// The dump holds password hashes and a restore replaces users: neither is served to
/// everyone, which is what an admin-only route means while auth is off.
fn require_auth(app: &AppState) -> ServiceResult<()> {
    if app.auth.enabled() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "online backup and restore are served only with nacos.core.auth.enabled=true (the \
             dump holds the users' password hashes)"
                .into(),
        ))
    }
}

/// `POST /v1/console/restore?force=`: one batch of dump record lines (the body). Refused with
/// 409 when the store holds data and `force` is not set; nothing of a refused batch is written.
async fn restore(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    require_auth(&app)?;
    let force = params.bool("force")?.unwrap_or(false);
    let records = transfer::parse_lines(&params.body)
        .map_err(|e| ServiceError::param("body", e.to_string()))?;
    // What this node caches of the batch: config keys (cache and listeners) and services
    // (the registry's persistent part). Raft followers learn the same from the log.
    let mut keys: Vec<nacos_core::ConfigKey> = Vec::new();
    let mut services: Vec<nacos_core::ServiceKey> = Vec::new();
    for record in &records {
        match record {
            Record::Config(c) => keys.push(c.key.clone()),
            Record::Gray(g) => keys.push(g.key.clone()),
            Record::Service(m) => services.push(m.key.clone()),
            Record::Instance(i) => services.push(i.service.clone()),
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    services.sort();
    services.dedup();
    let stored = transfer::import_batch(app.repos.transfer.as_ref(), records, force)
        .await
        .map_err(|e| match e {
            TransferError::Storage(e) => e.into(),
            TransferError::NotEmpty(_) => ServiceError::Conflict(e.to_string()),
            other => ServiceError::param("body", other.to_string()),
        })?;
    for key in &keys {
        app.config.changed(key);
    }
    for service in &services {
        app.naming.reload_persistent(service).await;
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], stored).into_response())
}

async fn backup(State(app): State<AppState>) -> ServiceResult<Response> {
    require_auth(&app)?;
    if let Some(raft) = &app.raft {
        raft.linearizable_barrier().await?;
    }
    let repo = Arc::clone(&app.repos.transfer);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let pages = tx.clone();
        let sent = transfer::stream_dump(repo.as_ref(), move |bytes| {
            let pages = pages.clone();
            async move { pages.send(Ok(Bytes::from(bytes))).await.is_ok() }
        })
        .await;
        if let Err(e) = sent {
            tracing::warn!("online backup failed: {e}");
            // Ends the body with an error: the client sees a broken transfer, and the dump it
            // holds lacks its trailer, so no reader accepts it.
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"nacos-backup.jsonl.gz\"",
            ),
        ],
        body,
    )
        .into_response())
}
