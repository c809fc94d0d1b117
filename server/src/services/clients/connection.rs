//! Registered client connections: who they are (from `ConnectionSetupRequest`), when they were
//! last heard from, their bi-stream sender, server pushes with acknowledgements matched by
//! (connection, requestId), the ejector for silent connections, the connection limit, and the
//! hooks that clean up after a connection goes (config listeners, naming clients).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::foundation::protocol::transport::Payload;
use crate::foundation::settings::GrpcSettings;

/// Shared per-transport state.
#[derive(Debug)]
pub struct TransportState {
    /// Cancelled to cut the TCP connection (ejection, forced shutdown).
    pub kill: CancellationToken,
    pub accepted: Instant,
    /// Signalled when a connection registers on this transport.
    pub registered: Notify,
    /// Bi-streams currently open on this transport.
    pub bi_streams: AtomicUsize,
}

/// What a client told us about itself in `ConnectionSetupRequest`.
#[derive(Debug, Clone)]
pub struct ConnectionMeta {
    /// `metadata.clientIp` of the setup request (the socket's IP when the client sent none):
    /// used for beta-IP matching and as the subscriber IP.
    pub client_ip: String,
    pub remote: std::net::SocketAddr,
    pub client_version: String,
    /// The client's namespace, as sent.
    pub tenant: String,
    pub labels: HashMap<String, String>,
    /// `abilityTable` (2.3+ clients); `None` when not sent.
    pub ability_table: Option<serde_json::Value>,
    pub connected_ms: i64,
}

impl ConnectionMeta {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// SDK connections are limited and reset on shutdown; `source=cluster` peers are not.
    pub fn is_sdk(&self) -> bool {
        self.label("source") != Some("cluster")
    }

    pub fn app_name(&self) -> Option<&str> {
        self.label("AppName")
    }
}

/// Why a push did not get a successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("connection busy: its push queue is full")]
    Busy,
    #[error("connection closed")]
    Closed,
    #[error("no answer in time")]
    Timeout,
    #[error("client answered with resultCode {0}")]
    Rejected(i32),
}

/// Why a setup was refused; the bi-stream is closed then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("server is not serving")]
    NotServing,
    #[error("connection already registered")]
    AlreadyRegistered,
    #[error("connection limit {0} reached")]
    TooMany(usize),
}

/// One registered connection.
#[derive(Debug)]
pub struct Connection {
    pub id: Arc<str>,
    pub meta: ConnectionMeta,
    /// Epoch millis of the last accepted request or bi-stream answer.
    last_active_ms: AtomicI64,
    /// The bi-stream's outbound queue.
    outbound: mpsc::Sender<Payload>,
    /// Pushes waiting for their answer, by requestId (ours are numbers).
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    /// Ends the bi-stream (its reader and its outbound half).
    closed: CancellationToken,
    transport: Arc<TransportState>,
    /// A client detection probe is in flight.
    probing: AtomicBool,
}

/// A client's answer to a push: its `resultCode` and the whole body, parsed only by the few
/// callers that read it.
#[derive(Debug)]
struct Answer {
    code: i32,
    body: Vec<u8>,
}

/// What matching an answer to its push needs; the rest of the body is skipped, not built.
#[derive(serde::Deserialize)]
struct AnswerHead<'a> {
    #[serde(rename = "requestId", borrow)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "resultCode")]
    result_code: Option<serde_json::Value>,
}

impl Connection {
    pub fn new(
        id: Arc<str>,
        meta: ConnectionMeta,
        outbound: mpsc::Sender<Payload>,
        closed: CancellationToken,
        transport: Arc<TransportState>,
    ) -> Self {
        Self {
            id,
            meta,
            last_active_ms: AtomicI64::new(nacos_core::now_millis()),
            outbound,
            pending: Mutex::new(HashMap::new()),
            closed,
            transport,
            probing: AtomicBool::new(false),
        }
    }

    pub fn touch(&self) {
        self.last_active_ms
            .store(nacos_core::now_millis(), Ordering::Relaxed);
    }

    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves when the connection is unregistered.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    fn send(&self, payload: Payload) -> Result<(), PushError> {
        if self.is_closed() {
            return Err(PushError::Closed);
        }
        self.outbound.try_send(payload).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Busy,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    /// An answer arrived on the bi-stream: complete the push it belongs to.
    pub fn complete(&self, mut payload: Payload) {
        // The body moves into the answer rather than being copied for every acknowledgement.
        let bytes = payload.body.take().map(|any| any.value).unwrap_or_default();
        let Ok(head) = serde_json::from_slice::<AnswerHead<'_>>(&bytes) else {
            tracing::debug!(conn = %self.id, "unparsable answer on the bi-stream");
            return;
        };
        // An id we never issued (not a number) cannot match a pending push.
        let Some(request_id) = head.request_id.and_then(|id| id.parse::<u64>().ok()) else {
            return;
        };
        let code = head
            .result_code
            .as_ref()
            .and_then(serde_json::Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(0);
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(Answer { code, body: bytes });
        }
    }

    fn forget(&self, request_id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id);
    }
}

/// Removes a pending push when its waiter goes away, however it ends.
struct PendingGuard<'a> {
    conn: &'a Connection,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.id);
    }
}

/// Runs when a connection is unregistered, whatever the reason.
pub type UnregisterHook = Arc<dyn Fn(&Connection) + Send + Sync>;

pub struct ConnectionManager {
    settings: GrpcSettings,
    connections: RwLock<HashMap<Arc<str>, Arc<Connection>>>,
    /// Registered `source=sdk` connections, for the limit.
    sdk_connections: AtomicUsize,
    /// Server push requestIds: a process-wide increasing number, as a string.
    next_request_id: AtomicU64,
    serving: AtomicBool,
    /// Open TCP connections, registered or not.
    transports: AtomicUsize,
    /// Parent of every transport's kill switch.
    kill_all: CancellationToken,
    hooks: RwLock<Vec<UnregisterHook>>,
}

impl std::fmt::Debug for ConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager")
            .field("connections", &self.count())
            .field("transports", &self.transport_count())
            .field("serving", &self.is_serving())
            .finish()
    }
}

impl ConnectionManager {
    pub fn new(settings: GrpcSettings) -> Self {
        Self {
            settings,
            connections: RwLock::new(HashMap::new()),
            sdk_connections: AtomicUsize::new(0),
            next_request_id: AtomicU64::new(1),
            serving: AtomicBool::new(false),
            transports: AtomicUsize::new(0),
            kill_all: CancellationToken::new(),
            hooks: RwLock::new(Vec::new()),
        }
    }

    pub fn settings(&self) -> &GrpcSettings {
        &self.settings
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::SeqCst);
    }

    /// Registered connections.
    pub fn count(&self) -> usize {
        self.read().len()
    }

    /// Open TCP connections to the gRPC port.
    pub fn transport_count(&self) -> usize {
        self.transports.load(Ordering::SeqCst)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.read().get(id).cloned()
    }

    /// [`ConnectionManager::get`] for many ids under one lock.
    pub fn get_each(&self, ids: &[Arc<str>]) -> Vec<Option<Arc<Connection>>> {
        let map = self.read();
        ids.iter().map(|id| map.get(id).cloned()).collect()
    }

    /// Every registered connection, in no order.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.read().values().cloned().collect()
    }

    /// Run `hook` for every connection unregistered from now on.
    pub fn on_unregister(&self, hook: UnregisterHook) {
        self.hooks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Connection>>> {
        self.connections.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Arc<Connection>>> {
        self.connections.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn transport_kill_token(&self) -> CancellationToken {
        self.kill_all.child_token()
    }

    pub(crate) fn transport_opened(&self) {
        self.transports.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn transport_closed(&self, id: &str) {
        self.transports.fetch_sub(1, Ordering::SeqCst);
        self.unregister(id, "transport closed");
    }

    /// Register a connection that sent its setup.
    pub fn register(&self, conn: Connection) -> Result<Arc<Connection>, RegisterError> {
        if !self.is_serving() {
            return Err(RegisterError::NotServing);
        }
        let conn = Arc::new(conn);
        {
            let mut map = self.write();
            if map.contains_key(&conn.id) {
                return Err(RegisterError::AlreadyRegistered);
            }
            if conn.meta.is_sdk() {
                let limit = self.settings.max_connections;
                if self.sdk_connections.load(Ordering::SeqCst) >= limit {
                    return Err(RegisterError::TooMany(limit));
                }
                self.sdk_connections.fetch_add(1, Ordering::SeqCst);
            }
            map.insert(Arc::clone(&conn.id), Arc::clone(&conn));
        }
        conn.transport.registered.notify_waiters();
        tracing::debug!(
            conn = %conn.id,
            client_ip = %conn.meta.client_ip,
            version = %conn.meta.client_version,
            "gRPC connection registered"
        );
        Ok(conn)
    }

    /// Unregister `id`: end its bi-stream, fail its pending pushes, run the hooks. Returns the
    /// connection if it was registered.
    pub fn unregister(&self, id: &str, reason: &str) -> Option<Arc<Connection>> {
        let conn = self.write().remove(id)?;
        self.finish(&conn, reason);
        Some(conn)
    }

    /// Unregister `conn` only if it is still the registered one for its id.
    pub fn unregister_same(&self, conn: &Arc<Connection>, reason: &str) -> bool {
        {
            let mut map = self.write();
            match map.get(&conn.id) {
                Some(current) if Arc::ptr_eq(current, conn) => {
                    map.remove(&conn.id);
                }
                _ => return false,
            }
        }
        self.finish(conn, reason);
        true
    }

    /// Unregister and cut the TCP connection (ejection: silent or failing clients).
    pub fn eject(&self, conn: &Arc<Connection>, reason: &str) {
        if self.unregister_same(conn, reason) {
            conn.transport.kill.cancel();
        }
    }

    fn finish(&self, conn: &Connection, reason: &str) {
        if conn.meta.is_sdk() {
            self.sdk_connections.fetch_sub(1, Ordering::SeqCst);
        }
        conn.closed.cancel();
        conn.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        tracing::debug!(conn = %conn.id, reason, "gRPC connection unregistered");
        let hooks = self.hooks.read().unwrap_or_else(|p| p.into_inner()).clone();
        for hook in hooks {
            hook(conn);
        }
    }

    fn next_request_id(&self) -> u64 {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        // Java's long wraps near Long.MAX; keep the ids positive the same way.
        id % (i64::MAX as u64)
    }

    /// A JSON object body with its envelope (`headers`, `requestId`, `module`) in front. The
    /// body is rendered once by the caller, so a push to many connections only writes the
    /// envelope per connection.
    fn push_payload(type_name: &str, module: &str, body: &[u8], id: u64) -> Payload {
        use std::io::Write as _;
        let fields = body
            .strip_prefix(b"{")
            .map(<[u8]>::trim_ascii_start)
            .unwrap_or(b"}");
        let mut json = Vec::with_capacity(body.len() + 64);
        // Writes into a Vec cannot fail; `module` is one of our constants.
        let _ = write!(
            json,
            r#"{{"headers":{{}},"requestId":"{id}","module":"{module}""#
        );
        if fields != b"}" {
            json.push(b',');
        }
        json.extend_from_slice(fields);
        Payload::new(type_name, json)
    }

    /// `body` as the object bytes [`ConnectionManager::push_payload`] takes: the envelope's
    /// own fields are the envelope's to set.
    fn object_bytes(mut body: serde_json::Value) -> Vec<u8> {
        if let Some(obj) = body.as_object_mut() {
            for field in ["headers", "requestId", "module"] {
                obj.remove(field);
            }
        }
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Send a server request without waiting for an answer (SetupAck, ConnectReset on
    /// shutdown).
    pub fn send(
        &self,
        conn: &Connection,
        type_name: &str,
        module: &str,
        body: serde_json::Value,
    ) -> Result<(), PushError> {
        let id = self.next_request_id();
        conn.send(Self::push_payload(
            type_name,
            module,
            &Self::object_bytes(body),
            id,
        ))
    }

    /// Send a server request and wait up to `timeout` for its answer; success is
    /// `resultCode == 200`.
    pub async fn request(
        &self,
        conn: &Connection,
        type_name: &str,
        module: &str,
        body: serde_json::Value,
        timeout: Duration,
    ) -> Result<(), PushError> {
        let body = Self::object_bytes(body);
        self.request_rendered(conn, type_name, module, &body, timeout)
            .await
    }

    /// [`ConnectionManager::request`] with the body already rendered as a JSON object (without
    /// `headers`, `requestId` and `module`), for a push rendered once for many connections.
    pub async fn request_rendered(
        &self,
        conn: &Connection,
        type_name: &str,
        module: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), PushError> {
        self.exchange(conn, type_name, module, body, timeout)
            .await
            .map(drop)
    }

    /// [`ConnectionManager::request`], handing back the body of the client's successful
    /// answer (for requests that ask the client something, as `ClientConfigMetricRequest`).
    pub async fn ask(
        &self,
        conn: &Connection,
        type_name: &str,
        module: &str,
        body: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, PushError> {
        let body = Self::object_bytes(body);
        let answer = self
            .exchange(conn, type_name, module, &body, timeout)
            .await?;
        // It parsed once already, as its head.
        Ok(serde_json::from_slice(&answer).unwrap_or_default())
    }

    /// Send, and wait for the successful answer's raw body.
    async fn exchange(
        &self,
        conn: &Connection,
        type_name: &str,
        module: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, PushError> {
        let id = self.next_request_id();
        let (tx, rx) = oneshot::channel();
        conn.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let _guard = PendingGuard { conn, id };
        conn.send(Self::push_payload(type_name, module, body, id))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Answer { code: 200, body })) => Ok(body),
            Ok(Ok(Answer { code, .. })) => Err(PushError::Rejected(code)),
            Ok(Err(_)) => Err(PushError::Closed),
            Err(_) => Err(PushError::Timeout),
        }
    }

    /// Probe connections silent for `detect_idle` with `ClientDetectionRequest`; eject those
    /// that do not answer within `detect_timeout`. Stops with `shutdown`.
    pub fn start_ejector(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.settings.detect_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => me.probe_idle(),
                }
            }
        })
    }

    fn probe_idle(self: &Arc<Self>) {
        let now = nacos_core::now_millis();
        let idle = i64::try_from(self.settings.detect_idle.as_millis()).unwrap_or(i64::MAX);
        for conn in self.all() {
            if now.saturating_sub(conn.last_active_ms()) < idle
                || conn.probing.swap(true, Ordering::SeqCst)
            {
                continue;
            }
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let outcome = me
                    .request(
                        &conn,
                        "ClientDetectionRequest",
                        "internal",
                        serde_json::json!({}),
                        me.settings.detect_timeout,
                    )
                    .await;
                conn.probing.store(false, Ordering::SeqCst);
                match outcome {
                    Ok(()) => conn.touch(),
                    Err(e) => {
                        tracing::info!(conn = %conn.id, error = %e, "ejecting silent gRPC connection");
                        me.eject(&conn, "no answer to client detection");
                    }
                }
            });
        }
    }

    /// Shutdown, first step: refuse new setups, ask every SDK client to reconnect elsewhere
    /// (`ConnectResetRequest`), then end every bi-stream once what is queued has been sent.
    pub fn begin_shutdown(&self) {
        self.set_serving(false);
        let conns = self.all();
        for conn in &conns {
            if conn.meta.is_sdk() {
                let body = serde_json::json!({ "connectionId": conn.id.as_ref() });
                let _ = self.send(conn, "ConnectResetRequest", "internal", body);
            }
        }
        for conn in &conns {
            self.unregister_same(conn, "server shutting down");
        }
    }

    /// Shutdown, last step: cut every TCP connection still open.
    pub fn kill_all(&self) {
        self.kill_all.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(payload: &Payload) -> serde_json::Value {
        serde_json::from_slice(payload.body_bytes()).expect("the envelope is JSON")
    }

    #[test]
    fn the_envelope_goes_in_front_of_a_rendered_body() {
        let p = ConnectionManager::push_payload(
            "ConfigChangeNotifyRequest",
            "config",
            br#"{"dataId":"d","group":"g","tenant":""}"#,
            42,
        );
        assert_eq!(p.type_name(), "ConfigChangeNotifyRequest");
        assert_eq!(
            body_of(&p),
            serde_json::json!({"headers": {}, "requestId": "42", "module": "config",
                "dataId": "d", "group": "g", "tenant": ""})
        );
        for empty in [&b"{}"[..], b"{ }", b"not an object"] {
            let p = ConnectionManager::push_payload("ClientDetectionRequest", "internal", empty, 7);
            assert_eq!(
                body_of(&p),
                serde_json::json!({"headers": {}, "requestId": "7", "module": "internal"})
            );
        }
    }

    #[test]
    fn a_caller_cannot_set_the_envelope_fields() {
        let bytes = ConnectionManager::object_bytes(serde_json::json!({
            "requestId": "spoofed", "module": "x", "headers": {"a": "b"}, "connectionId": "c"}));
        let p = ConnectionManager::push_payload("ConnectResetRequest", "internal", &bytes, 9);
        assert_eq!(
            body_of(&p),
            serde_json::json!({"headers": {}, "requestId": "9", "module": "internal",
                "connectionId": "c"})
        );
    }

    #[tokio::test]
    async fn answers_complete_only_their_own_push() {
        let (tx, _rx) = mpsc::channel(4);
        let transport = Arc::new(TransportState {
            kill: CancellationToken::new(),
            accepted: Instant::now(),
            registered: Notify::new(),
            bi_streams: AtomicUsize::new(0),
        });
        let meta = ConnectionMeta {
            client_ip: "127.0.0.1".into(),
            remote: "127.0.0.1:1".parse().expect("address"),
            client_version: String::new(),
            tenant: String::new(),
            labels: HashMap::new(),
            ability_table: None,
            connected_ms: 0,
        };
        let conn = Connection::new("c".into(), meta, tx, CancellationToken::new(), transport);
        let (done, mut waiting) = oneshot::channel();
        conn.pending.lock().expect("lock").insert(5, done);
        let answer = |body: &str| Payload::new("ConfigChangeNotifyResponse", body.into());
        // Not JSON, another id, an id that is not ours: nothing completes.
        for body in [
            "{",
            r#"{"requestId":"6","resultCode":200}"#,
            r#"{"requestId":"x5","resultCode":200}"#,
        ] {
            conn.complete(answer(body));
            assert!(waiting.try_recv().is_err(), "{body}");
        }
        // A code that is not a number counts as a failure, as a missing one does.
        conn.complete(answer(
            r#"{"requestId":"5","resultCode":"200","extra":[1]}"#,
        ));
        let got = waiting.try_recv().expect("completed");
        assert_eq!(got.code, 0);
        assert!(conn.pending.lock().expect("lock").is_empty());
    }
}
