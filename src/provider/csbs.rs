//! Huawei Cloud CSBS server backups (PROVIDERS.md §4). Listing: `GET
//! /v1/{project_id}/checkpoint_items`, marker paging (oldest first) until an empty page, checked
//! against `checkpoint_items/count` (asked for beside the pages after the first); per server,
//! all servers at once, when `select.resource_ids` names them.
//! Times are zone-less UTC with microseconds; group = the server (`resource_id`).
//!
//! Deletion is asynchronous. For each backup: a fresh look at the item (its status now, and
//! the checkpoint it belongs to), then `DELETE /v1/{project_id}/providers/{provider}/
//! checkpoints/{checkpoint_id}?checkpoint_items={id}` — never without `checkpoint_items`, which
//! would delete every backup of the checkpoint — then polling the item until it is `deleted`
//! or gone (404 `CSBS.3001`), up to `delete_timeout`. At most 5 deletion tasks per account run
//! at once (the account's task slots). `CSBS.2003` (busy) is tried again later;
//! `BackupService.4008` stops every further deletion: the project must use CBR.

use super::HttpFailure;
use super::huawei::{Poll, wait_until_gone};
use super::{
    BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError, failed_delete, parse_time,
};
use crate::http::{self, Http, Request};
use crate::model::{Backup, Status};
use futures_util::future::{try_join, try_join_all};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The fixed CSBS provider id.
pub const PROVIDER_ID: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";

/// Deletion tasks a user may run at once (PROVIDERS.md §4.3).
pub const TASK_SLOTS: usize = 5;

const PAGE: usize = 1000;

pub struct CsbsProvider {
    http: Arc<Http>,
    base: String,
    project_id: String,
    resource_ids: Vec<String>,
    delete_timeout: Duration,
    poll_interval: Duration,
    slots: Arc<Semaphore>,
    /// Set by `BackupService.4008`: why no further deletion is tried.
    stopped: Mutex<Option<ProviderError>>,
}

/// One page of `checkpoint_items`, read as items once it is known to be a list.
#[derive(Deserialize)]
struct Page {
    checkpoint_items: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    checkpoint_id: Option<String>,
    name: Option<String>,
    resource_id: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    extend_info: Option<ExtendInfo>,
}

/// The few `extend_info` fields retentiond reads, of the dozens CSBS sends.
#[derive(Deserialize, Default)]
struct ExtendInfo {
    #[serde(default)]
    auto_trigger: Value,
    /// MB.
    #[serde(default)]
    size: Value,
    #[serde(default)]
    fail_op: Value,
    #[serde(default)]
    fail_reason: Value,
}

impl Item {
    fn info(&self) -> &ExtendInfo {
        const NONE: &ExtendInfo = &ExtendInfo {
            auto_trigger: Value::Null,
            size: Value::Null,
            fail_op: Value::Null,
            fail_reason: Value::Null,
        };
        self.extend_info.as_ref().unwrap_or(NONE)
    }
}

/// Where an item is, as CSBS reports it.
enum Look {
    Gone,
    Item(Box<Item>),
}

impl CsbsProvider {
    pub fn new(
        http: Arc<Http>,
        base_url: &str,
        project_id: &str,
        resource_ids: &[String],
        (delete_timeout, poll_interval): (Duration, Duration),
        slots: Arc<Semaphore>,
    ) -> CsbsProvider {
        CsbsProvider {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            project_id: project_id.to_string(),
            resource_ids: resource_ids.to_vec(),
            delete_timeout,
            poll_interval,
            slots,
            stopped: Mutex::new(None),
        }
    }

    /// `{base}/v1/{project_id}/` and the segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec![self.project_id.as_str()];
        all.extend_from_slice(segments);
        http::url(&self.base, "/v1", &all)
            .map_err(|e| ProviderError::new(self.http.account(), "url", e))
    }

    fn bad(&self, call: &str, message: impl Into<String>) -> ProviderError {
        self.http.fail(call, ErrorKind::BadResponse, message)
    }

    /// Every item of one server (or of the project), oldest first, checked against the count.
    /// Marker pages follow one another; the count does not depend on them and is asked for
    /// once the first page has come (so that rejected credentials cost one request).
    async fn list_items(&self, resource_id: Option<&str>) -> Result<Vec<Item>, ProviderError> {
        let first = self.page(resource_id, None, 1).await?;
        let rest = async move {
            match first.last().map(|i| i.id.clone()) {
                Some(marker) => self.pages_after(resource_id, first, marker).await,
                None => Ok(first),
            }
        };
        let (items, (call, count)) = try_join(rest, self.count(resource_id)).await?;
        if count != items.len() as u64 {
            return Err(self.bad(
                call,
                format!(
                    "CSBS counts {count} backups but the pages listed {}; the listing is not complete (backups may have been created or deleted meanwhile: run again)",
                    items.len()
                ),
            ));
        }
        Ok(items)
    }

    /// The pages after `items` (the first page, ending at `marker`), until an empty page.
    async fn pages_after(
        &self,
        resource_id: Option<&str>,
        mut items: Vec<Item>,
        mut marker: String,
    ) -> Result<Vec<Item>, ProviderError> {
        for number in 2.. {
            let page = self.page(resource_id, Some(&marker), number).await?;
            let Some(last) = page.last() else { break };
            if last.id == marker {
                return Err(self.bad(
                    &Self::page_call(number),
                    "paging did not advance (the same marker came back)",
                ));
            }
            marker = last.id.clone();
            items.extend(page);
        }
        Ok(items)
    }

    fn page_call(number: usize) -> String {
        format!("GET /v1/{{project_id}}/checkpoint_items (page {number})")
    }

    /// One marker page, oldest first.
    async fn page(
        &self,
        resource_id: Option<&str>,
        marker: Option<&str>,
        number: usize,
    ) -> Result<Vec<Item>, ProviderError> {
        let mut url = self.url(&["checkpoint_items"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &PAGE.to_string());
            query.append_pair("sort", "created_at:asc");
            if let Some(id) = resource_id {
                query.append_pair("resource_id", id);
            }
            if let Some(marker) = marker {
                query.append_pair("marker", marker);
            }
        }
        let call = Self::page_call(number);
        let response = self.http.send(&call, || Request::get(url.clone())).await?;
        let page: Page = self.http.parse_json(&call, &response)?;
        let list = page
            .checkpoint_items
            .filter(|list| list.get().starts_with('['))
            .ok_or_else(|| self.bad(&call, "the answer has no `checkpoint_items` list"))?;
        serde_json::from_str(list.get())
            .map_err(|e| self.bad(&call, format!("a checkpoint item is not as expected: {e}")))
    }

    /// `checkpoint_items/count`: the only total CSBS reports.
    async fn count(&self, resource_id: Option<&str>) -> Result<(&'static str, u64), ProviderError> {
        let mut url = self.url(&["checkpoint_items", "count"])?;
        if let Some(id) = resource_id {
            url.query_pairs_mut().append_pair("resource_id", id);
        }
        let call = "GET /v1/{project_id}/checkpoint_items/count";
        let response = self.http.send(call, || Request::get(url.clone())).await?;
        let body: Value = self.http.parse_json(call, &response)?;
        let count = body["count"]
            .as_u64()
            .ok_or_else(|| self.bad(call, "the answer has no `count`"))?;
        Ok((call, count))
    }

    fn backup(&self, item: Item) -> Option<Backup> {
        let status = match item.status.as_deref() {
            Some("available") => Status::Complete,
            Some("error") => Status::Failed,
            Some("deleted") => return None,
            Some(
                "waiting_protect" | "protecting" | "waiting_restore" | "restoring"
                | "waiting_delete" | "deleting",
            ) => Status::InProgress,
            _ => Status::Unknown,
        };
        let created_at = item.created_at.as_deref().and_then(parse_time);
        let auto = item.info().auto_trigger.as_bool();
        let size = item.info().size.as_u64();
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
            size: size.map(|mb| mb.saturating_mul(1024 * 1024)),
            tags: Box::default(),
            kind: auto.map(|a| if a { "auto" } else { "manual" }.into()),
            live: false,
        })
    }

    /// The item now: its status and checkpoint, or gone.
    async fn look(&self, id: &str) -> Result<Look, ProviderError> {
        let url = self.url(&["checkpoint_items", id])?;
        let call = format!("GET /v1/{{project_id}}/checkpoint_items/{id}");
        match self.http.send(&call, || Request::get(url.clone())).await {
            Ok(response) => {
                let body: Value = self.http.parse_json(&call, &response)?;
                let item: Item = serde_json::from_value(body["checkpoint_item"].clone())
                    .map_err(|e| self.bad(&call, format!("no readable `checkpoint_item`: {e}")))?;
                if item.status.as_deref() == Some("deleted") {
                    Ok(Look::Gone)
                } else {
                    Ok(Look::Item(Box::new(item)))
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound || e.code.as_deref() == Some("CSBS.3001") => {
                Ok(Look::Gone)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn stop(&self, error: &ProviderError) -> ProviderError {
        let stopped = ProviderError {
            message: format!(
                "{}; this project may not use CSBS (BackupService.4008): new projects must use CBR (Cloud Backup and Recovery): manage these backups with an account of `provider: huaweicloud-cbr`. No further CSBS deletion is tried",
                error.message
            ),
            ..error.clone()
        };
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(stopped.clone());
        stopped
    }

    async fn delete_one(&self, backup: &Backup) -> DeleteOutcome {
        if let Some(stopped) = self
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return DeleteOutcome::Failed(stopped);
        }
        let deadline = Instant::now() + self.delete_timeout;
        loop {
            let item = match self.look(&backup.id).await {
                Ok(Look::Gone) => return DeleteOutcome::Deleted,
                Ok(Look::Item(item)) => item,
                Err(e) => return failed_delete(e),
            };
            match item.status.as_deref() {
                Some("available" | "error") => {}
                Some("waiting_delete" | "deleting") => {
                    return DeleteOutcome::Pending("already being deleted by CSBS".into());
                }
                other => {
                    return DeleteOutcome::Failed(self.http.fail(
                        &format!("GET /v1/{{project_id}}/checkpoint_items/{}", backup.id),
                        ErrorKind::Other,
                        format!(
                            "the backup is {} now, not available: not deleted",
                            other.unwrap_or("of unknown status")
                        ),
                    ));
                }
            }
            let Some(checkpoint) = item.checkpoint_id.filter(|c| !c.is_empty()) else {
                return DeleteOutcome::Failed(self.bad(
                    "GET /v1/{project_id}/checkpoint_items/{id}",
                    format!("backup {} has no checkpoint_id: not deleted", backup.id),
                ));
            };
            let url = match self.delete_url(&checkpoint, &backup.id) {
                Ok(url) => url,
                Err(e) => return DeleteOutcome::Failed(e),
            };
            let call = format!(
                "DELETE /v1/{{project_id}}/providers/{PROVIDER_ID}/checkpoints/{checkpoint}?checkpoint_items={}",
                backup.id
            );
            match self.http.send(&call, || Request::delete(url.clone())).await {
                Ok(_) => {
                    return DeleteOutcome::Pending(format!(
                        "CSBS accepted the deletion task (checkpoint {checkpoint})"
                    ));
                }
                Err(e) if e.code.as_deref() == Some("CSBS.3001") => return DeleteOutcome::Deleted,
                Err(e) if e.code.as_deref() == Some("BackupService.4008") => {
                    return DeleteOutcome::Failed(self.stop(&e.into()));
                }
                Err(e)
                    if e.code.as_deref() == Some("CSBS.2003")
                        && Instant::now() + self.poll_interval < deadline =>
                {
                    // Busy (backing up, restoring or deleting): look again later.
                    tokio::time::sleep(self.poll_interval).await;
                }
                Err(e) => return failed_delete(e.into()),
            }
        }
    }

    /// The delete URL: always with `checkpoint_items`, so that only this backup goes.
    fn delete_url(&self, checkpoint: &str, item: &str) -> Result<Url, ProviderError> {
        let mut url = self.url(&["providers", PROVIDER_ID, "checkpoints", checkpoint])?;
        url.query_pairs_mut().append_pair("checkpoint_items", item);
        Ok(url)
    }

    async fn wait(&self, backup: &Backup) -> DeleteOutcome {
        let times = (self.delete_timeout, self.poll_interval);
        wait_until_gone("CSBS", times, || async {
            Ok(match self.look(&backup.id).await? {
                Look::Gone => Poll::Gone,
                Look::Item(item) if item.info().fail_op.as_str() == Some("delete") => {
                    let reason = item
                        .info()
                        .fail_reason
                        .as_str()
                        .unwrap_or("no reason given");
                    Poll::Failed(self.http.fail(
                        &format!("GET /v1/{{project_id}}/checkpoint_items/{}", backup.id),
                        ErrorKind::Other,
                        format!("CSBS's deletion task failed: {reason}"),
                    ))
                }
                Look::Item(_) => Poll::Running,
            })
        })
        .await
    }
}

impl Provider for CsbsProvider {
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "csbs {} {} {} {:?}",
            self.http.account(),
            self.base,
            self.project_id,
            self.resource_ids
        ))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let items = if self.resource_ids.is_empty() {
                self.list_items(None).await?
            } else {
                // The servers' listings are independent: all at once, within the cap.
                try_join_all(self.resource_ids.iter().map(|id| self.list_items(Some(id))))
                    .await?
                    .into_iter()
                    .flatten()
                    .collect()
            };
            Ok(items.into_iter().filter_map(|i| self.backup(i)).collect())
        })
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(super::one_by_one(batch, |b| self.delete_one(b)))
    }

    fn delete_concurrency(&self) -> usize {
        TASK_SLOTS
    }

    fn settle<'a>(&'a self, backup: &'a Backup) -> BoxFuture<'a, DeleteOutcome> {
        Box::pin(self.wait(backup))
    }

    fn task_slots(&self) -> Option<Arc<Semaphore>> {
        Some(self.slots.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpSettings;

    fn provider() -> CsbsProvider {
        let http = Arc::new(Http::new("vms", HttpSettings::default(), None, "auth").unwrap());
        CsbsProvider::new(
            http,
            "https://csbs.example.com/",
            "p1",
            &[],
            (Duration::from_secs(60), Duration::from_secs(1)),
            Arc::new(Semaphore::new(TASK_SLOTS)),
        )
    }

    #[test]
    fn the_delete_url_always_names_the_item() {
        let url = provider().delete_url("cp/1", "item?x").unwrap();
        assert_eq!(
            url.as_str(),
            "https://csbs.example.com/v1/p1/providers/fc4d5750-22e7-4798-8a46-f48f62c4c1da/checkpoints/cp%2F1?checkpoint_items=item%3Fx"
        );
    }

    #[test]
    fn statuses_and_times_map_to_the_model() {
        let p = provider();
        let item = |status: &str| Item {
            id: "i".into(),
            checkpoint_id: Some("c".into()),
            name: Some("autobk_1".into()),
            resource_id: Some("server-1".into()),
            status: Some(status.into()),
            created_at: Some("2017-04-15T04:20:37.277880".into()),
            extend_info: serde_json::from_value(
                serde_json::json!({"auto_trigger": true, "size": 2}),
            )
            .unwrap(),
        };
        let b = p.backup(item("available")).unwrap();
        assert_eq!(b.status, Status::Complete);
        assert_eq!(b.group, "server-1");
        assert_eq!(b.created_at.to_string(), "2017-04-15T04:20:37.27788Z");
        assert_eq!(b.size, Some(2 * 1024 * 1024));
        assert_eq!(b.kind.as_deref(), Some("auto"));
        assert_eq!(p.backup(item("error")).unwrap().status, Status::Failed);
        for busy in ["protecting", "deleting", "waiting_delete", "restoring"] {
            assert_eq!(p.backup(item(busy)).unwrap().status, Status::InProgress);
        }
        assert!(p.backup(item("deleted")).is_none());
        assert_eq!(p.backup(item("frozen")).unwrap().status, Status::Unknown);
    }
}
