//! The one backup model every provider converts to, and the listing file format
//! (`list --format json` writes it, `plan --listing` reads it). No I/O beyond (de)serialising.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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

/// One backup as a provider lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The provider's own id (a composite such as `asset_id/version_id` where needed).
    pub id: String,
    /// The resource the backup belongs to (server, DB instance, asset, portal, folder).
    pub group: String,
    pub created_at: Timestamp,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The provider's live copy (Cloudinary's current version of an asset): never deleted,
    /// whatever the policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

impl Backup {
    /// A backup with only the required fields set.
    pub fn new(id: &str, group: &str, created_at: Timestamp, status: Status) -> Backup {
        Backup {
            id: id.to_string(),
            group: group.to_string(),
            created_at,
            status,
            name: None,
            size: None,
            tags: Vec::new(),
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
        // Whole, then parsed from the slice: serde_json reads a slice several times faster
        // than through a reader, byte by byte (BENCHMARKS.md).
        let text = std::fs::read(path)
            .map_err(|e| format!("{}: cannot read listing: {e}", path.display()))?;
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
        assert_eq!(listing.backups[1].tags, vec!["x".to_string()]);
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
