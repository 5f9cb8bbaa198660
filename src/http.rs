//! The HTTP layer every HTTP provider uses: one reqwest client per account (rustls with ring,
//! gzip, connect and total timeouts, a User-Agent naming retentiond and its version), a
//! per-account cap on requests in flight, retries with exponential backoff and jitter for
//! throttling (429/420), 5xx, timeouts and dropped connections only, honouring `Retry-After`
//! and the providers' reset headers, and one error type that names the account, the call and
//! the provider's message. Never puts a secret into an error: credentials travel only in
//! headers marked sensitive, errors name the call instead of quoting URLs, and secrets a
//! provider echoes are redacted.

use crate::secret::Secret;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a call failed; drives retries, messages and metrics (providers use the same kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the credentials were rejected.
    Auth,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 429/420 after every retry, or a wait longer than allowed.
    RateLimited,
    /// 5xx after every retry.
    Server,
    Timeout,
    /// Could not connect, or the connection dropped.
    Connection,
    /// A 2xx whose body is not what the API returns: HTML, truncated or malformed JSON, an
    /// envelope reporting an error.
    BadResponse,
    /// Any other 4xx: the request was refused as wrong.
    Rejected,
    /// Secrets, files, our own refusals.
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed call of an account's HTTP client. Names the account and the call; never holds a
/// secret (values the client knows are redacted from messages). Providers take it as their
/// `Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub account: String,
    pub call: String,
    pub kind: ErrorKind,
    pub message: String,
    /// The provider's own error code, when its answer had one (`CSBS.2003`, `DBS.280214`).
    pub code: Option<String>,
}

impl Error {
    /// A failure of kind `Other` (credentials that cannot be used, our own refusals).
    pub fn new(account: &str, call: &str, message: impl Into<String>) -> Error {
        Error {
            account: account.to_string(),
            call: call.to_string(),
            kind: ErrorKind::Other,
            message: message.into(),
            code: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "account {}: {}: {}",
            self.account, self.call, self.message
        )
    }
}

impl std::error::Error for Error {}

/// The most a response body may hold once decompressed (64 MiB): the largest provider pages
/// are a few MB, and a broken or hostile endpoint must not fill the host's memory (1 MB of
/// gzip inflates to 1 GiB).
pub const MAX_BODY: usize = 64 << 20;

enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a body a chunk at a time (gzip is inflated as it arrives), up to [`MAX_BODY`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(announced.min(1 << 20) as usize);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub const USER_AGENT: &str = concat!("retentiond/", env!("CARGO_PKG_VERSION"));

/// Per-account HTTP settings (`http:` in an account of the config).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub timeout: Duration,
    /// Requests of this account in flight at once, across all its policies.
    pub concurrency: usize,
    /// Retries after the first attempt, for transient failures only.
    pub retries: u32,
    /// The first backoff; doubled for each retry (with jitter), at most 60 s.
    pub backoff: Duration,
    /// The longest wait a `Retry-After` or reset header may ask for; longer fails the call.
    pub max_wait: Duration,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            concurrency: 4,
            retries: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// A successful (2xx) response, body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What authenticates an account's requests: the `Authorization` value, and every secret it
/// was made from (never shown: providers that echo one in a message get it redacted).
pub struct Credentials {
    pub authorization: HeaderValue,
    pub secrets: Vec<Secret>,
}

/// Authenticates each attempt of a request separately: Huawei Cloud's request signatures
/// (which cover the method, path, query, body and time) and IAM tokens (fetched, cached and
/// renewed).
pub trait Signer: Send + Sync {
    /// Headers that authenticate this attempt; `body` is exactly what is sent.
    fn sign<'a>(
        &'a self,
        method: &'a Method,
        url: &'a Url,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, Error>>;

    /// The provider answered 401: drop cached credentials. True when a fresh attempt may
    /// succeed (a renewed token); it is made once.
    fn renew(&self) -> bool {
        false
    }

    /// Secrets obtained at run time (an IAM token), redacted from messages like the
    /// configured ones.
    fn secrets(&self) -> Vec<Secret> {
        Vec::new()
    }
}

/// One account's HTTP client.
pub struct Http {
    account: String,
    client: reqwest::Client,
    settings: HttpSettings,
    permits: Arc<Semaphore>,
    /// What to check when the provider answers 401, e.g. "api_key and api_secret".
    credentials_hint: String,
    /// Values redacted from every error message.
    secrets: Vec<Secret>,
    signer: Option<Arc<dyn Signer>>,
    /// Told of every attempt (the daemon's request metrics), with the provider's name.
    observer: Option<(Arc<dyn RequestObserver>, &'static str)>,
}

/// Sees every HTTP attempt of an account: its result (`ok` or an [`ErrorKind`] name) and how
/// long it took.
pub trait RequestObserver: Send + Sync {
    fn request(&self, account: &str, provider: &'static str, result: &'static str, took: Duration);
}

/// A request to send; built again for every attempt.
pub struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub json: Option<&'a serde_json::Value>,
    /// A body that is not JSON, with its content type (S3's XML).
    pub raw: Option<(&'a [u8], &'static str)>,
    /// Headers besides authentication (`X-Language`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl<'a> Request<'a> {
    pub fn get(url: Url) -> Request<'a> {
        Request {
            method: Method::GET,
            url,
            json: None,
            raw: None,
            headers: Vec::new(),
        }
    }

    pub fn head(url: Url) -> Request<'a> {
        Request {
            method: Method::HEAD,
            ..Request::get(url)
        }
    }

    pub fn delete(url: Url) -> Request<'a> {
        Request {
            method: Method::DELETE,
            ..Request::get(url)
        }
    }

    pub fn post(url: Url) -> Request<'a> {
        Request {
            method: Method::POST,
            ..Request::get(url)
        }
    }

    pub fn json(mut self, body: &'a serde_json::Value) -> Request<'a> {
        self.json = Some(body);
        self
    }

    pub fn body(mut self, bytes: &'a [u8], content_type: &'static str) -> Request<'a> {
        self.raw = Some((bytes, content_type));
        self
    }

    pub fn header(mut self, name: &'static str, value: &'static str) -> Request<'a> {
        self.headers.push((name, value));
        self
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Response),
    /// Worth another try after the wait (None: the backoff decides).
    Transient {
        error: Error,
        wait: Option<Duration>,
    },
    Fatal(Error),
    /// Authentication itself failed (an IAM login): never renewed and retried here.
    Unauthenticated(Error),
}

impl Attempt {
    /// The attempt's result as a metric label.
    fn result(&self) -> &'static str {
        match self {
            Attempt::Done(_) => "ok",
            Attempt::Transient { error, .. }
            | Attempt::Fatal(error)
            | Attempt::Unauthenticated(error) => error.kind.as_str(),
        }
    }
}

impl Http {
    /// `credentials` go with every request as `Authorization`, marked sensitive.
    pub fn new(
        account: &str,
        settings: HttpSettings,
        credentials: Option<Credentials>,
        credentials_hint: &str,
    ) -> Result<Http, Error> {
        // The process-wide rustls provider; a second install (another account) is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let mut secrets = Vec::new();
        if let Some(credentials) = credentials {
            let mut auth = credentials.authorization;
            auth.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, auth);
            secrets = credentials.secrets;
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .gzip(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error {
                account: account.to_string(),
                call: "open".into(),
                kind: ErrorKind::Other,
                message: format!("cannot build the HTTP client: {e}"),
                code: None,
            })?;
        Ok(Http {
            account: account.to_string(),
            client,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            credentials_hint: credentials_hint.to_string(),
            secrets,
            signer: None,
            observer: None,
        })
    }

    /// Reports every attempt to `observer`, labelled with `provider`.
    pub fn observed(
        mut self,
        observer: Option<Arc<dyn RequestObserver>>,
        provider: &'static str,
    ) -> Http {
        self.observer = observer.map(|o| (o, provider));
        self
    }

    /// Authenticates every attempt with `signer`; `secrets` are redacted from errors.
    pub fn with_signer(mut self, signer: Arc<dyn Signer>, secrets: Vec<Secret>) -> Http {
        self.signer = Some(signer);
        self.secrets.extend(secrets);
        self
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// An error of this account. Any secret of the account in the message (providers echo
    /// API keys in their errors) is replaced by `<redacted>`.
    pub fn error(&self, call: &str, kind: ErrorKind, message: impl Into<String>) -> Error {
        let mut message = message.into();
        let obtained = self
            .signer
            .as_ref()
            .map(|s| s.secrets())
            .unwrap_or_default();
        for secret in self.secrets.iter().chain(&obtained) {
            message = redact(&message, secret.expose());
        }
        Error {
            account: self.account.clone(),
            call: call.to_string(),
            kind,
            message,
            code: None,
        }
    }

    /// Sends `request` (built anew for each attempt by `build`), retrying transient failures.
    /// Returns the first 2xx response; any other status is an error naming `call`.
    pub async fn send<'b>(
        &self,
        call: &str,
        build: impl Fn() -> Request<'b>,
    ) -> Result<Response, Error> {
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            let outcome = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let started = std::time::Instant::now();
                let outcome = self.attempt(call, build()).await;
                if let Some((observer, provider)) = &self.observer {
                    observer.request(&self.account, provider, outcome.result(), started.elapsed());
                }
                outcome
            };
            match outcome {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fatal(error)
                    if error.kind == ErrorKind::Auth
                        && !renewed
                        && self.signer.as_ref().is_some_and(|s| s.renew()) =>
                {
                    // A token expired early (revoked, password changed): one fresh attempt.
                    renewed = true;
                }
                Attempt::Fatal(error) | Attempt::Unauthenticated(error) => return Err(error),
                Attempt::Transient { mut error, wait } => {
                    if attempt >= self.settings.retries {
                        if attempt > 0 {
                            error
                                .message
                                .push_str(&format!(" (gave up after {} attempts)", attempt + 1));
                        }
                        return Err(error);
                    }
                    let wait = match wait {
                        Some(wait) if wait > self.settings.max_wait => {
                            error.message.push_str(&format!(
                                "; the provider asks to wait {}s, longer than http.max_wait ({}s)",
                                wait.as_secs(),
                                self.settings.max_wait.as_secs()
                            ));
                            return Err(error);
                        }
                        Some(wait) => wait,
                        None => backoff(self.settings.backoff, attempt),
                    };
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, call: &str, request: Request<'_>) -> Attempt {
        let (body, content_type) = match (request.json, request.raw) {
            (Some(json), _) => (
                serde_json::to_vec(json).expect("a JSON value serialises"),
                Some("application/json"),
            ),
            (None, Some((bytes, content_type))) => (bytes.to_vec(), Some(content_type)),
            (None, None) => (Vec::new(), None),
        };
        let signed = match &self.signer {
            Some(signer) => match signer.sign(&request.method, &request.url, &body).await {
                Ok(headers) => headers,
                Err(e) => return Attempt::Unauthenticated(e),
            },
            None => Vec::new(),
        };
        let mut builder = self.client.request(request.method, request.url);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        for (name, mut value) in signed {
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        if let Some(content_type) = content_type {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return self.transport_error(call, &e),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(BodyError::Transport(e)) => return self.transport_error(call, &e),
            Err(BodyError::TooLarge) => {
                return Attempt::Fatal(self.error(
                    call,
                    ErrorKind::BadResponse,
                    format!(
                        "the response is larger than {} MiB (after decompression); no provider answer is that large, so the endpoint is broken or not the provider's: the listing is not complete",
                        MAX_BODY >> 20
                    ),
                ));
            }
        };
        if status.is_success() {
            return Attempt::Done(Response {
                status,
                headers,
                body,
            });
        }
        let detail = provider_message(&body);
        let code = status.as_u16();
        let provider_code = error_code(&body);
        let error = |kind, message: String| Error {
            code: provider_code.clone(),
            ..self.error(call, kind, message)
        };
        match code {
            420 | 429 => Attempt::Transient {
                error: error(
                    ErrorKind::RateLimited,
                    format!("rate limited (HTTP {code}): {detail}"),
                ),
                wait: rate_limit_wait(&headers, Timestamp::now()),
            },
            500..=599 => Attempt::Transient {
                error: error(ErrorKind::Server, format!("HTTP {code}: {detail}")),
                wait: retry_after(&headers, Timestamp::now()),
            },
            401 => Attempt::Fatal(error(
                ErrorKind::Auth,
                format!(
                    "the credentials were rejected (HTTP 401: {detail}); check the account's {}",
                    self.credentials_hint
                ),
            )),
            403 => Attempt::Fatal(error(
                ErrorKind::Forbidden,
                format!("permission denied (HTTP 403: {detail})"),
            )),
            404 => Attempt::Fatal(error(
                ErrorKind::NotFound,
                format!("not found (HTTP 404: {detail})"),
            )),
            _ => Attempt::Fatal(error(ErrorKind::Rejected, format!("HTTP {code}: {detail}"))),
        }
    }

    fn transport_error(&self, call: &str, e: &reqwest::Error) -> Attempt {
        let (kind, what) = if e.is_timeout() {
            (
                ErrorKind::Timeout,
                format!(
                    "timed out (http.timeout {}s, http.connect_timeout {}s)",
                    self.settings.timeout.as_secs_f64(),
                    self.settings.connect_timeout.as_secs_f64()
                ),
            )
        } else if e.is_connect() {
            (ErrorKind::Connection, "cannot connect".to_string())
        } else if e.is_body() || e.is_decode() {
            (
                ErrorKind::Connection,
                "the response was cut off before its end".to_string(),
            )
        } else {
            (ErrorKind::Connection, "the connection failed".to_string())
        };
        Attempt::Transient {
            error: self.error(call, kind, format!("{what}: {}", error_chain(e))),
            wait: None,
        }
    }

    /// Parses a JSON body; an HTML page or a cut-off or malformed body is an error naming the
    /// call, never a partial result.
    pub fn parse_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        response: &Response,
    ) -> Result<T, Error> {
        let text = String::from_utf8_lossy(&response.body);
        let start = text.trim_start();
        if start.starts_with('<') {
            return Err(self.error(
                call,
                ErrorKind::BadResponse,
                format!(
                    "HTTP {} with an HTML page instead of JSON (a login page, proxy or maintenance page?): {}",
                    response.status.as_u16(),
                    provider_message(&response.body)
                ),
            ));
        }
        serde_json::from_slice(&response.body).map_err(|e| {
            let what = if e.is_eof() {
                "the JSON response is truncated"
            } else {
                "the response is not the JSON expected"
            };
            self.error(call, ErrorKind::BadResponse, format!("{what}: {e}"))
        })
    }
}

/// `message` without `secret` in any form a provider may echo it: as it is, percent-encoded
/// (a URL or form), or in base64 (an `Authorization` header).
fn redact(message: &str, secret: &str) -> String {
    // Very short values would redact ordinary words; no real credential is that short.
    if secret.len() < 6 {
        return message.to_string();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = encoded.replace('+', "%20");
    let base64 = crate::hash::base64(secret.as_bytes());
    let mut message = message.to_string();
    for form in [secret, &encoded, &percent, base64.trim_end_matches('=')] {
        message = message.replace(form, "<redacted>");
    }
    message
}

/// The error and its causes, without the URL (the call names it already).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(at) = text.find(" for url (") {
        text.truncate(at);
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The provider's own message from an error body: `error.message` (Cloudinary, DocSpace),
/// `error_code` + `error_msg` (Huawei), `message`; else the start of the body on one line.
/// The provider's own error code in an error body (`{"error_code": "CSBS.2003", ...}`, S3's
/// `<Error><Code>NoSuchBucket</Code>…`).
pub fn error_code(body: &[u8]) -> Option<String> {
    if let Some(code) = xml_error(body).map(|(code, _)| code) {
        return Some(code);
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["error_code"]
        .as_str()
        .or_else(|| value["error"]["code"].as_str())
        .map(str::to_string)
}

pub fn provider_message(body: &[u8]) -> String {
    if let Some((code, message)) = xml_error(body) {
        return format!("{code}: {message}");
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let error = &value["error"];
        if let Some(message) = text(&error["message"]).or_else(|| text(error)) {
            return message;
        }
        if let Some(message) = text(&value["error_msg"]) {
            return match text(&value["error_code"]) {
                Some(code) => format!("{code}: {message}"),
                None => message,
            };
        }
        if let Some(message) = text(&value["message"]) {
            return message;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        let title = lower
            .find("<title>")
            .and_then(|start| {
                let rest = &text[start + 7..];
                rest.find('<').map(|end| rest[..end].trim().to_string())
            })
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => format!("an HTML page titled \"{title}\""),
            None => "an HTML page".into(),
        };
    }
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line
}

/// S3's error document: `<Error><Code>…</Code><Message>…</Message>…</Error>` as (code,
/// message). Found by its tags; the two are plain text in every S3 implementation.
fn xml_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Error>")?;
    let element = |tag: &str| {
        let rest = &text[start..];
        let open = format!("<{tag}>");
        let from = rest.find(&open)? + open.len();
        let to = rest[from..].find('<')? + from;
        Some(xml_unescape(rest[from..to].trim()))
    };
    Some((element("Code")?, element("Message").unwrap_or_default()))
}

/// XML's five predefined entities, replaced.
fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// How long a 429/420 asks to wait: `Retry-After`, else Cloudinary's
/// `X-FeatureRateLimit-Reset` (an HTTP date), else `X-RateLimit-Reset` (Unix seconds).
pub fn rate_limit_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    retry_after(headers, now)
        .or_else(|| {
            let reset = header_text(headers, "x-featureratelimit-reset")?;
            until(parse_http_date(reset)?, now)
        })
        .or_else(|| {
            let reset: i64 = header_text(headers, "x-ratelimit-reset")?.parse().ok()?;
            until(Timestamp::from_second(reset).ok()?, now)
        })
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = header_text(headers, "retry-after")?;
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => until(parse_http_date(value)?, now),
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), the RFC 2822 form providers send.
pub fn parse_http_date(text: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::parse(text)
        .ok()
        .map(|zoned| zoned.timestamp())
}

fn until(when: Timestamp, now: Timestamp) -> Option<Duration> {
    let seconds = when.as_second() - now.as_second();
    Some(Duration::from_secs(seconds.max(0) as u64 + 1).min(Duration::from_secs(86_400)))
}

/// Exponential backoff with jitter: a random time between half and all of
/// `base × 2^attempt`, at most 60 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(60));
    let fraction = 0.5 + 0.5 * random_unit();
    full.mul_f64(fraction)
}

/// A number in [0, 1) from a splitmix64 sequence seeded by the clock; jitter needs no more.
fn random_unit() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = Timestamp::now().as_nanosecond() as u64;
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A provider's id as one URL path segment: everything but unreserved characters is
/// percent-encoded, so `/`, `%`, `?` and `#` in an id cannot change the request path. Empty,
/// `.` and `..` ids are refused outright (URL parsers treat them as path steps).
pub fn path_segment(id: &str) -> Result<String, String> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(format!(
            "refusing the id {id:?}: it is not a usable path segment"
        ));
    }
    if id.len() > 1024 {
        return Err(format!(
            "refusing an id of {} bytes: longer than any provider issues",
            id.len()
        ));
    }
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// `base` (no trailing slash) followed by the path segments, each percent-encoded.
pub fn url(base: &str, fixed: &str, ids: &[&str]) -> Result<Url, String> {
    let mut text = format!("{base}{fixed}");
    for id in ids {
        text.push('/');
        text.push_str(&path_segment(id)?);
    }
    Url::parse(&text).map_err(|e| format!("cannot build a URL from {text}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        let u = url(
            "https://h.example/api",
            "/backup/deletebackup",
            &["../../x"],
        )
        .unwrap();
        assert_eq!(u.path(), "/api/backup/deletebackup/..%2F..%2Fx");
        let u = url("https://h.example", "/r", &["a b?c#d%2F"]).unwrap();
        assert_eq!(u.path(), "/r/a%20b%3Fc%23d%252F");
        assert_eq!(u.query(), None);
        for bad in ["", ".", ".."] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
        assert!(path_segment(&"x".repeat(5000)).is_err());
        assert_eq!(path_segment("ü").unwrap(), "%C3%BC");
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_and_reset_headers() {
        let now: Timestamp = "2017-04-01T21:59:00Z".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(2)));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Sat, 01 Apr 2017 22:00:00 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(61)));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-featureratelimit-reset",
            HeaderValue::from_static("Sat, 01 Apr 2017 22:00:00 GMT"),
        );
        assert_eq!(
            rate_limit_wait(&headers, now),
            Some(Duration::from_secs(61))
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&(now.as_second() + 9).to_string()).unwrap(),
        );
        assert_eq!(
            rate_limit_wait(&headers, now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(rate_limit_wait(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..4 {
            let full = base * (1 << attempt);
            let wait = backoff(base, attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(backoff(base, 30) <= Duration::from_secs(60));
    }

    #[test]
    fn secrets_echoed_by_a_provider_are_redacted() {
        let secret = Secret::new("614335564976464".to_string());
        let http = Http::new(
            "media",
            HttpSettings::default(),
            Some(Credentials {
                authorization: HeaderValue::from_static("Basic x"),
                secrets: vec![secret],
            }),
            "api_key",
        )
        .unwrap();
        let error = http.error(
            "GET /x",
            ErrorKind::Auth,
            "Invalid api_key 614335564976464 or api_secret",
        );
        assert_eq!(
            error.to_string(),
            "account media: GET /x: Invalid api_key <redacted> or api_secret"
        );
        let secret = "s3cr/t+k3y=";
        for echoed in [
            "bad key s3cr/t+k3y= in request",
            "GET /x?sig=s3cr%2Ft%2Bk3y%3D failed",
            "Authorization: Basic czNjci90K2szeT0= refused",
        ] {
            let redacted = redact(echoed, secret);
            assert!(
                redacted.contains("<redacted>") && !redacted.contains("k3y"),
                "{redacted}"
            );
            assert!(!redacted.contains("czNjci90K2szeT0"), "{redacted}");
        }
    }

    #[test]
    fn provider_messages_from_each_error_shape() {
        assert_eq!(
            provider_message(br#"{"error":{"message":"Invalid api_key"}}"#),
            "Invalid api_key"
        );
        assert_eq!(
            provider_message(br#"{"error_code":"CSBS.2003","error_msg":"busy"}"#),
            "CSBS.2003: busy"
        );
        assert_eq!(
            provider_message(b"<!DOCTYPE html><html><title>502 Bad Gateway</title>"),
            "an HTML page titled \"502 Bad Gateway\""
        );
        assert_eq!(provider_message(b""), "(empty body)");
        assert_eq!(provider_message(b"oops\nmore"), "oops more");
    }
}
