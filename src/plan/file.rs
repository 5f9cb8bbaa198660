//! The plan file that `plan --out` writes (the plan JSON) as `apply` reads it back: per policy
//! its name, fingerprint, whether it was blocked, and the reviewed delete set.

use serde::Deserialize;
use std::path::Path;

/// One policy of a reviewed plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reviewed {
    pub name: String,
    pub fingerprint: String,
    /// The policy as written when the plan was made (`Policy::as_written`), if the plan has it.
    pub as_written: Option<serde_json::Value>,
    pub evaluated_at: Option<String>,
    /// Why the reviewed plan deleted nothing for this policy: blocked, or its listing failed.
    pub not_applicable: Option<String>,
    /// `(group, id)` of every backup the reviewed plan deletes.
    pub deletions: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct File {
    policies: Vec<Policy>,
}

#[derive(Deserialize)]
struct Policy {
    name: String,
    fingerprint: String,
    #[serde(default)]
    policy: Option<serde_json::Value>,
    #[serde(default)]
    evaluated_at: Option<String>,
    #[serde(default)]
    blocked: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    backups: Vec<Backup>,
}

#[derive(Deserialize)]
struct Backup {
    id: String,
    group: String,
    action: String,
}

/// Reads the text of the plan file at `path` (which names it in errors); the error says what
/// is wrong.
pub fn parse(text: &[u8], path: &Path) -> Result<Vec<Reviewed>, String> {
    let file: File = serde_json::from_slice(text).map_err(|e| {
        format!(
            "{}: not a plan written by `retentiond plan --out` ({e})",
            path.display()
        )
    })?;
    if file.policies.is_empty() {
        return Err(format!("{}: the plan holds no policy", path.display()));
    }
    for (i, p) in file.policies.iter().enumerate() {
        if file.policies[..i].iter().any(|q| q.name == p.name) {
            return Err(format!(
                "{}: the plan names policy {} twice; a plan written by `retentiond plan --out` names each policy once: make the plan again",
                path.display(),
                p.name
            ));
        }
    }
    Ok(file
        .policies
        .into_iter()
        .map(|p| Reviewed {
            not_applicable: match (p.error, p.blocked) {
                (Some(e), _) => Some(format!("its listing failed when the plan was made: {e}")),
                (None, Some(b)) => Some(format!("the reviewed plan was blocked: {b}")),
                (None, None) => None,
            },
            deletions: p
                .backups
                .into_iter()
                .filter(|b| b.action == "delete")
                .map(|b| (b.group, b.id))
                .collect(),
            name: p.name,
            fingerprint: p.fingerprint,
            as_written: p.policy,
            evaluated_at: p.evaluated_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_delete_set_and_names_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(
            &path,
            r#"{"policies": [{"name": "p", "account": "a", "fingerprint": "f", "blocked": null,
                "backups": [{"id": "a", "group": "g", "action": "keep", "reasons": ["last"]},
                            {"id": "b", "group": "g", "action": "delete", "reasons": []}]},
               {"name": "q", "fingerprint": "h", "blocked": "too many", "backups": []}]}"#,
        )
        .unwrap();
        let plan = parse(&std::fs::read(&path).unwrap(), &path).unwrap();
        assert_eq!(plan[0].deletions, [("g".to_string(), "b".to_string())]);
        assert_eq!(plan[0].not_applicable, None);
        assert_eq!(
            plan[1].not_applicable.as_deref(),
            Some("the reviewed plan was blocked: too many")
        );

        std::fs::write(&path, r#"{"backups": []}"#).unwrap();
        let err = parse(&std::fs::read(&path).unwrap(), &path).unwrap_err();
        assert!(
            err.contains("plan.json: not a plan written by `retentiond plan --out`"),
            "{err}"
        );
        assert!(err.contains("missing field `policies`"), "{err}");

        // One policy twice would lock itself out (its second lock names its own pid).
        let twice = br#"{"policies": [{"name": "p", "fingerprint": "f"}, {"name": "p", "fingerprint": "f"}]}"#;
        assert_eq!(
            parse(twice, &path).unwrap_err(),
            format!(
                "{}: the plan names policy p twice; a plan written by `retentiond plan --out` names each policy once: make the plan again",
                path.display()
            )
        );
    }
}
