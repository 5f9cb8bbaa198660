//! A real S3-compatible server for the tests: moto's server (`tests/s3/moto_server.py`,
//! installed from PyPI by `.ci/run`), which checks every request's SigV4 signature against
//! the IAM user it made. In front of it, the fakes' HTTP server as a forwarding proxy: the
//! request log and the injected faults of `fake.rs` work on the real server's answers.
//! Setup and inspection go to moto's backend directly, never through retentiond's code.

use super::fake::{Reply, Request, Server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::{Arc, Mutex};

pub const BUCKET: &str = "backups";

pub struct Moto {
    child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    /// `127.0.0.1:port`
    pub address: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// One object to put: key, LastModified, and an Object Lock retention date.
#[derive(Clone, Debug)]
pub struct Object {
    pub key: String,
    pub last_modified: Option<String>,
    pub lock_until: Option<String>,
    pub legal_hold: bool,
}

impl Object {
    pub fn new(key: &str) -> Object {
        Object {
            key: key.into(),
            last_modified: None,
            lock_until: None,
            legal_hold: false,
        }
    }

    pub fn legal_hold(mut self) -> Object {
        self.legal_hold = true;
        self
    }

    pub fn modified(mut self, at: &str) -> Object {
        self.last_modified = Some(at.into());
        self
    }

    pub fn locked_until(mut self, at: &str) -> Object {
        self.lock_until = Some(at.into());
        self
    }
}

impl Moto {
    pub fn start() -> Moto {
        let (child, stdin, stdout, hello) = super::start_python_server(
            "tests/s3/moto_server.py",
            "install it with `python3 -m pip install 'moto[server]==5.2.1'` (README, Quick start)",
        );
        let text = |k: &str| hello[k].as_str().unwrap().to_string();
        Moto {
            address: text("endpoint").trim_start_matches("http://").to_string(),
            access_key_id: text("access_key_id"),
            secret_access_key: text("secret_access_key"),
            io: Mutex::new((stdin, stdout)),
            child,
        }
    }

    fn call(&self, command: Value) -> Value {
        let mut io = self.io.lock().unwrap();
        writeln!(io.0, "{command}").unwrap();
        io.0.flush().unwrap();
        let mut line = String::new();
        io.1.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(
            answer["error"].is_null(),
            "moto: {command} failed: {answer}"
        );
        answer
    }

    pub fn bucket(&self, name: &str, versioned: bool, lock: bool) {
        self.call(json!({"op": "bucket", "name": name, "versioned": versioned, "lock": lock}));
    }

    pub fn put(&self, bucket: &str, objects: &[Object]) {
        for chunk in objects.chunks(5000) {
            let specs: Vec<Value> = chunk
                .iter()
                .map(|o| {
                    json!({"key": o.key, "last_modified": o.last_modified, "lock_until": o.lock_until, "legal_hold": o.legal_hold})
                })
                .collect();
            self.call(json!({"op": "put", "bucket": bucket, "objects": specs}));
        }
    }

    /// Deletes keys behind retentiond's back.
    pub fn delete(&self, bucket: &str, keys: &[String]) {
        self.call(json!({"op": "delete", "bucket": bucket, "keys": keys}));
    }

    /// The keys whose current version is an object (not a delete marker), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.call(json!({"op": "keys", "bucket": bucket}))["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    /// Every (key, version id, is a delete marker), sorted.
    pub fn versions(&self, bucket: &str) -> Vec<(String, String, bool)> {
        self.call(json!({"op": "versions", "bucket": bucket}))["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v[0].as_str().unwrap().to_string(),
                    v[1].as_str().unwrap().to_string(),
                    v[2].as_bool().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto behind the forwarding proxy.
pub struct Fake {
    pub moto: Arc<Moto>,
    pub server: Server,
}

impl Fake {
    /// moto with bucket `backups` (versioned and Object Lock as asked) holding `objects`.
    pub fn start(objects: &[Object], versioned: bool, lock: bool) -> Fake {
        let moto = Arc::new(Moto::start());
        moto.bucket(BUCKET, versioned, lock);
        moto.put(BUCKET, objects);
        let address = moto.address.clone();
        let server = Server::start(Arc::new(move |request: &Request| {
            forward(&address, request)
        }));
        Fake { moto, server }
    }

    pub fn keys(&self) -> Vec<String> {
        self.moto.keys(BUCKET)
    }

    /// Writes the keys into files in `dir` and returns the account's YAML lines for them.
    pub fn credentials(&self, dir: &std::path::Path) -> String {
        std::fs::write(dir.join("s3-key-id"), &self.moto.access_key_id).unwrap();
        std::fs::write(dir.join("s3-secret"), &self.moto.secret_access_key).unwrap();
        format!(
            "    access_key_id: \"${{file:{}}}\"\n    secret_access_key: \"${{file:{}}}\"\n",
            dir.join("s3-key-id").display(),
            dir.join("s3-secret").display()
        )
    }

    /// The keys each DeleteObjects request named (versions included), in order.
    pub fn deleted_keys(&self) -> Vec<Vec<String>> {
        self.server
            .requests()
            .iter()
            .filter(|r| {
                r.method == "POST" && r.query.split('&').any(|p| p == "delete" || p == "delete=")
            })
            .map(|r| delete_request_keys(&r.body))
            .collect()
    }
}

/// The `<Key>`s of a DeleteObjects body.
pub fn delete_request_keys(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("Key") || n.tag_name().name() == "Key")
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

/// `n` daily dumps `{prefix}YYYYMMDDT030000Z.sql.gz`, the newest on 2026-11-20.
pub fn daily_in(prefix: &str, n: usize) -> Vec<Object> {
    let newest: jiff::civil::Date = "2026-11-20".parse().unwrap();
    (0..n)
        .map(|i| {
            let day = newest
                .checked_sub(jiff::Span::new().days(i as i64))
                .unwrap();
            Object::new(&format!(
                "{prefix}{}T030000Z.sql.gz",
                day.strftime("%Y%m%d")
            ))
        })
        .collect()
}

/// Sends `request` to moto as received (the Host header with it, so the signature holds) and
/// returns moto's answer.
fn forward(address: &str, request: &Request) -> Reply {
    let mut stream = TcpStream::connect(address).expect("moto is up");
    let target = match request.query.is_empty() {
        true => request.path.clone(),
        false => format!("{}?{}", request.path, request.query),
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method);
    for (name, value) in &request.headers {
        if name != "connection" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&request.body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        match name.to_ascii_lowercase().as_str() {
            "content-length" | "connection" => {}
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => headers.push((name.to_string(), value.to_string())),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
        cut: None,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
    out
}
