//! The provider seam: list a policy's selection completely, delete backups one call at a time
//! (a call may carry a batch). One module per provider; each owns its HTTP details, auth,
//! paging and error mapping, and converts to the one [`Backup`] model.

pub mod cbr;
pub mod cloudinary;
pub mod csbs;
pub mod docspace;
pub mod huawei;
pub mod local;
pub mod memory;
pub mod s3;
pub mod taurusdb;

pub use crate::http::{BoxFuture, ErrorKind};
use crate::http::{Credentials, Http, HttpSettings, RequestObserver};
use crate::model::Backup;
use crate::policy::config::HttpOverrides;
use crate::policy::{Account, AccountSettings, Policy};
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A provider call that failed. Names the account and the call; never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    pub account: String,
    pub call: String,
    pub kind: ErrorKind,
    pub message: String,
    /// The provider's own error code, when its answer had one (`CSBS.2003`, `DBS.280214`).
    pub code: Option<String>,
}

impl ProviderError {
    pub fn new(account: &str, call: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            account: account.to_string(),
            call: call.to_string(),
            kind: ErrorKind::Other,
            message: message.into(),
            code: None,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "account {}: {}: {}",
            self.account, self.call, self.message
        )
    }
}

impl std::error::Error for ProviderError {}

/// The HTTP layer's failures are the provider's, word for word.
impl From<crate::http::Error> for ProviderError {
    fn from(e: crate::http::Error) -> ProviderError {
        ProviderError {
            account: e.account,
            call: e.call,
            kind: e.kind,
            message: e.message,
            code: e.code,
        }
    }
}

/// A provider's own errors, named like the HTTP client's (its account, secrets redacted).
pub trait HttpFailure {
    fn fail(&self, call: &str, kind: ErrorKind, message: impl Into<String>) -> ProviderError;
}

impl HttpFailure for Http {
    fn fail(&self, call: &str, kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        self.error(call, kind, message).into()
    }
}

/// The HTTP client's settings for an account: its `http:` block over the client's defaults.
pub fn http_settings(overrides: Option<&HttpOverrides>) -> HttpSettings {
    let d = HttpSettings::default();
    let Some(o) = overrides else { return d };
    HttpSettings {
        connect_timeout: o.connect_timeout.unwrap_or(d.connect_timeout),
        timeout: o.timeout.unwrap_or(d.timeout),
        concurrency: o.concurrency.unwrap_or(d.concurrency),
        retries: o.retries.unwrap_or(d.retries),
        backoff: o.backoff.unwrap_or(d.backoff),
        max_wait: o.max_wait.unwrap_or(d.max_wait),
    }
}

/// What several providers of one key read once ([`Provider::listing_key`]).
pub enum Shared {
    /// An HTTP provider's listing: the same for every provider of the key.
    Backups(Vec<Backup>),
    /// A folder's entry names, sorted: each local provider selects its own.
    Names(local::Names),
    /// The objects under an S3 prefix: each S3 provider selects its own.
    S3Objects(Vec<s3::Object>),
}

/// Delete calls, each a list of positions in the list of backups to delete; four bytes a
/// backup, whatever the calls' sizes (a run may delete a million).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batches {
    positions: Vec<u32>,
    /// Where each call's positions end in `positions`.
    ends: Vec<u32>,
}

impl Batches {
    /// One call per backup.
    pub fn one_each(n: usize) -> Batches {
        Batches {
            positions: (0..n as u32).collect(),
            ends: (1..=n as u32).collect(),
        }
    }

    /// Calls of at most `size` backups, in order.
    pub fn chunks(n: usize, size: usize) -> Batches {
        let size = size.max(1) as u32;
        let n = n as u32;
        Batches {
            positions: (0..n).collect(),
            ends: (1..=n.div_ceil(size)).map(|k| (k * size).min(n)).collect(),
        }
    }

    /// Appends a call.
    pub fn push(&mut self, positions: impl IntoIterator<Item = usize>) {
        self.positions
            .extend(positions.into_iter().map(|p| p as u32));
        self.ends.push(self.positions.len() as u32);
    }

    /// The number of calls.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Call `k`'s positions.
    pub fn get(&self, k: usize) -> &[u32] {
        let start = match k {
            0 => 0,
            _ => self.ends[k - 1] as usize,
        };
        &self.positions[start..self.ends[k] as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u32]> {
        (0..self.len()).map(|k| self.get(k))
    }
}

/// What one backup's deletion came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone, by this call or before it.
    Deleted,
    /// The call failed in a way that can mean "already gone" (DocSpace answers 500 for an
    /// unknown id, Cloudinary a 207 failure): a fresh listing decides.
    Unconfirmed(ProviderError),
    Failed(ProviderError),
    /// The provider accepted the deletion and carries it out on its own (CSBS deletion
    /// tasks); [`Provider::settle`] waits for the end. The text is for the journal.
    Pending(String),
}

pub trait Provider: Send + Sync {
    /// Every backup of the selection, or an error: a listing that is not known to be complete
    /// is never returned.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>>;

    /// What the listing reads, when other providers may read the same (the account and the
    /// selection its requests carry): providers whose keys are equal read once per command
    /// ([`list_all`]), and each takes its part with [`Provider::list_from`]. `None`: listed
    /// alone.
    fn listing_key(&self) -> Option<String> {
        None
    }

    /// What providers of this key share: by default this provider's own listing.
    fn read_shared(&self) -> BoxFuture<'_, Result<Shared, ProviderError>> {
        Box::pin(async move { self.list().await.map(Shared::Backups) })
    }

    /// This provider's listing out of what a provider of the same key read.
    fn list_from(&self, shared: &Shared) -> Result<Vec<Backup>, ProviderError> {
        match shared {
            Shared::Backups(backups) => Ok(backups.clone()),
            Shared::Names(_) | Shared::S3Objects(_) => Err(ProviderError::new(
                "",
                "list",
                "a shared listing of another kind of provider",
            )),
        }
    }

    /// For a listing that selected nothing: how many entries the provider saw that the
    /// policy's selection does not match, if it can tell (a local folder can; an API that
    /// filters on the server cannot).
    fn unmatched(&self) -> Option<usize> {
        None
    }

    /// Whether [`Provider::locks`] asks the provider anything (S3 with `object_lock: true`).
    fn has_locks(&self) -> bool {
        false
    }

    /// The provider's own locks on the backups a plan would delete (S3 Object Lock: a
    /// retention date, a legal hold), by backup id in the plan's words; a backup it locks
    /// cannot be deleted, so the plan keeps it. An error: the locks are not known.
    fn locks<'a>(
        &'a self,
        _doomed: &'a [&'a Backup],
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, ProviderError>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }

    /// Splits the backups to delete into delete calls, as positions in `doomed`. Default:
    /// one call per backup.
    fn batches(&self, doomed: &[&Backup]) -> Batches {
        Batches::one_each(doomed.len())
    }

    /// One delete call: an outcome per backup of `batch`, in its order.
    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>>;

    /// Delete calls this provider may have in flight at once.
    fn delete_concurrency(&self) -> usize {
        1
    }

    /// Waits until a pending deletion ends (or the provider's deadline passes: then it is
    /// still `Pending`, for a later run to settle).
    fn settle<'a>(&'a self, backup: &'a Backup) -> BoxFuture<'a, DeleteOutcome> {
        Box::pin(async move {
            DeleteOutcome::Failed(ProviderError::new(
                "",
                &format!("settle {}", backup.id),
                "this provider has no asynchronous deletions",
            ))
        })
    }

    /// Deletion tasks the account may have running at once, across all its policies (CSBS:
    /// 5), held from the delete call until the deletion is settled.
    fn task_slots(&self) -> Option<Arc<tokio::sync::Semaphore>> {
        None
    }
}

/// Opens providers, sharing one HTTP client (and so one concurrency cap) per account across
/// all policies of a run.
#[derive(Default)]
pub struct Registry {
    http: HashMap<String, Arc<Http>>,
    /// Deletion task slots per account (CSBS).
    slots: HashMap<String, Arc<Semaphore>>,
    /// Told of every HTTP attempt (the daemon's metrics).
    observer: Option<Arc<dyn RequestObserver>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry whose clients report every HTTP attempt to `observer`.
    pub fn observed(observer: Arc<dyn RequestObserver>) -> Registry {
        Registry {
            observer: Some(observer),
            ..Registry::default()
        }
    }

    /// The provider for a policy's account and selection (`zone`: the policy's zone).
    /// Resolves the account's secrets.
    pub fn open(
        &mut self,
        account: &Account,
        policy: &Policy,
        zone: &TimeZone,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match &account.settings {
            AccountSettings::Local { path } => Arc::new(local::LocalProvider::new(
                &account.name,
                path,
                policy.select.local.clone(),
                zone,
            )),
            AccountSettings::Docspace { base_url, auth, .. } => {
                let http = self.http(account, || docspace::authorization(auth), docspace::HINT)?;
                Arc::new(docspace::DocspaceProvider::new(
                    http,
                    base_url,
                    &policy.select,
                )?)
            }
            AccountSettings::Cloudinary {
                base_url,
                cloud_name,
                api_key,
                api_secret,
                ..
            } => {
                let http = self.http(
                    account,
                    || cloudinary::authorization(api_key, api_secret),
                    cloudinary::HINT,
                )?;
                Arc::new(cloudinary::CloudinaryProvider::new(
                    http,
                    base_url,
                    cloud_name,
                    &policy.select,
                ))
            }
            AccountSettings::Huawei {
                region,
                project_id,
                endpoint,
                delete_timeout,
                poll_interval,
                ..
            } => {
                let http = self.huawei_http(account)?;
                if account.kind == crate::policy::ProviderKind::Cbr {
                    Arc::new(cbr::CbrProvider::new(
                        http,
                        &huawei::endpoint("cbr", region, endpoint.as_deref()),
                        project_id,
                        &policy.select,
                        (*delete_timeout, *poll_interval),
                    ))
                } else if account.kind == crate::policy::ProviderKind::Csbs {
                    let slots = self
                        .slots
                        .entry(account.name.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(csbs::TASK_SLOTS)))
                        .clone();
                    Arc::new(csbs::CsbsProvider::new(
                        http,
                        &huawei::endpoint("csbs", region, endpoint.as_deref()),
                        project_id,
                        &policy.select.resource_ids,
                        (*delete_timeout, *poll_interval),
                        slots,
                    ))
                } else {
                    Arc::new(taurusdb::TaurusdbProvider::new(
                        http,
                        &huawei::endpoint(
                            huawei::taurusdb_service(region),
                            region,
                            endpoint.as_deref(),
                        ),
                        project_id,
                        &policy.select.instance_ids,
                    ))
                }
            }
            AccountSettings::S3 {
                endpoint,
                region,
                bucket,
                path_style,
                versions,
                object_lock,
                ..
            } => Arc::new(
                s3::S3Provider::new(
                    self.s3_http(account)?,
                    (
                        s3::bucket_url(endpoint.as_deref(), region, bucket, *path_style),
                        bucket,
                    ),
                    &policy.select,
                    zone,
                    *versions,
                )
                .with_object_lock(*object_lock),
            ),
        })
    }

    /// An S3 account's client: every request signed with its access key (SigV4).
    fn s3_http(&mut self, account: &Account) -> Result<Arc<Http>, ProviderError> {
        if let Some(http) = self.http.get(&account.name) {
            return Ok(http.clone());
        }
        let AccountSettings::S3 {
            region,
            credentials,
            ..
        } = &account.settings
        else {
            unreachable!("an S3 account");
        };
        let (signer, secrets) = s3::sign::S3Signer::new(&account.name, credentials, region)?;
        let http = Http::new(
            &account.name,
            http_settings(account.http.as_ref()),
            None,
            s3::HINT,
        )
        .map_err(ProviderError::from)?
        .with_signer(Arc::new(signer), secrets)
        .observed(self.observer.clone(), account.kind.name());
        let http = Arc::new(http);
        self.http.insert(account.name.clone(), http.clone());
        Ok(http)
    }

    /// A Huawei Cloud account's client: requests signed with AK/SK, or carrying a token
    /// (static, or from IAM password login), made on first use.
    fn huawei_http(&mut self, account: &Account) -> Result<Arc<Http>, ProviderError> {
        if let Some(http) = self.http.get(&account.name) {
            return Ok(http.clone());
        }
        let AccountSettings::Huawei {
            region,
            project_id,
            iam_endpoint,
            auth,
            ..
        } = &account.settings
        else {
            unreachable!("a Huawei Cloud account");
        };
        let settings = http_settings(account.http.as_ref());
        let hint = huawei::hint(auth);
        let iam = || {
            let url = huawei::iam_url(region, iam_endpoint.as_deref());
            let url = reqwest::Url::parse(&url).map_err(|e| {
                ProviderError::new(&account.name, "open", format!("bad IAM URL {url}: {e}"))
            })?;
            let iam = Http::new(&account.name, settings.clone(), None, hint)
                .map_err(ProviderError::from)?
                .observed(self.observer.clone(), account.kind.name());
            Ok((iam, url))
        };
        let (signer, secrets) = huawei::HuaweiSigner::new(&account.name, auth, project_id, iam)?;
        let http = Http::new(&account.name, settings.clone(), None, hint)
            .map_err(ProviderError::from)?
            .with_signer(Arc::new(signer), secrets)
            .observed(self.observer.clone(), account.kind.name());
        let http = Arc::new(http);
        self.http.insert(account.name.clone(), http.clone());
        Ok(http)
    }

    /// The account's HTTP client, made on first use.
    pub fn http(
        &mut self,
        account: &Account,
        auth: impl FnOnce() -> Result<Credentials, String>,
        hint: &str,
    ) -> Result<Arc<Http>, ProviderError> {
        if let Some(http) = self.http.get(&account.name) {
            return Ok(http.clone());
        }
        let auth = auth().map_err(|e| ProviderError::new(&account.name, "credentials", e))?;
        let settings = http_settings(account.http.as_ref());
        let http = Arc::new(
            Http::new(&account.name, settings, Some(auth), hint)?
                .observed(self.observer.clone(), account.kind.name()),
        );
        self.http.insert(account.name.clone(), http.clone());
        Ok(http)
    }
}

/// Deletes a batch one backup after another (providers whose delete call takes one backup).
pub async fn one_by_one<'a, F>(
    batch: &'a [Backup],
    delete_one: impl Fn(&'a Backup) -> F,
) -> Vec<DeleteOutcome>
where
    F: Future<Output = DeleteOutcome>,
{
    let mut outcomes = Vec::with_capacity(batch.len());
    for backup in batch {
        outcomes.push(delete_one(backup).await);
    }
    outcomes
}

/// Lists every provider concurrently; results in the same order. Providers of one listing
/// key ([`Provider::listing_key`]: one account and provider-side selection) read once, and
/// each takes its part.
pub async fn list_all(
    providers: &[Result<Arc<dyn Provider>, ProviderError>],
) -> Vec<Result<Vec<Backup>, ProviderError>> {
    let mut results: Vec<Option<Result<Vec<Backup>, ProviderError>>> =
        providers.iter().map(|p| p.clone().err().map(Err)).collect();
    // Who reads for each key, and who takes from it.
    let mut readers: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (index, provider) in providers.iter().enumerate() {
        let Ok(provider) = provider else { continue };
        match provider.listing_key() {
            Some(key) => match by_key.get(&key) {
                Some(&reader) => readers[reader].1.push(index),
                None => {
                    by_key.insert(key, readers.len());
                    readers.push((index, vec![index]));
                }
            },
            None => readers.push((index, Vec::new())),
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (reader, takers) in readers {
        let provider = providers[reader]
            .clone()
            .expect("only opened providers read");
        let takers: Vec<(usize, Arc<dyn Provider>)> = takers
            .into_iter()
            .map(|index| (index, providers[index].clone().expect("opened")))
            .collect();
        tasks.spawn(async move {
            if takers.is_empty() {
                return vec![(reader, provider.list().await)];
            }
            match provider.read_shared().await {
                Ok(shared) => takers
                    .into_iter()
                    .map(|(index, taker)| (index, taker.list_from(&shared)))
                    .collect(),
                Err(e) => takers
                    .into_iter()
                    .map(|(index, _)| (index, Err(e.clone())))
                    .collect(),
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        for (index, mut listing) in joined.expect("a listing task never panics") {
            // A listing is held for the whole command: no spare room.
            if let Ok(backups) = &mut listing {
                backups.shrink_to_fit();
            }
            results[index] = Some(listing);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every listing finished"))
        .collect()
}

/// The outcome of a delete call that failed: errors after which the backup may be gone anyway
/// (404, 5xx, a timeout or a dropped connection: the request may have been carried out) are
/// left to a fresh listing; the others failed.
pub fn failed_delete(error: ProviderError) -> DeleteOutcome {
    match error.kind {
        ErrorKind::NotFound | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Connection => {
            DeleteOutcome::Unconfirmed(error)
        }
        _ => DeleteOutcome::Failed(error),
    }
}

/// A record of an offset-paged listing: what tells two records apart.
pub trait Keyed {
    fn key(&self) -> &str;
}

/// Every record of an offset-paged listing (TaurusDB, CBR) after its first page (`first`,
/// which tells the total and the server's page size). The other pages do not depend on each
/// other and are fetched `concurrency` at a time by `page(offset)`. Each must report the same
/// total and hold a full page (the last: the rest), and no record may come twice: otherwise
/// the list changed while paging and the listing is not complete. `total_field` is the
/// answer's name for the total, `call` names a page's call in errors, `bad` makes the error.
pub async fn offset_pages<T, F, Fut>(
    total_field: &str,
    (mut records, total): (Vec<T>, u64),
    concurrency: usize,
    page: F,
    call: impl Fn(u64) -> String,
    bad: impl Fn(&str, String) -> ProviderError,
) -> Result<Vec<T>, ProviderError>
where
    T: Keyed,
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, u64), ProviderError>>,
{
    use futures_util::StreamExt;
    let stride = records.len() as u64;
    if stride >= total {
        return Ok(records);
    }
    if stride == 0 {
        return Err(bad(
            &call(0),
            format!("an empty first page of {total} backups: the listing is not complete"),
        ));
    }
    let offsets = (1..).map(|k| k * stride).take_while(|o| *o < total);
    let mut pages = futures_util::stream::iter(offsets)
        .map(|offset| {
            let fetched = page(offset);
            async move { (offset, fetched.await) }
        })
        .buffered(concurrency.max(1));
    while let Some((offset, fetched)) = pages.next().await {
        let (fetched, count) = fetched?;
        if count != total {
            return Err(bad(
                &call(offset),
                format!(
                    "{total_field} changed from {total} to {count} while paging; the listing is not complete (run again)"
                ),
            ));
        }
        let due = stride.min(total - offset);
        if fetched.len() as u64 != due {
            return Err(bad(
                &call(offset),
                format!(
                    "the page held {} backups where {due} were due (of {total}, {stride} a page); the listing is not complete (run again)",
                    fetched.len()
                ),
            ));
        }
        records.extend(fetched);
    }
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    if let Some(twice) = records.iter().find(|r| !seen.insert(r.key())) {
        return Err(bad(
            &call(0),
            format!(
                "backup {} came on two pages: the list changed while paging; the listing is not complete (run again)",
                twice.key()
            ),
        ));
    }
    Ok(records)
}

/// A provider time stamp: RFC 3339 with `Z` or an offset, or without a zone (then UTC, as
/// DocSpace and CSBS send it), with or without fractional seconds.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// A JSON number or a string holding one (providers are inconsistent).
pub fn lenient_u64(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_times_with_and_without_zones() {
        let utc = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            parse_time("2026-11-20T03:00:00"),
            Some(utc("2026-11-20T03:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-20T03:00:00.1234567"),
            Some(utc("2026-11-20T03:00:00.1234567Z"))
        );
        assert_eq!(
            parse_time("2026-11-20T05:00:00+02:00"),
            Some(utc("2026-11-20T03:00:00Z"))
        );
        assert_eq!(
            parse_time("2024-05-11T12:44:24Z"),
            Some(utc("2024-05-11T12:44:24Z"))
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            lenient_u64(&serde_json::json!("1715431464")),
            Some(1715431464)
        );
        assert_eq!(lenient_u64(&serde_json::json!(12)), Some(12));
        assert_eq!(lenient_u64(&serde_json::json!(null)), None);
    }
}
