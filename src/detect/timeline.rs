//! When each detection fired during a replay, counted per UTC hour of the records' eventTime:
//! the data `ctguard test --html` draws as fires per detection over time.

use std::collections::BTreeMap;

use super::replay::Hit;

/// The label records whose eventTime is not an ISO 8601 time are counted under.
pub const UNDATED: &str = "undated";

/// Fires per detection (catalog index) per hour (`yyyy-MM-ddTHH`).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    hours: BTreeMap<String, BTreeMap<usize, u64>>,
}

/// One column of the drawn timeline: its label and the fires per detection in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub label: String,
    pub fires: BTreeMap<usize, u64>,
}

impl Timeline {
    pub fn add(&mut self, hit: &Hit) {
        let hour = hour_of(&hit.event_time);
        let counts = self.hours.entry(hour).or_default();
        for &i in &hit.fired {
            *counts.entry(i).or_default() += 1;
        }
    }

    /// The columns to draw, coarse enough to stay readable: hours when the records span at
    /// most two days, days up to two months, months beyond. Every step between the first and
    /// the last is a column, fired in or not, so the axis keeps time.
    pub fn columns(&self) -> Vec<Column> {
        let days: Vec<time::Date> = self.hours.keys().filter_map(|h| day(h)).collect();
        let span = days.first().zip(days.last()).map_or(0, |(a, b)| (*b - *a).whole_days());
        let width = match span {
            0..=1 => 13,
            2..=61 => 10,
            _ => 7,
        };
        let mut columns: BTreeMap<String, BTreeMap<usize, u64>> = BTreeMap::new();
        let dated = self.hours.keys().filter(|h| day(h).is_some());
        if let (Some(first), Some(last)) = (dated.clone().next(), dated.last()) {
            for step in steps(&first[..width], &last[..width]) {
                columns.insert(step, BTreeMap::new());
            }
        }
        for (hour, fires) in &self.hours {
            let key = if day(hour).is_some() { hour[..width].to_string() } else { UNDATED.to_string() };
            let column = columns.entry(key).or_default();
            for (i, n) in fires {
                *column.entry(*i).or_default() += n;
            }
        }
        // UNDATED sorts after every digit, so it stays the last column.
        columns.into_iter().map(|(key, fires)| Column { label: label(&key), fires }).collect()
    }
}

/// Every hour (`yyyy-MM-ddTHH`), day or month (`yyyy-MM`) from `first` to `last`, both
/// included, in the width they are given in.
fn steps(first: &str, last: &str) -> Vec<String> {
    let mut out = vec![first.to_string()];
    while out.last().is_some_and(|s| s.as_str() < last) {
        let Some(next) = out.last().and_then(|s| next(s)) else { break };
        out.push(next);
    }
    out
}

fn next(step: &str) -> Option<String> {
    let ymd = |d: time::Date| format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    match step.len() {
        13 => {
            let (d, hour) = (day(step)?, step.get(11..13)?.parse::<u8>().ok()?);
            Some(if hour == 23 { format!("{}T00", ymd(d.next_day()?)) } else { format!("{}T{:02}", ymd(d), hour + 1) })
        }
        10 => day(step)?.next_day().map(ymd),
        _ => {
            let (y, m) = (step.get(0..4)?.parse::<i32>().ok()?, step.get(5..7)?.parse::<u8>().ok()?);
            Some(if m == 12 { format!("{}-01", y + 1) } else { format!("{y}-{:02}", m + 1) })
        }
    }
}

/// The day of `yyyy-MM-dd…`.
fn day(hour: &str) -> Option<time::Date> {
    let part = |r: std::ops::Range<usize>| hour.get(r)?.parse::<i32>().ok();
    let month = time::Month::try_from(u8::try_from(part(5..7)?).ok()?).ok()?;
    time::Date::from_calendar_date(part(0..4)?, month, u8::try_from(part(8..10)?).ok()?).ok()
}

/// `2026-11-27T03` reads `2026-11-27 03:00`; days and months as they are.
fn label(prefix: &str) -> String {
    match prefix.split_once('T') {
        Some((day, hour)) => format!("{day} {hour}:00"),
        None => prefix.to_string(),
    }
}

/// `yyyy-MM-ddTHH` of an ISO 8601 time, or [`UNDATED`].
fn hour_of(time: &str) -> String {
    let b = time.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shaped = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && time[11..13] < *"24";
    if shaped { time[..13].to_string() } else { UNDATED.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(time: &str, fired: &[usize]) -> Hit {
        Hit {
            origin: "f".into(),
            index: 1,
            event_time: time.into(),
            region: "us-east-1".into(),
            event_source: "s3.amazonaws.com".into(),
            event_name: "DeleteBucket".into(),
            principal: "p".into(),
            error_code: None,
            event_id: "e".into(),
            account: "123456789012".into(),
            fired: fired.to_vec(),
            signals: Vec::new(),
        }
    }

    fn drawn(times: &[(&str, &[usize])]) -> Vec<(String, Vec<(usize, u64)>)> {
        let mut t = Timeline::default();
        for (time, fired) in times {
            t.add(&hit(time, fired));
        }
        t.columns().into_iter().map(|c| (c.label, c.fires.into_iter().collect())).collect()
    }

    #[test]
    fn a_short_replay_is_drawn_by_the_hour() {
        let columns =
            drawn(&[("2026-11-27T03:12:00Z", &[0, 2]), ("2026-11-27T03:59:59Z", &[0]), ("2026-11-28T10:00:00Z", &[2])]);
        assert_eq!(columns.len(), 24 + 8, "every hour from 03:00 to the next day's 10:00");
        assert_eq!(columns[0], ("2026-11-27 03:00".to_string(), vec![(0, 2), (2, 1)]));
        assert_eq!(columns[1], ("2026-11-27 04:00".to_string(), vec![]));
        assert_eq!(columns[20], ("2026-11-27 23:00".to_string(), vec![]));
        assert_eq!(columns[21], ("2026-11-28 00:00".to_string(), vec![]));
        assert_eq!(columns[31], ("2026-11-28 10:00".to_string(), vec![(2, 1)]));
    }

    #[test]
    fn weeks_are_drawn_by_the_day_and_a_year_by_the_month() {
        let week =
            drawn(&[("2026-11-01T03:00:00Z", &[1]), ("2026-11-01T23:00:00Z", &[1]), ("2026-11-07T00:00:00Z", &[1])]);
        let labels: Vec<&str> = week.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            labels,
            ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-07"]
        );
        assert_eq!((&week[0].1, &week[6].1), (&vec![(1, 2)], &vec![(1, 1)]));
        let year =
            drawn(&[("2026-01-05T00:00:00Z", &[0]), ("2026-06-01T00:00:00Z", &[0]), ("2026-06-30T00:00:00Z", &[0])]);
        let labels: Vec<&str> = year.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(labels, ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]);
        assert_eq!(year[5].1, [(0, 2)]);
        let turn = drawn(&[("2025-11-05T00:00:00Z", &[0]), ("2026-02-01T00:00:00Z", &[0])]);
        let labels: Vec<&str> = turn.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(labels, ["2025-11", "2025-12", "2026-01", "2026-02"]);
    }

    #[test]
    fn a_record_without_a_usable_time_is_counted_apart() {
        let columns = drawn(&[
            ("", &[0]),
            ("yesterday", &[0]),
            ("2026-11-27T24:00:00Z", &[0]),
            ("2026-02-30T01:00:00Z", &[0]),
            ("2026-11-27T03:00:00Z", &[0]),
        ]);
        assert_eq!(columns, [("2026-11-27 03:00".to_string(), vec![(0, 1)]), (UNDATED.to_string(), vec![(0, 4)])]);
    }
}
