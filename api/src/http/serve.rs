//! Serving the router over TCP: HTTP/1.1 (with upgrades, for the live feed), a bound on how
//! long a client may take to send a request's head, and a graceful stop.
//!
//! `axum::serve` sets no timer on hyper's connections, so hyper's header read timeout never
//! applies: a client that sends `GET / HTTP/1.1\r\n` and then nothing held its connection (and
//! a task, and its buffers) for as long as it liked, and enough of them exhaust the process's
//! file descriptors. Here each connection has `CNSCD_HEADER_READ_TIMEOUT` (default
//! [`DEFAULT_HEADER_READ_TIMEOUT`]) to send a request's head; the rest (one connection task per
//! client, draining on stop) is what `axum::serve` does.
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Longest a client may take to send a request's head (request line and headers) once it has
/// started one, unless configured; past it the connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` completes, then stops accepting, lets every
/// connection finish the request it is serving, and returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let (stopping, stop_rx) = tokio::sync::watch::channel(false);
    // Each connection holds a clone; the last one dropped tells the drain it is done.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stop_rx = stop_rx.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop_rx.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        if changed.is_ok() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    drop(open);
    // `recv` answers `None` once every connection's clone is dropped.
    let _ = all_closed.recv().await;
}
