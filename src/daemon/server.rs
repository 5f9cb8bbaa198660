//! The daemon's listener on `metrics.listen`: `GET /metrics` (Prometheus text), `GET /healthz`
//! (200, or 503 with the reasons), and the status page (`/`, `/policies/NAME`, see `page`).
//! hyper's HTTP/1 server, one request per connection, at most [`MAX_CONNECTIONS`] at once, a
//! head read within 5 s and a whole answer within 30 s; read-only (GET and HEAD), with headers
//! that keep browsers from running or framing anything.

use super::clock::Clock;
use super::job::Jobs;
use super::metrics::Metrics;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// A client that sends no full head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that has not had its whole answer within this is dropped.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head read (hyper's smallest buffer); a larger one is refused.
const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once; one more is closed as soon as it is accepted. Idle clients
/// cannot then take the descriptors the scheduled runs need (the unit's `LimitNOFILE=`).
pub const MAX_CONNECTIONS: usize = 64;

/// Where the status page finds what it shows: the daemon's current config and policies (set
/// once the daemon has them; until then the page says it is starting).
#[derive(Default)]
pub struct Pages {
    jobs: Mutex<Option<Arc<Jobs>>>,
}

impl Pages {
    pub fn set(&self, jobs: Arc<Jobs>) {
        *self.jobs.lock().unwrap_or_else(|e| e.into_inner()) = Some(jobs);
    }

    fn render(&self, path: &str, now: jiff::Timestamp) -> Option<Result<String, String>> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(jobs) = jobs else {
            return Some(Err("the daemon is starting".into()));
        };
        let context = jobs.context();
        let policies: Vec<crate::policy::Policy> = context
            .entries
            .iter()
            .map(|e| (*e.policy).clone())
            .collect();
        super::page::render(&context.config, &policies, path, now)
    }
}

/// Answers requests until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    pages: Arc<Pages>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let (metrics, clock, pages) = (metrics.clone(), clock.clone(), pages.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (metrics, clock, pages) =
                            (metrics.clone(), clock.clone(), pages.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                answer(request, metrics, clock, pages).await,
                            )
                        }
                    });
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(READ_TIMEOUT)
                        .keep_alive(false)
                        .max_buf_size(MAX_HEAD)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
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

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let set = |headers: &mut hyper::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set(headers, "content-type", content_type);
    // Nothing runs, loads or frames: the page is its own HTML and inline style and SVG.
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cache-control", "no-store");
    set(headers, "connection", "close");
    response
}

async fn answer(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    pages: Arc<Pages>,
) -> Response<String> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = response(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET and HEAD: the listener is read-only\n".into(),
        );
        refused
            .headers_mut()
            .insert("allow", HeaderValue::from_static("GET, HEAD"));
        return refused;
    }
    let now = clock.now();
    let path = request.uri().path().to_string();
    // The page reloads itself through the `Refresh` header (no script, and a person can turn
    // it off with `?refresh=off`, as WCAG 2.2.1 asks of a timed reload).
    let reload = !request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "refresh=off"));
    match path.as_str() {
        "/metrics" => response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(now),
        ),
        "/healthz" => {
            let health = metrics.health(now);
            if health.problems.is_empty() {
                response(StatusCode::OK, TEXT, "ok\n".into())
            } else {
                let mut body = String::from("unhealthy\n");
                for problem in &health.problems {
                    body.push_str(&format!("- {problem}\n"));
                }
                response(StatusCode::SERVICE_UNAVAILABLE, TEXT, body)
            }
        }
        "/" => page(pages, path, now, reload).await,
        p if p.starts_with("/policies/") => page(pages, path, now, reload).await,
        _ => response(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /, /policies/NAME, /metrics or /healthz\n".into(),
        ),
    }
}

/// The status page at `path`.
async fn page(
    pages: Arc<Pages>,
    path: String,
    now: jiff::Timestamp,
    reload: bool,
) -> Response<String> {
    {
        {
            // The journal is read on a thread that may block.
            let rendered = tokio::task::spawn_blocking(move || pages.render(&path, now)).await;
            match rendered {
                Ok(Some(Ok(html))) => {
                    let mut ok = response(StatusCode::OK, HTML, html);
                    if reload {
                        ok.headers_mut()
                            .insert("refresh", HeaderValue::from(super::page::REFRESH_SECONDS));
                    }
                    ok
                }
                Ok(Some(Err(e))) => response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    format!("the status page cannot be made now: {e}\n"),
                ),
                Ok(None) => response(
                    StatusCode::NOT_FOUND,
                    TEXT,
                    "not found; try /, /policies/NAME, /metrics or /healthz\n".into(),
                ),
                Err(_) => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    "the status page failed\n".into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::clock::SystemClock;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

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
        tokio::spawn(serve(
            listener,
            metrics.clone(),
            Arc::new(SystemClock),
            Arc::default(),
        ));

        let response = get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("content-type: text/plain; version=0.0.4"));
        assert!(
            response.contains("x-content-type-options: nosniff"),
            "{response}"
        );
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
        let response = get(address, &huge).await;
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 431 "),
            "an oversized head is refused: {response}"
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
            Arc::default(),
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
