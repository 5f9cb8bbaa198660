//! Deletion throughput: N deletions through the real runner (plan, journal with an intent
//! and an outcome per deletion, executor) against a provider that takes a fixed latency per
//! delete call and counts the calls in flight. The ideal is N × latency ÷ cap; the rest is
//! retentiond's own cost, mostly the journal's synced commits.
//!
//!     cargo bench --bench delete -- [N] [LATENCY_MS] [CAP...]
//!
//! Prints one line per cap: `delete N=… latency=…ms cap=… wall=…s ideal=…s ratio=…
//! max_in_flight=… overhead_per_deletion=…ms`. With latency 0 the wall time is retentiond's
//! own cost alone (journal writes included). `DELETE_JOURNAL=postgres` keeps the journal in a
//! throwaway PostgreSQL cluster (Debian's postgresql, `tests/common/postgres.rs`) instead.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use jiff::{Timestamp, ToSpan};
use retentiond::journal::Journal;
use retentiond::model::{Backup, Status};
use retentiond::policy::policies_from_str;
use retentiond::provider::{BoxFuture, DeleteOutcome, Provider, ProviderError};
use retentiond::runner;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct SlowProvider {
    latency: Duration,
    cap: usize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Provider for SlowProvider {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Backup>, ProviderError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn delete<'a>(&'a self, batch: &'a [Backup]) -> BoxFuture<'a, Vec<DeleteOutcome>> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.latency).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            batch.iter().map(|_| DeleteOutcome::Deleted).collect()
        })
    }

    fn delete_concurrency(&self) -> usize {
        self.cap
    }
}

fn listing(n: usize, now: Timestamp) -> Vec<Backup> {
    // One group; `last: 1` keeps the newest, so n - 1 are deleted.
    (0..=n)
        .map(|i| {
            let at = now - (i as i64).minutes();
            Backup::new(&format!("b{i:07}"), "g", at, Status::Complete)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let latency_ms: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let caps: Vec<usize> = match args.get(2..) {
        Some(caps) if !caps.is_empty() => caps.iter().filter_map(|c| c.parse().ok()).collect(),
        _ => vec![1, 5, 16],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut policies, errors) = policies_from_str(
        std::path::Path::new("bench.yaml"),
        // Every backup but one goes: past the default guard.max_delete_fraction on purpose.
        "name: bench\naccount: a\nmode: enforce\nkeep: {last: 1}\nguard: {max_delete_fraction: 1}\n",
    );
    assert!(errors.is_empty());
    let policy = policies.remove(0);
    // `DELETE_JOURNAL=postgres`: the journal in a throwaway PostgreSQL cluster on loopback
    // (fsync on, as SQLite's FULL sync), instead of SQLite.
    let pg = (std::env::var("DELETE_JOURNAL").as_deref() == Ok("postgres"))
        .then(|| postgres::Postgres::start_with(std::env::var("PG_FSYNC").as_deref() != Ok("off")));
    let store = if pg.is_some() { "postgres" } else { "sqlite" };
    for cap in caps {
        let state = tempfile::tempdir().unwrap();
        let journal = Arc::new(match &pg {
            None => Journal::open(state.path()).unwrap(),
            Some(pg) => {
                let config = state.path().join("retentiond.yaml");
                std::fs::write(
                    &config,
                    format!(
                        "policies: policies\nstate_dir: {}\n{}accounts: {{}}\n",
                        state.path().display(),
                        pg.journal_line(state.path())
                    ),
                )
                .unwrap();
                let config = retentiond::policy::load_config(&config).unwrap();
                Journal::open_config(&config).unwrap()
            }
        });
        let now = Timestamp::now();
        let backups = Ok(listing(n, now));
        let slow = Arc::new(SlowProvider {
            latency: Duration::from_millis(latency_ms),
            cap,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let provider: Result<Arc<dyn Provider>, ProviderError> = Ok(slow.clone());
        let options = runner::Options {
            command: "run",
            dry_run: None,
            accept_listing_drop: false,
            accept_max_delete: false,
            // The benchmark's policy is new: approved for the run, as a person would.
            approve: true,
            policies: &[],
            places: &Default::default(),
            reviewed: None,
            started_at: now,
            now,
            stop: Default::default(),
            watch: None,
            journal_keep: None,
            default_grace: None,
        };
        let tz = jiff::tz::TimeZone::UTC;
        let started = Instant::now();
        let report = runtime.block_on(runner::run_policy(
            &journal, &policy, &tz, &provider, &backups, &options,
        ));
        let wall = started.elapsed().as_secs_f64();
        let execution = report.execution.expect("deletions ran");
        assert_eq!(execution.deleted.len(), n, "{:?}", report.journal_error);
        let ideal = n as f64 * latency_ms as f64 / 1000.0 / cap as f64;
        let ratio = if ideal > 0.0 {
            format!("{:.3}", wall / ideal)
        } else {
            "-".into()
        };
        println!(
            "delete store={store} N={n} latency={latency_ms}ms cap={cap} wall={wall:.2}s ideal={ideal:.2}s ratio={ratio} max_in_flight={} overhead_per_deletion={:.3}ms",
            slow.max_in_flight.load(Ordering::SeqCst),
            (wall - ideal).max(0.0) * 1000.0 / n as f64
        );
    }
}
