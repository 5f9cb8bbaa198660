//! Timestamps written in file names: RFC 3339, ISO dates, common compact forms, or an explicit
//! strftime format. A time without an offset is read in a given zone (UTC unless the policy's
//! `select.timestamp_zone` says otherwise). Pure: no I/O.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

/// Formats tried, in order, when a pattern has no `timestamp_format`.
const COMMON_FORMATS: &[&str] = &[
    "%Y%m%dT%H%M%S",
    "%Y%m%d-%H%M%S",
    "%Y%m%d_%H%M%S",
    "%Y%m%d%H%M%S",
    "%Y%m%dT%H%M",
    "%Y-%m-%d_%H-%M-%S",
    "%Y-%m-%d_%H%M%S",
    "%Y%m%d",
];

/// Reads a timestamp: with an explicit strftime `format`, or RFC 3339, ISO dates and common
/// compact forms. Times without an offset are in `zone` (a time that a daylight-saving change
/// repeats is the earlier one; one it skips is moved forward by the gap).
pub fn parse(text: &str, format: Option<&str>, zone: &TimeZone) -> Result<Timestamp, String> {
    if let Some(format) = format {
        return parse_with(text, format, zone).ok_or_else(|| {
            format!("timestamp `{text}` does not match timestamp_format `{format}`")
        });
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        return in_zone(dt, zone);
    }
    if let Ok(date) = text.parse::<Date>() {
        return in_zone(date.to_datetime(Time::midnight()), zone);
    }
    COMMON_FORMATS
        .iter()
        .find_map(|f| parse_with(text, f, zone))
        .ok_or_else(|| format!("cannot read timestamp `{text}`; set `select.timestamp_format` (strftime, e.g. `%Y%m%dT%H%M%S`)"))
}

/// Why a strftime format cannot read timestamps, if it cannot: an unknown directive, or no
/// year, month and day.
pub fn check_format(format: &str) -> Result<(), String> {
    let sample = jiff::civil::date(2024, 3, 5)
        .at(6, 7, 8, 0)
        .to_zoned(TimeZone::UTC)
        .map_err(|e| e.to_string())?;
    let text = jiff::fmt::strtime::format(format, &sample).map_err(|e| {
        format!("`{format}` is not a strftime format: {e}; write for example `%Y%m%dT%H%M%S`")
    })?;
    match parse_with(&text, format, &TimeZone::UTC) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`{format}` does not give a date: it needs at least a year, a month and a day (`%Y`, `%m`, `%d`), for example `%Y%m%dT%H%M%S`"
        )),
    }
}

fn parse_with(text: &str, format: &str, zone: &TimeZone) -> Option<Timestamp> {
    let parsed = jiff::fmt::strtime::parse(format, text).ok()?;
    if let Ok(t) = parsed.to_timestamp() {
        return Some(t);
    }
    if let Ok(dt) = parsed.to_datetime() {
        return in_zone(dt, zone).ok();
    }
    parsed
        .to_date()
        .ok()
        .and_then(|d| in_zone(d.to_datetime(Time::midnight()), zone).ok())
}

fn in_zone(dt: DateTime, zone: &TimeZone) -> Result<Timestamp, String> {
    dt.to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

/// The common form of RFC 3339, `2026-11-22T23:00:00Z` (what every provider and `list`
/// write), read without the general parser: `None` for any other form, which the caller then
/// gives to jiff. Agrees with jiff wherever it answers (a test compares them).
pub fn utc_seconds(text: &[u8]) -> Option<Timestamp> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
        b'Z',
    ] = text
    else {
        return None;
    };
    let mut value = 0i64;
    let mut number = |digits: &[u8]| {
        value = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(d - b'0');
        }
        Some(value)
    };
    let year = number(&[y0, y1, y2, y3])?;
    let month = number(&[m0, m1])?;
    let day = number(&[d0, d1])?;
    let hour = number(&[h0, h1])?;
    let minute = number(&[i0, i1])?;
    // A leap second (`:60`) is jiff's to read.
    let second = number(&[s0, s1])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of the proleptic Gregorian calendar (H. Hinnant's
    // `days_from_civil`), years counted from March so that leap days come last.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    // Outside jiff's range (the last hours of 9999): jiff says why.
    Timestamp::from_second(days * 86_400 + hour * 3_600 + minute * 60 + second).ok()
}

/// [`utc_seconds`]' inverse: an instant of whole seconds in the years 0 to 9999 as jiff
/// writes it, `2026-11-22T23:00:00Z`; `None` for any other (jiff writes those).
pub fn utc_text(at: Timestamp) -> Option<[u8; 20]> {
    if at.subsec_nanosecond() != 0 {
        return None;
    }
    let seconds = at.as_second();
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // H. Hinnant's `civil_from_days`, years counted from March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut text = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, second_of_day / 3_600);
    put(14, 2, second_of_day / 60 % 60);
    put(17, 2, second_of_day % 60);
    Some(text)
}

/// Serde for a backup's `created_at`: RFC 3339 with any offset, as jiff reads it (and with
/// jiff's errors), the common UTC form read by [`utc_seconds`] first.
pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::de;

    pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                match super::utc_seconds(text.as_bytes()) {
                    Some(t) => Ok(t),
                    None => text.parse().map_err(E::custom),
                }
            }
        }

        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast reading of `YYYY-MM-DDTHH:MM:SSZ` answers exactly when jiff accepts the
        /// text (leap seconds aside, which it leaves to jiff), and with jiff's instant.
        #[test]
        fn utc_seconds_agrees_with_jiff(
            year in 0u32..=9999,
            month in 0u32..=19,
            day in 0u32..=39,
            hour in 0u32..=29,
            minute in 0u32..=69,
            second in 0u32..=69,
        ) {
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z");
            let jiff = text.parse::<Timestamp>().ok();
            match utc_seconds(text.as_bytes()) {
                Some(fast) => prop_assert_eq!(Some(fast), jiff, "{}", text),
                None => prop_assert!(jiff.is_none() || second == 60, "{}", text),
            }
        }
    }

    proptest! {
        /// [`utc_text`] writes what jiff writes, wherever it answers, and answers for every
        /// whole second of the years 0 to 9999 that jiff can hold.
        #[test]
        fn utc_text_agrees_with_jiff(
            second in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            nanos in prop_oneof![Just(0i32), 1i32..1_000_000_000],
        ) {
            let at = Timestamp::new(second, nanos).unwrap();
            let jiff = at.to_string();
            match utc_text(at) {
                Some(text) => prop_assert_eq!(std::str::from_utf8(&text).unwrap(), jiff),
                None => prop_assert!(nanos != 0 || jiff.starts_with('-') || jiff.len() != 20, "{}", jiff),
            }
        }
    }

    #[test]
    fn utc_seconds_reads_only_the_common_form() {
        for (text, want) in [
            ("2024-02-29T23:59:59Z", Some("2024-02-29T23:59:59Z")),
            ("0000-03-01T00:00:00Z", Some("0000-03-01T00:00:00Z")),
            ("1969-12-31T23:59:59Z", Some("1969-12-31T23:59:59Z")),
            ("2023-02-29T00:00:00Z", None),
            ("1900-02-29T00:00:00Z", None),
            ("9999-12-31T23:59:59Z", None),
            ("2024-03-01T10:00:00+01:00", None),
            ("2024-03-01T10:00:00.5Z", None),
            ("2024-03-01t10:00:00z", None),
            ("2024-03-01 10:00:00Z", None),
            ("2024-03-01T10:00:60Z", None),
            ("2024-03-0xT10:00:00Z", None),
        ] {
            let fast = utc_seconds(text.as_bytes()).map(|t| t.to_string());
            assert_eq!(fast.as_deref(), want, "{text}");
            if let Some(at) = utc_seconds(text.as_bytes()) {
                assert_eq!(
                    utc_text(at).as_ref(),
                    Some(text.as_bytes().try_into().unwrap())
                );
            }
        }
    }

    fn parse_timestamp(text: &str, format: Option<&str>) -> Result<Timestamp, String> {
        parse(text, format, &TimeZone::UTC)
    }

    #[test]
    fn timestamps_without_a_format() {
        for (text, want) in [
            ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z"),
            ("2024-03-01T10:00:00", "2024-03-01T10:00:00Z"),
            ("2024-03-01", "2024-03-01T00:00:00Z"),
            ("20240301T100000", "2024-03-01T10:00:00Z"),
            ("20240301-100000", "2024-03-01T10:00:00Z"),
            ("20240301", "2024-03-01T00:00:00Z"),
        ] {
            assert_eq!(
                parse_timestamp(text, None).unwrap().to_string(),
                want,
                "{text}"
            );
        }
        assert!(
            parse_timestamp("last tuesday", None)
                .unwrap_err()
                .contains("timestamp_format")
        );
        let with_zone =
            parse_timestamp("2024-03-01 10:00 +0800", Some("%Y-%m-%d %H:%M %z")).unwrap();
        assert_eq!(with_zone.to_string(), "2024-03-01T02:00:00Z");
    }

    #[test]
    fn a_zone_reads_times_without_an_offset_and_leaves_offsets_alone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let read =
            |text: &str, format: Option<&str>| parse(text, format, &berlin).unwrap().to_string();
        assert_eq!(read("20240301T100000", None), "2024-03-01T09:00:00Z");
        assert_eq!(read("20240701T100000", None), "2024-07-01T08:00:00Z");
        assert_eq!(read("2024-03-01", None), "2024-02-29T23:00:00Z");
        assert_eq!(read("2024-03-01T10:00:00Z", None), "2024-03-01T10:00:00Z");
        assert_eq!(
            read("db_2024-07-01_1000", Some("db_%Y-%m-%d_%H%M")),
            "2024-07-01T08:00:00Z"
        );
        // 02:30 on 27 October 2024 happened twice in Berlin: the earlier one.
        assert_eq!(read("20241027T023000", None), "2024-10-27T00:30:00Z");
    }

    #[test]
    fn formats_are_checked_before_they_meet_a_file() {
        assert_eq!(check_format("%Y%m%dT%H%M%SZ"), Ok(()));
        assert_eq!(check_format("%Y-%m-%d"), Ok(()));
        assert!(
            check_format("%Y%m%K")
                .unwrap_err()
                .contains("is not a strftime format")
        );
        assert!(
            check_format("%H%M%S")
                .unwrap_err()
                .contains("needs at least a year")
        );
    }
}
