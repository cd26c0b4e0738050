//! The time window a look-back covers: `--since 24h`, or `--start`/`--end` in RFC 3339.
//! Resolved once, before any AWS call, so a bad window changes nothing and costs nothing.

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// CloudTrail event history keeps 90 days ("You can look up events that occurred in a Region
/// within the last 90 days", LookupEvents); no window may be longer.
pub const MAX_DAYS: i64 = 90;
const DAY: i64 = 86_400;

/// A closed window `[start, end]` in epoch seconds, `start < end`, at most [`MAX_DAYS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// The flags that choose a window, as given.
#[derive(Debug, Clone, Default)]
pub struct WindowFlags {
    pub since: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

impl WindowFlags {
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.start.is_none() && self.end.is_none()
    }
}

impl Window {
    /// Resolves the flags against `now` (epoch seconds). With no flag at all, `default` (a
    /// `--since` value) applies. `history` set means the window must also lie within the last
    /// 90 days, which is all CloudTrail event history holds.
    pub fn resolve(flags: &WindowFlags, now: i64, default: Option<&str>, history: bool) -> Result<Window, String> {
        if flags.since.is_some() && (flags.start.is_some() || flags.end.is_some()) {
            return Err("--since counts back from now: give either --since or --start (and --end), not both".into());
        }
        if flags.end.is_some() && flags.start.is_none() {
            return Err("--end needs --start".into());
        }
        let window = match (&flags.since, &flags.start) {
            (Some(since), _) => {
                Window { start: now - parse_since(since).map_err(|e| format!("--since {since:?}: {e}"))?, end: now }
            }
            (None, Some(start)) => {
                let start = parse_time("--start", start)?;
                let end = match &flags.end {
                    Some(end) => parse_time("--end", end)?,
                    None => now,
                };
                Window { start, end }
            }
            (None, None) => match default {
                Some(since) => {
                    Window { start: now - parse_since(since).map_err(|e| format!("--since {since:?}: {e}"))?, end: now }
                }
                None => {
                    return Err(
                        "give the window: --since DURATION (like 24h or 7d) or --start TIME [--end TIME]".into()
                    );
                }
            },
        };
        if window.end <= window.start {
            return Err(format!(
                "--end {} is not after --start {}: expected a start before the end",
                format_time(window.end),
                format_time(window.start)
            ));
        }
        let days = (window.end - window.start) as f64 / DAY as f64;
        if window.end - window.start > MAX_DAYS * DAY {
            return Err(format!("the window is {days:.1} days long: expected at most {MAX_DAYS} days"));
        }
        if history && window.start < now - MAX_DAYS * DAY {
            return Err(format!(
                "--start {} is more than {MAX_DAYS} days ago: CloudTrail event history keeps {MAX_DAYS} days (the earliest is {})",
                format_time(window.start),
                format_time(now - MAX_DAYS * DAY)
            ));
        }
        Ok(window)
    }

    /// The UTC days the window touches, as `YYYY/MM/DD`, oldest first: CloudTrail's S3 layout
    /// names a day folder by the UTC date its log files were delivered.
    pub fn days(&self) -> Vec<String> {
        let first = self.start.div_euclid(DAY);
        let last = self.end.div_euclid(DAY);
        (first..=last).map(|d| format_time(d * DAY)[..10].replace('-', "/")).collect()
    }

    pub fn contains(&self, t: i64) -> bool {
        (self.start..=self.end).contains(&t)
    }
}

/// `30m`, `24h`, `7d`: a positive whole number of minutes, hours or days, in seconds.
fn parse_since(text: &str) -> Result<i64, String> {
    let expected = "expected a positive whole number of minutes, hours or days, like 30m, 24h or 7d";
    let unit = match text.chars().last() {
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => DAY,
        _ => return Err(expected.into()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected.into());
    }
    let n: i64 = digits.parse().map_err(|_| expected.to_string())?;
    if n == 0 {
        return Err(expected.into());
    }
    let seconds = n.checked_mul(unit).filter(|s| *s <= MAX_DAYS * DAY);
    seconds.ok_or_else(|| format!("expected at most {MAX_DAYS} days ({MAX_DAYS}d)"))
}

fn parse_time(flag: &str, text: &str) -> Result<i64, String> {
    DateTime::from_str(text, Format::DateTimeWithOffset).map(|t| t.secs()).map_err(|_| {
        format!("{flag} {text:?}: expected an RFC 3339 time like 2026-11-27T03:00:00Z or 2026-11-27T05:00:00+02:00")
    })
}

/// `2026-11-27T03:12:04Z`.
pub fn format_time(secs: i64) -> String {
    DateTime::from_secs(secs).fmt(Format::DateTime).unwrap_or_else(|_| secs.to_string())
}

/// Epoch seconds of an RFC 3339 time as CloudTrail writes it (`eventTime`), if it is one.
pub fn parse_event_time(text: &str) -> Option<i64> {
    DateTime::from_str(text, Format::DateTimeWithOffset).ok().map(|t| t.secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000; // 2026-11-18T...

    fn flags(since: Option<&str>, start: Option<&str>, end: Option<&str>) -> WindowFlags {
        WindowFlags { since: since.map(Into::into), start: start.map(Into::into), end: end.map(Into::into) }
    }

    #[test]
    fn since_counts_back_from_now() {
        for (text, secs) in [("30m", 1800), ("24h", 86_400), ("7d", 7 * DAY), ("90d", 90 * DAY)] {
            let w = Window::resolve(&flags(Some(text), None, None), NOW, None, true).unwrap();
            assert_eq!((w.start, w.end), (NOW - secs, NOW), "{text}");
        }
    }

    #[test]
    fn bad_windows_say_what_was_expected() {
        let cases = [
            (flags(Some("91d"), None, None), "at most 90 days"),
            (flags(Some("2w"), None, None), "minutes, hours or days"),
            (flags(Some("0h"), None, None), "positive"),
            (flags(Some("-3h"), None, None), "positive"),
            (flags(Some("h"), None, None), "positive"),
            (flags(Some("1h"), Some("2026-11-01T00:00:00Z"), None), "not both"),
            (flags(None, None, Some("2026-11-01T00:00:00Z")), "--end needs --start"),
            (flags(None, Some("yesterday"), None), "RFC 3339"),
            (flags(None, Some("2026-11-10T00:00:00Z"), Some("2026-11-09T00:00:00Z")), "not after --start"),
            (flags(None, Some("2026-01-01T00:00:00Z"), Some("2026-06-01T00:00:00Z")), "at most 90 days"),
            (flags(None, None, None), "give the window"),
        ];
        for (f, expected) in cases {
            let e = Window::resolve(&f, NOW, None, false).unwrap_err();
            assert!(e.contains(expected), "{f:?}: {e}");
        }
    }

    #[test]
    fn history_limits_how_far_back_a_start_may_be() {
        let f = flags(None, Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"));
        assert!(Window::resolve(&f, NOW, None, true).unwrap_err().contains("event history keeps 90 days"));
        assert!(Window::resolve(&f, NOW, None, false).is_ok());
    }

    #[test]
    fn offsets_and_defaults() {
        let f = flags(None, Some("2026-11-17T05:00:00+02:00"), Some("2026-11-17T04:00:00Z"));
        let w = Window::resolve(&f, NOW, None, true).unwrap();
        assert_eq!(w.end - w.start, 3600);
        let w = Window::resolve(&flags(None, None, None), NOW, Some("24h"), true).unwrap();
        assert_eq!(w.end - w.start, DAY);
    }

    #[test]
    fn days_cover_the_window_in_utc() {
        let f = flags(None, Some("2026-02-27T23:00:00Z"), Some("2026-03-01T00:30:00Z"));
        let w = Window::resolve(&f, NOW, None, false).unwrap();
        assert_eq!(w.days(), ["2026/02/27", "2026/02/28", "2026/03/01"]);
        assert_eq!(format_time(w.start), "2026-02-27T23:00:00Z");
        assert_eq!(parse_event_time("2026-02-27T23:00:00Z"), Some(w.start));
    }
}
