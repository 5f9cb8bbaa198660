//! The one backup model every provider converts to, and the listing file format
//! (`list --format json` writes it, `plan --listing` reads it). No I/O beyond (de)serialising.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod plain;

/// The state a provider reports for one backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Complete,
    Failed,
    InProgress,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::InProgress => "in_progress",
            Status::Unknown => "unknown",
        }
    }
}

/// A backup's id, group or name: up to 24 bytes inside the backup itself, no allocation of its
/// own (a million backups are then a third smaller and read faster; BENCHMARKS.md).
pub type Text = compact_str::CompactString;

/// One backup as a provider lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The provider's own id (a composite such as `asset_id/version_id` where needed).
    pub id: Text,
    /// The resource the backup belongs to (server, DB instance, asset, portal, folder).
    pub group: Text,
    #[serde(deserialize_with = "crate::timestamp::rfc3339::deserialize")]
    pub created_at: Timestamp,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub tags: Box<[String]>,
    /// Shared where a provider has few kinds (a million local files hold two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Arc<str>>,
    /// The provider's live copy (Cloudinary's current version of an asset): never deleted,
    /// whatever the policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

impl Backup {
    /// A backup with only the required fields set.
    pub fn new(id: &str, group: &str, created_at: Timestamp, status: Status) -> Backup {
        Backup {
            id: id.into(),
            group: group.into(),
            created_at,
            status,
            name: None,
            size: None,
            tags: Box::default(),
            kind: None,
            live: false,
        }
    }
}

/// A complete listing: `{"backups": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub backups: Vec<Backup>,
}

impl Listing {
    /// Reads a listing file, naming the file and the position of the first error.
    pub fn read(path: &std::path::Path) -> Result<Listing, String> {
        let cannot = |e: std::io::Error| format!("{}: cannot read listing: {e}", path.display());
        let file = std::fs::File::open(path).map_err(cannot)?;
        let size = file.metadata().map_or(0, |m| m.len());
        if let Some(listing) = read_by_chunks(file, CHUNK, size).map_err(cannot)? {
            return Ok(listing);
        }
        // Not the plain shape, or not valid: the whole file through serde, for its exact error
        // (or whatever the plain reading did not expect).
        let text = std::fs::read(path).map_err(cannot)?;
        serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a listing ({}); expected {{\"backups\": [{{\"id\", \"group\", \"created_at\", \"status\", ...}}]}}",
                path.display(),
                e.line(),
                e.column(),
                strip_serde_position(&e.to_string())
            )
        })
    }
}

/// How much of a listing file is read at a time.
const CHUNK: usize = 1 << 20;

/// How many backups, at least, are read before the room for the rest is estimated from their
/// length.
const SAMPLE: usize = 1024;

/// How much of a chunk, at least, is read on two cores ([`in_two`]) when the machine has them.
const IN_TWO: usize = 64 << 10;

/// A listing of the plain shape, `{"backups": [...]}`, read a chunk at a time and parsed
/// backup by backup from the slice: the file is never held whole beside its backups (a million
/// backups are 138 MB of JSON), and serde_json reads a slice several times faster than through
/// a reader, byte by byte (BENCHMARKS.md). A backup of the plain form is read by hand
/// ([`plain`]), any other by serde; a chunk is read on two cores where there are two
/// ([`in_two`]). `None` when the file is not of that shape or not valid: the caller then reads
/// it whole for serde's own answer and error position. `size` is the file's length as far as
/// known (0 when not), for the room the backups need.
fn read_by_chunks(
    mut file: impl std::io::Read,
    chunk: usize,
    size: u64,
) -> std::io::Result<Option<Listing>> {
    let mut chunks = Chunks {
        buf: Vec::with_capacity(chunk),
        chunk,
        pos: 0,
        dropped: 0,
        end: false,
    };
    let mut backups = Vec::new();
    for expected in [b'{', b'"'] {
        if chunks.next_byte(&mut file)? != Some(expected) {
            return Ok(None);
        }
        chunks.pos += 1;
    }
    for expected in *b"backups\"" {
        if chunks.byte(&mut file)? != Some(expected) {
            return Ok(None);
        }
        chunks.pos += 1;
    }
    for expected in [b':', b'['] {
        if chunks.next_byte(&mut file)? != Some(expected) {
            return Ok(None);
        }
        chunks.pos += 1;
    }
    if chunks.next_byte(&mut file)? == Some(b']') {
        chunks.pos += 1;
    } else {
        let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let mut reserved = false;
        loop {
            if two_cores && chunks.buf.len() - chunks.pos >= IN_TWO {
                let used = in_two(&chunks.buf[chunks.pos..], &mut backups);
                chunks.pos += used;
                if used > 0 {
                    continue;
                }
            }
            if !reserved && backups.len() >= SAMPLE {
                reserved = true;
                // Room for the rest, as many as the backups read so far say (by their length
                // in the file) and an eighth more, so that a million backups (144 MB) are not
                // moved each time the vector doubles.
                let read = chunks.dropped + chunks.pos as u64;
                let each = (read / backups.len() as u64).max(1);
                let rest = size.saturating_sub(read) / each;
                // Only room: what is not reached is never touched, and a size no allocator
                // gives (a sparse file) leaves the vector to grow as it would have.
                let _ = backups.try_reserve(usize::try_from(rest + rest / 8).unwrap_or(usize::MAX));
            }
            if let Some((backup, used)) = plain::backup(&chunks.buf[chunks.pos..]) {
                chunks.pos += used;
                backups.push(backup);
            } else {
                let mut one = serde_json::Deserializer::from_slice(&chunks.buf[chunks.pos..])
                    .into_iter::<Backup>();
                match one.next() {
                    Some(Ok(backup)) => {
                        chunks.pos += one.byte_offset();
                        backups.push(backup);
                    }
                    // The backup goes on in the next chunk (or the file ends inside it).
                    Some(Err(e)) if e.is_eof() && !chunks.end => {
                        chunks.more(&mut file)?;
                        continue;
                    }
                    None if !chunks.end => {
                        chunks.more(&mut file)?;
                        continue;
                    }
                    _ => return Ok(None),
                }
            }
            match chunks.next_byte(&mut file)? {
                Some(b',') => chunks.pos += 1,
                Some(b']') => {
                    chunks.pos += 1;
                    break;
                }
                _ => return Ok(None),
            }
        }
    }
    if chunks.next_byte(&mut file)? != Some(b'}') {
        return Ok(None);
    }
    chunks.pos += 1;
    Ok((chunks.next_byte(&mut file)?.is_none()).then_some(Listing { backups }))
}

/// Reads the backups `rest` starts with on two cores: this thread from the start, another one
/// from a backup's start guessed half-way. The other thread's backups are kept only when this
/// thread's reading reaches the guessed start as the start of a backup (a guess inside a
/// string, say, is thrown away), so that the backups are exactly those one thread reads.
/// Returns how many bytes were read, up to where the next backup starts (after a `,`); what
/// is left, errors included, is for the caller's reading.
fn in_two(rest: &[u8], backups: &mut Vec<Backup>) -> usize {
    let Some(middle) = backup_start_after(rest, rest.len() / 2) else {
        return 0;
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let mut theirs = Vec::new();
            let used = backups_before(&rest[middle..], usize::MAX, &mut theirs);
            (theirs, used)
        });
        let mut done = backups_before(rest, middle, backups);
        let (theirs, used) = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        if done == middle {
            backups.extend(theirs);
            done += used;
        }
        done
    })
}

/// The backups at the start of `bytes` that start before `limit`, each followed by `,` (the
/// last one of the slice is left, and so is anything not valid): appended to `backups`, and
/// how many bytes they take with their commas and the whitespace after them.
fn backups_before(bytes: &[u8], limit: usize, backups: &mut Vec<Backup>) -> usize {
    let mut done = 0;
    while done < limit {
        let used = plain::run(&bytes[done..bytes.len().min(limit)], backups);
        done += used;
        if used > 0 {
            continue;
        }
        // A backup of another form, or one going on past the limit: serde's reading.
        let mut one = serde_json::Deserializer::from_slice(&bytes[done..]).into_iter::<Backup>();
        let Some(Ok(backup)) = one.next() else { break };
        let Some(next) = after_comma(bytes, done + one.byte_offset()) else {
            break;
        };
        backups.push(backup);
        done = next;
    }
    done
}

/// Where a backup may start at or after `from`: best a `{` that begins a line after a line
/// ending in `,`, the way `list` writes (never inside a string, which holds no raw line
/// break), else any `{` after a `,` and whitespace (perhaps a `,{` inside a string).
fn backup_start_after(bytes: &[u8], from: usize) -> Option<usize> {
    let near = &bytes[from..bytes.len().min(from + (64 << 10))];
    for line in near
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| from + i)
    {
        let start = line + whitespace(&bytes[line..]);
        let before = bytes[..line].iter().rposition(|b| !is_whitespace(b));
        if bytes.get(start) == Some(&b'{') && before.is_some_and(|i| bytes[i] == b',') {
            return Some(start);
        }
    }
    let mut at = from;
    loop {
        at += bytes.get(at..)?.iter().position(|&b| b == b',')? + 1;
        at += whitespace(&bytes[at..]);
        if bytes.get(at) == Some(&b'{') {
            return Some(at);
        }
    }
}

/// JSON's whitespace.
fn is_whitespace(b: &u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// How many bytes of JSON whitespace `bytes` starts with.
fn whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !is_whitespace(b))
        .unwrap_or(bytes.len())
}

/// Where the next backup starts when the one ending at `at` is followed by `,` (whitespace
/// around it allowed); `None` when it is not.
fn after_comma(bytes: &[u8], at: usize) -> Option<usize> {
    let comma = at + whitespace(&bytes[at..]);
    (bytes.get(comma) == Some(&b',')).then(|| comma + 1 + whitespace(&bytes[comma + 1..]))
}

/// The part of a file not parsed yet: `buf[pos..]`, then the rest of the file unless `end`.
struct Chunks {
    buf: Vec<u8>,
    /// How much is read at a time.
    chunk: usize,
    pos: usize,
    /// How many bytes of the file came before `buf`.
    dropped: u64,
    end: bool,
}

impl Chunks {
    /// Keeps what is not parsed yet and reads the next chunk after it.
    fn more(&mut self, file: &mut impl std::io::Read) -> std::io::Result<()> {
        self.buf.drain(..self.pos);
        self.dropped += self.pos as u64;
        self.pos = 0;
        let have = self.buf.len();
        self.buf.resize(have + self.chunk, 0);
        let mut filled = have;
        while filled < self.buf.len() {
            match file.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }

    /// The byte at `pos`, reading on when needed; `None` at the end of the file.
    fn byte(&mut self, file: &mut impl std::io::Read) -> std::io::Result<Option<u8>> {
        while self.pos >= self.buf.len() {
            if self.end {
                return Ok(None);
            }
            self.more(file)?;
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// The first byte at or after `pos` that is not JSON whitespace (`pos` moves to it).
    fn next_byte(&mut self, file: &mut impl std::io::Read) -> std::io::Result<Option<u8>> {
        while let Some(b) = self.byte(file)? {
            if !is_whitespace(&b) {
                return Ok(Some(b));
            }
            self.pos += 1;
        }
        Ok(None)
    }
}

/// serde_json appends " at line L column C"; we print the position ourselves in front.
fn strip_serde_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_accepts_any_offset_and_optional_fields() {
        let json = r#"{"backups": [
            {"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00+02:00", "status": "complete"},
            {"id": "b", "group": "g", "created_at": "2024-03-01T08:00:00Z", "status": "in_progress",
             "name": "n", "size": 12, "tags": ["x"], "kind": "manual"}
        ]}"#;
        let listing: Listing = serde_json::from_str(json).unwrap();
        assert_eq!(listing.backups[0].created_at, listing.backups[1].created_at);
        assert_eq!(listing.backups[1].status, Status::InProgress);
        assert_eq!(&*listing.backups[1].tags, ["x".to_string()]);
    }

    /// The chunked reading gives what serde gives for the whole file, wherever the chunks
    /// end (inside a string, an escape, a multi-byte character, a number, between backups),
    /// and leaves files of another shape or with errors to serde.
    #[test]
    fn chunked_reading_is_serde_reading_wherever_chunks_end() {
        let plain = concat!(
            "{\"backups\": [\n",
            r#"{"id": "a\"1", "group": "g\\h", "created_at": "2024-03-01T10:00:00+02:00", "status": "complete", "name": "caf\u00e9 ünï", "size": 1234567},"#,
            "\n  ",
            r#"{"id": "b", "group": "", "created_at": "2024-03-01T08:00:00.5Z", "status": "failed", "tags": ["x", "y"], "kind": "manual", "live": true}"#,
            "\r\n]\t}\n"
        );
        let tight = r#"{"backups":[{"id":"a","group":"g","created_at":"2024-03-01T10:00:00Z","status":"unknown"}]}"#;
        for text in [plain, tight, "{\"backups\": []}", " { \"backups\" : [ ] } "] {
            let whole: Listing = serde_json::from_str(text).unwrap();
            for chunk in 1..=text.len() + 1 {
                let read = read_by_chunks(text.as_bytes(), chunk, text.len() as u64).unwrap();
                assert_eq!(read.as_ref(), Some(&whole), "chunks of {chunk}: {text}");
            }
        }
        // Valid listings of another shape, and invalid ones: serde decides.
        for text in [
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "complete"}], "extra": 1}"#,
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "done"}]}"#,
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "complete"},]}"#,
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "complete"}"#,
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "complete"}]} {}"#,
            r#"{"backups": [1]}"#,
            r#"{"back\u0075ps": []}"#,
            "[]",
            "",
        ] {
            for chunk in [1, 7, 1 << 20] {
                assert_eq!(
                    read_by_chunks(text.as_bytes(), chunk, text.len() as u64).unwrap(),
                    None,
                    "{text}"
                );
            }
        }
    }

    /// Backups of three forms: plain, with an escape (serde's to read), and plain with `,{`
    /// in their name, where a guessed start lands inside a string.
    fn backup_texts(n: usize, forms: &[usize]) -> Vec<String> {
        (0..n)
            .map(|i| match forms[i % forms.len()] {
                0 => format!(
                    r#"{{"id": "b-{i}", "group": "g{}", "created_at": "2026-11-22T23:00:00Z", "status": "complete"}}"#,
                    i % 7
                ),
                1 => format!(
                    r#"{{"id": "b\u002d{i}", "group": "g", "created_at": "2026-11-22T23:00:00+01:00", "status": "failed", "size": {i}}}"#
                ),
                _ => format!(
                    r#"{{"id": "b-{i}", "group": "g", "name": "a,{{b: 1}}, {{c", "created_at": "2026-11-22T23:00:00Z", "status": "complete"}}"#
                ),
            })
            .collect()
    }

    /// The two threads read exactly the backups one thread reads, whether the guessed start
    /// half-way is a backup's (the other thread's half is kept) or inside a string.
    #[test]
    fn reading_on_two_cores_is_reading_on_one() {
        for forms in [&[0][..], &[2], &[0, 1], &[0, 2, 0, 1], &[1]] {
            for separator in [",\n", ", ", " ,\r\n\t"] {
                let texts = backup_texts(2000, forms);
                let rest = format!("{}{separator}", texts.join(separator));
                let all: Vec<Backup> =
                    serde_json::from_str(&format!("[{}]", texts.join(","))).unwrap();
                let mut read = Vec::new();
                let used = in_two(rest.as_bytes(), &mut read);
                let case = format!("forms {forms:?}, separator {separator:?}");
                assert_eq!(read, all[..read.len()], "{case}");
                if read.len() < all.len() {
                    assert!(rest[used..].starts_with(&texts[read.len()]), "{case}");
                } else {
                    assert_eq!(used, rest.len(), "{case}");
                }
                // The other thread's backups were kept where its start was a backup's for
                // sure: a line's start, or no `,{` in any string.
                if separator.contains('\n') || !forms.contains(&2) {
                    assert!(
                        used > rest.len() / 2 + 1000,
                        "{case}: {used} of {}",
                        rest.len()
                    );
                }
            }
        }
    }

    /// Past the first backups, where the room for the rest is estimated from them, and with
    /// chunks large enough to be read on two cores: the same backups, whether the estimate is
    /// short (the file's size unknown) or long.
    #[test]
    fn chunked_reading_of_many_backups_is_serde_reading() {
        for forms in [&[0][..], &[0, 1, 2]] {
            let text = format!(
                "{{\"backups\": [\n{}\n]}}",
                backup_texts(3000, forms).join(",\n")
            );
            let whole: Listing = serde_json::from_str(&text).unwrap();
            assert_eq!(whole.backups.len(), 3000);
            for size in [0, text.len() as u64, 1 << 40] {
                for chunk in [100, 4096, 70_001, 1 << 20] {
                    let read = read_by_chunks(text.as_bytes(), chunk, size).unwrap();
                    assert_eq!(
                        read.as_ref(),
                        Some(&whole),
                        "chunks of {chunk}, size {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn listing_rejects_unknown_status_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.json");
        std::fs::write(
            &path,
            r#"{"backups": [{"id": "a", "group": "g", "created_at": "2024-03-01T10:00:00Z", "status": "done"}]}"#,
        )
        .unwrap();
        let err = Listing::read(&path).unwrap_err();
        assert!(err.contains("l.json:1:"), "{err}");
        assert!(err.contains("unknown variant `done`"), "{err}");
    }
}
