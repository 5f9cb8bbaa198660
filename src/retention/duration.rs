//! Calendar durations as policies write them (`14d`, `6mo`, `1y 2mo 3d`): parsing, canonical
//! display, and subtraction from an instant in a time zone. Pure.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use std::fmt;

/// A duration with calendar parts (years, months, weeks, days: applied to the civil date in a
/// time zone, clamped at month end) and exact parts (hours, minutes, seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CalendarDuration {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
}

const UNITS: &[(&str, &[&str])] = &[
    ("y", &["y", "yr", "yrs", "year", "years"]),
    ("mo", &["mo", "mon", "month", "months"]),
    ("w", &["w", "wk", "wks", "week", "weeks"]),
    ("d", &["d", "day", "days"]),
    ("h", &["h", "hr", "hrs", "hour", "hours"]),
    ("min", &["min", "mins", "minute", "minutes"]),
    ("s", &["s", "sec", "secs", "second", "seconds"]),
];

impl CalendarDuration {
    pub fn is_zero(&self) -> bool {
        *self == CalendarDuration::default()
    }

    /// Parses `90s`, `30min`, `36h`, `14d`, `8w`, `6mo`, `2y`, and combinations such as
    /// `1y 2mo 3d`. A bare `m` is rejected because restic reads it as months and most other
    /// tools as minutes.
    pub fn parse(text: &str) -> Result<CalendarDuration, String> {
        let mut out = CalendarDuration::default();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("empty duration; write for example `14d`, `6mo` or `1y 2mo`".into());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "`{text}` is not a duration: expected a number at `{rest}`; write for example `14d`, `6mo` or `1y 2mo`"
                ));
            }
            let number: u32 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{}` is too large in `{text}`", &rest[..digits]))?;
            rest = rest[digits..].trim_start();
            let letters = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = &rest[..letters];
            rest = rest[letters..].trim_start();
            out.add_unit(number, unit, text)?;
        }
        Ok(out)
    }

    fn add_unit(&mut self, number: u32, unit: &str, text: &str) -> Result<(), String> {
        let within = if text.trim() == format!("{number}{unit}") {
            String::new()
        } else {
            format!(" in `{text}`")
        };
        if unit == "m" || unit == "M" {
            return Err(format!(
                "`{number}m`{within} is ambiguous (restic reads `m` as months, most tools as minutes): write `{number}mo` for months or `{number}min` for minutes"
            ));
        }
        let Some((canonical, _)) = UNITS
            .iter()
            .find(|(_, spellings)| spellings.contains(&unit.to_ascii_lowercase().as_str()))
        else {
            let what = if unit.is_empty() {
                format!("`{number}`{within} has no unit")
            } else {
                format!("unknown unit `{unit}`{within}")
            };
            return Err(format!(
                "{what}; units are s, min, h, d, w, mo, y (for example `36h` or `1y 2mo`)"
            ));
        };
        let slot = match *canonical {
            "y" => &mut self.years,
            "mo" => &mut self.months,
            "w" => &mut self.weeks,
            "d" => &mut self.days,
            "h" => &mut self.hours,
            "min" => &mut self.minutes,
            _ => &mut self.seconds,
        };
        *slot = slot
            .checked_add(number)
            .ok_or_else(|| format!("`{text}` is too large"))?;
        Ok(())
    }

    /// `instant - self`, with the calendar parts applied to the civil date in `tz` (clamped at
    /// month end, as jiff does: one month before 31 March is the last day of February) and
    /// the exact parts subtracted afterwards, as restic does. Saturates at the earliest instant
    /// jiff can represent, so `9999y` means "everything".
    pub fn before(&self, instant: Timestamp, tz: &TimeZone) -> Timestamp {
        let (calendar, exact) = self.spans();
        calendar
            .and_then(|span| instant.to_zoned(tz.clone()).checked_sub(span))
            .and_then(|zoned| zoned.timestamp().checked_sub(exact))
            .unwrap_or(Timestamp::MIN)
    }
}

impl CalendarDuration {
    /// The calendar part (years to days; too large for jiff: an error) and the exact part.
    fn spans(&self) -> (Result<Span, jiff::Error>, Span) {
        let calendar = Span::new()
            .try_years(i64::from(self.years))
            .and_then(|s| s.try_months(i64::from(self.months)))
            .and_then(|s| s.try_weeks(i64::from(self.weeks)))
            .and_then(|s| s.try_days(i64::from(self.days)));
        let exact = i64::from(self.hours)
            .hours()
            .minutes(i64::from(self.minutes))
            .seconds(i64::from(self.seconds));
        (calendar, exact)
    }

    /// `instant + self`, the calendar parts on the civil date in `tz`, then the exact parts;
    /// saturates at the latest instant jiff can represent.
    pub fn after(&self, instant: Timestamp, tz: &TimeZone) -> Timestamp {
        self.checked_after(instant, tz).unwrap_or(Timestamp::MAX)
    }

    /// [`CalendarDuration::after`], or `None` past the supported range (the year 9999).
    pub fn checked_after(&self, instant: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (calendar, exact) = self.spans();
        calendar
            .and_then(|span| instant.to_zoned(tz.clone()).checked_add(span))
            .and_then(|zoned| zoned.timestamp().checked_add(exact))
            .ok()
    }
}

impl fmt::Display for CalendarDuration {
    /// Canonical form, largest unit first, no spaces: `1y2mo3d3h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.years, "y"),
            (self.months, "mo"),
            (self.weeks, "w"),
            (self.days, "d"),
            (self.hours, "h"),
            (self.minutes, "min"),
            (self.seconds, "s"),
        ];
        let mut wrote = false;
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
            write!(f, "{n}{unit}")?;
            wrote = true;
        }
        if !wrote {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_unit_and_combination() {
        let d = CalendarDuration::parse("1y 2mo 3w 4d 5h 6min 7s").unwrap();
        assert_eq!(d.to_string(), "1y2mo3w4d5h6min7s");
        assert_eq!(CalendarDuration::parse("90s").unwrap().seconds, 90);
        assert_eq!(CalendarDuration::parse("6months").unwrap().months, 6);
        assert_eq!(
            CalendarDuration::parse("1y1d1mo").unwrap().to_string(),
            "1y1mo1d"
        );
    }

    #[test]
    fn bare_m_is_ambiguous_with_both_suggestions() {
        let err = CalendarDuration::parse("6m").unwrap_err();
        assert!(err.contains("ambiguous"), "{err}");
        assert!(err.contains("`6mo`") && err.contains("`6min`"), "{err}");
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in ["", "d", "5", "5 fortnights", "-3d", "1.5d"] {
            let err = CalendarDuration::parse(bad).unwrap_err();
            assert!(
                err.contains("14d") || err.contains("units are"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn month_end_is_clamped() {
        let d = CalendarDuration::parse("1mo").unwrap();
        let t = d.before(ts("2024-03-31T12:00:00Z"), &TimeZone::UTC);
        assert_eq!(t, ts("2024-02-29T12:00:00Z"));
        let t = d.before(ts("2023-03-31T12:00:00Z"), &TimeZone::UTC);
        assert_eq!(t, ts("2023-02-28T12:00:00Z"));
    }

    #[test]
    fn days_are_calendar_days_across_dst() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 2024-03-31 is 23 hours long in Berlin; one day before Monday noon is Sunday noon.
        let t = CalendarDuration::parse("1d")
            .unwrap()
            .before(ts("2024-04-01T10:00:00Z"), &berlin);
        assert_eq!(t, ts("2024-03-31T10:00:00Z"));
        let t = CalendarDuration::parse("24h")
            .unwrap()
            .before(ts("2024-04-01T10:00:00Z"), &berlin);
        assert_eq!(t, ts("2024-03-31T10:00:00Z"));
        let t = CalendarDuration::parse("1d")
            .unwrap()
            .before(ts("2024-03-31T11:00:00Z"), &berlin);
        assert_eq!(t, ts("2024-03-30T12:00:00Z"));
    }

    #[test]
    fn huge_durations_saturate() {
        let d = CalendarDuration::parse("99999y").unwrap();
        assert_eq!(
            d.before(ts("2016-01-18T12:02:03Z"), &TimeZone::UTC),
            Timestamp::MIN
        );
    }
}
