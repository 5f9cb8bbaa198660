//! Listing throughput: N backups through each provider's fake (the test suite's, on
//! 127.0.0.1) with every request delayed by a fixed latency, listed by the real provider code
//! (HTTP client, account cap, signing, parsing, the completeness checks) as `list` and `run`
//! do. Paging as the issue sets it: DocSpace one page; Cloudinary 200 assets of N/200
//! versions, the asset list in cursor pages of 500, then one versions call per asset; CSBS
//! marker pages of 1000 (and the count); CBR offset pages of 1000; TaurusDB offset pages of
//! 100; S3 (moto's real server behind the fakes' proxy) ListObjectsV2 pages of 1000, one after
//! another by continuation token. Then deletions through the provider, timed the same way:
//! CBR's asynchronous ones (N ÷ 100: a look, the DELETE, polls until gone, `CAP` at a time)
//! and all N S3 keys (DeleteObjects calls of 1000, `CAP` at a time):
//!
//!     deletion provider=… n=… cap=… requests=… rounds=… latency=…ms ideal=…s floor=…s
//!     wall=…s ratio=… above_floor=…
//!
//!     cargo bench --bench listing -- [N] [CAP] [LATENCY_MS...]
//!
//! N is 100,000, CAP (the account's `http.concurrency`) 4 and the latency 20 ms unless given.
//! Each listing is also run with no latency: its wall time is the floor, the fake's and
//! retentiond's work on N backups, which no latency hiding removes. `rounds` is the critical
//! path in requests, given what must follow what and the cap; the ideal is rounds × latency.
//! Runs of the floor and of each latency take turns, five each; the best wall time of each
//! counts. Prints one line per provider and latency:
//!
//!     listing provider=… n=… cap=… requests=… rounds=… latency=…ms ideal=…s floor=…s
//!     wall=…s ratio=… above_floor=… max_in_flight=… cpu_retentiond=…s cpu_fake=…s
//!
//! with ratio = wall ÷ ideal, above_floor = (wall − floor) ÷ ideal, and the CPU time of one
//! listing with no latency split between retentiond's threads and the fake's.

#[path = "../tests/common/mod.rs"]
mod common;

use common::fake::{Fault, Server};
use common::{cloudinary, docspace, huawei, s3};
use retentiond::policy::{self, policies_from_str};
use retentiond::provider::Registry;
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

enum Fake {
    Docspace(docspace::Fake),
    Cloudinary(cloudinary::Fake),
    Huawei(huawei::Fake),
    S3(s3::Fake),
}

struct Case {
    name: &'static str,
    fake: Fake,
    account: String,
    select: &'static str,
    requests: usize,
    rounds: usize,
    /// Runs of each latency (the best counts): RUNS, or one where the server's own work
    /// dominates (moto re-sorts the whole bucket for every page).
    runs: usize,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let cap: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let latencies: Vec<u64> = match args.get(2..) {
        Some(l) if !l.is_empty() => l.iter().filter_map(|l| l.parse().ok()).collect(),
        _ => vec![20],
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("${{file:{}}}", path.display())
    };
    let http = format!("    http: {{concurrency: {cap}}}\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // `LISTING_PROVIDERS=csbs,taurusdb` measures only those (to profile one).
    let only = std::env::var("LISTING_PROVIDERS").unwrap_or_default();
    for case in cases(n, cap, &secret) {
        if !only.is_empty() && !only.split(',').any(|p| p == case.name) {
            continue;
        }
        let config_path = dir.path().join(format!("{}.yaml", case.name));
        std::fs::write(
            &config_path,
            format!(
                "policies: policies\nstate_dir: state\naccounts:\n{}{http}",
                case.account
            ),
        )
        .unwrap();
        let config =
            policy::load_config(&config_path).unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        let (policies, errors) = policies_from_str(
            Path::new("bench.yaml"),
            &format!(
                "name: bench\naccount: a\n{}keep: {{last: 1}}\nguard: {{max_delete_fraction: 1}}\n",
                case.select
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        // The floor (no latency) and each latency, taken in turn, so that a machine that
        // slows down or speeds up during the run weighs on both alike; best of RUNS each.
        let server = case.server();
        let all_latencies: Vec<u64> = std::iter::once(0).chain(latencies.clone()).collect();
        let mut tallies: Vec<Tally> = all_latencies.iter().map(|_| Tally::default()).collect();
        for _ in 0..case.runs {
            for (latency_ms, tally) in all_latencies.iter().zip(&mut tallies) {
                server.clear_faults();
                if *latency_ms > 0 {
                    let latency = Duration::from_millis(*latency_ms);
                    server.fault("", "", None, Fault::Delay(latency));
                }
                let before = (server.requests().len(), cpu());
                // A fresh client each run, as each `run` of the CLI has.
                let provider = Registry::new()
                    .open(
                        &config.accounts["a"],
                        &policies[0],
                        &jiff::tz::TimeZone::UTC,
                    )
                    .unwrap();
                let start = Instant::now();
                let listed = runtime.block_on(provider.list()).unwrap();
                let wall = start.elapsed().as_secs_f64();
                let after = cpu();
                assert_eq!(listed.len(), n, "{}: the whole listing", case.name);
                let requests = server.requests().len() - before.0;
                assert_eq!(
                    requests, case.requests,
                    "{}: requests per listing",
                    case.name
                );
                tally.best = tally.best.min(wall);
                tally.ours += (after.ours - before.1.ours) / case.runs as f64;
                tally.all += (after.all - before.1.all) / case.runs as f64;
            }
        }
        let floor = &tallies[0];
        for (latency_ms, tally) in all_latencies.iter().zip(&tallies).skip(1) {
            let ideal = case.rounds as f64 * *latency_ms as f64 / 1000.0;
            println!(
                "listing provider={} n={n} cap={cap} requests={} rounds={} latency={latency_ms}ms ideal={ideal:.3}s floor={:.3}s wall={:.3}s ratio={:.2} above_floor={:.2} max_in_flight={} cpu_retentiond={:.2}s cpu_fake={:.2}s",
                case.name,
                case.requests,
                case.rounds,
                floor.best,
                tally.best,
                tally.best / ideal,
                (tally.best - floor.best) / ideal,
                server.max_in_flight(),
                floor.ours,
                floor.all - floor.ours,
            );
        }
    }
    if only.is_empty() || only.split(',').any(|p| p == "cbr") {
        cbr_deletion(n / 100, cap, &latencies, &runtime, dir.path());
    }
    if (only.is_empty() || only.split(',').any(|p| p == "s3")) && s3_available() {
        s3_deletion(n, cap, &latencies, &runtime, dir.path());
    }
}

/// One latency's runs: the best wall time, and the CPU time of one listing (the mean).
struct Tally {
    best: f64,
    ours: f64,
    all: f64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            best: f64::INFINITY,
            ours: 0.0,
            all: 0.0,
        }
    }
}

impl Case {
    fn server(&self) -> &Server {
        match &self.fake {
            Fake::Docspace(f) => &f.server,
            Fake::Cloudinary(f) => &f.server,
            Fake::Huawei(f) => &f.server,
            Fake::S3(f) => &f.server,
        }
    }
}

/// CPU time (user + system, seconds) of the whole process and of retentiond's part: the main
/// thread, which polls the listing (`block_on`), and the runtime's workers. The rest is the
/// fake's threads, one per request, gone by now but counted in the process's total. Linux
/// only; 100 clock ticks a second.
struct Cpu {
    all: f64,
    ours: f64,
}

fn cpu() -> Cpu {
    fn ticks(stat: &str) -> f64 {
        // Fields 14 and 15 (utime, stime), counted after the `)` that ends the name.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / 100.0
    }
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let main = std::process::id().to_string();
    let mut ours = 0.0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let dir = task.unwrap().path();
        let worker = read(&dir.join("comm")).starts_with("tokio-runtime");
        if worker || dir.file_name().is_some_and(|n| *n == *main) {
            ours += ticks(&read(&dir.join("stat")));
        }
    }
    Cpu {
        all: ticks(&read(Path::new("/proc/self/stat"))),
        ours,
    }
}

/// The fakes (and moto's S3 server), each holding `n` backups, and what listing them must take.
fn cases(n: usize, cap: usize, secret: &dyn Fn(&str, &str) -> String) -> Vec<Case> {
    let hw_auth = format!(
        "    auth: {{access_key: \"{}\", secret_key: \"{}\"}}\n",
        secret("ak", huawei::AK),
        secret("sk", huawei::SK)
    );
    let huawei_account = |kind: &str, base: &str| {
        format!(
            "  a:\n    provider: huaweicloud-{kind}\n    region: ap-southeast-1\n    project_id: {}\n    endpoint: {base}\n{hw_auth}",
            huawei::PROJECT
        )
    };
    let mut cases = Vec::new();

    // DocSpace: the whole history in one answer.
    let newest: jiff::Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
    let records = (0..n)
        .map(|i| {
            let at = newest - jiff::SignedDuration::from_mins(10 * i as i64);
            let civil = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
            docspace::Record::new(&docspace::guid(i), &civil.to_string())
        })
        .collect();
    let fake = docspace::Fake::start(records);
    cases.push(Case {
        name: "docspace",
        account: format!(
            "  a:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: \"{}\"\n",
            fake.server.base,
            secret("docspace", docspace::API_KEY)
        ),
        fake: Fake::Docspace(fake),
        select: "",
        requests: 1,
        rounds: 1,
        runs: RUNS,
    });

    // Cloudinary: 200 assets; the list in pages of 500 (one page), then each asset's
    // versions, `cap` at a time.
    let assets = 200;
    let fake = cloudinary::Fake::start(
        (0..assets)
            .map(|a| cloudinary::asset(a, &format!("products/p{a}"), n / assets, 0))
            .collect(),
        500,
    );
    cases.push(Case {
        name: "cloudinary",
        account: format!(
            "  a:\n    provider: cloudinary\n    base_url: {}\n    cloud_name: {}\n    api_key: \"{}\"\n    api_secret: \"{}\"\n",
            fake.server.base,
            cloudinary::CLOUD,
            secret("cld-key", cloudinary::API_KEY),
            secret("cld-secret", cloudinary::API_SECRET)
        ),
        fake: Fake::Cloudinary(fake),
        select: "select: {resource_type: image, type: upload}\n",
        requests: 1 + assets,
        rounds: 1 + assets.div_ceil(cap),
        runs: RUNS,
    });

    // CSBS: 100 servers of n/100 daily backups; marker pages of 1000 one after another (and
    // an empty one to end), the count beside them.
    let servers = 100;
    let mut items: Vec<huawei::Item> = (0..servers)
        .flat_map(|s| huawei::items(&format!("srv-{s:03}"), n / servers))
        .collect();
    // Held in the order the fake serves them, so that its sort per page costs one pass.
    items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let fake = huawei::Fake::start(items, Vec::new());
    fake.state.lock().unwrap().csbs_page = 1000;
    let pages = n / 1000 + 1;
    cases.push(Case {
        name: "csbs",
        account: huawei_account("csbs", &fake.server.base),
        fake: Fake::Huawei(fake),
        select: "",
        requests: pages + 1,
        rounds: pages,
        runs: RUNS,
    });

    // CBR: 100 servers of n/100 daily backups; offset pages of 1000, the first alone (it tells
    // the count), the rest `cap` at a time.
    let backups = (0..servers)
        .flat_map(|s| huawei::cbr_backups(&format!("srv-{s:03}"), n / servers))
        .collect();
    let fake = huawei::Fake::start_cbr(backups);
    fake.state.lock().unwrap().cbr_page = 1000;
    let pages = n.div_ceil(1000);
    cases.push(Case {
        name: "cbr",
        account: huawei_account("cbr", &fake.server.base),
        fake: Fake::Huawei(fake),
        select: "",
        requests: pages,
        rounds: 1 + (pages - 1).div_ceil(cap),
        runs: RUNS,
    });

    // TaurusDB: 100 instances of n/100 manual backups; offset pages of 100, the first alone
    // (it tells the total), the rest `cap` at a time.
    let instances = 100;
    let backups = (0..instances)
        .flat_map(|i| huawei::backups(&format!("i{i:03}in07"), n / instances))
        .collect();
    let fake = huawei::Fake::start(Vec::new(), backups);
    fake.state.lock().unwrap().taurus_page = 100;
    let pages = n.div_ceil(100);
    cases.push(Case {
        name: "taurusdb",
        account: huawei_account("taurusdb", &fake.server.base),
        fake: Fake::Huawei(fake),
        select: "select: {backup_type: manual}\n",
        requests: pages,
        rounds: 1 + (pages - 1).div_ceil(cap),
        runs: RUNS,
    });

    // S3: n dumps under one prefix; ListObjectsV2 pages of 1000, each after the one before.
    if !s3_available() {
        eprintln!("moto's S3 server is not installed (pip install 'moto[server]'): S3 skipped");
        return cases;
    }
    let fake = s3::Fake::start(&s3_dumps(n), false, false);
    let pages = n.div_ceil(1000);
    cases.push(Case {
        name: "s3",
        account: s3_account(&fake, secret),
        fake: Fake::S3(fake),
        select: S3_SELECT,
        requests: pages,
        rounds: pages,
        runs: 1,
    });
    cases
}

/// Whether moto's server can start here.
fn s3_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import moto.server, flask_cors"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const S3_SELECT: &str = "select: {prefix: db/, glob: '*.sql.gz', mtime: true}\n";

fn s3_dumps(n: usize) -> Vec<s3::Object> {
    (0..n)
        .map(|i| s3::Object::new(&format!("db/dump-{i:07}.sql.gz")))
        .collect()
}

fn s3_account(fake: &s3::Fake, secret: &dyn Fn(&str, &str) -> String) -> String {
    format!(
        "  a:\n    provider: s3\n    endpoint: {}\n    region: eu-west-1\n    bucket: {}\n    path_style: true\n    access_key_id: \"{}\"\n    secret_access_key: \"{}\"\n",
        fake.server.base,
        s3::BUCKET,
        secret("s3-id", &fake.moto.access_key_id),
        secret("s3-secret", &fake.moto.secret_access_key)
    )
}

/// Deletes n CBR backups through the provider as the executor does — a look at the backup,
/// the DELETE, then polls until it is gone — `cap` deletions at a time (CBR's
/// `delete_concurrency`), with no latency (the floor: the fake's 100 ms tasks, the 50 ms
/// `poll_interval` and the work) and with each latency. The ideal is the latency alone on the
/// critical path: n ÷ cap deletions one after another, each its requests × latency.
fn cbr_deletion(
    n: usize,
    cap: usize,
    latencies: &[u64],
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
) {
    use futures_util::StreamExt;
    use retentiond::provider::DeleteOutcome;
    let servers = 10;
    let backups: Vec<huawei::CbrBackup> = (0..servers)
        .flat_map(|s| huawei::cbr_backups(&format!("srv-{s:03}"), n / servers))
        .collect();
    let fake = huawei::Fake::start_cbr(backups.clone());
    {
        let mut state = fake.state.lock().unwrap();
        state.cbr_page = 1000;
        state.task_time = Duration::from_millis(100);
    }
    let ak = dir.join("cbr-ak");
    let sk = dir.join("cbr-sk");
    std::fs::write(&ak, huawei::AK).unwrap();
    std::fs::write(&sk, huawei::SK).unwrap();
    let config_path = dir.join("cbr-delete.yaml");
    std::fs::write(
        &config_path,
        format!(
            "policies: policies\nstate_dir: state\naccounts:\n  a:\n    provider: huaweicloud-cbr\n    region: ap-southeast-1\n    project_id: {}\n    endpoint: {}\n    auth: {{access_key: \"${{file:{}}}\", secret_key: \"${{file:{}}}\"}}\n    poll_interval: 50ms\n    http: {{concurrency: {cap}}}\n",
            huawei::PROJECT,
            fake.server.base,
            ak.display(),
            sk.display()
        ),
    )
    .unwrap();
    let config = policy::load_config(&config_path).unwrap();
    let (policies, errors) = policies_from_str(
        Path::new("bench.yaml"),
        "name: bench\naccount: a\nkeep: {last: 1}\nguard: {max_delete_fraction: 1}\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    let mut floor = 0.0;
    for latency_ms in std::iter::once(0).chain(latencies.iter().copied()) {
        fake.state.lock().unwrap().cbr = backups.clone();
        let server = &fake.server;
        server.clear_faults();
        if latency_ms > 0 {
            server.fault(
                "",
                "",
                None,
                Fault::Delay(Duration::from_millis(latency_ms)),
            );
        }
        let provider = Registry::new()
            .open(
                &config.accounts["a"],
                &policies[0],
                &jiff::tz::TimeZone::UTC,
            )
            .unwrap();
        let listed = runtime.block_on(provider.list()).unwrap();
        assert_eq!(listed.len(), n);
        let before = server.requests().len();
        let start = Instant::now();
        let outcomes: Vec<DeleteOutcome> = runtime.block_on(
            futures_util::stream::iter(listed.iter())
                .map(|backup| {
                    let provider = provider.clone();
                    async move {
                        match provider
                            .delete(std::slice::from_ref(backup))
                            .await
                            .remove(0)
                        {
                            DeleteOutcome::Pending(_) => provider.settle(backup).await,
                            done => done,
                        }
                    }
                })
                .buffer_unordered(provider.delete_concurrency())
                .collect(),
        );
        let wall = start.elapsed().as_secs_f64();
        assert!(
            outcomes.iter().all(|o| *o == DeleteOutcome::Deleted),
            "{outcomes:?}"
        );
        assert!(fake.cbr_ids().is_empty(), "every backup deleted");
        let requests = server.requests().len() - before;
        if latency_ms == 0 {
            floor = wall;
            continue;
        }
        let per_deletion = requests as f64 / n as f64;
        let in_series = n.div_ceil(provider.delete_concurrency());
        let ideal = in_series as f64 * per_deletion * latency_ms as f64 / 1000.0;
        println!(
            "deletion provider=cbr n={n} cap={cap} requests={requests} rounds={} latency={latency_ms}ms ideal={ideal:.3}s floor={floor:.3}s wall={wall:.3}s ratio={:.2} above_floor={:.2}",
            (in_series as f64 * per_deletion).round(),
            wall / ideal,
            (wall - floor) / ideal,
        );
    }
}

/// Deletes n S3 keys through the provider (DeleteObjects calls of 1000, `cap` at a time, as
/// the executor sends them), with no latency (the floor: moto's work and ours) and with each
/// latency; the bucket is filled again before each run. One run each: a run takes moto's time.
fn s3_deletion(
    n: usize,
    cap: usize,
    latencies: &[u64],
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
) {
    use futures_util::StreamExt;
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        std::fs::write(&path, value).unwrap();
        format!("${{file:{}}}", path.display())
    };
    let fake = s3::Fake::start(&[], false, false);
    let config_path = dir.join("s3-delete.yaml");
    std::fs::write(
        &config_path,
        format!(
            "policies: policies\nstate_dir: state\naccounts:\n{}    http: {{concurrency: {cap}}}\n",
            s3_account(&fake, &secret)
        ),
    )
    .unwrap();
    let config = policy::load_config(&config_path).unwrap();
    let (policies, errors) = policies_from_str(
        Path::new("bench.yaml"),
        &format!(
            "name: bench\naccount: a\n{S3_SELECT}keep: {{last: 1}}\nguard: {{max_delete_fraction: 1}}\n"
        ),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let calls = n.div_ceil(1000);
    let mut floor = 0.0;
    for latency_ms in std::iter::once(0).chain(latencies.iter().copied()) {
        fake.moto.put(s3::BUCKET, &s3_dumps(n));
        let server = &fake.server;
        server.clear_faults();
        if latency_ms > 0 {
            server.fault(
                "",
                "",
                None,
                Fault::Delay(Duration::from_millis(latency_ms)),
            );
        }
        let provider = Registry::new()
            .open(
                &config.accounts["a"],
                &policies[0],
                &jiff::tz::TimeZone::UTC,
            )
            .unwrap();
        let listed = runtime.block_on(provider.list()).unwrap();
        assert_eq!(listed.len(), n);
        let before = server.requests().len();
        let start = Instant::now();
        let doomed: Vec<&retentiond::model::Backup> = listed.iter().collect();
        let batches: Vec<Vec<retentiond::model::Backup>> = provider
            .batches(&doomed)
            .iter()
            .map(|call| call.iter().map(|&p| listed[p as usize].clone()).collect())
            .collect();
        let outcomes: Vec<_> = runtime.block_on(
            futures_util::stream::iter(batches.iter())
                .map(|batch| provider.delete(batch))
                .buffer_unordered(provider.delete_concurrency())
                .collect(),
        );
        let wall = start.elapsed().as_secs_f64();
        assert!(
            outcomes
                .iter()
                .flatten()
                .all(|o| *o == retentiond::provider::DeleteOutcome::Deleted)
        );
        assert_eq!(server.requests().len() - before, calls);
        assert!(fake.keys().is_empty(), "every key deleted");
        if latency_ms == 0 {
            floor = wall;
            continue;
        }
        let rounds = calls.div_ceil(cap);
        let ideal = rounds as f64 * latency_ms as f64 / 1000.0;
        println!(
            "deletion provider=s3 n={n} cap={cap} requests={calls} rounds={rounds} latency={latency_ms}ms ideal={ideal:.3}s floor={floor:.3}s wall={wall:.3}s ratio={:.2} above_floor={:.2}",
            wall / ideal,
            (wall - floor) / ideal,
        );
    }
}
