//! Huawei Cloud authentication shared by CSBS and TaurusDB (PROVIDERS.md §3): AK/SK request
//! signing (`SDK-HMAC-SHA256`), a static token, or IAM password login with the token cached,
//! renewed before it expires and renewed once more on a 401; and the endpoints each service
//! has per region.

use crate::hash::sha256_hex;
use crate::http::{self, Http, Request, Signer};
use crate::policy::Secret;
use crate::policy::config::HuaweiAuth;
use crate::provider::{BoxFuture, ErrorKind, ProviderError};
use jiff::Timestamp;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use ring::hmac;
use std::time::Duration;

/// What to check when Huawei Cloud answers 401, per auth form.
pub fn hint(auth: &HuaweiAuth) -> &'static str {
    match auth {
        HuaweiAuth::AkSk { .. } => "auth.access_key and auth.secret_key (and auth.security_token)",
        HuaweiAuth::Token(_) => "auth.token (IAM tokens expire after 24 hours)",
        HuaweiAuth::Password { .. } => "auth.username, auth.password and auth.domain",
    }
}

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Encodes like the API gateway: `A–Z a–z 0–9 - _ . ~` stay, every other byte is `%XX` with
/// uppercase hex.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding (no `+` rule: signed paths and queries encode spaces as `%20`).
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical request of PROVIDERS.md §3.2: method, the path with every segment encoded and
/// a trailing `/`, the sorted query, the signed headers (each `name:value\n`, then the blank
/// line), their names, and the body's SHA-256.
pub fn canonical_request(
    method: &str,
    url: &Url,
    signed: &[(String, String)],
    body: &[u8],
) -> String {
    let mut uri: String = url
        .path()
        .split('/')
        .map(|segment| encode(&decode(segment)))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers: Vec<(String, String)> = signed
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n{uri}\n{}\n{canonical_headers}\n{}\n{}",
        query.join("&"),
        names.join(";"),
        sha256_hex(body)
    )
}

/// The `Authorization` value signing `canonical` at `date` (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(
    access_key: &str,
    secret_key: &str,
    date: &str,
    canonical: &str,
    signed_names: &str,
) -> String {
    let to_sign = format!("{ALGORITHM}\n{date}\n{}", sha256_hex(canonical.as_bytes()));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret_key.as_bytes());
    let signature = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    format!("{ALGORITHM} Access={access_key}, SignedHeaders={signed_names}, Signature={signature}")
}

/// `host[:port]` as the client sends it (default ports left out).
pub fn host(url: &Url) -> String {
    let name = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.to_string(),
    }
}

pub fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    HeaderValue::from_str(value)
        .map(|v| (HeaderName::from_static(name), v))
        .map_err(|_| format!("the value of {name} is not a valid header value"))
}

/// How the requests of one Huawei Cloud account are authenticated.
pub struct HuaweiSigner {
    account: String,
    credentials: HuaweiCredentials,
}

enum HuaweiCredentials {
    AkSk {
        access_key: Secret,
        secret_key: Secret,
        security_token: Option<Secret>,
    },
    Token(Secret),
    Password(Box<IamLogin>),
}

/// IAM password login: a token cached until shortly before `expires_at`.
pub struct IamLogin {
    iam: Http,
    url: Url,
    username: String,
    password: Secret,
    domain: String,
    project_id: String,
    token: tokio::sync::Mutex<Option<(Secret, Timestamp)>>,
}

/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

impl HuaweiSigner {
    /// The signer and the secrets to redact. `iam` is a client without authentication for
    /// the IAM endpoint (password login only).
    pub fn new(
        account: &str,
        auth: &HuaweiAuth,
        project_id: &str,
        iam: impl FnOnce() -> Result<(Http, Url), ProviderError>,
    ) -> Result<(HuaweiSigner, Vec<Secret>), ProviderError> {
        let resolve = |r: &crate::policy::SecretRef| {
            r.resolve()
                .map_err(|e| ProviderError::new(account, "credentials", e))
        };
        let (credentials, secrets) = match auth {
            HuaweiAuth::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let (ak, sk) = (resolve(access_key)?, resolve(secret_key)?);
                let token = security_token.as_ref().map(resolve).transpose()?;
                let mut secrets = vec![ak.clone(), sk.clone()];
                secrets.extend(token.clone());
                (
                    HuaweiCredentials::AkSk {
                        access_key: ak,
                        secret_key: sk,
                        security_token: token,
                    },
                    secrets,
                )
            }
            HuaweiAuth::Token(token) => {
                let token = resolve(token)?;
                (HuaweiCredentials::Token(token.clone()), vec![token])
            }
            HuaweiAuth::Password {
                username,
                password,
                domain,
            } => {
                let password = resolve(password)?;
                let (iam, url) = iam()?;
                (
                    HuaweiCredentials::Password(Box::new(IamLogin {
                        iam,
                        url,
                        username: username.clone(),
                        password: password.clone(),
                        domain: domain.clone(),
                        project_id: project_id.to_string(),
                        token: tokio::sync::Mutex::new(None),
                    })),
                    vec![password],
                )
            }
        };
        let signer = HuaweiSigner {
            account: account.to_string(),
            credentials,
        };
        Ok((signer, secrets))
    }

    fn sign_now(
        &self,
        method: &Method,
        url: &Url,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let HuaweiCredentials::AkSk {
            access_key,
            secret_key,
            security_token,
        } = &self.credentials
        else {
            unreachable!("only AK/SK signs requests");
        };
        let date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut signed = vec![
            ("host".to_string(), host(url)),
            ("x-sdk-date".to_string(), date.clone()),
        ];
        if let Some(token) = security_token {
            signed.push(("x-security-token".to_string(), token.expose().to_string()));
        }
        let canonical = canonical_request(method.as_str(), url, &signed, body);
        let mut names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        let value = authorization(
            access_key.expose(),
            secret_key.expose(),
            &date,
            &canonical,
            &names.join(";"),
        );
        let mut headers = vec![
            header("x-sdk-date", &date)?,
            header("authorization", &value)?,
        ];
        if let Some(token) = security_token {
            headers.push(header("x-security-token", token.expose())?);
        }
        Ok(headers)
    }
}

impl Signer for HuaweiSigner {
    fn sign<'a>(
        &'a self,
        method: &'a Method,
        url: &'a Url,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, http::Error>> {
        Box::pin(async move {
            let invalid = |message: String| http::Error::new(&self.account, "credentials", message);
            match &self.credentials {
                HuaweiCredentials::AkSk { .. } => self
                    .sign_now(method, url, body, Timestamp::now())
                    .map_err(invalid),
                HuaweiCredentials::Token(token) => Ok(vec![
                    header("x-auth-token", token.expose()).map_err(invalid)?,
                ]),
                HuaweiCredentials::Password(login) => {
                    let token = login.token().await?;
                    Ok(vec![
                        header("x-auth-token", token.expose()).map_err(invalid)?,
                    ])
                }
            }
        })
    }

    fn secrets(&self) -> Vec<Secret> {
        match &self.credentials {
            HuaweiCredentials::Password(login) => login
                .token
                .try_lock()
                .ok()
                .and_then(|cached| cached.as_ref().map(|(token, _)| token.clone()))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn renew(&self) -> bool {
        match &self.credentials {
            HuaweiCredentials::Password(login) => match login.token.try_lock() {
                Ok(mut cached) => {
                    *cached = None;
                    true
                }
                // Another request is logging in right now: its token is fresh.
                Err(_) => true,
            },
            _ => false,
        }
    }
}

impl IamLogin {
    /// The cached token, or a new one when there is none or it expires soon.
    async fn token(&self) -> Result<Secret, http::Error> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = &*cached
            && Timestamp::now()
                .checked_add(RENEW_BEFORE)
                .is_ok_and(|soon| soon < *expires)
        {
            return Ok(token.clone());
        }
        let fresh = self.login().await?;
        let token = fresh.0.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    async fn login(&self) -> Result<(Secret, Timestamp), http::Error> {
        let call = "POST /v3/auth/tokens";
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.username,
                "password": self.password.expose(),
                "domain": {"name": self.domain},
            }}},
            "scope": {"project": {"id": self.project_id}},
        }});
        let response = self
            .iam
            .send(call, || Request::post(self.url.clone()).json(&body))
            .await?;
        let token = response
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.iam.error(
                    call,
                    ErrorKind::BadResponse,
                    "IAM answered without an X-Subject-Token header",
                )
            })?
            .to_string();
        let parsed: serde_json::Value = self.iam.parse_json(call, &response)?;
        let expires = parsed["token"]["expires_at"]
            .as_str()
            .and_then(super::parse_time)
            .ok_or_else(|| {
                self.iam.error(
                    call,
                    ErrorKind::BadResponse,
                    "IAM's token has no readable token.expires_at",
                )
            })?;
        Ok((Secret::new(token), expires))
    }
}

/// One look at a backup whose deletion a service (CSBS, CBR) is carrying out.
pub enum Poll {
    Gone,
    /// The deletion ended without deleting.
    Failed(ProviderError),
    Running,
}

/// Looks every `interval` until the backup is gone or its deletion failed; when the next look
/// would pass `timeout`, it is still `Pending` (a later run waits for it). A look that fails
/// is tried again; the last such error is named.
pub async fn wait_until_gone<F, Fut>(
    service: &str,
    (timeout, interval): (Duration, Duration),
    look: F,
) -> crate::provider::DeleteOutcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Poll, ProviderError>>,
{
    use crate::provider::DeleteOutcome;
    let deadline = std::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match look().await {
            Ok(Poll::Gone) => return DeleteOutcome::Deleted,
            Ok(Poll::Failed(e)) => return DeleteOutcome::Failed(e),
            Ok(Poll::Running) => {}
            Err(e) => last_error = Some(e),
        }
        if std::time::Instant::now() + interval > deadline {
            let note = last_error
                .map(|e| format!(" (last poll: {})", e.message))
                .unwrap_or_default();
            return DeleteOutcome::Pending(format!(
                "still being deleted by {service} after {}s{note}; the next run waits for it",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(interval).await;
    }
}

/// `https://{service}.{region}.myhuaweicloud.com`, or the account's override.
pub fn endpoint(service: &str, region: &str, configured: Option<&str>) -> String {
    match configured {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("https://{service}.{region}.myhuaweicloud.com"),
    }
}

/// TaurusDB's host differs by region (PROVIDERS.md §5.2).
pub fn taurusdb_service(region: &str) -> &'static str {
    match region {
        "ap-southeast-1" | "ap-southeast-2" | "tr-west-1" | "me-east-1" | "cn-north-11" => {
            "gaussdbformysql"
        }
        "af-south-1" | "cn-east-5" | "la-north-2" => "gaussdb-mysql",
        _ => "gaussdb",
    }
}

/// The IAM token endpoint of a region, or the account's override.
pub fn iam_url(region: &str, configured: Option<&str>) -> String {
    format!("{}/v3/auth/tokens", endpoint("iam", region, configured))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn test_vector_1_get_with_a_query() {
        let url = parse("https://example.huaweicloud.com/path?limit=1");
        let signed = [("X-Sdk-Date".to_string(), "20060102T150405Z".to_string())];
        let canonical = canonical_request("GET", &url, &signed, b"");
        assert_eq!(
            canonical,
            "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4"
        );
        assert_eq!(
            authorization(
                "AccessKey",
                "SecretKey",
                "20060102T150405Z",
                &canonical,
                "x-sdk-date"
            ),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn test_vector_2_post_with_a_body() {
        let url = parse("https://example.huaweicloud.com/path?key=value");
        let signed = [("X-Sdk-Date".to_string(), "20060102T150405Z".to_string())];
        let body = b"{\"Name\":\"test\",\"Id\":1}\n";
        assert_eq!(
            sha256_hex(body),
            "a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289"
        );
        let canonical = canonical_request("POST", &url, &signed, body);
        let to_sign_hash = sha256_hex(canonical.as_bytes());
        assert_eq!(
            to_sign_hash,
            "13f75ff5f5216199f986c7e7f2f77834d5e160ad9e46f37319816dc72ba7eeab"
        );
        let value = authorization(
            "AccessKey",
            "SecretKey",
            "20060102T150405Z",
            &canonical,
            "x-sdk-date",
        );
        assert!(
            value.ends_with(
                "Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
            ),
            "{value}"
        );
    }

    #[test]
    fn test_vector_3_the_official_guide() {
        let url = parse(
            "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
        );
        let signed = [
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Host".to_string(), "service.region.example.com".to_string()),
            ("X-Sdk-Date".to_string(), "20191115T033655Z".to_string()),
        ];
        let canonical = canonical_request("GET", &url, &signed, b"");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        assert_eq!(
            authorization(
                "QTWAOYTTINDUT2QVKYUC",
                "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
                "20191115T033655Z",
                &canonical,
                "content-type;host;x-sdk-date"
            ),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn the_canonical_query_is_encoded_and_sorted_like_the_sdk_test() {
        // H1's signer test: repeated keys sorted by value, uppercase escapes, `/` and space.
        let url = parse(
            "https://h/p?test=%E4%B8%80%20(%26%3D%3F!%23%25.*)&path=%2Ftmp%2F123&multi=2&multi=1&multi=3&limit=1&enable=true",
        );
        let canonical = canonical_request("GET", &url, &[], b"");
        let query = canonical.lines().nth(2).unwrap();
        assert_eq!(
            query,
            "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
        );
    }

    #[test]
    fn a_signed_request_carries_date_host_and_token() {
        let signer = HuaweiSigner {
            account: "vms".into(),
            credentials: HuaweiCredentials::AkSk {
                access_key: Secret::new("AK".into()),
                secret_key: Secret::new("SK".into()),
                security_token: Some(Secret::new("temporary".into())),
            },
        };
        let url = parse("http://127.0.0.1:8080/v1/p/checkpoint_items?limit=2");
        let now: Timestamp = "2026-11-23T03:30:00Z".parse().unwrap();
        let headers = signer.sign_now(&Method::GET, &url, b"", now).unwrap();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("x-sdk-date").as_deref(), Some("20261123T033000Z"));
        assert_eq!(get("x-security-token").as_deref(), Some("temporary"));
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date;x-security-token, Signature="),
            "{auth}"
        );
    }

    #[test]
    fn endpoints_follow_the_region_with_overrides() {
        assert_eq!(
            endpoint("csbs", "ap-southeast-3", None),
            "https://csbs.ap-southeast-3.myhuaweicloud.com"
        );
        assert_eq!(taurusdb_service("ap-southeast-1"), "gaussdbformysql");
        assert_eq!(taurusdb_service("af-south-1"), "gaussdb-mysql");
        assert_eq!(taurusdb_service("cn-north-4"), "gaussdb");
        assert_eq!(
            endpoint("csbs", "x", Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            iam_url("eu-west-101", None),
            "https://iam.eu-west-101.myhuaweicloud.com/v3/auth/tokens"
        );
    }
}
