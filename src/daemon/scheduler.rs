//! The scheduler loop: starts each policy at its fires in its own zone, never two runs of one
//! policy at once, catches up a missed fire once after downtime, takes a new policy set
//! between runs, and drains on stop. No I/O of its own: runs go through a [`Runner`], time
//! comes from an injected [`Clock`], sleeps are tokio's (so tests run on paused time).

use super::clock::Clock;
use super::schedule;
use crate::policy::Policy;
use crate::provider::BoxFuture;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};

/// A policy to schedule, with its resolved zone.
#[derive(Clone, Debug)]
pub struct Entry {
    pub policy: Arc<Policy>,
    pub tz: TimeZone,
}

impl Entry {
    fn name(&self) -> &str {
        &self.policy.name
    }

    /// Same fires: same schedule, zone and jitter.
    fn same_timing(&self, other: &Entry) -> bool {
        let text = |e: &Entry| e.policy.schedule.as_ref().map(|s| s.text.clone());
        text(self) == text(other)
            && self.tz == other.tz
            && self.policy.jitter == other.policy.jitter
    }
}

/// One scheduled start of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    /// The cron tick this run is for (before jitter).
    pub scheduled: Timestamp,
    /// A tick missed while the daemon was down, run once at start.
    pub catch_up: bool,
}

/// Carries out runs for the scheduler.
pub trait Runner: Send + Sync + 'static {
    /// The last fire started for `policy` (the journal keeps it across restarts).
    fn last_fire(&self, policy: &str) -> Option<Timestamp>;
    /// Runs `entry` for `fire`. The scheduler starts no other run of the policy until this
    /// ends.
    fn run(&self, entry: Arc<Entry>, fire: Fire) -> BoxFuture<'static, ()>;
    /// A fire came while the policy's previous run was still going; it was not started.
    fn skipped(&self, policy: &str, fire: Fire);
    /// When each scheduled policy runs next (jitter included), whenever that changes.
    fn next_runs(&self, _next: &[(String, Timestamp)]) {}
}

/// What the daemon tells the scheduler.
pub enum Control {
    /// The whole new policy set (a reload). Running policies finish under the version they
    /// started with; removed policies are not started again; changed schedules apply at once.
    Replace(Vec<Entry>),
    /// Start nothing more; wait up to `deadline` for running policies, then abort them.
    Stop { deadline: Duration },
}

/// Called from the loop itself every `every` (systemd's watchdog): a stuck loop stops it.
pub struct Heartbeat {
    pub every: Duration,
    pub beat: Box<dyn Fn() + Send>,
}

/// How the scheduler ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Policies still running at the deadline, aborted; their next run settles what they
    /// left open.
    pub unfinished: Vec<String>,
}

struct Slot {
    entry: Arc<Entry>,
    fire: Fire,
    /// The fire plus the policy's jitter.
    due: Timestamp,
}

/// The loop wakes at least this often, so a jump of the wall clock (suspend, NTP step) is
/// noticed within a minute.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub struct Scheduler {
    clock: Arc<dyn Clock>,
    runner: Arc<dyn Runner>,
    slots: BTreeMap<String, Slot>,
    /// Runs in progress, by task; a policy is in here at most once.
    running: HashMap<Id, String>,
    tasks: JoinSet<()>,
    heartbeat: Option<(Heartbeat, tokio::time::Instant)>,
}

impl Scheduler {
    /// A scheduler for the policy set the daemon starts with. A policy whose last recorded
    /// fire is older than its latest tick missed a fire while the daemon was down: that tick
    /// runs once, now.
    pub fn new(
        clock: Arc<dyn Clock>,
        runner: Arc<dyn Runner>,
        entries: Vec<Entry>,
        heartbeat: Option<Heartbeat>,
    ) -> Scheduler {
        let now = clock.now();
        let slots = entries
            .into_iter()
            .filter_map(|entry| {
                let last = runner.last_fire(entry.name());
                let slot = first_slot(Arc::new(entry), now, Some(last))?;
                Some((slot.entry.policy.name.clone(), slot))
            })
            .collect();
        log_first_fires(&slots);
        let heartbeat = heartbeat.map(|h| (h, tokio::time::Instant::now()));
        let scheduler = Scheduler {
            clock,
            runner,
            slots,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            heartbeat,
        };
        scheduler.tell_next_runs();
        scheduler
    }

    fn tell_next_runs(&self) {
        let next: Vec<(String, Timestamp)> = self
            .slots
            .iter()
            .map(|(name, slot)| (name.clone(), slot.due))
            .collect();
        self.runner.next_runs(&next);
    }

    /// Runs until told to stop (or until every sender of `control` is gone).
    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) -> Stopped {
        loop {
            self.start_due();
            self.beat_if_due();
            let sleep = self.sleep_duration();
            tokio::select! {
                message = control.recv() => match message {
                    Some(Control::Replace(entries)) => self.replace(entries),
                    Some(Control::Stop { deadline }) => return self.drain(deadline).await,
                    None => return self.drain(Duration::ZERO).await,
                },
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(done);
                }
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Starts every policy whose fire is due, unless it is still running; either way its
    /// next fire is the first tick after now (missed ticks are not queued up).
    fn start_due(&mut self) {
        let now = self.clock.now();
        let mut ended = Vec::new();
        let mut started = false;
        for (name, slot) in &mut self.slots {
            if slot.due > now {
                continue;
            }
            started = true;
            if self.running.values().any(|running| running == name) {
                self.runner.skipped(name, slot.fire);
            } else {
                let run = self.runner.run(slot.entry.clone(), slot.fire);
                let handle = self.tasks.spawn(run);
                self.running.insert(handle.id(), name.clone());
            }
            match next_slot(&slot.entry, slot.fire.scheduled.max(now)) {
                Some(next) => *slot = next,
                None => ended.push(name.clone()),
            }
        }
        for name in ended {
            self.slots.remove(&name);
        }
        if started {
            self.tell_next_runs();
        }
    }

    fn finished(&mut self, done: Result<(Id, ()), JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.running.remove(&id);
    }

    fn beat_if_due(&mut self) {
        if let Some((heartbeat, last)) = &mut self.heartbeat
            && last.elapsed() >= heartbeat.every
        {
            (heartbeat.beat)();
            *last = tokio::time::Instant::now();
        }
    }

    fn sleep_duration(&self) -> Duration {
        let now = self.clock.now();
        let until_due = self
            .slots
            .values()
            .map(|slot| Duration::try_from(slot.due.duration_since(now)).unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(MAX_SLEEP);
        let until_beat = self
            .heartbeat
            .as_ref()
            .map(|(h, last)| h.every.saturating_sub(last.elapsed()))
            .unwrap_or(MAX_SLEEP);
        until_due.min(until_beat).min(MAX_SLEEP)
    }

    fn replace(&mut self, entries: Vec<Entry>) {
        let now = self.clock.now();
        let mut slots = BTreeMap::new();
        for entry in entries {
            let entry = Arc::new(entry);
            let name = entry.policy.name.clone();
            let slot = match self.slots.remove(&name) {
                Some(old) if old.entry.same_timing(&entry) => Some(Slot { entry, ..old }),
                _ => first_slot(entry, now, None),
            };
            if let Some(slot) = slot {
                slots.insert(name, slot);
            }
        }
        log_first_fires(&slots);
        self.slots = slots;
        self.tell_next_runs();
    }

    /// Waits for running policies until `deadline`, then aborts the rest.
    async fn drain(mut self, deadline: Duration) -> Stopped {
        let until = tokio::time::Instant::now() + deadline;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(until, self.tasks.join_next_with_id()).await {
                Ok(Some(done)) => self.finished(done),
                Ok(None) => break,
                Err(_) => {
                    let mut unfinished: Vec<String> =
                        self.running.drain().map(|(_, n)| n).collect();
                    unfinished.sort();
                    self.tasks.shutdown().await;
                    return Stopped { unfinished };
                }
            }
        }
        Stopped::default()
    }
}

/// Tells the operator when each policy runs next, in its zone.
fn log_first_fires(slots: &BTreeMap<String, Slot>) {
    for (name, slot) in slots {
        let at = slot.due.to_zoned(slot.entry.tz.clone());
        let catch_up = if slot.fire.catch_up {
            " (catching up a fire missed while the daemon was down)"
        } else {
            ""
        };
        tracing::info!(policy = %name, "next run at {}{catch_up}", at.strftime("%F %T %Z"));
    }
}

/// The first fire of a newly scheduled policy. At start (`last` given) a tick after the last
/// recorded fire that is already past runs now, once; otherwise the next tick.
fn first_slot(entry: Arc<Entry>, now: Timestamp, last: Option<Option<Timestamp>>) -> Option<Slot> {
    let schedule = entry.policy.schedule.as_ref()?;
    if let Some(Some(last)) = last {
        let missed = schedule::last_at_or_before(schedule, &entry.tz, now).filter(|m| *m > last);
        if let Some(missed) = missed {
            let fire = Fire {
                scheduled: missed,
                catch_up: true,
            };
            return Some(Slot {
                entry,
                fire,
                due: now,
            });
        }
    }
    next_slot(&entry, now)
}

/// The first tick after `after`, with the policy's jitter.
fn next_slot(entry: &Arc<Entry>, after: Timestamp) -> Option<Slot> {
    let schedule = entry.policy.schedule.as_ref()?;
    let scheduled = schedule::next_after(schedule, &entry.tz, after)?;
    let offset = entry
        .policy
        .jitter
        .map(|jitter| schedule::jitter_offset(entry.name(), scheduled, jitter))
        .unwrap_or_default();
    let due = SignedDuration::try_from(offset)
        .ok()
        .and_then(|offset| scheduled.checked_add(offset).ok())
        .unwrap_or(scheduled);
    Some(Slot {
        entry: entry.clone(),
        fire: Fire {
            scheduled,
            catch_up: false,
        },
        due,
    })
}

#[cfg(test)]
mod tests;
