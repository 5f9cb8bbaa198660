//! A small HTTP/1.1 server on 127.0.0.1 for the stateful provider fakes: a thread per
//! connection, one request per connection (`Connection: close`), a log of every request as
//! received (raw path, headers, body), a count of requests in flight, and injected faults.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path exactly as sent, percent-encoding included, without the query.
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, decoded (`+` is a space); the name is matched case-insensitively.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            k.eq_ignore_ascii_case(name).then(|| decode(v))
        })
    }

    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Percent-decoding of a query value (`+` = space).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (the declared length stays), then close.
    pub cut: Option<usize>,
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::raw(status, "application/json", value.to_string().into_bytes())
    }

    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            cut: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A fault for requests matching `method` (empty: any) and `path_contains`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this instead of the handler.
    Reply(Reply),
    /// Run the handler (its effect happens) but answer this instead.
    Swallow(Reply),
    /// The handler's reply, cut after this many bytes of its body (declared length intact).
    Cut(usize),
    /// The handler's reply with its body cut to this many bytes, length adjusted: a complete
    /// HTTP response holding truncated JSON.
    Truncate(usize),
    /// The handler's reply after this delay.
    Delay(Duration),
    /// Close the connection without answering.
    Reset,
}

#[derive(Debug)]
struct Rule {
    method: String,
    path_contains: String,
    /// `None`: every time.
    remaining: Option<usize>,
    fault: Fault,
}

pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Server {
    pub base: String,
    log: Arc<Mutex<Vec<Request>>>,
    rules: Arc<Mutex<VecDeque<Rule>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Server {
    pub fn start(handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Server {
            base,
            log: Arc::default(),
            rules: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let (log, rules) = (server.log.clone(), server.rules.clone());
        let (in_flight, max_in_flight) = (server.in_flight.clone(), server.max_in_flight.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, log, rules) = (handler.clone(), log.clone(), rules.clone());
                let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                std::thread::spawn(move || {
                    let Some(request) = read_request(&stream) else {
                        return;
                    };
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    log.lock().unwrap().push(request.clone());
                    let fault = take_fault(&rules, &request);
                    respond(stream, &request, &*handler, fault, &in_flight);
                });
            }
        });
        server
    }

    /// Injects a fault for the next `times` matching requests (`None`: all of them).
    pub fn fault(&self, method: &str, path_contains: &str, times: Option<usize>, fault: Fault) {
        self.rules.lock().unwrap().push_back(Rule {
            method: method.into(),
            path_contains: path_contains.into(),
            remaining: times,
            fault,
        });
    }

    /// Drops every fault not yet used up.
    pub fn clear_faults(&self) {
        self.rules.lock().unwrap().clear();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Request lines (`METHOD /path`) of one method.
    pub fn lines(&self, method: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .map(Request::line)
            .collect()
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

fn take_fault(rules: &Mutex<VecDeque<Rule>>, request: &Request) -> Option<Fault> {
    let mut rules = rules.lock().unwrap();
    let index = rules.iter().position(|r| {
        (r.method.is_empty() || r.method == request.method)
            && request.path.contains(&r.path_contains)
            && r.remaining != Some(0)
    })?;
    let rule = &mut rules[index];
    if let Some(n) = &mut rule.remaining {
        *n -= 1;
    }
    Some(rule.fault.clone())
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
        at: Instant::now(),
    })
}

/// Answers `request`; `in_flight` is counted down once the answer is made, before it is
/// sent, so that a client that sends its next request as soon as it has read this answer is
/// never counted twice.
fn respond(
    mut stream: TcpStream,
    request: &Request,
    handler: &Handler,
    fault: Option<Fault>,
    in_flight: &AtomicUsize,
) {
    let mut reply = match &fault {
        Some(Fault::Reply(reply)) => reply.clone(),
        Some(Fault::Reset) => {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Delay(delay)) => {
            std::thread::sleep(*delay);
            handler(request)
        }
        Some(Fault::Swallow(reply)) => {
            handler(request);
            reply.clone()
        }
        _ => handler(request),
    };
    let declared = reply.body.len();
    match fault {
        Some(Fault::Cut(n)) => reply.cut = Some(n),
        Some(Fault::Truncate(n)) => reply.body.truncate(n),
        _ => {}
    }
    let length = if reply.cut.is_some() {
        declared
    } else {
        reply.body.len()
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {length}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status)
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let body = match reply.cut {
        Some(n) => &reply.body[..n.min(reply.body.len())],
        None => &reply.body[..],
    };
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        207 => "Multi-Status",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        420 => "Enhance Your Calm",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
