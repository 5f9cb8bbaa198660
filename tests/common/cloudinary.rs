//! A stateful fake of Cloudinary's Admin API for backed-up versions (PROVIDERS.md §1): HTTP
//! Basic auth, `/resources/{resource_type}[/{type}]` and `/resources/{resource_type}/tags/{tag}`
//! paged by `next_cursor` (page size `max_results`, at most the fake's `page` setting), asset
//! details with `versions=true` (numbers as strings, as the .NET SDK models them), and
//! `DELETE /resources/backup/{asset_id}` with a JSON `version_ids` body answering 200, or 207
//! with `failures` for the versions told to fail.

use super::fake::{Reply, Request, Server};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const CLOUD: &str = "demo";
pub const API_KEY: &str = "614335564976464";
pub const API_SECRET: &str = "Zq8-cLd5ecret-x91Kw2";

#[derive(Clone, Debug)]
pub struct Version {
    pub version_id: String,
    pub version: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Asset {
    pub asset_id: String,
    pub public_id: String,
    pub resource_type: String,
    pub delivery_type: String,
    pub tags: Vec<String>,
    /// The current version (Unix seconds of the live upload).
    pub version: u64,
    pub versions: Vec<Version>,
}

/// An asset with `count` daily versions, the newest at 2026-11-20T03:00Z; the current version
/// is the one `current_age` days old.
pub fn asset(n: usize, public_id: &str, count: usize, current_age: usize) -> Asset {
    let newest = 1_795_143_600u64; // 2026-11-20T03:00:00Z
    let versions: Vec<Version> = (0..count)
        .map(|age| Version {
            version_id: format!("{n:04x}{age:04x}{}", "ab".repeat(12)),
            version: newest - age as u64 * 86_400,
            size: 1000 + age as u64,
        })
        .collect();
    Asset {
        asset_id: format!("{n:08x}{}", "cd".repeat(12)),
        public_id: public_id.into(),
        resource_type: "image".into(),
        delivery_type: "upload".into(),
        tags: Vec::new(),
        version: versions[current_age].version,
        versions,
    }
}

#[derive(Default)]
pub struct State {
    pub assets: Vec<Asset>,
    /// Versions whose deletion fails (a 207 names them).
    pub failing: HashSet<String>,
    /// The largest page the fake serves.
    pub page: usize,
    /// Every version id a DELETE asked for, in order.
    pub delete_requests: Vec<String>,
}

pub struct Fake {
    pub server: Server,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(assets: Vec<Asset>, page: usize) -> Fake {
        let state = Arc::new(Mutex::new(State {
            assets,
            page,
            ..State::default()
        }));
        let shared = state.clone();
        let server = Server::start(Arc::new(move |r: &Request| handle(&shared, r)));
        Fake { server, state }
    }

    /// Every (asset id, version id) still held.
    pub fn versions(&self) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap();
        state
            .assets
            .iter()
            .flat_map(|a| {
                a.versions
                    .iter()
                    .map(|v| (a.asset_id.clone(), v.version_id.clone()))
            })
            .collect()
    }
}

pub fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64(format!("{API_KEY}:{API_SECRET}").as_bytes())
    )
}

pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": {"message": message}}))
}

fn time(seconds: u64) -> String {
    jiff::Timestamp::from_second(seconds as i64)
        .unwrap()
        .to_string()
}

fn handle(state: &Mutex<State>, r: &Request) -> Reply {
    if r.header("authorization") != Some(basic_auth().as_str()) {
        return error(401, "Invalid api_key 614335564976464 or api_secret");
    }
    let prefix = format!("/v1_1/{CLOUD}/resources/");
    let Some(rest) = r.path.strip_prefix(&prefix) else {
        return error(404, "Resource not found");
    };
    // A real server decodes each path segment: `%2F` inside an id is part of the id.
    let decoded: Vec<String> = rest.split('/').map(super::fake::decode).collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let mut state = state.lock().unwrap();
    match (r.method.as_str(), segments.as_slice()) {
        ("DELETE", ["backup", asset_id]) => delete(&mut state, asset_id, &r.body),
        ("GET", [rt, "tags", tag]) => list(&state, r, |a| {
            a.resource_type == *rt && a.tags.iter().any(|t| t == tag)
        }),
        ("GET", [rt]) if ["image", "video", "raw"].contains(rt) => {
            list(&state, r, |a| a.resource_type == *rt)
        }
        ("GET", [rt, delivery]) => list(&state, r, |a| {
            a.resource_type == *rt && a.delivery_type == *delivery
        }),
        ("GET", [asset_id]) => match state.assets.iter().find(|a| a.asset_id == *asset_id) {
            Some(asset) => Reply::json(
                200,
                &details(asset, r.param("versions").as_deref() == Some("true")),
            ),
            None => error(404, &format!("Resource not found - {asset_id}")),
        },
        _ => error(404, "Resource not found"),
    }
}

fn details(asset: &Asset, versions: bool) -> Value {
    let mut value = json!({
        "asset_id": asset.asset_id,
        "public_id": asset.public_id,
        "resource_type": asset.resource_type,
        "type": asset.delivery_type,
        "version": asset.version,
        "created_at": time(asset.versions[0].version),
        "bytes": 1000,
        "tags": asset.tags,
    });
    if versions {
        value["versions"] = asset
            .versions
            .iter()
            .map(|v| {
                json!({
                    "version_id": v.version_id,
                    "version": v.version.to_string(),
                    "size": v.size.to_string(),
                    "time": time(v.version),
                    "restorable": true,
                })
            })
            .collect();
    }
    value
}

fn list(state: &State, r: &Request, wanted: impl Fn(&Asset) -> bool) -> Reply {
    let prefix = r.param("prefix").unwrap_or_default();
    let matching: Vec<&Asset> = state
        .assets
        .iter()
        .filter(|a| wanted(a) && a.public_id.starts_with(&prefix))
        .collect();
    let max: usize = r
        .param("max_results")
        .and_then(|m| m.parse().ok())
        .unwrap_or(10)
        .min(state.page);
    let start: usize = r
        .param("next_cursor")
        .and_then(|c| c.strip_prefix("cur-").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max)
        .map(|a| {
            json!({
                "asset_id": a.asset_id, "public_id": a.public_id,
                "resource_type": a.resource_type, "type": a.delivery_type,
                "version": a.version, "backup": true,
            })
        })
        .collect();
    let mut body = json!({"resources": page});
    if start + max < matching.len() {
        body["next_cursor"] = json!(format!("cur-{}", start + max));
    }
    Reply::json(200, &body)
}

fn delete(state: &mut State, asset_id: &str, body: &[u8]) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(400, "Invalid JSON body");
    };
    let Some(ids) = body["version_ids"].as_array() else {
        return error(400, "Missing required parameter - version_ids");
    };
    let ids: Vec<String> = ids
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    state.delete_requests.extend(ids.iter().cloned());
    let failing = state.failing.clone();
    let Some(asset) = state.assets.iter_mut().find(|a| a.asset_id == asset_id) else {
        return error(404, &format!("Resource not found - {asset_id}"));
    };
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in ids {
        if failing.contains(&id) {
            failures.push(json!({"version_id": id, "error": "Failed to delete backup version"}));
        } else if asset.versions.iter().any(|v| v.version_id == id) {
            asset.versions.retain(|v| v.version_id != id);
            deleted.push(id);
        } else {
            failures.push(json!({"version_id": id, "error": "Version not found"}));
        }
    }
    let status = if failures.is_empty() { 200 } else { 207 };
    let mut body = json!({"asset_id": asset_id, "deleted_version_ids": deleted});
    if !failures.is_empty() {
        body["failures"] = Value::Array(failures);
    }
    Reply::json(status, &body)
}
