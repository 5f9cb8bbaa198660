//! The JSON Schema of policy files (for editors and CI), generated from the same key tables
//! the validator uses. `policies/schema.json` is this output; a test keeps them equal. Pure.

use super::definition::{KEEP_KEYS, POLICY_KEYS};
use super::select::{CLOUDINARY_RESOURCE_TYPES, DOCSPACE_STORAGE_TYPES, all_select_keys};
use serde_json::{Map, Value, json};

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn strings(description: &str) -> Value {
    json!({"description": description, "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}}
    ]})
}

fn duration() -> Value {
    json!({"type": "string", "description": "A duration: 90s, 30min, 36h, 14d, 8w, 6mo, 2y, combinable (`1y 2mo 3d`). A bare `m` is rejected as ambiguous.",
           "pattern": "^\\s*(\\d+\\s*(s|sec|secs|second|seconds|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|wk|wks|week|weeks|mo|mon|month|months|y|yr|yrs|year|years)\\s*)+$"})
}

fn count(description: &str) -> Value {
    json!({"description": description, "oneOf": [
        {"type": "integer", "minimum": 0},
        {"const": "unlimited"}
    ]})
}

fn object(properties: Map<String, Value>, description: &str) -> Value {
    json!({"type": "object", "description": description, "additionalProperties": false, "properties": properties})
}

fn keep() -> Value {
    let mut p = Map::new();
    for key in KEEP_KEYS {
        let value = match *key {
            "last" => count("Keep the N newest backups."),
            "tags" => strings("Keep every backup carrying these tags; `a,b` needs both a and b."),
            "within" => duration(),
            k if k.starts_with("within_") => duration(),
            k => count(&format!(
                "Keep the newest backup of each of the N most recent {k} periods that have one."
            )),
        };
        p.insert(key.to_string(), value);
    }
    let mut schema = object(
        p,
        "Keep rules (restic `forget` semantics); at least one is required.",
    );
    schema["minProperties"] = json!(1);
    schema
}

fn select() -> Value {
    let mut p = Map::new();
    for key in all_select_keys() {
        let value = match key {
            "name" => string("Regex on the backup name (all providers)."),
            "pattern" => string(
                "local, s3: regex on file names (s3: on the key below `prefix`) with a named group `ts` (timestamp) and optional `group`.",
            ),
            "timestamp_format" => string(
                "local, s3: strftime format of the `ts` group, e.g. `%Y%m%dT%H%M%S`; zone-less times are read in `timestamp_zone`.",
            ),
            "timestamp_zone" => string(
                "local, s3: the zone of `ts` times written without an offset: `UTC` (default), `policy` (the policy's zone) or an IANA name.",
            ),
            "glob" => string(
                "local, s3: shell glob on file names (s3: on the key below `prefix`; `*` stops at `/`); timestamps from the modification time (s3: LastModified).",
            ),
            "mtime" => {
                json!({"type": "boolean", "description": "local, s3: take timestamps from the modification time (s3: LastModified)."})
            }
            "dump" => {
                json!({"type": "boolean", "description": "onlyoffice-docspace: list dump backups."})
            }
            "resource_type" => {
                json!({"type": "string", "examples": CLOUDINARY_RESOURCE_TYPES, "description": "cloudinary: the assets' resource type, image (default), video or raw; huaweicloud-cbr: the resources' type, e.g. OS::Nova::Server."})
            }
            "image_type" => {
                json!({"enum": ["backup", "replication"], "default": "backup", "description": "huaweicloud-cbr: backups, or copies replicated from another region."})
            }
            "automatic" => {
                json!({"type": "boolean", "default": true, "description": "huaweicloud-cbr: whether backups a vault's own policy made are candidates."})
            }
            "type" => string(
                "cloudinary: the assets' delivery type, e.g. `upload`, `private`; needed by `prefix`.",
            ),
            "prefix" => string(
                "cloudinary: public-id prefix of the assets, e.g. `products/`; needs `type`. s3: the key prefix listed, e.g. `db/`.",
            ),
            "storage_type" => {
                json!({"enum": DOCSPACE_STORAGE_TYPES, "description": "onlyoffice-docspace: only backups kept in this storage."})
            }
            "backup_type" => {
                json!({"const": "manual", "description": "huaweicloud-taurusdb: only manual backups are managed."})
            }
            "tags" | "asset_ids" | "resource_ids" | "vault_ids" | "instance_ids" => strings(key),
            other => string(other),
        };
        p.insert(key.to_string(), value);
    }
    object(
        p,
        "Which backups the policy manages; keys depend on the account's provider.",
    )
}

fn policy() -> Value {
    let mut p = Map::new();
    for key in POLICY_KEYS {
        let value = match *key {
            "name" => {
                json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "description": "Unique across all policy files."})
            }
            "description" => string("Free text."),
            "account" => string("An account of the daemon config."),
            "schedule" => {
                string("Cron: 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly.")
            }
            "jitter" => string(
                "Start each scheduled run up to this much later (ms, s, min, h), a fixed offset per policy and fire.",
            ),
            "timezone" => string(
                "IANA zone for the schedule and the period buckets; default from the config, else UTC.",
            ),
            "mode" => json!({"enum": ["dry-run", "enforce"], "default": "dry-run"}),
            "select" => select(),
            "group_by" => json!({"enum": ["resource", "none"], "default": "resource"}),
            "keep" => keep(),
            "protect" => {
                let mut p = Map::new();
                p.insert("ids".into(), strings("Backup ids that are never deleted."));
                p.insert(
                    "names".into(),
                    strings("Regexes on backup names that are never deleted."),
                );
                object(p, "Backups never deleted, whatever the rules say.")
            }
            "failed" => {
                let mut p = Map::new();
                p.insert("delete_after".into(), duration());
                object(p, "Failed backups are kept unless delete_after is set.")
            }
            "guard" => {
                let mut p = Map::new();
                p.insert(
                    "min_keep".into(),
                    json!({"type": "integer", "minimum": 1, "default": 1}),
                );
                p.insert(
                    "max_delete".into(),
                    json!({"type": "integer", "minimum": 0}),
                );
                p.insert(
                    "max_delete_fraction".into(),
                    json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5}),
                );
                p.insert("stale_after".into(), duration());
                p.insert("future_tolerance".into(), duration());
                let mut grace = duration();
                grace["description"] = json!(
                    "A grace period: a backup is deleted only once the policy has planned to delete it in every run for at least this long (the plan shows it as `wait`, `delete after ...`); a run that keeps it restarts the clock. Unset: the config's `defaults.grace`; `0s`: none. A duration: 90s, 30min, 36h, 14d, 8w, 6mo, 2y."
                );
                p.insert("grace".into(), grace);
                p.insert(
                    "max_listing_drop".into(),
                    json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5}),
                );
                p.insert(
                    "unapproved_max_delete".into(),
                    json!({"type": "integer", "minimum": 0, "default": 10}),
                );
                p.insert(
                    "unapproved_max_delete_fraction".into(),
                    json!({"type": "number", "minimum": 0, "maximum": 1, "default": 0.1}),
                );
                object(p, "Limits that block a run instead of deleting too much.")
            }
            other => unreachable!("policy key {other} has no schema"),
        };
        p.insert(key.to_string(), value);
    }
    let mut schema = object(p, "One retention policy.");
    schema["required"] = json!(["name", "account", "keep"]);
    schema
}

/// The schema document.
pub fn policy_file_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/retentiond/retentiond/policies/schema.json",
        "title": "retentiond policy file",
        "description": "One policy, or a list of policies.",
        "oneOf": [
            {"$ref": "#/$defs/policy"},
            {"type": "array", "items": {"$ref": "#/$defs/policy"}}
        ],
        "$defs": {"policy": policy()}
    })
}
