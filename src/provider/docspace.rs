//! ONLYOFFICE DocSpace backups (PROVIDERS.md §2). One call lists the whole history of the
//! portal (`GET /api/2.0/backup/getbackuphistory`, optional `Dump`); every listed record is a
//! complete backup (records are written only after success); group = the portal. Deletion is
//! one record per call (`DELETE /api/2.0/backup/deletebackup/{id}`, answer `response: true`).
//! DocSpace answers 500 for an id it does not know, so a 404 or 5xx is settled by a fresh
//! listing. `deletebackuphistory` (delete everything) is never called from a policy: only the
//! operator command `docspace purge-history` reaches [`DocspaceProvider::purge_history`].

use super::HttpFailure;
use super::{BoxFuture, DeleteOutcome, ErrorKind, Provider, ProviderError, failed_delete};
use crate::http::{self, Credentials, Http, Request};
use crate::model::{Backup, Status};
use crate::policy::config::DocspaceAuth;
use crate::policy::select::{DOCSPACE_STORAGE_TYPES as STORAGE_TYPES, Select, storage_type_number};
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

/// What to check when the portal answers 401.
pub const HINT: &str =
    "api_key (an `sk-...` key with *:read and *:write scope, sent as Bearer) or auth_token";

const HISTORY: &str = "/api/2.0/backup/getbackuphistory";
const DELETE: &str = "/api/2.0/backup/deletebackup";
const PURGE: &str = "/api/2.0/backup/deletebackuphistory";

/// The `Authorization` value: `Bearer <api_key>`, or the auth token as is.
pub fn authorization(auth: &DocspaceAuth) -> Result<Credentials, String> {
    let (reference, prefix) = match auth {
        DocspaceAuth::ApiKey(r) => (r, "Bearer "),
        DocspaceAuth::AuthToken(r) => (r, ""),
    };
    let secret = reference.resolve()?;
    let authorization =
        HeaderValue::from_str(&format!("{prefix}{}", secret.expose())).map_err(|_| {
            format!("secret {reference} holds characters not allowed in an HTTP header")
        })?;
    Ok(Credentials {
        authorization,
        secrets: vec![secret],
    })
}

pub struct DocspaceProvider {
    http: Arc<Http>,
    base: String,
    /// The portal's host (and port): the group of every backup.
    portal: String,
    dump: bool,
    storage_type: Option<usize>,
}

/// The response envelope of every DocSpace endpoint.
#[derive(Deserialize)]
struct Envelope {
    /// Left unparsed until the envelope is known to be good, then read as what the call
    /// answers (a list of records is read straight into them).
    response: Option<Box<RawValue>>,
    count: Option<u64>,
    status: Option<i64>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    file_name: Option<String>,
    storage_type: Option<Value>,
    created_on: String,
    expires_on: Option<String>,
}

impl DocspaceProvider {
    pub fn new(
        http: Arc<Http>,
        base_url: &str,
        select: &Select,
    ) -> Result<DocspaceProvider, ProviderError> {
        let portal = reqwest::Url::parse(base_url)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
            .ok_or_else(|| {
                ProviderError::new(http.account(), "open", format!("bad base_url {base_url}"))
            })?;
        let storage_type = match &select.storage_type {
            Some(name) => Some(storage_type_number(name).ok_or_else(|| {
                ProviderError::new(
                    http.account(),
                    "open",
                    format!("unknown storage_type {name}"),
                )
            })?),
            None => None,
        };
        Ok(DocspaceProvider {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            portal,
            dump: select.dump.unwrap_or(false),
            storage_type,
        })
    }

    fn history_call(&self, dump: bool) -> (String, reqwest::Url) {
        let mut url = http::url(&self.base, HISTORY, &[]).expect("the base URL was checked");
        let mut call = format!("GET {HISTORY}");
        if dump {
            url.query_pairs_mut().append_pair("Dump", "true");
            call.push_str("?Dump=true");
        }
        (call, url)
    }

    /// Reads the envelope: `status` 0 and a `response`, read as `T` (`what` names it in an
    /// error); anything else is an error. Also the envelope's `count`.
    fn payload<T: DeserializeOwned>(
        &self,
        call: &str,
        response: &http::Response,
        what: &str,
    ) -> Result<(T, Option<u64>), ProviderError> {
        let envelope: Envelope = self.http.parse_json(call, response)?;
        let bad = |message: String| self.http.fail(call, ErrorKind::BadResponse, message);
        if envelope.status.unwrap_or(0) != 0 || envelope.error.is_some() {
            let message = envelope
                .error
                .as_ref()
                .and_then(|e| e["message"].as_str())
                .unwrap_or("no message");
            return Err(bad(format!("the portal reported an error: {message}")));
        }
        let payload = envelope
            .response
            .ok_or_else(|| bad("the envelope has no `response`".into()))?;
        let value = serde_json::from_str(payload.get())
            .map_err(|e| bad(format!("`response` is not {what}: {e}")))?;
        Ok((value, envelope.count))
    }

    /// Every record of the history (the selection's `dump` decides which history).
    pub async fn history(&self, dump: bool) -> Result<Vec<Backup>, ProviderError> {
        let (call, url) = self.history_call(dump);
        let response = self.http.send(&call, || Request::get(url.clone())).await?;
        let (records, count): (Vec<Record>, _) =
            self.payload(&call, &response, "a list of backup records")?;
        if let Some(count) = count
            && count != records.len() as u64
        {
            return Err(self.http.fail(
                &call,
                ErrorKind::BadResponse,
                format!(
                    "the envelope counts {count} records but holds {}: the listing is incomplete",
                    records.len()
                ),
            ));
        }
        records
            .into_iter()
            .map(|record| self.backup(&call, record))
            .collect()
    }

    fn backup(&self, call: &str, record: Record) -> Result<Backup, ProviderError> {
        let created_at = super::parse_time(&record.created_on).ok_or_else(|| {
            self.http.fail(
                call,
                ErrorKind::BadResponse,
                format!(
                    "backup {}: createdOn {:?} is not a date",
                    record.id, record.created_on
                ),
            )
        })?;
        let storage = record.storage_type.as_ref().and_then(|v| match v {
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            Value::String(s) => storage_type_number(s),
            _ => None,
        });
        // expiresOn 0001-01-01 means never; a real date marks a temporary (DataStore) backup.
        let expires = record
            .expires_on
            .as_deref()
            .filter(|e| !e.starts_with("0001-01-01"));
        let kind = storage
            .and_then(|n| STORAGE_TYPES.get(n))
            .map(|name| match expires {
                Some(when) => format!("{name}, expires {when}"),
                None => name.to_string(),
            });
        // The storage type is also a tag (`storage:documents`), for `keep.tags` and the plan.
        let tags = storage
            .and_then(|n| STORAGE_TYPES.get(n))
            .map(|name| vec![format!("storage:{name}")])
            .unwrap_or_default();
        Ok(Backup {
            id: record.id.into(),
            group: self.portal.as_str().into(),
            created_at,
            status: Status::Complete,
            name: record.file_name.map(Into::into),
            size: None,
            tags: tags.into(),
            kind: kind.map(Into::into),
            live: false,
        })
    }

    async fn delete_one(&self, backup: &Backup) -> DeleteOutcome {
        let call = format!("DELETE {DELETE}/{}", backup.id);
        let url = match http::url(&self.base, DELETE, &[&backup.id]) {
            Ok(url) => url,
            Err(e) => {
                return DeleteOutcome::Failed(self.http.fail(&call, ErrorKind::Other, e));
            }
        };
        let response = match self.http.send(&call, || Request::delete(url.clone())).await {
            Ok(response) => response,
            Err(e) => return failed_delete(e.into()),
        };
        match self.payload(&call, &response, "an answer") {
            Ok((Value::Bool(true), _)) => DeleteOutcome::Deleted,
            Ok((other, _)) => DeleteOutcome::Failed(self.http.fail(
                &call,
                ErrorKind::BadResponse,
                format!("the portal answered {other} instead of true"),
            )),
            Err(e) => DeleteOutcome::Failed(e),
        }
    }

    /// `DELETE /api/2.0/backup/deletebackuphistory`: removes every backup of the portal's
    /// history (or of the dump history). Only for the explicit operator command.
    pub async fn purge_history(&self, dump: bool) -> Result<(), ProviderError> {
        let mut url = http::url(&self.base, PURGE, &[]).expect("the base URL was checked");
        let mut call = format!("DELETE {PURGE}");
        if dump {
            url.query_pairs_mut().append_pair("Dump", "true");
            call.push_str("?Dump=true");
        }
        let response = self
            .http
            .send(&call, || Request::delete(url.clone()))
            .await?;
        match self.payload(&call, &response, "an answer")?.0 {
            Value::Bool(true) => Ok(()),
            other => Err(self.http.fail(
                &call,
                ErrorKind::BadResponse,
                format!("the portal answered {other} instead of true"),
            )),
        }
    }
}

impl Provider for DocspaceProvider {
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "docspace {} {} {} {:?}",
            self.http.account(),
            self.base,
            self.dump,
            self.storage_type
        ))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let backups = self.history(self.dump).await?;
            Ok(match self.storage_type {
                Some(wanted) => {
                    let tag = format!("storage:{}", STORAGE_TYPES[wanted]);
                    backups
                        .into_iter()
                        .filter(|b| b.tags.contains(&tag))
                        .collect()
                }
                None => backups,
            })
        })
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(super::one_by_one(batch, |b| self.delete_one(b)))
    }

    /// DocSpace allows 15 non-GET requests in flight per user; the account's cap applies too.
    fn delete_concurrency(&self) -> usize {
        self.http.settings().concurrency.min(15)
    }
}
