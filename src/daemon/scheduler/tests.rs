//! The scheduler on paused tokio time: a fake runner records every start, and the clock
//! follows tokio's time, so days pass without a real sleep.

use super::*;
use crate::daemon::clock::TokioClock;
use crate::policy::policies_from_str;
use std::sync::Mutex;

/// Records starts and skips; each run takes `takes` of (paused) time.
#[derive(Default)]
struct Recorder {
    clock: Mutex<Option<Arc<TokioClock>>>,
    last: Option<Timestamp>,
    takes: Duration,
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    /// (policy, fire, started at, the policy's keep.last when it started)
    starts: Vec<(String, Fire, Timestamp, u32)>,
    skips: Vec<(String, Timestamp)>,
    running: usize,
    most_at_once: usize,
    ended: usize,
}

impl Runner for Recorder {
    fn last_fire(&self, _: &str) -> Option<Timestamp> {
        self.last
    }

    fn run(&self, entry: Arc<Entry>, fire: Fire) -> BoxFuture<'static, ()> {
        let now = self.clock.lock().unwrap().as_ref().unwrap().now();
        let (log, takes) = (self.log.clone(), self.takes);
        Box::pin(async move {
            {
                let mut log = log.lock().unwrap();
                let keep = match entry.policy.keep.last {
                    Some(crate::retention::Count::Limited(n)) => n,
                    _ => 0,
                };
                log.starts
                    .push((entry.policy.name.clone(), fire, now, keep));
                log.running += 1;
                log.most_at_once = log.most_at_once.max(log.running);
            }
            tokio::time::sleep(takes).await;
            let mut log = log.lock().unwrap();
            log.running -= 1;
            log.ended += 1;
        })
    }

    fn skipped(&self, policy: &str, fire: Fire) {
        self.log
            .lock()
            .unwrap()
            .skips
            .push((policy.to_string(), fire.scheduled));
    }
}

fn entry(name: &str, schedule: &str, zone: &str, extra: &str) -> Entry {
    let keep = if extra.contains("keep:") {
        ""
    } else {
        "keep: {last: 3}\n"
    };
    let yaml = format!("name: {name}\naccount: a\nschedule: \"{schedule}\"\n{keep}{extra}");
    let (mut policies, errors) = policies_from_str(std::path::Path::new("p.yaml"), &yaml);
    assert!(errors.is_empty(), "{errors:?}");
    Entry {
        policy: Arc::new(policies.remove(0)),
        tz: TimeZone::get(zone).unwrap(),
    }
}

struct Harness {
    log: Arc<Mutex<Log>>,
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<Stopped>,
    clock: Arc<TokioClock>,
}

fn start(now: &str, recorder: Recorder, entries: Vec<Entry>) -> Harness {
    let clock = Arc::new(TokioClock::starting_at(now.parse().unwrap()));
    *recorder.clock.lock().unwrap() = Some(clock.clone());
    let log = recorder.log.clone();
    let scheduler = Scheduler::new(clock.clone(), Arc::new(recorder), entries, None);
    let (control, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(scheduler.run(rx));
    Harness {
        log,
        control,
        task,
        clock,
    }
}

impl Harness {
    async fn stop(self, deadline: Duration) -> (Stopped, Log) {
        self.control.send(Control::Stop { deadline }).unwrap();
        let stopped = self.task.await.unwrap();
        let log = std::mem::take(&mut *self.log.lock().unwrap());
        (stopped, log)
    }
}

fn local(at: Timestamp, zone: &str) -> String {
    at.to_zoned(TimeZone::get(zone).unwrap())
        .strftime("%F %T%:z")
        .to_string()
}

async fn days(n: u64) {
    tokio::time::sleep(Duration::from_secs(n * 86_400)).await;
}

/// Where a daily 02:30 job in Berlin starts over four days from `now`, in local time.
async fn berlin_0230_starts(now: &str) -> Vec<String> {
    let h = start(
        now,
        Recorder::default(),
        vec![entry("p", "30 2 * * *", "Europe/Berlin", "")],
    );
    days(4).await;
    let (_, log) = h.stop(Duration::ZERO).await;
    log.starts
        .iter()
        .map(|(_, fire, at, _)| {
            assert_eq!(fire.scheduled, *at, "starts on the tick");
            local(*at, "Europe/Berlin")
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_0230_job_in_berlin_runs_once_a_day_across_spring_forward() {
    assert_eq!(
        berlin_0230_starts("2026-03-27T12:00:00Z").await,
        [
            "2026-03-28 02:30:00+01:00",
            // 02:30 does not exist on 29 March: the job runs once, right after the gap.
            "2026-03-29 03:00:00+02:00",
            "2026-03-30 02:30:00+02:00",
            "2026-03-31 02:30:00+02:00",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_0230_job_in_berlin_runs_once_a_day_across_fall_back() {
    // 02:30 happens twice on 25 October; the job runs at the first one only.
    assert_eq!(
        berlin_0230_starts("2026-10-23T12:00:00Z").await,
        [
            "2026-10-24 02:30:00+02:00",
            "2026-10-25 02:30:00+02:00",
            "2026-10-26 02:30:00+01:00",
            "2026-10-27 02:30:00+01:00",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_three_day_gap_the_missed_fire_runs_once_at_start() {
    let recorder = Recorder {
        last: Some("2026-11-20T03:30:00Z".parse().unwrap()),
        ..Recorder::default()
    };
    let h = start(
        "2026-11-23T12:00:00Z",
        recorder,
        vec![entry("p", "30 3 * * *", "UTC", "")],
    );
    days(1).await;
    let (_, log) = h.stop(Duration::ZERO).await;
    let starts: Vec<(String, bool, String)> = log
        .starts
        .iter()
        .map(|(_, fire, at, _)| (fire.scheduled.to_string(), fire.catch_up, at.to_string()))
        .collect();
    assert_eq!(
        starts,
        [
            // Three ticks were missed (21st, 22nd, 23rd): one catch-up run, for the latest.
            (
                "2026-11-23T03:30:00Z".into(),
                true,
                "2026-11-23T12:00:00Z".into()
            ),
            (
                "2026-11-24T03:30:00Z".into(),
                false,
                "2026-11-24T03:30:00Z".into()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn no_catch_up_when_the_last_fire_is_the_latest_tick_or_there_is_none() {
    for last in [Some("2026-11-23T03:30:00Z"), None] {
        let recorder = Recorder {
            last: last.map(|l| l.parse().unwrap()),
            ..Recorder::default()
        };
        let h = start(
            "2026-11-23T12:00:00Z",
            recorder,
            vec![entry("p", "30 3 * * *", "UTC", "")],
        );
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let (_, log) = h.stop(Duration::ZERO).await;
        assert!(log.starts.is_empty(), "{last:?}: {:?}", log.starts);
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_that_outlasts_its_interval_is_never_overlapped() {
    let recorder = Recorder {
        takes: Duration::from_secs(150),
        ..Recorder::default()
    };
    let h = start(
        "2026-11-23T00:00:30Z",
        recorder,
        vec![entry("p", "* * * * *", "UTC", "")],
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    let (_, log) = h.stop(Duration::from_secs(600)).await;
    assert_eq!(log.most_at_once, 1);
    let minute = |at: &Timestamp| at.strftime("%H:%M:%S").to_string();
    let starts: Vec<String> = log.starts.iter().map(|(_, _, at, _)| minute(at)).collect();
    assert_eq!(starts, ["00:01:00", "00:04:00", "00:07:00", "00:10:00"]);
    let skips: Vec<String> = log.skips.iter().map(|(_, at)| minute(at)).collect();
    assert_eq!(
        skips,
        [
            "00:02:00", "00:03:00", "00:05:00", "00:06:00", "00:08:00", "00:09:00"
        ]
    );
    assert_eq!(log.ended, 4, "the last run finished within the deadline");
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_start_by_its_fixed_offset_below_the_bound() {
    let e = entry("p", "0 * * * *", "UTC", "jitter: 10min\n");
    let h = start("2026-11-23T00:30:00Z", Recorder::default(), vec![e]);
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let (_, log) = h.stop(Duration::ZERO).await;
    assert_eq!(log.starts.len(), 3);
    for (name, fire, at, _) in &log.starts {
        let offset = schedule::jitter_offset(name, fire.scheduled, Duration::from_secs(600));
        let delay = Duration::try_from(at.duration_since(fire.scheduled)).unwrap();
        assert_eq!(delay, offset);
        assert!(delay < Duration::from_secs(600));
    }
}

#[tokio::test(start_paused = true)]
async fn a_reload_applies_new_schedules_at_once_and_stops_removed_policies() {
    let recorder = Recorder {
        takes: Duration::from_secs(90),
        ..Recorder::default()
    };
    let h = start(
        "2026-11-23T00:00:30Z",
        recorder,
        vec![
            entry("hourly", "0 * * * *", "UTC", ""),
            entry("minutely", "* * * * *", "UTC", ""),
            entry("gone", "* * * * *", "UTC", ""),
        ],
    );
    // 00:01:00 starts `minutely` and `gone`; at 00:01:30 the set changes while they run.
    tokio::time::sleep(Duration::from_secs(60)).await;
    h.control
        .send(Control::Replace(vec![
            entry("hourly", "* * * * *", "UTC", ""),
            entry("minutely", "* * * * *", "UTC", "keep: {last: 9}\n"),
        ]))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(240)).await;
    let now = h.clock.now();
    let (_, log) = h.stop(Duration::from_secs(600)).await;
    let of = |name: &str| -> Vec<(String, u32)> {
        log.starts
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, _, at, keep)| (at.strftime("%H:%M").to_string(), *keep))
            .collect()
    };
    assert_eq!(now.strftime("%H:%M:%S").to_string(), "00:05:30");
    // The new schedule applies at the next minute, not at the old hourly tick.
    assert_eq!(
        of("hourly"),
        [("00:02".into(), 3), ("00:04".into(), 3)],
        "90 s runs every minute: every other tick is skipped"
    );
    // The run that started before the reload kept its version; later ones use the new one.
    assert_eq!(
        of("minutely"),
        [
            ("00:01".into(), 3),
            ("00:03".into(), 9),
            ("00:05".into(), 9)
        ]
    );
    assert_eq!(
        of("gone"),
        [("00:01".into(), 3)],
        "removed: never started again"
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_waits_for_a_run_within_the_deadline_and_aborts_it_after() {
    for (takes, deadline, unfinished) in [(30, 60, vec![]), (300, 60, vec!["p".to_string()])] {
        let recorder = Recorder {
            takes: Duration::from_secs(takes),
            ..Recorder::default()
        };
        let h = start(
            "2026-11-23T00:00:59Z",
            recorder,
            vec![entry("p", "* * * * *", "UTC", "")],
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stop_at = tokio::time::Instant::now();
        let (stopped, log) = h.stop(Duration::from_secs(deadline)).await;
        assert_eq!(stopped.unfinished, unfinished);
        assert_eq!(log.starts.len(), 1);
        assert_eq!(log.ended, usize::from(unfinished.is_empty()));
        let waited = stop_at.elapsed().as_secs();
        assert_eq!(waited, if unfinished.is_empty() { 29 } else { 60 });
    }
}
