//! A stateful fake of the DocSpace backup API (PROVIDERS.md §2): the envelope, `Bearer` API-key
//! auth (a key without `Bearer ` is rejected, as the server's auth-scheme selector does), the
//! whole history in one response, `Dump`, deletion by GUID (a non-GUID id misses the route:
//! 404; an unknown GUID throws: 500), and `deletebackuphistory`.

use super::fake::{Reply, Request, Server};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub const API_KEY: &str = "sk-7f3a9c1e5b2d4680a1b2c3d4e5f60718";

#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub file_name: String,
    pub storage_type: u8,
    /// As the server writes it: no zone.
    pub created_on: String,
    pub dump: bool,
}

impl Record {
    pub fn new(id: &str, created_on: &str) -> Record {
        Record {
            id: id.into(),
            file_name: format!("backup-{}.tar.gz", &created_on[..10]),
            storage_type: 0,
            created_on: created_on.into(),
            dump: false,
        }
    }
}

pub struct Fake {
    pub server: Server,
    pub records: Arc<Mutex<Vec<Record>>>,
}

/// A GUID for day `n`, stable across runs.
pub fn guid(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{:012x}", n * 7919)
}

/// `days` daily backups at 03:00 UTC, the newest on 2026-11-20.
pub fn daily(days: usize) -> Vec<Record> {
    let newest: jiff::civil::DateTime = "2026-11-20T03:00:00".parse().unwrap();
    (0..days)
        .map(|n| {
            let at = newest
                .checked_sub(jiff::Span::new().days(n as i64))
                .unwrap();
            Record::new(&guid(n), &at.to_string())
        })
        .collect()
}

fn envelope(response: Value, status_code: u16) -> Reply {
    let count = match &response {
        Value::Array(items) => items.len(),
        Value::Null => 0,
        _ => 1,
    };
    Reply::json(
        status_code,
        &json!({"response": response, "count": count, "links": [], "status": 0, "statusCode": status_code}),
    )
}

pub fn error(status_code: u16, message: &str, kind: Option<&str>) -> Reply {
    let mut error = json!({"message": message, "hresult": 0});
    if let Some(kind) = kind {
        error["type"] = json!(kind);
        error["stack"] = json!("   at ASC.Data.Backup...");
        error["hresult"] = json!(-2147467261);
    }
    Reply::json(
        status_code,
        &json!({"error": error, "status": 1, "statusCode": status_code}),
    )
}

fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Fake {
    pub fn start(records: Vec<Record>) -> Fake {
        let records = Arc::new(Mutex::new(records));
        let state = records.clone();
        let server = Server::start(Arc::new(move |r: &Request| handle(&state, r)));
        Fake { server, records }
    }

    /// A fake that first asks `guard` about each request: its reply, if any, is the answer
    /// (the portal then changes nothing).
    pub fn start_guarded(
        records: Vec<Record>,
        guard: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    ) -> Fake {
        let records = Arc::new(Mutex::new(records));
        let state = records.clone();
        let server = Server::start(Arc::new(move |r: &Request| {
            guard(r).unwrap_or_else(|| handle(&state, r))
        }));
        Fake { server, records }
    }

    pub fn ids(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.id.clone())
            .collect()
    }
}

fn handle(records: &Mutex<Vec<Record>>, r: &Request) -> Reply {
    if r.header("authorization") != Some(&format!("Bearer {API_KEY}")) {
        return error(401, "Unauthorized", None);
    }
    let dump = r
        .param("dump")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut records = records.lock().unwrap();
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/2.0/backup/getbackuphistory") => {
            let list: Vec<Value> = records
                .iter()
                .filter(|rec| rec.dump == dump)
                .map(|rec| {
                    json!({
                        "id": rec.id,
                        "fileName": rec.file_name,
                        "storageType": rec.storage_type,
                        "createdOn": rec.created_on,
                        "expiresOn": "0001-01-01T00:00:00",
                    })
                })
                .collect();
            envelope(Value::Array(list), 200)
        }
        ("DELETE", "/api/2.0/backup/deletebackuphistory") => {
            records.retain(|rec| rec.dump != dump);
            envelope(json!(true), 200)
        }
        ("DELETE", path) if path.starts_with("/api/2.0/backup/deletebackup/") => {
            let id = &path["/api/2.0/backup/deletebackup/".len()..];
            if !is_guid(id) {
                return Reply::raw(404, "text/plain", Vec::new());
            }
            let before = records.len();
            records.retain(|rec| rec.id != id);
            if records.len() == before {
                return error(
                    500,
                    "Object reference not set to an instance of an object.",
                    Some("System.NullReferenceException"),
                );
            }
            envelope(json!(true), 200)
        }
        _ => Reply::raw(404, "text/plain", Vec::new()),
    }
}
