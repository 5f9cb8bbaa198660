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

#[cfg(test)]
mod tests {
    use super::*;

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
