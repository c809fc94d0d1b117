//! Transport plumbing. Each accepted TCP connection gets its Nacos connection id
//! (`<epochMillis>_<remoteIp>_<remotePort>`, as Nacos's transport filter assigns it) and a kill
//! switch; the id reaches every call on that connection as a request extension
//! ([`TransportInfo`]), and the connection's end unregisters it. [`Outbound`] is the server half
//! of a bi-stream: queued pushes, flushed before it ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;
use tonic::transport::server::Connected;

use crate::foundation::protocol::transport::Payload;
use crate::services::clients::{ConnectionManager, TransportState};

/// What every call on one TCP connection knows about it.
#[derive(Debug, Clone)]
pub struct TransportInfo {
    /// The Nacos connection id.
    pub id: Arc<str>,
    pub remote: SocketAddr,
    pub state: Arc<TransportState>,
}

/// A connection id as Nacos builds it.
pub fn connection_id(remote: SocketAddr) -> Arc<str> {
    format!(
        "{}_{}_{}",
        nacos_core::now_millis(),
        remote.ip(),
        remote.port()
    )
    .into()
}

/// Unregisters the connection when the transport goes away.
#[derive(Debug)]
struct TransportGuard {
    manager: Arc<ConnectionManager>,
    id: Arc<str>,
}

impl Drop for TransportGuard {
    fn drop(&mut self) {
        self.manager.transport_closed(&self.id);
    }
}

/// An accepted TCP stream that fails all I/O once its kill switch fires.
#[derive(Debug)]
pub struct TrackedIo {
    io: TcpStream,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
    dead: bool,
    /// Reads that returned data since the kill switch was last looked at.
    reads_unchecked: u8,
    info: TransportInfo,
    _guard: TransportGuard,
}

/// Reads that may return data before the kill switch is looked at again, so that a client
/// that never lets the socket drain is still cut.
const READS_BETWEEN_KILL_CHECKS: u8 = 32;

impl TrackedIo {
    /// Look at the kill switch, registering the task to be woken by it. Each look takes the
    /// token's locks, so it is done where it matters: before the task waits on a read (the
    /// connection's task always has one pending, so a kill wakes it wherever it waits), and
    /// every [`READS_BETWEEN_KILL_CHECKS`] reads. Writes only look at the outcome.
    fn check_kill(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.reads_unchecked = 0;
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.check()
    }

    fn check(&self) -> io::Result<()> {
        if self.dead {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the server",
            ))
        } else {
            Ok(())
        }
    }
}

impl Connected for TrackedIo {
    type ConnectInfo = TransportInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reads_unchecked >= READS_BETWEEN_KILL_CHECKS {
            this.check_kill(cx)?;
        } else {
            this.check()?;
        }
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {
                this.check_kill(cx)?;
                Poll::Pending
            }
            Poll::Ready(read) => {
                this.reads_unchecked = this.reads_unchecked.saturating_add(1);
                Poll::Ready(read)
            }
        }
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The accept loop as a stream of [`TrackedIo`]. Accept errors (out of file descriptors) are
/// reported and followed by a short pause instead of a busy loop.
#[derive(Debug)]
pub struct Incoming {
    listener: TcpListener,
    manager: Arc<ConnectionManager>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Incoming {
    pub fn new(listener: TcpListener, manager: Arc<ConnectionManager>) -> Self {
        Self {
            listener,
            manager,
            pause: None,
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<TrackedIo>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(pause) = this.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        match this.listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, remote))) => {
                if this.manager.transport_count() >= this.manager.settings().max_transports {
                    // Closed at once: the client tries another server, and a flood of
                    // connections that never register cannot pile up here.
                    tracing::warn!(%remote, "gRPC connection refused: too many connections");
                    drop(stream);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let _ = stream.set_nodelay(true);
                let id = connection_id(remote);
                let state = Arc::new(TransportState {
                    kill: this.manager.transport_kill_token(),
                    accepted: Instant::now(),
                    registered: Notify::new(),
                    bi_streams: AtomicUsize::new(0),
                });
                this.manager.transport_opened();
                let io = TrackedIo {
                    io: stream,
                    killed: Box::pin(state.kill.clone().cancelled_owned()),
                    dead: false,
                    reads_unchecked: 0,
                    info: TransportInfo {
                        id: Arc::clone(&id),
                        remote,
                        state,
                    },
                    _guard: TransportGuard {
                        manager: Arc::clone(&this.manager),
                        id,
                    },
                };
                Poll::Ready(Some(Ok(io)))
            }
            Poll::Ready(Err(e)) => {
                tracing::warn!(error = %e, "gRPC accept failed");
                this.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The server half of a bi-stream: yields queued payloads, ends when the queue's senders are
/// gone, or when `closed` fires and the queue is drained of what was already in it.
#[derive(Debug)]
pub struct Outbound {
    rx: mpsc::Receiver<Payload>,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl Outbound {
    pub fn new(rx: mpsc::Receiver<Payload>, closed: CancellationToken) -> Self {
        Self {
            rx,
            closed: Box::pin(closed.cancelled_owned()),
            done: false,
        }
    }
}

impl Stream for Outbound {
    type Item = Result<Payload, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(payload)) => Poll::Ready(Some(Ok(payload))),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.closed.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    this.rx.close();
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    }
}
