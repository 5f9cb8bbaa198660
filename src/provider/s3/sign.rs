//! AWS Signature Version 4 for S3 (`AWS4-HMAC-SHA256`), on ring's HMAC and SHA-256: the
//! canonical request (method, the path as sent, the sorted query, the signed headers, the
//! body's SHA-256), the string to sign over the `date/region/s3/aws4_request` scope, and the
//! key derived from the secret, the date, the region and the service. Every attempt is signed
//! anew with the time of that attempt.

use super::super::huawei::{decode, encode, header, hex, host};
use crate::hash::{md5_base64, sha256_hex};
use crate::http::{self, BoxFuture, Signer};
use crate::policy::config::S3Credentials;
use crate::provider::ProviderError;
use crate::secret::Secret;
use jiff::Timestamp;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use ring::hmac;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The canonical request. The path is encoded segment by segment once (S3 does not normalise
/// or double-encode); query names and values are encoded and sorted; `headers` are the signed
/// ones, lowercase names.
pub fn canonical_request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    let path = url.path();
    let uri: String = path
        .split('/')
        .map(|segment| encode(&decode(segment)))
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<(String, String)> = url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n{uri}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        query.join("&"),
        names.join(";"),
    )
}

/// The `Authorization` value for `canonical` at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(
    (access_key, secret_key): (&str, &str),
    region: &str,
    amz_date: &str,
    canonical: &str,
    signed_names: &str,
) -> String {
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = format!("AWS4{secret_key}").into_bytes();
    for part in [date, region, "s3", "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let signature =
        hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), to_sign.as_bytes()).as_ref());
    format!(
        "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
    )
}

/// Signs an S3 account's requests with its access key.
pub struct S3Signer {
    access_key: Secret,
    secret_key: Secret,
    session_token: Option<Secret>,
    region: String,
    account: String,
}

impl S3Signer {
    /// The signer and the secrets to redact from errors.
    pub fn new(
        account: &str,
        credentials: &S3Credentials,
        region: &str,
    ) -> Result<(S3Signer, Vec<Secret>), ProviderError> {
        let resolve = |r: &crate::policy::SecretRef| {
            r.resolve()
                .map_err(|e| ProviderError::new(account, "credentials", e))
        };
        let access_key = resolve(&credentials.access_key_id)?;
        let secret_key = resolve(&credentials.secret_access_key)?;
        let session_token = credentials
            .session_token
            .as_ref()
            .map(resolve)
            .transpose()?;
        let mut secrets = vec![access_key.clone(), secret_key.clone()];
        secrets.extend(session_token.clone());
        let signer = S3Signer {
            access_key,
            secret_key,
            session_token,
            region: region.to_string(),
            account: account.to_string(),
        };
        Ok((signer, secrets))
    }

    /// The headers for one attempt at `now`.
    fn headers(
        &self,
        method: &Method,
        url: &Url,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let payload_hash = sha256_hex(body);
        let mut signed = vec![
            ("host".to_string(), host(url)),
            ("x-amz-content-sha256".to_string(), payload_hash.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        if !body.is_empty() {
            // DeleteObjects requires it; S3 checks the body against it.
            signed.push(("content-md5".to_string(), md5_base64(body)));
        }
        if let Some(token) = &self.session_token {
            signed.push((
                "x-amz-security-token".to_string(),
                token.expose().to_string(),
            ));
        }
        let canonical = canonical_request(method.as_str(), url, &signed, &payload_hash);
        let mut names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let authorization = authorization(
            (self.access_key.expose(), self.secret_key.expose()),
            &self.region,
            &amz_date,
            &canonical,
            &names.join(";"),
        );
        let mut headers = vec![header("authorization", &authorization)?];
        for (name, value) in &signed {
            let name: &'static str = match name.as_str() {
                "x-amz-content-sha256" => "x-amz-content-sha256",
                "x-amz-date" => "x-amz-date",
                "content-md5" => "content-md5",
                "x-amz-security-token" => "x-amz-security-token",
                // reqwest sends `Host` from the URL, exactly as signed.
                _ => continue,
            };
            headers.push(header(name, value)?);
        }
        Ok(headers)
    }
}

impl Signer for S3Signer {
    fn sign<'a>(
        &'a self,
        method: &'a Method,
        url: &'a Url,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, http::Error>> {
        Box::pin(async move {
            self.headers(method, url, body, Timestamp::now())
                .map_err(|e| http::Error::new(&self.account, "sign", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: (&str, &str) = (
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn signed(url: &str, extra: &[(&str, &str)]) -> (String, String) {
        let url = Url::parse(url).unwrap();
        let mut headers = vec![
            ("host".to_string(), host(&url)),
            ("x-amz-content-sha256".to_string(), EMPTY.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let canonical = canonical_request("GET", &url, &headers, EMPTY);
        let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let auth = authorization(
            KEYS,
            "us-east-1",
            "20130524T000000Z",
            &canonical,
            &names.join(";"),
        );
        (canonical, auth)
    }

    /// AWS's published examples ("Signature Calculations for the Authorization Header:
    /// Transferring Payload in a Single Chunk", S3 API reference): GET Object with a range,
    /// and a listing with a query.
    #[test]
    fn aws_published_examples() {
        let (canonical, auth) = signed(
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range", "bytes=0-9")],
        );
        assert_eq!(
            canonical,
            format!(
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:{EMPTY}\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n{EMPTY}"
            )
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let (canonical, auth) = signed(
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            &[],
        );
        assert!(
            canonical.starts_with("GET\n/\nmax-keys=2&prefix=J\n"),
            "{canonical}"
        );
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn query_values_are_encoded_once_and_sorted() {
        let url = Url::parse(
            "http://127.0.0.1:9000/b?prefix=db%2F&list-type=2&continuation-token=a%2Bb%3D&delete",
        )
        .unwrap();
        let canonical = canonical_request("GET", &url, &[], EMPTY);
        assert_eq!(
            canonical.lines().nth(2).unwrap(),
            "continuation-token=a%2Bb%3D&delete=&list-type=2&prefix=db%2F"
        );
        assert_eq!(canonical.lines().nth(1).unwrap(), "/b");
    }

    #[test]
    fn a_body_gets_its_md5_and_a_token_is_signed() {
        let credentials = S3Credentials {
            access_key_id: crate::policy::SecretRef::Env("RETENTIOND_TEST_S3_SIGN_AK".into()),
            secret_access_key: crate::policy::SecretRef::Env("RETENTIOND_TEST_S3_SIGN_SK".into()),
            session_token: None,
        };
        let missing = S3Signer::new("bucket", &credentials, "eu-west-1")
            .err()
            .unwrap();
        assert!(
            missing.to_string().contains("RETENTIOND_TEST_S3_SIGN_AK"),
            "{missing}"
        );
        let signer = S3Signer {
            access_key: Secret::new(KEYS.0.into()),
            secret_key: Secret::new(KEYS.1.into()),
            session_token: Some(Secret::new("token".into())),
            region: "eu-west-1".into(),
            account: "bucket".into(),
        };
        let url = Url::parse("https://b.s3.eu-west-1.amazonaws.com/?delete").unwrap();
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let headers = signer
            .headers(&Method::POST, &url, b"<Delete/>", now)
            .unwrap();
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(value("content-md5"), Some(md5_base64(b"<Delete/>")));
        assert_eq!(value("x-amz-security-token").as_deref(), Some("token"));
        assert_eq!(value("x-amz-date").as_deref(), Some("20261203T100000Z"));
        let auth = value("authorization").unwrap();
        assert!(auth.contains("Credential=AKIAIOSFODNN7EXAMPLE/20261203/eu-west-1/s3/aws4_request, SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="), "{auth}");
    }
}
