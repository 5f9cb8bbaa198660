//! The planner alone, in process: every rule of `bench/policy.yaml` over 10k, 100k and 1M
//! backups, in one group and in 10,000 groups. The whole-process figures (parse, plan, write)
//! and their floor are in `bench/run.sh`.
//!
//!     cargo bench --bench engine

use jiff::{Timestamp, ToSpan};
use retentiond::model::{Backup, Status};
use retentiond::plan;
use retentiond::policy::{Policy, policies_from_str};

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

fn now() -> Timestamp {
    "2026-11-23T00:00:00Z".parse().unwrap()
}

fn policy() -> Policy {
    let text = include_str!("../bench/policy.yaml");
    let (mut policies, errors) = policies_from_str(std::path::Path::new("policy.yaml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    policies.remove(0)
}

/// `n` backups over `groups` groups, one every two hours per group going back from now, a
/// failed one every 97th and one in progress every 1,009th (as `bench/make_listing.py`).
fn listing(n: usize, groups: usize) -> Vec<Backup> {
    (0..n)
        .map(|i| {
            let (group, step) = (i % groups, (i / groups) as i64);
            let at = now() - (2 * step).hours() - ((group % 60) as i64).minutes() - 1.hour();
            let status = if i % 97 == 0 {
                Status::Failed
            } else if i % 1009 == 0 {
                Status::InProgress
            } else {
                Status::Complete
            };
            let mut b = Backup::new(&format!("bk-{i:08}"), &format!("g{group:05}"), at, status);
            b.name = Some(compact_str::format_compact!("nightly-{group:05}-{step:06}"));
            b
        })
        .collect()
}

fn bench_plan(bencher: divan::Bencher, n: usize, groups: usize) {
    let (policy, backups, tz) = (policy(), listing(n, groups), policy().timezone.unwrap());
    bencher.bench(|| plan::plan(&policy, &backups, now(), &tz).summary);
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn one_group(bencher: divan::Bencher, n: usize) {
    bench_plan(bencher, n, 1);
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn groups_10k(bencher: divan::Bencher, n: usize) {
    bench_plan(bencher, n, 10_000);
}
