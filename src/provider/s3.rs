//! S3-compatible object storage (`s3`): AWS S3, MinIO, Ceph RGW, Huawei OBS. Backups are the
//! objects under the policy's `select.prefix` whose key below the prefix matches its
//! `pattern` (time from the `ts` group, or `LastModified` with `mtime: true`) or `glob` (time
//! from `LastModified`); `<key>.failed` and `<key>.partial` objects mark a backup failed or in
//! progress, like the local provider's files.
//!
//! Listing: ListObjectsV2 (`versions: delete`: ListObjectVersions), a thousand keys a page,
//! page after page by continuation token; the listing is complete or it is an error. Deletion:
//! DeleteObjects, at most a thousand objects a call, each key's answer read on its own.
//! Requests are signed with AWS Signature Version 4 (`sign`).

pub mod sign;

use super::local::{FAILED_MARKER, NameParts, PARTIAL_MARKER, name_parts, name_zone};
use super::{
    Batches, BoxFuture, DeleteOutcome, ErrorKind, HttpFailure, Provider, ProviderError,
    failed_delete,
};
use crate::http::{Http, Request, Response};
use crate::model::{Backup, Status};
use crate::policy::config::S3Versions;
use crate::policy::select::LocalSelect;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const HINT: &str =
    "access_key_id and secret_access_key (and session_token for temporary credentials)";

/// Keys a listing page asks for, and objects a DeleteObjects call carries: S3's maximum.
pub const PAGE: usize = 1000;

/// Error codes that mean the keys themselves were refused (S3 answers 403 for them).
const CREDENTIAL_CODES: [&str; 5] = [
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
];

/// The bucket's URL without a trailing slash: `https://{bucket}.{host}` (virtual-hosted), or
/// `{endpoint}/{bucket}` (path-style). `endpoint` `None` is AWS's regional endpoint.
pub fn bucket_url(endpoint: Option<&str>, region: &str, bucket: &str, path_style: bool) -> String {
    let endpoint = endpoint
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    if path_style {
        return format!("{endpoint}/{bucket}");
    }
    match endpoint.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{bucket}.{rest}"),
        None => format!("https://{bucket}.{endpoint}"),
    }
}

/// What a DeleteObjects call names: a key, and a version of it or none (the key itself).
type Target = (String, Option<String>);

/// One object (or, with versions, one key) under the prefix; shared by the policies that list
/// the same account, prefix and versions rule.
#[derive(Clone, Debug)]
pub struct Object {
    key: String,
    last_modified: Timestamp,
    size: u64,
    storage_class: Option<String>,
    /// Every version id of the key, newest first (`versions: delete` only).
    versions: Vec<String>,
}

pub struct S3Provider {
    http: Arc<Http>,
    bucket_url: String,
    bucket: String,
    prefix: String,
    select: LocalSelect,
    /// The zone of key times without an offset.
    zone: TimeZone,
    versions: S3Versions,
    /// The version ids of each key under the prefix as the last listing saw them (`versions:
    /// delete`).
    listed_versions: Mutex<HashMap<String, Vec<String>>>,
    /// The `.failed` marker of each failed backup the last listing saw: deleted with it.
    failed_markers: Mutex<HashMap<String, String>>,
    /// Objects under the prefix that the last listing did not select.
    unmatched: Mutex<Option<usize>>,
    /// `object_lock: true`: ask for the Object Lock of each version a plan would delete.
    object_lock: bool,
}

/// HEAD requests in flight at once when the Object Lock of versions is looked up.
const LOCK_LOOKUPS: usize = 16;

impl S3Provider {
    pub fn new(
        http: Arc<Http>,
        (bucket_url, bucket): (String, &str),
        select: &crate::policy::Select,
        policy_zone: &TimeZone,
        versions: S3Versions,
    ) -> S3Provider {
        S3Provider {
            http,
            bucket_url,
            bucket: bucket.to_string(),
            prefix: select.prefix.clone().unwrap_or_default(),
            zone: name_zone(&select.local, policy_zone),
            select: select.local.clone(),
            versions,
            listed_versions: Mutex::new(HashMap::new()),
            failed_markers: Mutex::new(HashMap::new()),
            unmatched: Mutex::new(None),
            object_lock: false,
        }
    }

    /// Looks up the Object Lock of the versions a plan would delete (`object_lock: true`).
    pub fn with_object_lock(mut self, on: bool) -> S3Provider {
        self.object_lock = on && self.versions == S3Versions::Delete;
        self
    }

    /// The Object Lock of one version, in the plan's words, if it is locked at `now`: a
    /// legal hold, or a retention date still ahead. One HEAD request.
    async fn lock_of(
        &self,
        key: &str,
        version: &str,
        now: Timestamp,
    ) -> Result<Option<String>, ProviderError> {
        let call = format!("HeadObject s3://{}/{key} version {version}", self.bucket);
        let path: Vec<String> = key.split('/').map(super::huawei::encode).collect();
        let url = reqwest::Url::parse(&format!(
            "{}/{}?versionId={}",
            self.bucket_url,
            path.join("/"),
            super::huawei::encode(version)
        ))
        .map_err(|e| {
            self.http
                .fail(&call, ErrorKind::Other, format!("bad URL: {e}"))
        })?;
        let response = self
            .http
            .send(&call, || Request::head(url.clone()))
            .await
            .map_err(|e| self.failure(e))?;
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        if header("x-amz-object-lock-legal-hold") == Some("ON") {
            return Ok(Some(format!(
                "legal hold (S3 Object Lock, version {version})"
            )));
        }
        let until = header("x-amz-object-lock-retain-until-date");
        match until.map(|u| (u, u.parse::<Timestamp>())) {
            Some((_, Ok(until))) if until > now => {
                let mode = header("x-amz-object-lock-mode").unwrap_or("retention");
                Ok(Some(format!(
                    "locked until {until} (S3 Object Lock {mode}, version {version})"
                )))
            }
            Some((_, Ok(_))) | None => Ok(None),
            Some((text, Err(e))) => Err(self.bad(
                &call,
                format!("x-amz-object-lock-retain-until-date {text:?} is not a time: {e}"),
            )),
        }
    }

    fn list_call(&self) -> String {
        let what = match self.versions {
            S3Versions::Marker => "ListObjectsV2",
            S3Versions::Delete => "ListObjectVersions",
        };
        format!("{what} s3://{}/{}", self.bucket, self.prefix)
    }

    fn bad(&self, call: &str, message: impl Into<String>) -> ProviderError {
        self.http.fail(call, ErrorKind::BadResponse, message)
    }

    /// An HTTP failure, with S3's refusal of the keys themselves (a 403) named as such.
    fn failure(&self, error: crate::http::Error) -> ProviderError {
        let mut error = ProviderError::from(error);
        if error
            .code
            .as_deref()
            .is_some_and(|c| CREDENTIAL_CODES.contains(&c))
        {
            error.kind = ErrorKind::Auth;
            let detail = error
                .message
                .strip_prefix("permission denied ")
                .unwrap_or(&error.message)
                .to_string();
            error.message =
                format!("the credentials were rejected {detail}; check the account's {HINT}");
        }
        error
    }

    async fn get(&self, call: &str, query: &str) -> Result<Response, ProviderError> {
        let url = reqwest::Url::parse(&format!("{}/?{query}", self.bucket_url)).map_err(|e| {
            self.http
                .fail(call, ErrorKind::Other, format!("bad URL: {e}"))
        })?;
        self.http
            .send(call, || Request::get(url.clone()))
            .await
            .map_err(|e| self.failure(e))
    }

    /// Every object under the prefix, page after page.
    async fn objects(&self) -> Result<Vec<Object>, ProviderError> {
        match self.versions {
            S3Versions::Marker => self.current_objects().await,
            S3Versions::Delete => self.versioned_objects().await,
        }
    }

    async fn current_objects(&self) -> Result<Vec<Object>, ProviderError> {
        let call = self.list_call();
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        let mut seen_tokens = HashSet::new();
        for page in 1.. {
            let mut query = format!(
                "list-type=2&max-keys={PAGE}&prefix={}",
                query_value(&self.prefix)
            );
            if let Some(token) = &token {
                query.push_str(&format!("&continuation-token={}", query_value(token)));
            }
            let page_call = format!("{call} (page {page})");
            let response = self.get(&page_call, &query).await?;
            let text = self.xml_text(&page_call, &response)?;
            let doc = roxmltree::Document::parse(text).map_err(|e| {
                self.bad(
                    &page_call,
                    format!("the response is not the XML expected (truncated or malformed): {e}"),
                )
            })?;
            let root = doc.root_element();
            if root.tag_name().name() != "ListBucketResult" {
                return Err(self.bad(
                    &page_call,
                    format!(
                        "expected a ListBucketResult, got <{}>",
                        root.tag_name().name()
                    ),
                ));
            }
            let mut count = 0usize;
            for contents in children(root, "Contents") {
                count += 1;
                let key = required(contents, "Key").map_err(|e| self.bad(&page_call, e))?;
                let modified =
                    required(contents, "LastModified").map_err(|e| self.bad(&page_call, e))?;
                objects.push(Object {
                    last_modified: parse_time(&modified)
                        .map_err(|e| self.bad(&page_call, format!("{key}: {e}")))?,
                    size: child(contents, "Size")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    storage_class: child(contents, "StorageClass"),
                    versions: Vec::new(),
                    key,
                });
            }
            count += children(root, "CommonPrefixes").count();
            if let Some(declared) = child(root, "KeyCount").and_then(|k| k.parse::<usize>().ok())
                && declared != count
            {
                return Err(self.bad(
                    &page_call,
                    format!("the page declares {declared} keys but holds {count}; the listing is not complete (run again)"),
                ));
            }
            if child(root, "IsTruncated").as_deref() != Some("true") {
                break;
            }
            let Some(next) = child(root, "NextContinuationToken").filter(|t| !t.is_empty()) else {
                return Err(self.bad(
                    &page_call,
                    "the page says more keys follow but gives no NextContinuationToken; the listing is not complete",
                ));
            };
            if !seen_tokens.insert(next.clone()) {
                return Err(self.bad(
                    &page_call,
                    "the same continuation token came twice: the listing would never end; it is not complete",
                ));
            }
            token = Some(next);
        }
        Ok(objects)
    }

    /// ListObjectVersions: a key is a backup when its newest entry is a version (not a delete
    /// marker); its versions and delete markers are all deleted with it.
    async fn versioned_objects(&self) -> Result<Vec<Object>, ProviderError> {
        let call = self.list_call();
        // Per key: whether its newest entry is a version (not a delete marker), and the key
        // with that version's time, every version's size and every version id.
        let mut keys: BTreeMap<String, (bool, Object)> = BTreeMap::new();
        let mut marker: Option<(String, String)> = None;
        let mut seen = HashSet::new();
        for page in 1.. {
            let mut query = format!(
                "versions=&max-keys={PAGE}&prefix={}",
                query_value(&self.prefix)
            );
            if let Some((key, version)) = &marker {
                query.push_str(&format!(
                    "&key-marker={}&version-id-marker={}",
                    query_value(key),
                    query_value(version)
                ));
            }
            let page_call = format!("{call} (page {page})");
            let response = self.get(&page_call, &query).await?;
            let text = self.xml_text(&page_call, &response)?;
            let doc = roxmltree::Document::parse(text).map_err(|e| {
                self.bad(
                    &page_call,
                    format!("the response is not the XML expected (truncated or malformed): {e}"),
                )
            })?;
            let root = doc.root_element();
            if root.tag_name().name() != "ListVersionsResult" {
                return Err(self.bad(
                    &page_call,
                    format!(
                        "expected a ListVersionsResult, got <{}>",
                        root.tag_name().name()
                    ),
                ));
            }
            for entry in root.children().filter(|n| n.is_element()) {
                let is_version = match entry.tag_name().name() {
                    "Version" => true,
                    "DeleteMarker" => false,
                    _ => continue,
                };
                let key = required(entry, "Key").map_err(|e| self.bad(&page_call, e))?;
                let version = required(entry, "VersionId").map_err(|e| self.bad(&page_call, e))?;
                if !seen.insert((key.clone(), version.clone())) {
                    return Err(self.bad(
                        &page_call,
                        format!("version {version} of {key} came twice: the list changed while paging; the listing is not complete (run again)"),
                    ));
                }
                let latest = child(entry, "IsLatest").as_deref() == Some("true");
                let modified =
                    required(entry, "LastModified").map_err(|e| self.bad(&page_call, e))?;
                let modified = parse_time(&modified)
                    .map_err(|e| self.bad(&page_call, format!("{key}: {e}")))?;
                let size: u64 = child(entry, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let (current, object) = keys.entry(key.clone()).or_insert_with(|| {
                    (
                        false,
                        Object {
                            key,
                            last_modified: Timestamp::UNIX_EPOCH,
                            size: 0,
                            storage_class: None,
                            versions: Vec::new(),
                        },
                    )
                });
                if latest {
                    *current = is_version;
                    object.last_modified = modified;
                    object.storage_class = child(entry, "StorageClass");
                }
                object.size += size;
                object.versions.push(version);
            }
            if child(root, "IsTruncated").as_deref() != Some("true") {
                break;
            }
            let next_key = child(root, "NextKeyMarker").filter(|k| !k.is_empty());
            let next_version = child(root, "NextVersionIdMarker").unwrap_or_default();
            let Some(next_key) = next_key else {
                return Err(self.bad(
                    &page_call,
                    "the page says more versions follow but gives no NextKeyMarker; the listing is not complete",
                ));
            };
            let next = (next_key, next_version);
            if marker.as_ref() == Some(&next) {
                return Err(self.bad(
                    &page_call,
                    "the same key marker came twice: the listing would never end; it is not complete",
                ));
            }
            marker = Some(next);
        }
        Ok(keys
            .into_values()
            .filter(|(current, _)| *current)
            .map(|(_, object)| object)
            .collect())
    }

    /// The body as UTF-8 XML; an HTML page (a proxy's or a login page) is named as such.
    fn xml_text<'r>(&self, call: &str, response: &'r Response) -> Result<&'r str, ProviderError> {
        let text = std::str::from_utf8(&response.body).map_err(|_| {
            self.bad(
                call,
                "the response is not the XML expected: it is not UTF-8 text",
            )
        })?;
        let start = text
            .trim_start()
            .get(..15)
            .unwrap_or("")
            .to_ascii_lowercase();
        if start.starts_with("<!doctype html") || start.starts_with("<html") {
            return Err(self.bad(
                call,
                format!(
                    "HTTP {} with an HTML page instead of S3's XML (a proxy or login page?): {}",
                    response.status.as_u16(),
                    crate::http::provider_message(&response.body)
                ),
            ));
        }
        Ok(text)
    }

    /// The selected objects as backups.
    fn backups(&self, objects: &[Object]) -> Result<Vec<Backup>, ProviderError> {
        let call = self.list_call();
        let keys: HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let default_group = format!("s3://{}/{}", self.bucket, self.prefix);
        let mut backups = Vec::new();
        let mut unmatched = 0;
        let mut versions = HashMap::new();
        let mut markers = HashMap::new();
        for object in objects {
            if self.versions == S3Versions::Delete {
                versions.insert(object.key.clone(), object.versions.clone());
            }
            let Some(below) = object.key.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            if below.ends_with(FAILED_MARKER) || below.ends_with(PARTIAL_MARKER) {
                continue;
            }
            let parts = name_parts(&self.select, &self.zone, below)
                .map_err(|e| self.http.fail(&call, ErrorKind::Other, e))?;
            let Some(NameParts { created_at, group }) = parts else {
                unmatched += 1;
                continue;
            };
            let failed = format!("{}{FAILED_MARKER}", object.key);
            let status = if keys.contains(failed.as_str()) {
                markers.insert(object.key.clone(), failed);
                Status::Failed
            } else if keys.contains(format!("{}{PARTIAL_MARKER}", object.key).as_str()) {
                Status::InProgress
            } else {
                Status::Complete
            };
            backups.push(Backup {
                id: object.key.as_str().into(),
                group: group.unwrap_or(&default_group).into(),
                created_at: created_at.unwrap_or(object.last_modified),
                status,
                name: Some(object.key.as_str().into()),
                size: Some(object.size),
                tags: Box::default(),
                kind: object.storage_class.as_deref().map(Into::into),
                live: false,
            });
        }
        *self.unmatched.lock().unwrap_or_else(|e| e.into_inner()) = Some(unmatched);
        *self
            .listed_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = versions;
        *self
            .failed_markers
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = markers;
        Ok(backups)
    }

    /// What deleting a key names: the key, or each of its versions.
    fn key_targets(&self, key: &str) -> Vec<Target> {
        if self.versions == S3Versions::Delete {
            let listed = self
                .listed_versions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(versions) = listed.get(key).filter(|v| !v.is_empty()) {
                return versions
                    .iter()
                    .map(|v| (key.to_string(), Some(v.clone())))
                    .collect();
            }
        }
        // Not listed by this process: the key itself (a delete marker at worst).
        vec![(key.to_string(), None)]
    }

    /// What a backup's deletion names: its own targets, and its `.failed` marker's (whose
    /// answer does not decide the backup's outcome).
    fn targets(&self, backup: &Backup) -> (Vec<Target>, Vec<Target>) {
        let marker = self
            .failed_markers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(backup.id.as_str())
            .cloned();
        let marker = marker.map(|m| self.key_targets(&m)).unwrap_or_default();
        (self.key_targets(&backup.id), marker)
    }

    /// One DeleteObjects call; the answer per (key, version).
    async fn delete_objects(&self, objects: &[Target]) -> Result<DeleteAnswer, ProviderError> {
        let call = format!(
            "DeleteObjects s3://{} ({} objects)",
            self.bucket,
            objects.len()
        );
        let body = delete_body(objects).map_err(|e| self.http.fail(&call, ErrorKind::Other, e))?;
        let url = reqwest::Url::parse(&format!("{}/?delete", self.bucket_url)).map_err(|e| {
            self.http
                .fail(&call, ErrorKind::Other, format!("bad URL: {e}"))
        })?;
        let response = self
            .http
            .send(&call, || {
                Request::post(url.clone()).body(&body, "application/xml")
            })
            .await
            .map_err(|e| self.failure(e))?;
        let text = self.xml_text(&call, &response)?;
        parse_delete_result(text).map_err(|e| self.bad(&call, e))
    }

    /// Each backup's outcome from the answers to its objects.
    fn outcome(&self, backup: &Backup, targets: &[Target], answer: &DeleteAnswer) -> DeleteOutcome {
        let call = format!("DeleteObjects {}", backup.id);
        let mut missing = 0;
        for target in targets {
            match lookup(answer, target) {
                Some(Ok(())) => {}
                Some(Err((code, _))) if code == "NoSuchKey" || code == "NoSuchVersion" => {}
                Some(Err((code, message))) => {
                    let what = match &target.1 {
                        Some(version) => format!("version {version}: "),
                        None => String::new(),
                    };
                    let locked =
                        message.to_ascii_lowercase().contains("lock") || code == "ObjectLocked";
                    let (kind, text) = if locked {
                        (
                            ErrorKind::Forbidden,
                            format!(
                                "{what}under S3 Object Lock ({code}: {message}); it stays until its retention ends or its legal hold is lifted"
                            ),
                        )
                    } else if code == "AccessDenied" {
                        (ErrorKind::Forbidden, format!("{what}{code}: {message}"))
                    } else {
                        (ErrorKind::Rejected, format!("{what}{code}: {message}"))
                    };
                    let mut error = self.http.fail(&call, kind, text);
                    error.code = Some(code.clone());
                    return DeleteOutcome::Failed(error);
                }
                None => missing += 1,
            }
        }
        if missing == 0 {
            return DeleteOutcome::Deleted;
        }
        DeleteOutcome::Unconfirmed(self.bad(
            &call,
            format!(
                "the answer named {missing} of its {} objects neither deleted nor failed",
                targets.len()
            ),
        ))
    }
}

/// What a DeleteObjects answer said of each (key, version): done, or (code, message).
/// A `Deleted` entry without a version id (a delete marker's answer) stands for the key.
type DeleteAnswer = HashMap<Target, Result<(), (String, String)>>;

impl Provider for S3Provider {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move {
            let objects = self.objects().await?;
            self.backups(&objects)
        })
    }

    /// Policies of one account on one prefix (and versions rule) list it once; each selects its
    /// own keys and keeps its own versions and failed markers.
    fn listing_key(&self) -> Option<String> {
        Some(format!(
            "s3 {} {} {} {:?}",
            self.http.account(),
            self.bucket_url,
            self.prefix,
            self.versions
        ))
    }

    fn read_shared(&self) -> BoxFuture<'_, Result<super::Shared, ProviderError>> {
        Box::pin(async move { self.objects().await.map(super::Shared::S3Objects) })
    }

    fn list_from(&self, shared: &super::Shared) -> Result<Vec<Backup>, ProviderError> {
        match shared {
            super::Shared::S3Objects(objects) => self.backups(objects),
            _ => Err(self.bad(
                &self.list_call(),
                "a shared listing of another kind of provider",
            )),
        }
    }

    fn unmatched(&self) -> Option<usize> {
        *self.unmatched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_locks(&self) -> bool {
        self.object_lock
    }

    /// A HEAD request per version of each doomed key (as the last listing saw them), 16 at
    /// a time: a key with any version under a legal hold or a retention date still ahead
    /// cannot be deleted whole, so the plan keeps it.
    fn locks<'a>(
        &'a self,
        doomed: &'a [&'a Backup],
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, ProviderError>> {
        Box::pin(async move {
            use futures_util::StreamExt;
            if !self.object_lock {
                return Ok(BTreeMap::new());
            }
            let now = Timestamp::now();
            let versions: Vec<(String, String)> = {
                let listed = self
                    .listed_versions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                doomed
                    .iter()
                    .flat_map(|b| {
                        let key = b.id.to_string();
                        listed
                            .get(&key)
                            .into_iter()
                            .flatten()
                            .map(move |v| (key.clone(), v.clone()))
                    })
                    .collect()
            };
            let mut locks: BTreeMap<String, String> = BTreeMap::new();
            let mut waiting = versions.iter();
            let mut running = futures_util::stream::FuturesUnordered::new();
            loop {
                while running.len() < LOCK_LOOKUPS {
                    let Some((key, version)) = waiting.next() else {
                        break;
                    };
                    running.push(async move { (key, self.lock_of(key, version, now).await) });
                }
                let Some((key, lock)) = running.next().await else {
                    break;
                };
                if let Some(words) = lock? {
                    let entry = locks.entry(key.clone()).or_default();
                    if !entry.is_empty() {
                        entry.push_str("; ");
                    }
                    entry.push_str(&words);
                }
            }
            Ok(locks)
        })
    }

    /// At most a thousand objects a call: backups, or with `versions: delete` their versions
    /// (a key with more versions goes alone, over several calls).
    fn batches(&self, doomed: &[&Backup]) -> Batches {
        let mut batches = Batches::default();
        let (mut start, mut size) = (0, 0);
        for (position, backup) in doomed.iter().enumerate() {
            let (own, marker) = self.targets(backup);
            let objects = own.len() + marker.len();
            if position > start && size + objects > PAGE {
                batches.push(start..position);
                (start, size) = (position, 0);
            }
            size += objects;
        }
        if start < doomed.len() {
            batches.push(start..doomed.len());
        }
        batches
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(async move {
            let targets: Vec<_> = batch.iter().map(|b| self.targets(b)).collect();
            // A key XML cannot carry fails on its own; it must not fail the whole request.
            let unwritable: Vec<Option<String>> = targets
                .iter()
                .map(|(own, marker)| unwritable(own.iter().chain(marker)))
                .collect();
            let all: Vec<Target> = targets
                .iter()
                .zip(&unwritable)
                .filter(|(_, unwritable)| unwritable.is_none())
                .flat_map(|((own, marker), _)| own.iter().chain(marker))
                .cloned()
                .collect();
            let mut answer = DeleteAnswer::new();
            for chunk in all.chunks(PAGE) {
                match self.delete_objects(chunk).await {
                    Ok(part) => answer.extend(part),
                    Err(error) => {
                        return batch.iter().map(|_| failed_delete(error.clone())).collect();
                    }
                }
            }
            batch
                .iter()
                .zip(&targets)
                .zip(unwritable)
                .map(|((backup, (own, _)), unwritable)| match unwritable {
                    Some(why) => failed_delete(self.http.fail(
                        &format!("DeleteObjects {}", backup.id),
                        ErrorKind::Rejected,
                        why,
                    )),
                    None => self.outcome(backup, own, &answer),
                })
                .collect()
        })
    }

    fn delete_concurrency(&self) -> usize {
        self.http.settings().concurrency
    }
}

/// A query value: every byte but the unreserved ones percent-encoded (as SigV4 signs it).
fn query_value(text: &str) -> String {
    super::huawei::encode(text)
}

/// `<Delete>` with one `<Object>` per target, keys and versions escaped. A key holding
/// characters XML 1.0 cannot carry is refused.
fn delete_body(objects: &[Target]) -> Result<Vec<u8>, String> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>false</Quiet>",
    );
    for (key, version) in objects {
        xml.push_str("<Object><Key>");
        xml.push_str(&escape(key)?);
        xml.push_str("</Key>");
        if let Some(version) = version {
            xml.push_str("<VersionId>");
            xml.push_str(&escape(version)?);
            xml.push_str("</VersionId>");
        }
        xml.push_str("</Object>");
    }
    xml.push_str("</Delete>");
    Ok(xml.into_bytes())
}

/// Why a DeleteObjects request cannot name these targets, if it cannot.
fn unwritable<'t>(mut targets: impl Iterator<Item = &'t Target>) -> Option<String> {
    targets.find_map(|(key, version)| {
        escape(key)
            .and_then(|_| version.as_deref().map(escape).transpose())
            .err()
    })
}

fn escape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            // XML 1.0 has no way to write the other C0 controls, U+FFFE or U+FFFF.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return Err(format!(
                    "the key {text:?} holds a character that XML 1.0, and so a DeleteObjects request, cannot carry (U+{:04X}); delete it by hand (e.g. `aws s3api delete-object`)",
                    c as u32
                ));
            }
            c if c.is_control() => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The answer to one target: its own entry; else, where one side names no version (servers
/// leave the version out of some errors, and a delete marker's answer names the marker), an
/// entry for the same key.
fn lookup<'a>(
    answer: &'a DeleteAnswer,
    target: &Target,
) -> Option<&'a Result<(), (String, String)>> {
    if let Some(found) = answer.get(target) {
        return Some(found);
    }
    match &target.1 {
        Some(_) => answer.get(&(target.0.clone(), None)).filter(|a| a.is_err()),
        None => answer
            .iter()
            .find(|((key, _), _)| *key == target.0)
            .map(|(_, a)| a),
    }
}

/// A `DeleteResult`: its `Deleted` and `Error` entries by (key, version).
fn parse_delete_result(text: &str) -> Result<DeleteAnswer, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        format!("the response is not the XML expected (truncated or malformed): {e}")
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "DeleteResult" {
        return Err(format!(
            "expected a DeleteResult, got <{}>",
            root.tag_name().name()
        ));
    }
    let mut answer = DeleteAnswer::new();
    for node in children(root, "Deleted") {
        let key = required(node, "Key")?;
        answer.insert((key, child(node, "VersionId")), Ok(()));
    }
    for node in children(root, "Error") {
        let key = required(node, "Key")?;
        let code = child(node, "Code").unwrap_or_else(|| "Error".into());
        let message = child(node, "Message").unwrap_or_default();
        let version = child(node, "VersionId");
        answer.insert((key, version), Err((code, message)));
    }
    Ok(answer)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == name)
}

/// The text of the first child element `name`.
fn child(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or("").to_string())
}

fn required(node: roxmltree::Node, name: &str) -> Result<String, String> {
    child(node, name).ok_or_else(|| {
        format!(
            "a <{}> without <{name}>: not the answer S3 gives",
            node.tag_name().name()
        )
    })
}

/// S3's `LastModified` (`2026-12-03T10:00:00.000Z`).
fn parse_time(text: &str) -> Result<Timestamp, String> {
    super::parse_time(text).ok_or_else(|| format!("LastModified {text:?} is not a time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_xml_cannot_carry_fail_alone() {
        let fine: Target = ("db/a\u{7f}\u{85}b.sql".into(), None);
        let bad: Target = ("db/x\u{FFFF}.sql".into(), None);
        assert_eq!(unwritable([&fine].into_iter()), None);
        let body = String::from_utf8(delete_body(std::slice::from_ref(&fine)).unwrap()).unwrap();
        assert!(body.contains("<Key>db/a&#127;&#133;b.sql</Key>"), "{body}");
        let why = unwritable([&fine, &bad].into_iter()).unwrap();
        assert!(why.contains("cannot carry (U+FFFF)"), "{why}");
        assert!(unwritable([&("k".to_string(), Some("v\u{1}".into()))].into_iter()).is_some());
    }

    #[test]
    fn bucket_urls_virtual_hosted_and_path_style() {
        assert_eq!(
            bucket_url(None, "eu-west-1", "dumps", false),
            "https://dumps.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            bucket_url(
                Some("https://minio.internal:9000"),
                "us-east-1",
                "dumps",
                true
            ),
            "https://minio.internal:9000/dumps"
        );
        assert_eq!(
            bucket_url(
                Some("https://obs.cn-north-4.myhuaweicloud.com"),
                "cn-north-4",
                "d",
                false
            ),
            "https://d.obs.cn-north-4.myhuaweicloud.com"
        );
    }

    #[test]
    fn a_delete_body_escapes_keys_and_refuses_control_characters() {
        let body = delete_body(&[
            ("db/a&b<c>.sql".into(), None),
            ("db/x".into(), Some("v\"1".into())),
        ])
        .unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("<Object><Key>db/a&amp;b&lt;c&gt;.sql</Key></Object>"),
            "{text}"
        );
        assert!(
            text.contains("<Key>db/x</Key><VersionId>v&quot;1</VersionId>"),
            "{text}"
        );
        assert!(roxmltree::Document::parse(&text).is_ok());
        let refused = delete_body(&[("db/\u{1}".into(), None)]).unwrap_err();
        assert!(
            refused.contains("XML 1.0, and so a DeleteObjects request, cannot carry (U+0001)"),
            "{refused}"
        );
    }

    #[test]
    fn each_key_is_answered_on_its_own() {
        let answer = parse_delete_result(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>db/a</Key></Deleted>
  <Deleted><Key>db/m</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>dm1</DeleteMarkerVersionId></Deleted>
  <Deleted><Key>db/v</Key><VersionId>v1</VersionId></Deleted>
  <Error><Key>db/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>db/l</Key><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error>
</DeleteResult>"#,
        )
        .unwrap();
        let key = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(lookup(&answer, &key("db/a", None)), Some(&Ok(())));
        assert_eq!(lookup(&answer, &key("db/m", None)), Some(&Ok(())));
        assert_eq!(lookup(&answer, &key("db/v", Some("v1"))), Some(&Ok(())));
        // Another version of the same key is not answered by v1's success.
        assert_eq!(lookup(&answer, &key("db/v", Some("v2"))), None);
        assert!(
            matches!(lookup(&answer, &key("db/b", None)), Some(Err((c, _))) if c == "AccessDenied")
        );
        // An error without a version id stands for every version of its key.
        assert!(matches!(
            lookup(&answer, &key("db/l", Some("v9"))),
            Some(Err(_))
        ));
        assert_eq!(lookup(&answer, &key("db/absent", None)), None);
        assert!(parse_delete_result("<Error><Code>InternalError</Code></Error>").is_err());
        assert!(parse_delete_result("<DeleteResult><Deleted><Key>db/a</Key>").is_err());
    }
}
