//! The retention engine: restic's `forget` semantics (restic >= 0.18) over one group of
//! backups, in a time zone, with a reason for every kept backup. Pure: no I/O, no clock (the
//! caller passes `now`), no provider types.

pub mod duration;
pub mod period;

pub use duration::CalendarDuration;
pub use period::{LocalTime, Period};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt;

/// A count rule's budget: `daily: 7` or `yearly: unlimited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Limited(u32),
    Unlimited,
}

impl Count {
    fn is_active(self) -> bool {
        self != Count::Limited(0)
    }
}

/// The `keep:` section of a policy, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeepRules {
    pub last: Option<Count>,
    /// `hourly` ... `yearly`, indexed in [`Period::ALL`] order.
    pub periods: [Option<Count>; 5],
    pub within: Option<CalendarDuration>,
    /// `within_hourly` ... `within_yearly`, indexed in [`Period::ALL`] order.
    pub within_periods: [Option<CalendarDuration>; 5],
    /// Each entry keeps backups carrying all of its tags (restic's `--keep-tag foo,bar`).
    pub tags: Vec<Vec<String>>,
}

impl KeepRules {
    /// True when no rule could keep anything; such a policy is rejected when loaded.
    pub fn is_empty(&self) -> bool {
        let counts = self.last.iter().chain(self.periods.iter().flatten());
        !counts.copied().any(Count::is_active)
            && self.within.is_none_or(|d| d.is_zero())
            && self.within_periods.iter().flatten().all(|d| d.is_zero())
            && self.tags.is_empty()
    }
}

/// Why a backup is kept. Rules come from the engine; `Protected`, `Newest` and `MinKeep`
/// from the guards applied after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Tags(Vec<String>),
    Within(CalendarDuration),
    Last,
    /// A period count rule; `oldest` when it kept the group's oldest backup only because the
    /// rule had budget left.
    Count {
        period: Period,
        oldest: bool,
    },
    PeriodWithin {
        period: Period,
        within: CalendarDuration,
        oldest: bool,
    },
    Protected,
    /// The provider's live copy (Cloudinary's current version).
    Live,
    /// The group's newest complete backup is older than `guard.stale_after`: nothing in the
    /// group is deleted.
    Stale,
    Newest,
    MinKeep,
    /// `apply`: the policy would delete it now, but the reviewed plan did not.
    NotReviewed,
    /// A hold (`retentiond hold`) or the provider's lock (S3 Object Lock), in its own words.
    Held(Box<str>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let oldest = |o: bool| if o { "oldest " } else { "" };
        match self {
            Reason::Tags(tags) => write!(f, "tag {}", tags.join(",")),
            Reason::Within(d) => write!(f, "within {d}"),
            Reason::Last => f.write_str("last"),
            Reason::Count { period, oldest: o } => {
                write!(f, "{}{}", oldest(*o), period.adjective())
            }
            Reason::PeriodWithin {
                period,
                within,
                oldest: o,
            } => write!(f, "{}{} within {within}", oldest(*o), period.adjective()),
            Reason::Protected => f.write_str("protected"),
            Reason::Live => f.write_str("live version"),
            Reason::Stale => f.write_str("stale group"),
            Reason::Newest => f.write_str("newest"),
            Reason::MinKeep => f.write_str("min_keep"),
            Reason::NotReviewed => f.write_str("not in the reviewed plan"),
            Reason::Held(words) => f.write_str(words),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the engine needs of a backup.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    pub created_at: Timestamp,
    pub tags: &'a [String],
}

/// The engine's answer for one item: `index` into the input, and the rules that kept it
/// (empty: no rule keeps it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub index: usize,
    pub reasons: Vec<Reason>,
}

/// One count rule's state while walking the group newest first.
struct Bucket {
    remaining: Count,
    last_key: Option<i64>,
}

impl Bucket {
    fn new(count: Option<Count>) -> Option<Bucket> {
        count.filter(|c| c.is_active()).map(|remaining| Bucket {
            remaining,
            last_key: None,
        })
    }

    /// No budget left: nothing more is kept, whatever the key.
    fn is_full(&self) -> bool {
        self.remaining == Count::Limited(0)
    }

    /// restic: keep when the key starts a new period, or when this is the oldest backup and
    /// budget is left. Returns `Some(oldest_only)` when kept.
    fn offer(&mut self, key: i64, is_oldest: bool) -> Option<bool> {
        if self.is_full() {
            return None;
        }
        let same = self.last_key == Some(key);
        if same && !is_oldest {
            return None;
        }
        self.last_key = Some(key);
        if let Count::Limited(n) = &mut self.remaining {
            *n -= 1;
        }
        Some(same)
    }
}

/// A windowed rule (`within_daily: 30d`): the newest of each period after `cutoff`.
struct WindowBucket {
    period: Period,
    within: CalendarDuration,
    cutoff: Option<Timestamp>,
    last_key: Option<i64>,
}

/// Evaluates `rules` over one group. Returns a verdict per item, newest first; items with
/// equal times keep their input order (restic's stable sort).
///
/// `within` windows are measured back from the newest item not after `now`, so a backup job
/// that stopped never lets the window empty out; items in the future still count for the
/// count rules, as in restic.
pub fn evaluate(rules: &KeepRules, items: &[Item], now: Timestamp, tz: &TimeZone) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(items.len());
    evaluate_each(
        rules,
        Group {
            len: items.len(),
            created_at: |i| items[i].created_at,
            tags: |i| items[i].tags,
        },
        now,
        tz,
        |index, reasons| {
            verdicts.push(Verdict {
                index,
                reasons: reasons.to_vec(),
            })
        },
    );
    verdicts
}

/// One group as the engine reads it, without a copy: `len` items, and each one's time and
/// tags by index.
pub struct Group<'t, A: Fn(usize) -> Timestamp, T: Fn(usize) -> &'t [String]> {
    pub len: usize,
    pub created_at: A,
    pub tags: T,
}

/// [`evaluate`], handing each verdict to `verdict` (index, reasons) newest first instead of
/// collecting them: a group of a million backups needs no copy of its items, no verdicts
/// beside its decisions, and no vector of reasons per item.
pub fn evaluate_each<'t>(
    rules: &KeepRules,
    group: Group<'t, impl Fn(usize) -> Timestamp, impl Fn(usize) -> &'t [String]>,
    now: Timestamp,
    tz: &TimeZone,
    mut verdict: impl FnMut(usize, &[Reason]),
) {
    let at = &group.created_at;
    let mut order: Vec<u32> = (0..as_u32(group.len)).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(at(i as usize)));

    let latest = (0..group.len).map(at).filter(|t| *t <= now).max();
    // No anchor (every item is in the future): every window holds everything.
    let cutoff = |d: &CalendarDuration| latest.map(|l| d.before(l, tz));
    let within = rules
        .within
        .filter(|d| !d.is_zero())
        .map(|d| (d, cutoff(&d)));
    let mut last = Bucket::new(rules.last);
    let mut counts: Vec<(Period, Bucket)> = Period::ALL
        .iter()
        .zip(rules.periods)
        .filter_map(|(p, c)| Bucket::new(c).map(|b| (*p, b)))
        .collect();
    let mut windows: Vec<WindowBucket> = Period::ALL
        .iter()
        .zip(rules.within_periods)
        .filter_map(|(p, d)| d.filter(|d| !d.is_zero()).map(|d| (*p, d)))
        .map(|(period, within)| WindowBucket {
            period,
            within,
            cutoff: cutoff(&within),
            last_key: None,
        })
        .collect();
    let inside = |t: Timestamp, cut: Option<Timestamp>| cut.is_none_or(|c| t > c);

    let oldest_nr = order.len().saturating_sub(1);
    let mut reasons = Vec::new();
    for (nr, &index) in order.iter().enumerate() {
        let index = index as usize;
        let created_at = at(index);
        let is_oldest = nr == oldest_nr;
        reasons.clear();
        for set in &rules.tags {
            let tags = (group.tags)(index);
            if set.iter().all(|tag| tags.contains(tag)) {
                reasons.push(Reason::Tags(set.clone()));
            }
        }
        if let Some((d, cut)) = within
            && inside(created_at, cut)
        {
            reasons.push(Reason::Within(d));
        }
        if let Some(bucket) = &mut last
            && bucket.offer(nr as i64, is_oldest).is_some()
        {
            reasons.push(Reason::Last);
        }
        // The local time and a period's key only where a rule still asks: once `hourly 48`
        // has its 48 hours, the rest of a long history pays only for the rules still open.
        let mut local = None;
        let mut local = || *local.get_or_insert_with(|| LocalTime::new(created_at, tz));
        for (period, bucket) in &mut counts {
            if bucket.is_full() {
                continue;
            }
            if let Some(oldest) = bucket.offer(local().key(*period), is_oldest) {
                reasons.push(Reason::Count {
                    period: *period,
                    oldest,
                });
            }
        }
        for window in &mut windows {
            if !inside(created_at, window.cutoff) {
                continue;
            }
            let key = local().key(window.period);
            let same = window.last_key == Some(key);
            if !same || is_oldest {
                window.last_key = Some(key);
                reasons.push(Reason::PeriodWithin {
                    period: window.period,
                    within: window.within,
                    oldest: same,
                });
            }
        }
        verdict(index, &reasons);
    }
}

/// A group's size as the engine's indices hold it (a listing of 4 billion backups would not
/// fit in memory long before).
fn as_u32(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 backups in a group")
}

#[cfg(test)]
mod tests;
