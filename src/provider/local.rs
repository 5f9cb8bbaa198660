//! The local-directory provider: backups are the files or folders directly inside one folder
//! whose names match the policy's `select.pattern` (timestamp from its `ts` group) or
//! `select.glob` (timestamp from the modification time). Does file-system I/O.
//!
//! Markers: a sibling `<name>.failed` marks a backup failed, `<name>.partial` marks it in
//! progress; markers are never backups themselves. Deletion removes only a direct child of
//! the folder, never follows a symlink, and removes the backup's `.failed` marker with it.

use super::{BoxFuture, DeleteOutcome, Provider, ProviderError, Shared};
use crate::model::{Backup, Status, Text};
use crate::policy::select::{LocalSelect, TimestampZone};
use crate::timestamp;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const FAILED_MARKER: &str = ".failed";
pub const PARTIAL_MARKER: &str = ".partial";

/// What a selected name tells (a file name, or an S3 key below the prefix).
pub struct NameParts<'n> {
    /// The time in the name (`pattern`'s `ts`); `None`: the modification time decides.
    pub created_at: Option<Timestamp>,
    /// `pattern`'s `group`, if it has one.
    pub group: Option<&'n str>,
}

/// Reads a name under the local and S3 providers' `pattern` or `glob` (`zone`: for times
/// without an offset); `None` when the selection does not take it. An error names the name.
pub fn name_parts<'n>(
    select: &LocalSelect,
    zone: &TimeZone,
    name: &'n str,
) -> Result<Option<NameParts<'n>>, String> {
    if let Some(glob) = &select.glob {
        let taken = crate::policy::select::glob_matches(glob, name);
        return Ok(taken.then_some(NameParts {
            created_at: None,
            group: None,
        }));
    }
    let Some(captures) = select.pattern.as_ref().and_then(|p| p.captures(name)) else {
        return Ok(None);
    };
    let created_at = match (select.mtime, captures.name("ts")) {
        (false, Some(ts)) => Some(
            timestamp::parse(ts.as_str(), select.timestamp_format.as_deref(), zone)
                .map_err(|e| format!("{name}: {e}"))?,
        ),
        _ => None,
    };
    Ok(Some(NameParts {
        created_at,
        group: captures.name("group").map(|g| g.as_str()),
    }))
}

/// The zone in which `select.timestamp_zone` reads times without an offset.
pub fn name_zone(select: &LocalSelect, policy_zone: &TimeZone) -> TimeZone {
    match &select.timestamp_zone {
        TimestampZone::Utc => TimeZone::UTC,
        TimestampZone::Policy => policy_zone.clone(),
        TimestampZone::Named(tz) => tz.clone(),
    }
}

pub struct LocalProvider {
    account: String,
    root: PathBuf,
    select: LocalSelect,
    /// The zone of file-name times without an offset.
    zone: TimeZone,
    /// `file` and `folder`, shared by every backup listed.
    kinds: (Arc<str>, Arc<str>),
    /// The group of backups whose names carry none: the folder's path ([`folder_group`]).
    folder: Text,
}

impl LocalProvider {
    /// The folder's group name is its resolved path, so that the same folder written
    /// relative or absolute, or through a symlink, is the same group to the journal.
    /// `policy_zone` is the policy's zone, for `select.timestamp_zone: policy`.
    pub fn new(
        account: &str,
        root: &Path,
        select: LocalSelect,
        policy_zone: &TimeZone,
    ) -> LocalProvider {
        let root = std::fs::canonicalize(root)
            .or_else(|_| std::path::absolute(root))
            .unwrap_or_else(|_| root.to_path_buf());
        let zone = name_zone(&select, policy_zone);
        LocalProvider {
            account: account.to_string(),
            folder: folder_group(&root),
            root,
            select,
            zone,
            kinds: ("file".into(), "folder".into()),
        }
    }

    fn error(&self, call: &str, message: impl Into<String>) -> ProviderError {
        ProviderError::new(&self.account, call, message)
    }

    fn list_call(&self) -> String {
        format!("list {}", self.root.display())
    }

    /// The entry's timestamp and group, or `None` when the name is not selected.
    fn identify(
        &self,
        name: &str,
        path: &Path,
    ) -> Result<Option<(Timestamp, Text)>, ProviderError> {
        let parts = name_parts(&self.select, &self.zone, name)
            .map_err(|e| self.error(&self.list_call(), e))?;
        let Some(NameParts { created_at, group }) = parts else {
            return Ok(None);
        };
        let created_at = match created_at {
            Some(ts) => ts,
            None => self.mtime(path)?,
        };
        let group = group.map_or_else(|| self.folder.clone(), Text::from);
        Ok(Some((created_at, group)))
    }

    fn mtime(&self, path: &Path) -> Result<Timestamp, ProviderError> {
        let call = self.list_call();
        let modified = fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| self.error(&call, format!("{}: {e}", path.display())))?;
        Timestamp::try_from(modified)
            .map_err(|e| self.error(&call, format!("{}: {e}", path.display())))
    }
}

impl Provider for LocalProvider {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async move { self.list_now() })
    }

    fn listing_key(&self) -> Option<String> {
        Some(format!("local {}", self.root.display()))
    }

    fn read_shared(&self) -> BoxFuture<'_, Result<Shared, ProviderError>> {
        Box::pin(async move { self.read_names().map(Shared::Names) })
    }

    fn list_from(&self, shared: &Shared) -> Result<Vec<Backup>, ProviderError> {
        match shared {
            Shared::Names(names) => self.list_in(names),
            Shared::Backups(_) | Shared::S3Objects(_) => self.list_now(),
        }
    }

    fn unmatched(&self) -> Option<usize> {
        let entries = fs::read_dir(&self.root).ok()?;
        let unmatched = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| !name.ends_with(FAILED_MARKER) && !name.ends_with(PARTIAL_MARKER))
            .filter(|name| matches!(self.identify(name, &self.root.join(name)), Ok(None)))
            .count();
        Some(unmatched)
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(async move {
            batch
                .iter()
                .map(|backup| match self.delete_now(backup) {
                    Ok(()) => DeleteOutcome::Deleted,
                    Err(e) => DeleteOutcome::Failed(e),
                })
                .collect()
        })
    }
}

impl LocalProvider {
    /// Lists the folder (synchronous file-system calls; folders are small and local).
    pub fn list_now(&self) -> Result<Vec<Backup>, ProviderError> {
        self.list_in(&self.read_names()?)
    }

    /// The folder's entry names (those in UTF-8), sorted.
    fn read_names(&self) -> Result<Names, ProviderError> {
        let call = self.list_call();
        let entries = fs::read_dir(&self.root).map_err(|e| self.error(&call, e.to_string()))?;
        let mut names = Names::default();
        for entry in entries {
            let entry = entry.map_err(|e| self.error(&call, e.to_string()))?;
            // A name that is not UTF-8 cannot match a pattern; it is not ours to manage.
            if let Ok(name) = entry.file_name().into_string() {
                // Read relative to the open folder (`statx` on its descriptor): no walk of
                // the folder's path for each entry, which was two fifths of a listing's time.
                // One that cannot be read now is read again by path when it is selected.
                let kind = match entry.metadata() {
                    Ok(metadata) => EntryKind::of(&metadata),
                    Err(_) => EntryKind::Unread,
                };
                names
                    .push(&name, kind)
                    .map_err(|e| self.error(&call, e.to_string()))?;
            }
        }
        names.sort();
        Ok(names)
    }

    /// The backups among `names` (the folder's, sorted) that the selection takes. Only the
    /// names that start with the selection's literal prefix are looked at.
    fn list_in(&self, names: &Names) -> Result<Vec<Backup>, ProviderError> {
        let call = self.list_call();
        let prefix = self.select.literal_prefix();
        let first = names.partition_point(|n| n < prefix.as_str());
        let candidates = (first..names.len())
            .map(|i| (names.get(i), names.kind(i)))
            .take_while(|(n, _)| n.starts_with(prefix.as_str()));
        let mut marker = String::new();
        let mut has = |name: &str, suffix: &str| {
            marker.clear();
            marker.push_str(name);
            marker.push_str(suffix);
            names.contains(&marker)
        };
        // Room for every candidate at once (what is not selected is given back below): a
        // vector that grows by doubling leaves the allocator the copies it outgrew.
        let mut backups = Vec::with_capacity(candidates.clone().count());
        for (name, kind) in candidates {
            if name.ends_with(FAILED_MARKER) || name.ends_with(PARTIAL_MARKER) {
                continue;
            }
            let path = self.root.join(name);
            let Some((created_at, group)) = self.identify(name, &path)? else {
                continue;
            };
            let kind = match kind {
                EntryKind::Unread => {
                    let metadata = fs::symlink_metadata(&path)
                        .map_err(|e| self.error(&call, format!("{name}: {e}")))?;
                    EntryKind::of(&metadata)
                }
                read => read,
            };
            let status = if has(name, FAILED_MARKER) {
                Status::Failed
            } else if has(name, PARTIAL_MARKER) {
                Status::InProgress
            } else {
                Status::Complete
            };
            // The file name is the id; no name beside it (what shows a name falls back to
            // the id), so a million files hold it once.
            backups.push(Backup {
                id: name.into(),
                group,
                created_at,
                status,
                name: None,
                size: match kind {
                    EntryKind::File(len) => Some(len),
                    _ => None,
                },
                tags: Box::default(),
                kind: Some(match kind {
                    EntryKind::Dir => self.kinds.1.clone(),
                    _ => self.kinds.0.clone(),
                }),
                live: false,
            });
        }
        backups.shrink_to_fit();
        Ok(backups)
    }

    /// Deletes one backup; one that is already gone counts as deleted.
    pub fn delete_now(&self, backup: &Backup) -> Result<(), ProviderError> {
        let call = format!("delete {}", backup.id);
        let mut components = Path::new(&backup.id).components();
        let plain =
            matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
        if !plain || backup.id.contains(['/', '\\', '\0']) {
            return Err(self.error(
                &call,
                "refused: the id is not a plain name inside the folder",
            ));
        }
        let path = self.root.join(&backup.id);
        // One call for a file or a symlink (removed as a link: its target is never touched);
        // a folder is removed with what it holds.
        let removed = match fs::remove_file(&path) {
            Err(e) if e.kind() == ErrorKind::IsADirectory => match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                _ => Err(e),
            },
            removed => removed,
        };
        match removed {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(self.error(&call, e.to_string()));
            }
            _ => {}
        }
        // The marker the listing saw goes with the backup.
        if backup.status != Status::Failed {
            return Ok(());
        }
        match fs::remove_file(self.root.join(format!("{}{FAILED_MARKER}", backup.id))) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(self.error(&call, format!("backup removed, marker not: {e}")))
            }
            _ => Ok(()),
        }
    }
}

/// A folder's path as the group of its backups. A path past 24 bytes (what a [`Text`] holds
/// inline) is kept once for the process, each distinct folder once, and every backup refers
/// to it: a million backups of `/srv/backups/postgresql/dumps` do not hold a million copies.
fn folder_group(root: &Path) -> Text {
    static FOLDERS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let path = root.display().to_string();
    if path.len() <= 24 {
        return path.into();
    }
    let mut folders = FOLDERS.lock().unwrap_or_else(|e| e.into_inner());
    let kept = match folders.get(path.as_str()) {
        Some(kept) => kept,
        None => {
            let kept: &'static str = Box::leak(path.into_boxed_str());
            folders.insert(kept);
            kept
        }
    };
    Text::const_new(kept)
}

/// A folder's entry names in one buffer, and their order: a million names take their bytes
/// and sixteen more each (with what the entry is), not a heap string each, and sorting them
/// frees no large buffer (which would make the allocator keep what is freed after it:
/// BENCHMARKS.md, memory per deletion).
#[derive(Debug, Default)]
pub struct Names {
    text: String,
    /// Where each name starts and ends in `text`, and its entry's kind, in sorted order once
    /// sorted.
    spans: Vec<(u32, u32, Packed)>,
}

/// What a folder's entry is, as the listing read it beside its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    /// A regular file of this many bytes.
    File(u64),
    Dir,
    /// A symlink, socket, ...: listed as a file without a size.
    Other,
    /// Not read with the folder (gone, or no permission then): read by path if selected.
    Unread,
}

impl EntryKind {
    fn of(metadata: &fs::Metadata) -> EntryKind {
        match (metadata.is_file(), metadata.is_dir()) {
            (true, _) => EntryKind::File(metadata.len()),
            (_, true) => EntryKind::Dir,
            _ => EntryKind::Other,
        }
    }
}

/// An [`EntryKind`] in eight bytes (a million names: 8 MB less than the enum): a file's
/// size, or one of the three largest values, which no file's size reaches.
#[derive(Clone, Copy, Debug)]
struct Packed(u64);

impl Packed {
    const DIR: u64 = u64::MAX;
    const OTHER: u64 = u64::MAX - 1;
    const UNREAD: u64 = u64::MAX - 2;

    fn new(kind: EntryKind) -> Packed {
        Packed(match kind {
            EntryKind::File(len) => len.min(Packed::UNREAD - 1),
            EntryKind::Dir => Packed::DIR,
            EntryKind::Other => Packed::OTHER,
            EntryKind::Unread => Packed::UNREAD,
        })
    }

    fn kind(self) -> EntryKind {
        match self.0 {
            Packed::DIR => EntryKind::Dir,
            Packed::OTHER => EntryKind::Other,
            Packed::UNREAD => EntryKind::Unread,
            len => EntryKind::File(len),
        }
    }
}

impl Names {
    fn push(&mut self, name: &str, kind: EntryKind) -> Result<(), String> {
        let start = self.text.len() as u32;
        self.text.push_str(name);
        let end = u32::try_from(self.text.len())
            .map_err(|_| "the folder's names take more than 4 GiB".to_string())?;
        self.spans.push((start, end, Packed::new(kind)));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let (start, end, _) = self.spans[i];
        &self.text[start as usize..end as usize]
    }

    fn kind(&self, i: usize) -> EntryKind {
        self.spans[i].2.kind()
    }

    /// Sorts the names (byte order, as `str`'s `Ord`).
    fn sort(&mut self) {
        let text = &self.text;
        self.spans.sort_unstable_by(|a, b| {
            text[a.0 as usize..a.1 as usize].cmp(&text[b.0 as usize..b.1 as usize])
        });
    }

    /// The first index whose name is not `before` (names sorted).
    fn partition_point(&self, before: impl Fn(&str) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match before(self.get(middle)) {
                true => low = middle + 1,
                false => high = middle,
            }
        }
        low
    }

    pub fn contains(&self, name: &str) -> bool {
        let at = self.partition_point(|n| n < name);
        at < self.len() && self.get(at) == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(pattern: &str) -> LocalSelect {
        LocalSelect {
            pattern: Some(regex::Regex::new(pattern).unwrap()),
            ..LocalSelect::default()
        }
    }

    #[test]
    fn names_sort_in_byte_order_and_are_found_by_name_and_prefix() {
        let mut names = Names::default();
        for name in [
            "db-b.dump",
            "db-a.dump.failed",
            "x",
            "db-a.dump",
            "é",
            "db-",
        ] {
            names.push(name, EntryKind::File(0)).unwrap();
        }
        names.sort();
        let all: Vec<&str> = (0..names.len()).map(|i| names.get(i)).collect();
        assert_eq!(
            all,
            [
                "db-",
                "db-a.dump",
                "db-a.dump.failed",
                "db-b.dump",
                "x",
                "é"
            ]
        );
        assert!(names.contains("db-a.dump.failed") && names.contains("é"));
        assert!(!names.contains("db-c.dump") && !names.contains("db"));
        assert_eq!(names.partition_point(|n| n < "db-a"), 1);
        assert_eq!(names.partition_point(|n| n < "zz"), 5);
    }

    #[test]
    fn a_long_folder_path_is_one_group_shared_by_its_backups() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir
            .path()
            .join("a-folder-name-longer-than-twenty-four-bytes");
        fs::create_dir(&folder).unwrap();
        for name in ["db-20260101.dump", "db-20260102.dump"] {
            fs::write(folder.join(name), "").unwrap();
        }
        let mut select = select(r"^db-(?P<ts>\d{8})\.dump$");
        select.timestamp_format = Some("%Y%m%d".into());
        let backups = provider(&folder, select).list_now().unwrap();
        let path = std::fs::canonicalize(&folder)
            .unwrap()
            .display()
            .to_string();
        assert_eq!(backups.len(), 2);
        for b in &backups {
            assert_eq!(b.group, path);
            // Kept once for the process: no heap copy per backup.
            assert!(b.group.as_static_str().is_some());
            assert_eq!(b.name, None);
            assert_eq!(b.kind.as_deref(), Some("file"));
        }
    }

    fn provider(dir: &Path, select: LocalSelect) -> LocalProvider {
        LocalProvider::new("dumps", dir, select, &TimeZone::UTC)
    }

    #[test]
    fn lists_matching_entries_with_groups_statuses_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("db-a-2024-03-01T10:00:00Z.gz"), "12345").unwrap();
        fs::write(d.join("db-b-2024-03-02T10:00:00+02:00.gz"), "").unwrap();
        fs::write(d.join("db-b-2024-03-02T10:00:00+02:00.gz.failed"), "").unwrap();
        fs::create_dir(d.join("db-a-2024-03-03T00:00:00Z.gz")).unwrap();
        fs::write(d.join("db-a-2024-03-03T00:00:00Z.gz.partial"), "").unwrap();
        fs::write(d.join("notes.txt"), "").unwrap();
        let p = provider(d, select(r"^db-(?P<group>[a-z])-(?P<ts>.+)\.gz$"));
        let listed = p.list_now().unwrap();
        let summary: Vec<(String, String, Status, Option<u64>)> = listed
            .iter()
            .map(|b| {
                (
                    b.group.to_string(),
                    b.created_at.to_string(),
                    b.status,
                    b.size,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "a".into(),
                    "2024-03-01T10:00:00Z".into(),
                    Status::Complete,
                    Some(5)
                ),
                (
                    "a".into(),
                    "2024-03-03T00:00:00Z".into(),
                    Status::InProgress,
                    None
                ),
                (
                    "b".into(),
                    "2024-03-02T08:00:00Z".into(),
                    Status::Failed,
                    Some(0)
                ),
            ]
        );
    }

    #[test]
    fn what_each_entry_is_comes_with_the_folder_listing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("db-2024-03-01T00:00:00Z.gz"), "123").unwrap();
        fs::create_dir(d.join("db-2024-03-02T00:00:00Z.gz")).unwrap();
        fs::write(d.join("elsewhere"), "1234567").unwrap();
        let link = d.join("db-2024-03-03T00:00:00Z.gz");
        std::os::unix::fs::symlink(d.join("elsewhere"), link).unwrap();
        let p = provider(d, select(r"^db-(?P<ts>.+)\.gz$"));
        let listed: Vec<(String, Option<u64>, String)> = p
            .list_now()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b.id.to_string(),
                    b.size,
                    b.kind.as_deref().unwrap().to_string(),
                )
            })
            .collect();
        // A symlink is listed as a file, without its target's size.
        assert_eq!(
            listed,
            [
                ("db-2024-03-01T00:00:00Z.gz".into(), Some(3), "file".into()),
                ("db-2024-03-02T00:00:00Z.gz".into(), None, "folder".into()),
                ("db-2024-03-03T00:00:00Z.gz".into(), None, "file".into()),
            ]
        );
        for kind in [
            EntryKind::File(0),
            EntryKind::File(1 << 40),
            EntryKind::Dir,
            EntryKind::Other,
            EntryKind::Unread,
        ] {
            assert_eq!(Packed::new(kind).kind(), kind);
        }
    }

    #[test]
    fn a_timestamp_that_does_not_parse_fails_the_whole_listing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("db-20240301.gz"), "").unwrap();
        fs::write(dir.path().join("db-2024.gz"), "").unwrap();
        let mut sel = select(r"^db-(?P<ts>\d+)\.gz$");
        sel.timestamp_format = Some("%Y%m%d".into());
        let err = provider(dir.path(), sel).list_now().unwrap_err();
        assert_eq!(err.account, "dumps");
        assert!(
            err.message
                .contains("db-2024.gz: timestamp `2024` does not match timestamp_format `%Y%m%d`"),
            "{err}"
        );
    }

    #[test]
    fn glob_uses_modification_times() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.dump"), "").unwrap();
        fs::write(dir.path().join("a.txt"), "").unwrap();
        let sel = LocalSelect {
            glob: Some(glob::Pattern::new("*.dump").unwrap()),
            ..LocalSelect::default()
        };
        let listed = provider(dir.path(), sel).list_now().unwrap();
        assert_eq!(listed.len(), 1);
        let age = Timestamp::now().duration_since(listed[0].created_at);
        assert!(age.as_secs() < 600, "{age:?}");
    }

    #[test]
    fn hostile_ids_are_refused_and_nothing_outside_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("backups");
        fs::create_dir(&inner).unwrap();
        fs::write(dir.path().join("victim"), "x").unwrap();
        let p = provider(&inner, select("(?P<ts>.*)"));
        for id in ["../victim", "..", ".", "a/b", "/etc/passwd", ""] {
            let backup = Backup::new(id, "g", Timestamp::UNIX_EPOCH, Status::Complete);
            let err = p.delete_now(&backup).unwrap_err();
            assert!(err.message.starts_with("refused"), "{id}: {err}");
        }
        assert!(dir.path().join("victim").exists());
    }

    #[test]
    fn deleting_what_is_already_gone_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let p = provider(dir.path(), select("(?P<ts>.*)"));
        let gone = Backup::new(
            "never-existed",
            "g",
            Timestamp::UNIX_EPOCH,
            Status::Complete,
        );
        assert_eq!(p.delete_now(&gone), Ok(()));
    }
}
