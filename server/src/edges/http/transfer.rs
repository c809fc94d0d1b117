//! Online backup of a running server: `GET /v1/console/backup` streams a consistent export of
//! the store in the dump format of [`crate::services::transfer`] (admin only).
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

use super::secured::{ADMIN_R, M, Routes};
use super::{ServiceError, ServiceResult};
use crate::app::AppState;
use crate::services::transfer;

pub fn routes() -> Routes {
    Routes::new().route("/v1/console/backup", get(backup), &[(M::Get, ADMIN_R)])
}

async fn backup(State(app): State<AppState>) -> ServiceResult<Response> {
    if !app.auth.enabled() {
        return Err(ServiceError::Forbidden(
            "the online backup holds the users' password hashes: it is served only with \
             nacos.core.auth.enabled=true"
                .into(),
        ));
    }
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
