//! Huawei Cloud CBR (Cloud Backup and Recovery), CSBS's successor: server, disk and SFS Turbo
//! backups in vaults. Listing: `GET /v3/{project_id}/backups` with `image_type` (`backup`
//! unless the policy asks for replicas), the policy's vaults, resources and resource type,
//! offset paging of up to 1000 (the first page alone, then the others at once within the
//! account's cap), complete only when every page holds its share of the answer's `count`.
//! Times come zone-less (UTC) or with an offset; group = the resource (`resource_id`).
//!
//! Deletion is asynchronous: a fresh look at the backup (`GET /v3/{project_id}/backups/{id}`),
//! then `DELETE /v3/{project_id}/backups/{id}` (204, no task id); the backup then shows
//! `waiting_delete`/`deleting` until it is gone (404), polled up to `delete_timeout`. A backup
//! in any in-progress status is never sent for deletion. `CSBS.2003` (busy) is tried again
//! later; `CSBS.3001` (not found) means already gone; others (`6201`: cannot be deleted) fail.

use super::HttpFailure;
use super::huawei::{Poll, wait_until_gone};
use super::{
    BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError, failed_delete, lenient_u64,
    parse_time,
};
use crate::http::{self, Http, Request};
use crate::model::{Backup, Status};
use crate::policy::select::Select;
use futures_util::future::try_join_all;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest page CBR serves.
const PAGE: usize = 1000;

pub struct CbrProvider {
    http: Arc<Http>,
    base: String,
    project_id: String,
    vault_ids: Vec<String>,
    resource_ids: Vec<String>,
    resource_type: Option<String>,
    image_type: String,
    automatic: bool,
    delete_timeout: Duration,
    poll_interval: Duration,
}

#[derive(Deserialize)]
struct Page {
    backups: Option<Vec<Item>>,
    count: Option<Value>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    name: Option<String>,
    resource_id: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    extend_info: Option<ExtendInfo>,
}

impl super::Keyed for Item {
    fn key(&self) -> &str {
        &self.id
    }
}

#[derive(Deserialize, Default)]
struct ExtendInfo {
    #[serde(default)]
    auto_trigger: Value,
}

/// Where a backup is, as CBR reports it.
enum Look {
    Gone,
    Status(String),
}

const IN_PROGRESS: [&str; 6] = [
    "protecting",
    "waiting_protect",
    "restoring",
    "waiting_restore",
    "deleting",
    "waiting_delete",
];

impl CbrProvider {
    pub fn new(
        http: Arc<Http>,
        base_url: &str,
        project_id: &str,
        select: &Select,
        (delete_timeout, poll_interval): (Duration, Duration),
    ) -> CbrProvider {
        CbrProvider {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            project_id: project_id.to_string(),
            vault_ids: select.vault_ids.clone(),
            resource_ids: select.resource_ids.clone(),
            resource_type: select.resource_type.clone(),
            image_type: select.image_type.clone().unwrap_or_else(|| "backup".into()),
            automatic: select.automatic.unwrap_or(true),
            delete_timeout,
            poll_interval,
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec![self.project_id.as_str()];
        all.extend_from_slice(segments);
        http::url(&self.base, "/v3", &all)
            .map_err(|e| ProviderError::new(self.http.account(), "url", e))
    }

    fn bad(&self, call: &str, message: impl Into<String>) -> ProviderError {
        self.http.fail(call, ErrorKind::BadResponse, message)
    }

    fn page_call(offset: u64) -> String {
        format!("GET /v3/{{project_id}}/backups (offset {offset})")
    }

    /// One page: its backups and the `count` it reports.
    async fn page(
        &self,
        vault: Option<&str>,
        resource: Option<&str>,
        offset: u64,
    ) -> Result<(Vec<Item>, u64), ProviderError> {
        let call = Self::page_call(offset);
        let mut url = self.url(&["backups"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &PAGE.to_string());
            query.append_pair("offset", &offset.to_string());
            query.append_pair("image_type", &self.image_type);
            query.append_pair("sort", "created_at:asc");
            if let Some(vault) = vault {
                query.append_pair("vault_id", vault);
            }
            if let Some(resource) = resource {
                query.append_pair("resource_id", resource);
            }
            if let Some(kind) = &self.resource_type {
                query.append_pair("resource_type", kind);
            }
        }
        let response = self.http.send(&call, || Request::get(url.clone())).await?;
        let page: Page = self.http.parse_json(&call, &response)?;
        match (page.backups, page.count.as_ref().and_then(lenient_u64)) {
            (Some(backups), Some(count)) => Ok((backups, count)),
            _ => Err(self.bad(&call, "the answer has no `backups` list and `count`")),
        }
    }

    /// Every backup of one vault and resource (either may be all), complete or an error: the
    /// first page tells the count and the server's page size, the others come concurrently.
    async fn list_one(
        &self,
        vault: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Vec<Item>, ProviderError> {
        let first = self.page(vault, resource, 0).await?;
        super::offset_pages(
            "count",
            first,
            self.http.settings().concurrency,
            |offset| self.page(vault, resource, offset),
            Self::page_call,
            |call, message| self.bad(call, message),
        )
        .await
    }

    fn backup(&self, item: Item) -> Option<Backup> {
        let auto = item
            .extend_info
            .as_ref()
            .and_then(|i| i.auto_trigger.as_bool());
        if !self.automatic && auto == Some(true) {
            return None;
        }
        let status = match item.status.as_deref() {
            Some("available") => Status::Complete,
            Some("error") => Status::Failed,
            Some(s) if IN_PROGRESS.contains(&s) => Status::InProgress,
            _ => Status::Unknown,
        };
        let created_at = item.created_at.as_deref().and_then(parse_time);
        Some(Backup {
            id: item.id.into(),
            group: item.resource_id.unwrap_or_default().into(),
            // An unreadable time makes the backup unknown: never deleted, never counted.
            status: if created_at.is_some() {
                status
            } else {
                Status::Unknown
            },
            created_at: created_at.unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            name: item.name.map(Into::into),
            size: None,
            tags: Box::default(),
            kind: auto.map(|a| if a { "auto" } else { "manual" }.into()),
            live: false,
        })
    }

    fn show_call(id: &str) -> String {
        format!("GET /v3/{{project_id}}/backups/{id}")
    }

    /// The backup now: its status, or gone.
    async fn look(&self, id: &str) -> Result<Look, ProviderError> {
        let url = self.url(&["backups", id])?;
        let call = Self::show_call(id);
        match self.http.send(&call, || Request::get(url.clone())).await {
            Ok(response) => {
                let body: Value = self.http.parse_json(&call, &response)?;
                let status = body["backup"]["status"]
                    .as_str()
                    .ok_or_else(|| self.bad(&call, "the answer has no `backup.status`"))?;
                Ok(Look::Status(status.to_string()))
            }
            Err(e) if e.kind == ErrorKind::NotFound || e.code.as_deref() == Some("CSBS.3001") => {
                Ok(Look::Gone)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_one(&self, backup: &Backup) -> DeleteOutcome {
        let deadline = Instant::now() + self.delete_timeout;
        loop {
            match self.look(&backup.id).await {
                Ok(Look::Gone) => return DeleteOutcome::Deleted,
                Ok(Look::Status(s)) if s == "available" || s == "error" => {}
                Ok(Look::Status(s)) if s == "deleting" || s == "waiting_delete" => {
                    return DeleteOutcome::Pending("already being deleted by CBR".into());
                }
                Ok(Look::Status(s)) => {
                    return DeleteOutcome::Failed(self.http.fail(
                        &Self::show_call(&backup.id),
                        ErrorKind::Other,
                        format!("the backup is {s} now, not available: not deleted"),
                    ));
                }
                Err(e) => return failed_delete(e),
            }
            let url = match self.url(&["backups", &backup.id]) {
                Ok(url) => url,
                Err(e) => return DeleteOutcome::Failed(e),
            };
            let call = format!("DELETE /v3/{{project_id}}/backups/{}", backup.id);
            match self.http.send(&call, || Request::delete(url.clone())).await {
                Ok(_) => return DeleteOutcome::Pending("CBR accepted the deletion".into()),
                Err(e) if e.code.as_deref() == Some("CSBS.3001") => return DeleteOutcome::Deleted,
                Err(e)
                    if e.code.as_deref() == Some("CSBS.2003")
                        && Instant::now() + self.poll_interval < deadline =>
                {
                    // Busy (backing up, restoring, replicating): look again later.
                    tokio::time::sleep(self.poll_interval).await;
                }
                Err(e) => return failed_delete(e.into()),
            }
        }
    }

    /// Polls an accepted deletion until the backup is gone, fails, or the deadline passes.
    async fn wait(&self, backup: &Backup) -> DeleteOutcome {
        let times = (self.delete_timeout, self.poll_interval);
        wait_until_gone("CBR", times, || async {
            Ok(match self.look(&backup.id).await? {
                Look::Gone => Poll::Gone,
                Look::Status(s) if s == "error" || s == "available" => {
                    Poll::Failed(self.http.fail(
                        &Self::show_call(&backup.id),
                        ErrorKind::Other,
                        format!("CBR's deletion ended with the backup {s}: not deleted"),
                    ))
                }
                Look::Status(_) => Poll::Running,
            })
        })
        .await
    }
}

impl Provider for CbrProvider {
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "cbr {} {} {} {:?} {:?} {:?} {} {}",
            self.http.account(),
            self.base,
            self.project_id,
            self.vault_ids,
            self.resource_ids,
            self.resource_type,
            self.image_type,
            self.automatic
        ))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let vaults: Vec<Option<&str>> = match self.vault_ids.is_empty() {
                true => vec![None],
                false => self.vault_ids.iter().map(|v| Some(v.as_str())).collect(),
            };
            let resources: Vec<Option<&str>> = match self.resource_ids.is_empty() {
                true => vec![None],
                false => self.resource_ids.iter().map(|r| Some(r.as_str())).collect(),
            };
            // Each (vault, resource) listing is independent: all at once, within the cap.
            let listings = vaults
                .iter()
                .flat_map(|v| resources.iter().map(move |r| (*v, *r)))
                .map(|(v, r)| self.list_one(v, r));
            let mut seen = std::collections::HashSet::new();
            Ok(try_join_all(listings)
                .await?
                .into_iter()
                .flatten()
                .filter(|item| seen.insert(item.id.clone()))
                .filter_map(|item| self.backup(item))
                .collect())
        })
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(super::one_by_one(batch, |b| self.delete_one(b)))
    }

    fn delete_concurrency(&self) -> usize {
        self.http.settings().concurrency.min(10)
    }

    fn settle<'a>(&'a self, backup: &'a Backup) -> BoxFuture<'a, DeleteOutcome> {
        Box::pin(self.wait(backup))
    }
}
