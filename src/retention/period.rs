//! Calendar periods and their bucket keys, computed in a time zone. Pure.
//!
//! Two backups are in the same period exactly when their keys are equal. Weeks use the ISO
//! week-numbering year (2015-12-31 and 2016-01-01 are both 2015-W53), so the week that spans
//! New Year is one bucket, not two.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// A calendar period of the count rules (`hourly` ... `yearly`) and the windowed rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    pub const ALL: [Period; 5] = [
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Year,
    ];

    /// The adjective used in policy keys and reasons: `hourly`, `daily`, ...
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }
}

/// A backup's wall-clock time in the policy's zone, computed once and keyed per period.
#[derive(Clone, Copy, Debug)]
pub struct LocalTime {
    civil: DateTime,
    offset_seconds: i32,
}

impl LocalTime {
    pub fn new(instant: Timestamp, tz: &TimeZone) -> LocalTime {
        let offset = tz.to_offset(instant);
        LocalTime {
            civil: offset.to_datetime(instant),
            offset_seconds: offset.seconds(),
        }
    }

    /// The bucket key of `period`. An hour also carries the UTC offset, so the hour that a
    /// DST change repeats (02:00-02:59 twice in Berlin in October) is two hours, not one.
    pub fn key(&self, period: Period) -> i64 {
        let date = self.civil.date();
        let (year, month, day) = (
            i64::from(date.year()),
            i64::from(date.month()),
            i64::from(date.day()),
        );
        match period {
            Period::Year => year,
            Period::Month => year * 100 + month,
            Period::Week => {
                let iso = date.iso_week_date();
                i64::from(iso.year()) * 100 + i64::from(iso.week())
            }
            Period::Day => (year * 100 + month) * 100 + day,
            Period::Hour => {
                let hour = ((year * 100 + month) * 100 + day) * 100 + i64::from(self.civil.hour());
                hour * 200_000 + i64::from(self.offset_seconds) + 100_000
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str, tz: &str) -> LocalTime {
        LocalTime::new(s.parse().unwrap(), &TimeZone::get(tz).unwrap())
    }

    #[test]
    fn iso_week_spans_new_year() {
        let a = local("2015-12-31T12:00:00Z", "UTC");
        let b = local("2016-01-01T12:00:00Z", "UTC");
        let c = local("2016-01-04T12:00:00Z", "UTC");
        assert_eq!(a.key(Period::Week), 201553);
        assert_eq!(a.key(Period::Week), b.key(Period::Week));
        assert_ne!(b.key(Period::Week), c.key(Period::Week));
        assert_ne!(a.key(Period::Year), b.key(Period::Year));
        // 2024-12-30 (Monday) belongs to ISO week 1 of 2025.
        assert_eq!(
            local("2024-12-30T00:00:00Z", "UTC").key(Period::Week),
            202501
        );
    }

    #[test]
    fn days_follow_the_zone() {
        // 23:30 UTC on 1 March is already 2 March in Berlin.
        let berlin = local("2024-03-01T23:30:00Z", "Europe/Berlin");
        let utc = local("2024-03-01T23:30:00Z", "UTC");
        assert_eq!(berlin.key(Period::Day), 20240302);
        assert_eq!(utc.key(Period::Day), 20240301);
        assert_eq!(berlin.key(Period::Month), 202403);
    }

    #[test]
    fn repeated_dst_hour_is_two_hours() {
        // 2024-10-27 in Berlin: 02:30 CEST (00:30Z) and 02:30 CET (01:30Z).
        let first = local("2024-10-27T00:30:00Z", "Europe/Berlin");
        let second = local("2024-10-27T01:30:00Z", "Europe/Berlin");
        assert_ne!(first.key(Period::Hour), second.key(Period::Hour));
        assert_eq!(first.key(Period::Day), second.key(Period::Day));
    }

    #[test]
    fn keys_order_like_time_within_a_zone() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let mut t: Timestamp = "2023-12-25T00:00:00Z".parse().unwrap();
        let mut previous = LocalTime::new(t, &tz);
        for _ in 0..2000 {
            t = t.checked_add(jiff::SignedDuration::from_hours(7)).unwrap();
            let now = LocalTime::new(t, &tz);
            for p in [Period::Day, Period::Week, Period::Month, Period::Year] {
                assert!(now.key(p) >= previous.key(p), "{p:?} at {t}");
            }
            previous = now;
        }
    }
}
