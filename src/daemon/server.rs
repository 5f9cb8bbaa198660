//! The metrics endpoint on `metrics.listen`: `GET /metrics` (Prometheus text) and
//! `GET /healthz` (200, or 503 with the reasons). A small HTTP/1.1 server, one request per
//! connection, for a scraper on a trusted network (the examples listen on loopback).

use super::clock::Clock;
use super::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request head larger than this is refused.
const MAX_HEAD: usize = 8 * 1024;
/// A client that sends no full head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that does not take the answer within this is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; one more is closed as soon as it is accepted. Idle clients
/// cannot then take the descriptors the scheduled runs need (the unit's `LimitNOFILE=`).
pub const MAX_CONNECTIONS: usize = 64;

/// Answers requests until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let (metrics, clock) = (metrics.clone(), clock.clone());
                tokio::spawn(async move {
                    answer(stream, metrics, clock).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("metrics endpoint: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = route(method, path, &metrics, clock.now());
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn route(
    method: &str,
    path: &str,
    metrics: &Metrics,
    now: jiff::Timestamp,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET and HEAD\n".into());
    }
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(now),
        ),
        "/healthz" => {
            let health = metrics.health(now);
            if health.problems.is_empty() {
                ("200 OK", TEXT, "ok\n".into())
            } else {
                let mut body = String::from("unhealthy\n");
                for problem in &health.problems {
                    body.push_str(&format!("- {problem}\n"));
                }
                ("503 Service Unavailable", TEXT, body)
            }
        }
        _ => (
            "404 Not Found",
            TEXT,
            "not found; try /metrics or /healthz\n".into(),
        ),
    }
}

/// The request head, up to the blank line; `None` if the client closes early or sends too
/// much.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(head).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::clock::SystemClock;

    async fn get(address: std::net::SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        // A refused request may end in a reset; what arrived before it is the answer.
        let _ = stream.read_to_string(&mut response).await;
        response
    }

    #[tokio::test]
    async fn serves_metrics_health_and_refuses_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        tokio::spawn(serve(listener, metrics.clone(), Arc::new(SystemClock)));

        let response = get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(response.contains("\r\n\r\n# HELP retentiond_policies "));

        let response = get(address, "GET /healthz HTTP/1.1\r\n\r\n").await;
        assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
        metrics.reloaded(jiff::Timestamp::now(), Err(vec!["p.yaml:2:1: bad".into()]));
        let response = get(address, "GET /healthz?verbose HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
        assert!(response.contains("unhealthy\n- the last reload failed (1 error)"));
        assert!(response.contains("p.yaml:2:1: bad"));

        let response = get(address, "HEAD /healthz HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 503 ") && response.ends_with("\r\n\r\n"));
        let response = get(address, "GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
        let response = get(address, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(
            get(address, &huge).await,
            "",
            "an oversized head is dropped"
        );
    }

    #[tokio::test]
    async fn idle_clients_hold_at_most_the_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            Arc::new(Metrics::new()),
            Arc::new(SystemClock),
        ));
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 36 {
            idle.push(TcpStream::connect(address).await.unwrap());
        }
        // Those past the cap are closed at once; the others wait for a head (5 s).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut closed = 0;
        for stream in &mut idle {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(10), stream.read(&mut byte));
            if matches!(read.await, Ok(Ok(0)) | Ok(Err(_))) {
                closed += 1;
            }
        }
        assert_eq!(closed, 36);
    }
}
