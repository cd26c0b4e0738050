//! The time window a validation covers, and the timestamp forms CloudTrail writes: RFC 3339 in
//! digest fields (`2015-08-17T15:01:31Z`) and the compact form in object names
//! (`20150817T150131Z`).

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, Time};

/// A closed interval of UTC instants, `start < end`, neither later than the moment it was
/// resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// How far back the window reaches when --start is not given.
pub const DEFAULT_SPAN: Duration = Duration::hours(24);

impl Window {
    /// Resolves `--start` and `--end` against `now`. `end` defaults to now and `start` to 24
    /// hours before `end`; an end later than now is cut to now.
    pub fn resolve(start: Option<&str>, end: Option<&str>, now: OffsetDateTime) -> Result<Window, String> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let end = match end {
            Some(text) => parse_time(text, now).map_err(|e| format!("--end {text:?}: {e}"))?.min(now),
            None => now,
        };
        let start = match start {
            Some(text) => parse_time(text, now).map_err(|e| format!("--start {text:?}: {e}"))?,
            None => end - DEFAULT_SPAN,
        };
        if start >= end {
            return Err(format!(
                "the window ends before it starts: --start is {} and --end is {}; expected the start before the end",
                rfc3339(start),
                rfc3339(end)
            ));
        }
        Ok(Window { start, end })
    }

    /// The last `hours` hours before `now`.
    pub fn last_hours(hours: u32, now: OffsetDateTime) -> Window {
        let end = now.replace_nanosecond(0).unwrap_or(now);
        Window { start: end - Duration::hours(i64::from(hours)), end }
    }

    /// Each UTC day the window touches, first to last.
    pub fn days(&self, extra: Duration) -> Vec<Date> {
        let (first, last) = (self.start.date(), (self.end + extra).date());
        std::iter::successors(Some(first), |d| d.next_day().filter(|n| *n <= last)).collect()
    }
}

/// A time as given on the command line: an RFC 3339 timestamp (`2026-11-27T10:00:00Z`), a
/// date (`2026-11-27`, midnight UTC), `now`, or a span before now (`90m`, `6h`, `7d`).
pub fn parse_time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    const EXPECTED: &str = "expected an RFC 3339 timestamp (2026-11-27T10:00:00Z), a date (2026-11-27), now, or a span before now (90m, 6h, 7d)";
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.to_offset(time::UtcOffset::UTC));
    }
    if let Some(date) = parse_date(text) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_utc());
    }
    let split = text.len().saturating_sub(1);
    let (count, unit) = text.split_at(split);
    let unit = match unit {
        "m" => Duration::MINUTE,
        "h" => Duration::HOUR,
        "d" => Duration::DAY,
        _ => return Err(EXPECTED.into()),
    };
    match count.parse::<u32>() {
        Ok(n) if n > 0 => Ok(now - unit * n),
        _ => Err(EXPECTED.into()),
    }
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// `2015-08-17T15:01:31Z`: how the report and the JSON document print instants.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `YYYY/MM/DD`, as in a digest's S3 path.
pub fn day_path(day: Date) -> String {
    format!("{:04}/{:02}/{:02}", day.year(), u8::from(day.month()), day.day())
}

/// Parses the compact timestamp in object names, `20150817T150131Z`.
pub fn parse_compact(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        let now = at("2026-11-27T10:30:00Z");
        assert_eq!(parse_time("2026-11-27T09:00:00Z", now), Ok(at("2026-11-27T09:00:00Z")));
        assert_eq!(parse_time("2026-11-27T11:00:00+02:00", now), Ok(at("2026-11-27T09:00:00Z")));
        assert_eq!(parse_time("2026-11-26", now), Ok(at("2026-11-26T00:00:00Z")));
        assert_eq!(parse_time("6h", now), Ok(at("2026-11-27T04:30:00Z")));
        assert_eq!(parse_time("90m", now), Ok(at("2026-11-27T09:00:00Z")));
        assert_eq!(parse_time("2d", now), Ok(at("2026-11-25T10:30:00Z")));
        assert_eq!(parse_time("now", now), Ok(now));
        for bad in ["yesterday", "0h", "-3h", "2026-13-01", "2026/11/27", "h", ""] {
            assert!(parse_time(bad, now).unwrap_err().contains("RFC 3339"), "{bad}");
        }
    }

    #[test]
    fn the_window_defaults_to_the_last_day_and_refuses_an_end_before_its_start() {
        let now = at("2026-11-27T10:30:00Z");
        let w = Window::resolve(None, None, now).unwrap();
        assert_eq!((w.start, w.end), (at("2026-11-26T10:30:00Z"), now));
        let w = Window::resolve(Some("2h"), Some("2030-01-01"), now).unwrap();
        assert_eq!(w.end, now, "an end in the future is cut to now");
        let err = Window::resolve(Some("2026-11-27T10:00:00Z"), Some("2026-11-27T09:00:00Z"), now).unwrap_err();
        assert!(err.contains("ends before it starts"), "{err}");
        let err = Window::resolve(Some("2026-11-28"), None, now).unwrap_err();
        assert!(err.contains("ends before it starts"), "a start in the future: {err}");
        assert!(Window::resolve(Some("soon"), None, now).unwrap_err().starts_with("--start \"soon\""));
    }

    #[test]
    fn days_cover_the_window_and_the_hour_after_it() {
        let w = Window { start: at("2026-11-26T22:00:00Z"), end: at("2026-11-27T23:30:00Z") };
        let days: Vec<String> = w.days(Duration::HOUR).into_iter().map(day_path).collect();
        assert_eq!(days, ["2026/11/26", "2026/11/27", "2026/11/28"]);
        assert_eq!(w.days(Duration::ZERO).len(), 2);
    }

    #[test]
    fn compact_timestamps_round_trip() {
        let t = parse_compact("20150817T150131Z").unwrap();
        assert_eq!(rfc3339(t), "2015-08-17T15:01:31Z");
        for bad in ["20150817T150131", "2015081XT150131Z", "20151317T150131Z", "20150817150131Z0"] {
            assert_eq!(parse_compact(bad), None, "{bad}");
        }
    }
}
