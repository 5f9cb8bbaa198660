//! Huawei Cloud TaurusDB manual backups (PROVIDERS.md §5). Listing: `GET
//! /v3/{project_id}/backups?backup_type=manual`, `offset`/`limit` 100 until `total_count`, the
//! pages after the first fetched concurrently within the account's cap (per instance, all
//! instances at once, when `select.instance_ids` names them); times carry an offset without a
//! colon (`2020-07-06T10:41:14+0800`); group = the DB instance. Automated backups are never
//! listed for deletion and never deleted. Deletion: the batch form (`DELETE
//! /v3/{project_id}/backups` with up to 50 `backup_ids`), each failure reported per id; a
//! "backup does not exist" answer is settled by a fresh listing. Every call sends
//! `X-Language: en-us`.

use super::HttpFailure;
use super::{Batches, BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError, failed_delete};
use crate::http::{self, Http, Request};
use crate::model::{Backup, Status};
use futures_util::future::try_join_all;
use jiff::Timestamp;
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

const PAGE: u64 = 100;
/// The batch delete call takes at most this many ids.
pub const BATCH: usize = 50;
/// Error codes that mean the backup is not there (any more): a fresh listing decides.
const GONE: &[&str] = &["DBS.201203", "DBS.280214", "DBS.201010"];

pub struct TaurusdbProvider {
    http: Arc<Http>,
    base: String,
    project_id: String,
    instance_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Page {
    /// Read as records once the page is known to have them.
    backups: Option<Box<RawValue>>,
    total_count: Option<u64>,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    name: Option<String>,
    begin_time: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    size: Option<Value>,
    instance_id: Option<String>,
}

impl super::Keyed for Record {
    fn key(&self) -> &str {
        &self.id
    }
}

/// TaurusDB's `2020-07-06T10:41:14+0800` (or RFC 3339).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%z", text)
        .and_then(|t| t.to_timestamp())
        .ok()
        .or_else(|| super::parse_time(text))
}

fn with_language(request: Request<'_>) -> Request<'_> {
    request.header("X-Language", "en-us")
}

impl TaurusdbProvider {
    pub fn new(
        http: Arc<Http>,
        base_url: &str,
        project_id: &str,
        instance_ids: &[String],
    ) -> TaurusdbProvider {
        TaurusdbProvider {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            project_id: project_id.to_string(),
            instance_ids: instance_ids.to_vec(),
        }
    }

    fn backups_url(&self) -> Result<Url, ProviderError> {
        http::url(&self.base, "/v3", &[&self.project_id, "backups"])
            .map_err(|e| ProviderError::new(self.http.account(), "url", e))
    }

    fn bad(&self, call: &str, message: impl Into<String>) -> ProviderError {
        self.http.fail(call, ErrorKind::BadResponse, message)
    }

    fn page_call(offset: u64) -> String {
        format!("GET /v3/{{project_id}}/backups (offset {offset})")
    }

    /// One page: its records and the `total_count` it reports.
    async fn page(
        &self,
        instance: Option<&str>,
        offset: u64,
    ) -> Result<(Vec<Record>, u64), ProviderError> {
        let mut url = self.backups_url()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("backup_type", "manual");
            query.append_pair("offset", &offset.to_string());
            query.append_pair("limit", &PAGE.to_string());
            if let Some(id) = instance {
                query.append_pair("instance_id", id);
            }
        }
        let call = Self::page_call(offset);
        let response = self
            .http
            .send(&call, || with_language(Request::get(url.clone())))
            .await?;
        let page: Page = self.http.parse_json(&call, &response)?;
        let (Some(list), Some(count)) = (page.backups, page.total_count) else {
            return Err(self.bad(&call, "the answer lacks `backups` or `total_count`"));
        };
        let records = serde_json::from_str(list.get())
            .map_err(|e| self.bad(&call, format!("a backup is not as expected: {e}")))?;
        Ok((records, count))
    }

    /// Every manual backup of one instance (or of the project), in offset order. The first
    /// page tells `total_count` and the server's page size; the other pages do not depend on
    /// each other and are fetched concurrently, up to the account's cap. Each must report the
    /// same total and hold a full page (the last: the rest), and no backup may come twice:
    /// otherwise the list changed while paging and the listing is not complete.
    async fn list_instance(&self, instance: Option<&str>) -> Result<Vec<Record>, ProviderError> {
        let first = self.page(instance, 0).await?;
        super::offset_pages(
            "total_count",
            first,
            self.http.settings().concurrency,
            |offset| self.page(instance, offset),
            Self::page_call,
            |call, message| self.bad(call, message),
        )
        .await
    }

    fn backup(record: Record) -> Option<Backup> {
        // The filter asks for manual backups; an automated one is never ours to manage.
        if record.kind.as_deref() != Some("manual") {
            return None;
        }
        let status = match record.status.as_deref() {
            Some("COMPLETED" | "AVAILABLE") => Status::Complete,
            Some("FAILED") => Status::Failed,
            Some("BUILDING") => Status::InProgress,
            _ => Status::Unknown,
        };
        let created_at = record.begin_time.as_deref().and_then(parse_time);
        Some(Backup {
            id: record.id.into(),
            group: record.instance_id.unwrap_or_default().into(),
            status: if created_at.is_some() {
                status
            } else {
                Status::Unknown
            },
            created_at: created_at.unwrap_or(Timestamp::UNIX_EPOCH),
            name: record.name.map(Into::into),
            size: record
                .size
                .as_ref()
                .and_then(super::lenient_u64)
                .map(|mb| mb.saturating_mul(1024 * 1024)),
            tags: Box::default(),
            kind: Some("manual".into()),
            live: false,
        })
    }

    async fn delete_batch(&self, batch: &[Backup]) -> Vec<DeleteOutcome> {
        let call = "DELETE /v3/{project_id}/backups";
        let url = match self.backups_url() {
            Ok(url) => url,
            Err(e) => {
                return batch
                    .iter()
                    .map(|_| DeleteOutcome::Failed(e.clone()))
                    .collect();
            }
        };
        // Only manual backups are deleted, whatever a plan says.
        if let Some(b) = batch.iter().find(|b| b.kind.as_deref() != Some("manual")) {
            let refused = self.http.fail(
                call,
                ErrorKind::Other,
                format!(
                    "refusing to delete {}: only manual backups are deleted",
                    b.id
                ),
            );
            return batch
                .iter()
                .map(|_| DeleteOutcome::Failed(refused.clone()))
                .collect();
        }
        let body = json!({"backup_ids": batch.iter().map(|b| b.id.as_str()).collect::<Vec<_>>()});
        let response = match self
            .http
            .send(call, || {
                with_language(Request::delete(url.clone()).json(&body))
            })
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
        let answer: Value = match self.http.parse_json(call, &response) {
            Ok(v) => v,
            Err(e) => {
                return batch
                    .iter()
                    .map(|_| failed_delete(e.clone().into()))
                    .collect();
            }
        };
        let failures = answer["failed_results"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        batch
            .iter()
            .map(|b| {
                let Some(failure) = failures.iter().find(|f| f["backup_id"] == b.id.as_str())
                else {
                    return DeleteOutcome::Deleted;
                };
                let code = failure["error_code"].as_str().unwrap_or_default();
                let message = failure["error_msg"].as_str().unwrap_or("no message");
                let error = ProviderError {
                    code: Some(code.to_string()).filter(|c| !c.is_empty()),
                    ..self
                        .http
                        .fail(call, ErrorKind::Rejected, format!("{code}: {message}"))
                };
                if GONE.contains(&code) {
                    DeleteOutcome::Unconfirmed(error)
                } else {
                    DeleteOutcome::Failed(error)
                }
            })
            .collect()
    }
}

impl Provider for TaurusdbProvider {
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "taurusdb {} {} {} {:?}",
            self.http.account(),
            self.base,
            self.project_id,
            self.instance_ids
        ))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let records = if self.instance_ids.is_empty() {
                self.list_instance(None).await?
            } else {
                // The instances' listings are independent: all at once, within the cap.
                try_join_all(
                    self.instance_ids
                        .iter()
                        .map(|id| self.list_instance(Some(id))),
                )
                .await?
                .into_iter()
                .flatten()
                .collect()
            };
            Ok(records
                .into_iter()
                .filter_map(TaurusdbProvider::backup)
                .collect())
        })
    }

    fn batches(&self, doomed: &[&Backup]) -> Batches {
        Batches::chunks(doomed.len(), BATCH)
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(self.delete_batch(batch))
    }

    fn delete_concurrency(&self) -> usize {
        self.http.settings().concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_an_offset_without_colon() {
        assert_eq!(
            parse_time("2020-07-06T10:41:14+0800").unwrap().to_string(),
            "2020-07-06T02:41:14Z"
        );
        assert_eq!(
            parse_time("2020-07-06T10:41:14Z").unwrap().to_string(),
            "2020-07-06T10:41:14Z"
        );
        assert!(parse_time("06/07/2020").is_none());
    }

    #[test]
    fn only_manual_backups_are_managed_and_statuses_map() {
        let record = |kind: &str, status: &str| Record {
            id: "b1br07".into(),
            name: Some("TaurusDB-e747".into()),
            begin_time: Some("2020-07-06T10:41:14+0800".into()),
            status: Some(status.into()),
            kind: Some(kind.into()),
            size: Some(json!(3)),
            instance_id: Some("i1in07".into()),
        };
        assert!(TaurusdbProvider::backup(record("auto", "COMPLETED")).is_none());
        let b = TaurusdbProvider::backup(record("manual", "AVAILABLE")).unwrap();
        assert_eq!((b.status, b.group.as_str()), (Status::Complete, "i1in07"));
        assert_eq!(b.size, Some(3 * 1024 * 1024));
        let status = |s| {
            TaurusdbProvider::backup(record("manual", s))
                .unwrap()
                .status
        };
        assert_eq!(status("COMPLETED"), Status::Complete);
        assert_eq!(status("FAILED"), Status::Failed);
        assert_eq!(status("BUILDING"), Status::InProgress);
        assert_eq!(status("RESTORING"), Status::Unknown);
    }
}
