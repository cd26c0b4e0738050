//! Merges many newest-first streams (one per region and event name) into one newest-first
//! stream, releasing each event as soon as its place is certain, so output starts while
//! lookups are still running.
//!
//! An event is certain once every stream that could still deliver one as new has shown it
//! cannot: it is finished, or its last page ended strictly before the event's time (LookupEvents
//! pages are newest first, so nothing later is newer). A stream not yet read could hold
//! anything. Equal times wait too, so ties come out in one order whatever the timing.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

#[derive(Debug, Default, Clone)]
struct Stream {
    started: bool,
    done: bool,
    /// The oldest event time seen so far: later pages hold nothing newer.
    bound: Option<i64>,
}

struct Entry<T> {
    time: i64,
    /// Ties in time are broken by this, ascending, so the order is deterministic.
    tie: Reverse<String>,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, &self.tie).cmp(&(other.time, &other.tie))
    }
}

/// A newest-first merge of `n` streams. Items are `(time, tie-break, value)`.
pub struct Merger<T> {
    streams: Vec<Stream>,
    heap: BinaryHeap<Entry<T>>,
}

impl<T> Merger<T> {
    pub fn new(n: usize) -> Self {
        Merger { streams: vec![Stream::default(); n], heap: BinaryHeap::new() }
    }

    /// One page of stream `s`, newest first. `items` may be fewer than the page held (filtered
    /// out locally); `oldest` is the time of the page's oldest event before filtering, `None`
    /// for an empty page; `more` says whether pages follow.
    pub fn page(&mut self, s: usize, items: Vec<(i64, String, T)>, oldest: Option<i64>, more: bool) {
        let stream = &mut self.streams[s];
        stream.started = true;
        stream.done = !more;
        if let Some(t) = oldest {
            stream.bound = Some(stream.bound.map_or(t, |b| b.min(t)));
        }
        for (time, tie, item) in items {
            self.heap.push(Entry { time, tie: Reverse(tie), item });
        }
    }

    /// Stream `s` delivers nothing more (it failed, or was cut short).
    pub fn close(&mut self, s: usize) {
        let stream = &mut self.streams[s];
        stream.started = true;
        stream.done = true;
    }

    /// The next event whose place in the merged order is certain.
    pub fn pop(&mut self) -> Option<T> {
        let top = self.heap.peek()?;
        let blocked =
            self.streams.iter().any(|s| !s.done && (!s.started || s.bound.is_none_or(|bound| bound >= top.time)));
        if blocked {
            return None;
        }
        self.heap.pop().map(|entry| entry.item)
    }

    pub fn is_finished(&self) -> bool {
        self.heap.is_empty() && self.streams.iter().all(|s| s.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(times: &[i64]) -> Vec<(i64, String, i64)> {
        times.iter().map(|&t| (t, format!("{t:04}"), t)).collect()
    }

    fn drain(m: &mut Merger<i64>) -> Vec<i64> {
        std::iter::from_fn(|| m.pop()).collect()
    }

    #[test]
    fn waits_for_every_stream_then_releases_in_order() {
        let mut m = Merger::new(3);
        m.page(0, items(&[90, 50]), Some(50), true);
        m.page(1, items(&[80]), Some(80), false);
        assert_eq!(drain(&mut m), Vec::<i64>::new(), "stream 2 is unread: anything could come");
        m.page(2, items(&[70, 10]), Some(10), false);
        // 90, 80, 70 are certain; 50 is stream 0's last and its next page could hold 50 too.
        assert_eq!(drain(&mut m), vec![90, 80, 70]);
        m.page(0, items(&[50, 40]), Some(40), false);
        assert_eq!(drain(&mut m), vec![50, 50, 40, 10]);
        assert!(m.is_finished());
    }

    #[test]
    fn filtered_pages_still_move_the_bound() {
        let mut m = Merger::new(2);
        m.page(0, items(&[100]), Some(100), false);
        // Stream 1's page had events down to 60, none kept: nothing newer than 60 will come.
        m.page(1, Vec::new(), Some(60), true);
        assert_eq!(drain(&mut m), vec![100]);
        m.close(1);
        assert!(m.is_finished());
    }

    #[test]
    fn ties_are_ordered_by_the_tie_break() {
        let mut m = Merger::new(2);
        m.page(0, vec![(5, "b".into(), 2)], Some(5), false);
        m.page(1, vec![(5, "a".into(), 1)], Some(5), false);
        assert_eq!(drain(&mut m), vec![1, 2]);
    }
}
