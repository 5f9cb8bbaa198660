//! Runs the real `retentiond` binary in a temp dir and captures what a user would see.

#![allow(dead_code)]

pub mod cloudinary;
pub mod docspace;
pub mod fake;
pub mod huawei;
pub mod postgres;
pub mod receivers;
pub mod s3;
pub mod target;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every secret the fakes accept. No output of any run may contain one (checked on every run).
pub fn secrets() -> Vec<String> {
    vec![
        docspace::API_KEY.to_string(),
        cloudinary::API_KEY.to_string(),
        cloudinary::API_SECRET.to_string(),
        cloudinary::basic_auth(),
        cloudinary::base64(
            format!("{}:{}", cloudinary::API_KEY, cloudinary::API_SECRET).as_bytes(),
        ),
        huawei::AK.to_string(),
        huawei::SK.to_string(),
        huawei::PASSWORD.to_string(),
        huawei::STATIC_TOKEN.to_string(),
        // Every token the fake IAM issues starts so.
        "MIIfake-iam-token".to_string(),
    ]
}

/// The environment that carries the fakes' secrets to `${env:...}` references.
pub const SECRET_ENV: &[(&str, &str)] = &[
    ("TEST_DOCSPACE_KEY", docspace::API_KEY),
    ("TEST_CLD_KEY", cloudinary::API_KEY),
    ("TEST_CLD_SECRET", cloudinary::API_SECRET),
    ("TEST_HW_AK", huawei::AK),
    ("TEST_HW_SK", huawei::SK),
    ("TEST_HW_PASSWORD", huawei::PASSWORD),
    ("TEST_HW_TOKEN", huawei::STATIC_TOKEN),
];

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn retentiond(args: &[&str]) -> Output {
    retentiond_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn retentiond_in(dir: &Path, args: &[&str]) -> Output {
    retentiond_env(dir, args, SECRET_ENV)
}

/// Runs the binary in `dir` with `env` added; fails the test if any output holds a secret.
pub fn retentiond_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_retentiond"))
        .args(args)
        .current_dir(dir)
        .env_remove("RETENTIOND_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .envs(env.iter().copied())
        .output()
        .expect("run retentiond");
    let out = Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for secret in secrets() {
        assert!(
            !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
            "a secret appears in the output of retentiond {args:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    out
}

/// `GET path` on `address` (the daemon's listener): (status code, body).
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response[response.find("\r\n\r\n").unwrap() + 4..].to_string();
    (code, body)
}

/// The daemon on `retentiond.yaml` in `dir`, its log in `log`, outside any service manager.
fn daemon_command(dir: &Path, log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_retentiond"));
    command
        .args(["--config", "retentiond.yaml", "daemon"])
        .current_dir(dir)
        .env_remove("RETENTIOND_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    command
}

/// Starts the daemon on `retentiond.yaml` in `dir` as user and group `id`, its log in `log`
/// (the tests must run as root).
pub fn spawn_daemon_as(id: u32, dir: &Path, log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    daemon_command(dir, log)
        .gid(id)
        .uid(id)
        .spawn()
        .expect("start retentiond daemon")
}

/// Starts the daemon on `retentiond.yaml` in `dir` with `env` added, its log in `log`.
pub fn spawn_daemon(dir: &Path, log: &Path, env: &[(String, String)]) -> std::process::Child {
    daemon_command(dir, log)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .spawn()
        .expect("start retentiond daemon")
}

/// Starts `python3 SCRIPT` (a test server in `tests/`), and reads the JSON line it announces
/// itself with (its ports, its keys). `install` says what to install when it does not start.
pub fn start_python_server(
    script: &str,
    install: &str,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::io::BufReader<std::process::ChildStdout>,
    serde_json::Value,
) {
    use std::io::BufRead;
    use std::process::Stdio;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 runs {script}: {e}"));
    let stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let hello = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{script} did not start ({e}): {line:?}; {install}"));
    (child, stdin, stdout, hello)
}

/// The daemon's metrics address, from its start-up line (`metrics on http://ADDRESS/…`).
pub fn metrics_address(log: &str) -> String {
    let start = log.find("metrics on http://").expect("the metrics line") + 18;
    log[start..start + log[start..].find('/').unwrap()].to_string()
}

/// The uid the tests run as (the owner of `/proc/self`).
pub fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Runs the binary in `dir` as user and group `id` (the tests must run as root).
pub fn retentiond_as(id: u32, dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let output = Command::new(env!("CARGO_BIN_EXE_retentiond"))
        .args(args)
        .current_dir(dir)
        .env_remove("RETENTIOND_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .gid(id)
        .uid(id)
        .output()
        .expect("run retentiond");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary with `--config retentiond.yaml` in `dir`. Before a `plan`, `run` or
/// `apply`, every policy's current version is approved (`retentiond approve --all`, when the
/// journal can be written), as a person would after reviewing its plan: the tests of other
/// features are not held by the bound for new and changed policies (tests/cli.rs tests it).
pub fn configured(dir: &Path, args: &[&str]) -> Output {
    if args
        .first()
        .is_some_and(|c| ["plan", "run", "apply"].contains(c))
    {
        retentiond_in(dir, &["--config", "retentiond.yaml", "approve", "--all"]);
    }
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_in(dir, &all)
}

/// `retentiond approve --all` on the config in `dir`; it must succeed.
pub fn approve_all(dir: &Path) {
    let out = retentiond_in(dir, &["--config", "retentiond.yaml", "approve", "--all"]);
    assert_eq!(out.code, 0, "approve: {}{}", out.stdout, out.stderr);
}

/// Starts the binary in `dir` with the fakes' secrets and no output, for tests that kill it or
/// run another beside it.
pub fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    start(dir, args, std::process::Stdio::null)
}

/// Starts the binary in `dir` with the fakes' secrets, its stdout and stderr piped, for
/// tests that watch its output as it runs.
pub fn spawn_piped(dir: &Path, args: &[&str]) -> std::process::Child {
    start(dir, args, std::process::Stdio::piped)
}

fn start(dir: &Path, args: &[&str], output: fn() -> std::process::Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_retentiond"))
        .args(args)
        .current_dir(dir)
        .env_remove("RETENTIOND_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .envs(SECRET_ENV.iter().copied())
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("start retentiond")
}

/// Waits (at most a minute) until `ready` holds while `child` still runs.
pub fn wait_while_running(child: &mut std::process::Child, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got there"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
