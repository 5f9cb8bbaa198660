//! Cloudinary backed-up asset versions (PROVIDERS.md §1). Assets come from `select.asset_ids`
//! or from listing `/resources/{resource_type}[/{type}]` (or `/tags/{tag}`) page by page
//! (`next_cursor`, `max_results` 500); then each asset's versions from
//! `GET /resources/{asset_id}?versions=true`, fetched concurrently within the account's cap.
//! Group = asset. The version whose `version` equals the asset's current `version` is the live
//! file and is marked [`Backup::live`]: the planner keeps it and [`CloudinaryProvider::delete`]
//! refuses it. Deletion sends every doomed version of one asset in one
//! `DELETE /resources/backup/{asset_id}` with `{"version_ids": [...]}`; a 207's failures are
//! settled by a fresh listing and reported per version.

use super::HttpFailure;
use super::{
    Batches, BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError, failed_delete,
    lenient_u64,
};
use crate::http::{self, Credentials, Http, Request};
use crate::model::{Backup, Status};
use crate::policy::SecretRef;
use crate::policy::select::Select;
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// What to check when Cloudinary answers 401.
pub const HINT: &str = "api_key and api_secret";

/// The largest page the list endpoints serve.
const PAGE: &str = "500";

/// HTTP Basic with the API key and secret.
pub fn authorization(key: &SecretRef, secret: &SecretRef) -> Result<Credentials, String> {
    let (key_value, secret_value) = (key.resolve()?, secret.resolve()?);
    let pair = format!("{}:{}", key_value.expose(), secret_value.expose());
    let authorization =
        HeaderValue::from_str(&format!("Basic {}", crate::hash::base64(pair.as_bytes())))
            .map_err(|_| format!("secrets {key} and {secret} do not make a valid HTTP header"))?;
    Ok(Credentials {
        authorization,
        // The pair too: its base64 is the header's, which a proxy may echo.
        secrets: vec![key_value, secret_value, crate::secret::Secret::new(pair)],
    })
}

pub struct CloudinaryProvider {
    http: Arc<Http>,
    /// `{base_url}/v1_1/{cloud_name}`.
    base: String,
    resource_type: String,
    asset_type: Option<String>,
    prefix: Option<String>,
    tags: Vec<String>,
    asset_ids: Vec<String>,
}

/// One page of a list call.
#[derive(Deserialize)]
struct Page {
    resources: Vec<Listed>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    asset_id: String,
    public_id: Option<String>,
    #[serde(rename = "type")]
    asset_type: Option<String>,
    backup_bytes: Option<Value>,
}

/// `GET /resources/{asset_id}?versions=true`.
#[derive(Deserialize)]
struct Asset {
    asset_id: Option<String>,
    public_id: Option<String>,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    versions: Vec<Version>,
}

#[derive(Deserialize)]
struct Version {
    version_id: String,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    size: Value,
    #[serde(default)]
    time: Value,
    restorable: Option<bool>,
}

#[derive(Deserialize)]
struct Deleted {
    #[serde(default)]
    deleted_version_ids: Vec<String>,
    #[serde(default)]
    failures: Vec<Failure>,
}

#[derive(Deserialize)]
struct Failure {
    version_id: String,
    #[serde(default)]
    error: Value,
}

impl CloudinaryProvider {
    pub fn new(
        http: Arc<Http>,
        base_url: &str,
        cloud_name: &str,
        select: &Select,
    ) -> CloudinaryProvider {
        let cloud = http::path_segment(cloud_name).unwrap_or_default();
        CloudinaryProvider {
            http,
            base: format!("{}/v1_1/{cloud}", base_url.trim_end_matches('/')),
            resource_type: select
                .resource_type
                .clone()
                .unwrap_or_else(|| "image".into()),
            asset_type: select.asset_type.clone(),
            prefix: select.prefix.clone(),
            tags: select.tags.clone(),
            asset_ids: select.asset_ids.clone(),
        }
    }

    fn bad(&self, call: &str, message: String) -> ProviderError {
        self.http.fail(call, ErrorKind::BadResponse, message)
    }

    /// The asset ids of the selection, in listing order, each once.
    async fn assets(&self) -> Result<Vec<String>, ProviderError> {
        if !self.asset_ids.is_empty() {
            return Ok(self.asset_ids.clone());
        }
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let listings: Vec<Vec<&str>> = if self.tags.is_empty() {
            let mut path = vec![self.resource_type.as_str()];
            path.extend(self.asset_type.as_deref());
            vec![path]
        } else {
            self.tags
                .iter()
                .map(|tag| vec![self.resource_type.as_str(), "tags", tag.as_str()])
                .collect()
        };
        let by_tag = !self.tags.is_empty();
        for segments in listings {
            for listed in self.list_pages(&segments, !by_tag).await? {
                // The tag endpoint takes neither `type` nor `prefix`: filter here.
                if by_tag && !self.wanted(&listed) {
                    continue;
                }
                // [UNC] PROVIDERS.md 1.2: whether list responses fill `backup_bytes` is not
                // confirmed. Only an explicit 0 skips the asset; absent means "look".
                if listed.backup_bytes.as_ref().and_then(lenient_u64) == Some(0) {
                    continue;
                }
                if seen.insert(listed.asset_id.clone()) {
                    ids.push(listed.asset_id);
                }
            }
        }
        Ok(ids)
    }

    fn wanted(&self, listed: &Listed) -> bool {
        let type_ok = match (&self.asset_type, &listed.asset_type) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let prefix_ok = match (&self.prefix, &listed.public_id) {
            (Some(prefix), Some(id)) => id.starts_with(prefix.as_str()),
            (Some(_), None) => false,
            (None, _) => true,
        };
        type_ok && prefix_ok
    }

    /// Every page of one list call, following `next_cursor` until it is absent.
    async fn list_pages(
        &self,
        segments: &[&str],
        with_prefix: bool,
    ) -> Result<Vec<Listed>, ProviderError> {
        let call = format!("GET /resources/{}", segments.join("/"));
        let base = http::url(&self.base, "/resources", segments)
            .map_err(|e| self.http.fail(&call, ErrorKind::Other, e))?;
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0usize;
        loop {
            let mut url = base.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("max_results", PAGE);
                if let (true, Some(prefix)) = (with_prefix, &self.prefix) {
                    query.append_pair("prefix", prefix);
                }
                if let Some(cursor) = &cursor {
                    query.append_pair("next_cursor", cursor);
                }
            }
            pages += 1;
            let page_call = format!("{call} (page {pages})");
            let response = self
                .http
                .send(&page_call, || Request::get(url.clone()))
                .await?;
            let page: Page = self.http.parse_json(&page_call, &response)?;
            all.extend(page.resources);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(next) if Some(&next) == cursor.as_ref() => {
                    return Err(self.bad(
                        &page_call,
                        "next_cursor repeats the previous one: the listing would never end".into(),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One asset's backed-up versions; none for an asset found by listing that vanished since
    /// (`named`: it came from `select.asset_ids`, where a missing asset is an error).
    async fn versions(&self, asset_id: &str, named: bool) -> Result<Vec<Backup>, ProviderError> {
        let call = format!("GET /resources/{asset_id}?versions=true");
        let mut url = http::url(&self.base, "/resources", &[asset_id])
            .map_err(|e| self.http.fail(&call, ErrorKind::Other, e))?;
        url.query_pairs_mut().append_pair("versions", "true");
        let response = match self.http.send(&call, || Request::get(url.clone())).await {
            Ok(response) => response,
            // Deleted between the asset listing and now: it has no backups left to manage.
            Err(e) if e.kind == ErrorKind::NotFound && !named => return Ok(Vec::new()),
            Err(mut e) if e.kind == ErrorKind::NotFound => {
                e.message = format!("asset {asset_id} of select.asset_ids: {}", e.message);
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let asset: Asset = self.http.parse_json(&call, &response)?;
        let group = asset.asset_id.unwrap_or_else(|| asset_id.to_string());
        let current = lenient_u64(&asset.version);
        asset
            .versions
            .into_iter()
            .map(|v| {
                let number = lenient_u64(&v.version);
                let created_at = match &v.time {
                    Value::String(text) => super::parse_time(text),
                    Value::Number(n) => n
                        .as_i64()
                        .and_then(|s| jiff::Timestamp::from_second(s).ok()),
                    _ => None,
                }
                // The version number is the Unix time of its upload.
                .or_else(|| number.and_then(|n| jiff::Timestamp::from_second(n as i64).ok()))
                .ok_or_else(|| {
                    self.bad(
                        &call,
                        format!(
                            "version {} has neither a readable `time` nor `version`",
                            v.version_id
                        ),
                    )
                })?;
                Ok(Backup {
                    live: current.is_some() && number == current,
                    id: v.version_id.into(),
                    group: group.as_str().into(),
                    created_at,
                    status: match v.restorable {
                        Some(false) => Status::Failed,
                        _ => Status::Complete,
                    },
                    name: asset.public_id.as_deref().map(Into::into),
                    size: lenient_u64(&v.size),
                    tags: Box::default(),
                    kind: number.map(|n| format!("version {n}").into()),
                })
            })
            .collect()
    }

    async fn delete_asset_versions(&self, batch: &[Backup]) -> Vec<DeleteOutcome> {
        let asset_id = &batch[0].group;
        let call = format!("DELETE /resources/backup/{asset_id}");
        let refuse = |message: &str| self.http.fail(&call, ErrorKind::Other, message);
        // The planner never marks the live version for deletion; this holds even if a stale
        // or hand-edited plan does.
        if batch.iter().any(|b| b.live) {
            return batch
                .iter()
                .map(|b| {
                    DeleteOutcome::Failed(refuse(if b.live {
                        "refused: this is the asset's current version (the live file)"
                    } else {
                        "not sent: the same call held the asset's current version"
                    }))
                })
                .collect();
        }
        let url = match http::url(&self.base, "/resources/backup", &[asset_id]) {
            Ok(url) => url,
            Err(e) => {
                return batch
                    .iter()
                    .map(|_| DeleteOutcome::Failed(refuse(&e)))
                    .collect();
            }
        };
        let body = serde_json::json!({
            "version_ids": batch.iter().map(|b| b.id.as_str()).collect::<Vec<_>>()
        });
        let response = match self
            .http
            .send(&call, || Request::delete(url.clone()).json(&body))
            .await
        {
            Ok(response) => response,
            Err(e) => {
                return batch
                    .iter()
                    .map(|_| failed_delete(e.clone().into()))
                    .collect();
            }
        };
        let deleted: Deleted = match self.http.parse_json(&call, &response) {
            Ok(deleted) => deleted,
            // The call succeeded but its answer is unreadable: a fresh listing decides.
            Err(e) => {
                return batch
                    .iter()
                    .map(|_| DeleteOutcome::Unconfirmed(e.clone().into()))
                    .collect();
            }
        };
        let done: HashSet<&str> = deleted
            .deleted_version_ids
            .iter()
            .map(String::as_str)
            .collect();
        batch
            .iter()
            .map(|b| {
                if done.contains(b.id.as_str()) {
                    return DeleteOutcome::Deleted;
                }
                let failure = deleted.failures.iter().find(|f| f.version_id == b.id);
                let reason = match failure.map(|f| &f.error) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Object(o)) => o
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("failed")
                        .to_string(),
                    Some(_) => "failed".into(),
                    None => "not among deleted_version_ids".into(),
                };
                DeleteOutcome::Unconfirmed(self.http.fail(
                    &call,
                    ErrorKind::Rejected,
                    format!(
                        "version {} not deleted (HTTP {}): {reason}",
                        b.id,
                        response.status.as_u16()
                    ),
                ))
            })
            .collect()
    }
}

impl Provider for CloudinaryProvider {
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "cloudinary {} {} {} {:?} {:?} {:?} {:?}",
            self.http.account(),
            self.base,
            self.resource_type,
            self.asset_type,
            self.prefix,
            self.tags,
            self.asset_ids
        ))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let assets = self.assets().await?;
            let named = !self.asset_ids.is_empty();
            // Versions of several assets at once, in order, up to the account's cap.
            let mut results = futures_util::stream::iter(assets)
                .map(|asset_id| async move { self.versions(&asset_id, named).await })
                .buffered(self.http.settings().concurrency.max(1));
            let mut backups = Vec::new();
            while let Some(result) = results.next().await {
                backups.extend(result?);
            }
            Ok(backups)
        })
    }

    /// All versions of one asset in one call.
    fn batches(&self, doomed: &[&Backup]) -> Batches {
        // Assets in the order of their first version to delete.
        let mut calls: Vec<Vec<usize>> = Vec::new();
        let mut by_asset: std::collections::HashMap<&str, usize> = Default::default();
        for (position, backup) in doomed.iter().enumerate() {
            let call = *by_asset.entry(backup.group.as_str()).or_insert_with(|| {
                calls.push(Vec::new());
                calls.len() - 1
            });
            calls[call].push(position);
        }
        let mut batches = Batches::default();
        for call in calls {
            batches.push(call);
        }
        batches
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(self.delete_asset_versions(batch))
    }

    fn delete_concurrency(&self) -> usize {
        self.http.settings().concurrency
    }
}
