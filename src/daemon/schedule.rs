//! Cron arithmetic in a policy's time zone: the next fire, the last fire at or before a time,
//! the interval between fires, and a policy's jitter offset. Pure: no clock, no I/O. croner
//! handles the DST days (a fixed-time job runs once on both); searches go by real time.

use crate::policy::Schedule;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::time::Duration;

/// The first fire strictly after `after`.
pub fn next_after(schedule: &Schedule, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    schedule
        .cron
        .find_next_occurrence(&after.to_zoned(tz.clone()), false)
        .ok()
        .map(|z| z.timestamp())
}

/// The last fire at or before `at`.
pub fn last_at_or_before(schedule: &Schedule, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    schedule
        .cron
        .find_previous_occurrence(&at.to_zoned(tz.clone()), true)
        .ok()
        .map(|z| z.timestamp())
}

/// The time between the next two fires after `now`: what "twice its schedule interval"
/// counts in.
pub fn interval(schedule: &Schedule, tz: &TimeZone, now: Timestamp) -> Option<Duration> {
    let first = next_after(schedule, tz, now)?;
    let second = next_after(schedule, tz, first)?;
    Duration::try_from(second.duration_since(first)).ok()
}

/// How much later than `fire` the policy `name` starts: below `jitter`, the same for the same
/// policy and fire (so a restart does not move it), different across policies.
pub fn jitter_offset(name: &str, fire: Timestamp, jitter: Duration) -> Duration {
    let millis = jitter.as_millis() as u64;
    if millis == 0 {
        return Duration::ZERO;
    }
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{name}\n{}", fire.as_millisecond()).as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    Duration::from_millis(u64::from_le_bytes(first) % millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::policies_from_str;

    pub fn schedule(text: &str) -> Schedule {
        let yaml = format!("name: p\naccount: a\nschedule: \"{text}\"\nkeep: {{last: 1}}\n");
        let (mut policies, errors) = policies_from_str(std::path::Path::new("p.yaml"), &yaml);
        assert!(errors.is_empty(), "{errors:?}");
        policies.remove(0).schedule.unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    /// Every fire in `[from, to)`, in the zone's local time.
    fn fires(text: &str, from: &str, to: &str) -> Vec<String> {
        let (s, tz) = (schedule(text), berlin());
        let to: Timestamp = to.parse().unwrap();
        let mut at: Timestamp = from.parse().unwrap();
        let mut out = Vec::new();
        while let Some(next) = next_after(&s, &tz, at).filter(|n| *n < to) {
            out.push(next.to_zoned(tz.clone()).strftime("%F %T%:z").to_string());
            at = next;
        }
        out
    }

    #[test]
    fn a_daily_0230_job_runs_once_on_both_dst_change_days_in_berlin() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        assert_eq!(
            fires("30 2 * * *", "2026-03-27T12:00:00Z", "2026-03-31T00:00:00Z"),
            [
                "2026-03-28 02:30:00+01:00",
                "2026-03-29 03:00:00+02:00",
                "2026-03-30 02:30:00+02:00",
            ]
        );
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice, runs once.
        assert_eq!(
            fires("30 2 * * *", "2026-10-23T12:00:00Z", "2026-10-27T00:00:00Z"),
            [
                "2026-10-24 02:30:00+02:00",
                "2026-10-25 02:30:00+02:00",
                "2026-10-26 02:30:00+01:00",
            ]
        );
        // Searching from a moment after the first 02:30 (a run that started late) does not
        // find the second one either.
        let (s, tz) = (schedule("30 2 * * *"), berlin());
        let late: Timestamp = "2026-10-25T00:30:05Z".parse().unwrap();
        let next = next_after(&s, &tz, late).unwrap();
        assert_eq!(next, "2026-10-26T01:30:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn an_hourly_job_skips_the_missing_hour_and_runs_in_both_repeated_hours() {
        let spring = fires("0 * * * *", "2026-03-29T00:30:00Z", "2026-03-29T02:30:00Z");
        assert_eq!(
            spring,
            ["2026-03-29 03:00:00+02:00", "2026-03-29 04:00:00+02:00"]
        );
        let autumn = fires("0 * * * *", "2026-10-24T23:30:00Z", "2026-10-25T01:30:00Z");
        assert_eq!(
            autumn,
            ["2026-10-25 02:00:00+02:00", "2026-10-25 02:00:00+01:00"]
        );
    }

    #[test]
    fn the_last_fire_at_or_before_includes_the_instant_itself() {
        let (s, tz) = (schedule("30 3 * * *"), TimeZone::UTC);
        let fire: Timestamp = "2026-11-23T03:30:00Z".parse().unwrap();
        assert_eq!(last_at_or_before(&s, &tz, fire), Some(fire));
        let later: Timestamp = "2026-11-24T03:29:59Z".parse().unwrap();
        assert_eq!(last_at_or_before(&s, &tz, later), Some(fire));
    }

    #[test]
    fn the_interval_is_the_gap_between_the_next_two_fires() {
        let now: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
        let tz = TimeZone::UTC;
        let day = Duration::from_secs(86_400);
        assert_eq!(interval(&schedule("30 3 * * *"), &tz, now), Some(day));
        assert_eq!(
            interval(&schedule("* * * * * *"), &tz, now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(interval(&schedule("@weekly"), &tz, now), Some(7 * day));
    }

    #[test]
    fn jitter_is_below_the_bound_stable_and_spread_across_policies() {
        let fire: Timestamp = "2026-11-23T03:30:00Z".parse().unwrap();
        let bound = Duration::from_secs(600);
        let offsets: Vec<Duration> = (0..50)
            .map(|i| jitter_offset(&format!("policy-{i}"), fire, bound))
            .collect();
        assert!(offsets.iter().all(|o| *o < bound));
        assert_eq!(offsets[7], jitter_offset("policy-7", fire, bound));
        let distinct: std::collections::BTreeSet<_> = offsets.iter().collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        assert_eq!(jitter_offset("p", fire, Duration::ZERO), Duration::ZERO);
    }
}
