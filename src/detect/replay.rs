//! Replays CloudTrail records through a profile's detections, on every core, in bounded memory.
//!
//! Work is cut into units a worker can parse alone: one file (a CloudTrail log file as
//! delivered to S3, gzipped or not, a JSON array of records, a single record, or JSON lines), or
//! a slice of stdin ending on a top-level value boundary. Workers parse and match; results come
//! back in input order. Memory is bounded by the work queue's length times the largest unit:
//! CloudTrail writes a log file every few minutes per region, so a day of logs is many small
//! files, and stdin is cut into slices of about [`SLICE_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::detect::agents::Matched;
use crate::detect::catalog::Catalog;

/// Size of one stdin slice handed to a worker.
const SLICE_BYTES: usize = 1 << 20;
/// Units queued ahead of the workers, per worker.
const QUEUE_PER_WORKER: usize = 4;

/// Where records come from: files and directories, or `-` for stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

/// CloudTrail data another module opens, gzipped or not: an S3 object as it downloads. Read
/// whole by one worker, like a file.
pub struct Source {
    /// What output names it by, like a file's path (`s3://bucket/key`).
    pub origin: String,
    pub reader: Box<dyn Read + Send>,
}

/// Builds the catalog for one account: deployed patterns name the account (agent principals),
/// so each record is matched as the profile would be deployed in the account that logged it.
pub type CatalogFor<'a> = dyn Fn(&Account) -> anyhow::Result<Catalog> + Sync + 'a;

/// The account and partition a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub id: String,
    pub partition: String,
}

/// A record that fired at least one detection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    /// File name (or `-`) and the record's position in it, counting from 1.
    pub origin: String,
    pub index: u64,
    pub event_time: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub principal: String,
    pub error_code: Option<String>,
    pub event_id: String,
    pub account: String,
    /// Indexes into the catalog's detections.
    pub fired: Vec<usize>,
    /// For a record that fired an agent-only detection, the agent signals it matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Matched>,
}

/// Totals over everything replayed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    pub files: u64,
    pub records: u64,
    pub matched: u64,
    /// Fires per detection, by catalog index.
    pub fires: Vec<u64>,
    /// Files that hold no CloudTrail records (digest files), and records passed over, with why.
    pub skipped: Vec<String>,
    /// Records passed over: the catalog for their account could not be built (see [`SkipRecord`]).
    pub records_skipped: u64,
}

/// A catalog builder's answer for a record it cannot match, such as one whose account id is a
/// documentation placeholder: the record is reported and passed over, and the replay goes on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SkipRecord(pub String);

/// How many skipped records one unit of work names; the rest are only counted.
const SKIPS_NAMED: usize = 5;

/// One unit of work and what came of it.
enum Unit {
    File(PathBuf),
    Reader(Box<dyn Read + Send>),
    Slice { data: Vec<u8>, first_line: u64, first_record: u64 },
}

struct Done {
    seq: u64,
    result: anyhow::Result<Outcome>,
}

#[derive(Default)]
struct Outcome {
    records: u64,
    hits: Vec<Hit>,
    fires: Vec<u64>,
    skipped: Option<String>,
    skipped_records: Vec<String>,
    records_skipped: u64,
    is_file: bool,
}

/// The files `inputs` name, directories walked in name order. Inside a directory only
/// `.json`, `.jsonl` and their `.gz` forms are read, and CloudTrail digest files are passed
/// over: they sit beside the logs in the S3 layout and hold hashes, not records.
pub fn expand(inputs: &[Input]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for input in inputs {
        let Input::Path(path) = input else {
            out.push(Input::Stdin);
            continue;
        };
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_dir() {
            out.push(input.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = entry.with_context(|| format!("walking {}", path.display()))?;
            if entry.file_type().is_file() && is_log_file(entry.path()) {
                out.push(Input::Path(entry.into_path()));
            }
        }
    }
    Ok(out)
}

fn is_log_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let digest = path.components().any(|c| c.as_os_str() == "CloudTrail-Digest") || name.contains("CloudTrail-Digest");
    !digest && (name.ends_with(".json") || name.ends_with(".jsonl"))
}

/// Replays `inputs` on `jobs` workers. `on_hit` sees every record that fired, in input order;
/// the tally comes back at the end. Stops at the first unreadable input.
pub fn run(
    inputs: &[Input],
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    replay(move |work| feed(inputs, work), jobs, catalog_for, detections, on_hit)
}

/// Like [`run`], over sources opened elsewhere, in the order the iterator yields them; an
/// `Err` from it stops the replay like an unreadable file.
pub fn run_sources(
    sources: impl Iterator<Item = anyhow::Result<Source>> + Send,
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    let feed = move |work: &Work| -> anyhow::Result<()> {
        for (seq, source) in (0..).zip(sources) {
            let Source { origin, reader } = source?;
            if work.send((seq, origin.into(), Unit::Reader(reader))).is_err() {
                break;
            }
        }
        Ok(())
    };
    replay(feed, jobs, catalog_for, detections, on_hit)
}

type Work = crossbeam_channel::Sender<(u64, Arc<str>, Unit)>;

fn replay(
    feed: impl FnOnce(&Work) -> anyhow::Result<()> + Send,
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    mut on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    let jobs = jobs.max(1);
    let (work_tx, work_rx) = crossbeam_channel::bounded::<(u64, Arc<str>, Unit)>(jobs * QUEUE_PER_WORKER);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Done>(jobs * QUEUE_PER_WORKER);
    let mut tally = Tally { fires: vec![0; detections], ..Tally::default() };

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let feeder = scope.spawn(move || feed(&work_tx));
        for _ in 0..jobs {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let mut catalogs = HashMap::new();
                for (seq, origin, unit) in work_rx {
                    let result = process(&origin, unit, catalog_for, &mut catalogs, detections);
                    if done_tx.send(Done { seq, result }).is_err() {
                        break;
                    }
                }
            });
        }
        drop((work_rx, done_tx));

        // Results arrive out of order; hold them until their turn.
        let mut next = 0;
        let mut waiting = BTreeMap::new();
        let mut failure = None;
        for done in &done_rx {
            waiting.insert(done.seq, done.result);
            while let Some(result) = waiting.remove(&next) {
                next += 1;
                match result {
                    Ok(outcome) if failure.is_none() => {
                        if let Err(e) = tally.add(outcome, &mut on_hit) {
                            failure = Some(anyhow::Error::from(e));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if failure.is_some() {
                // Dropping the receiver makes the workers and the feeder stop.
                break;
            }
        }
        drop(done_rx);
        let fed = feeder.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the input reader panicked")));
        match failure {
            Some(e) => Err(e),
            None => fed,
        }
    })?;
    Ok(tally)
}

impl Tally {
    fn add(&mut self, outcome: Outcome, on_hit: &mut impl FnMut(&Hit) -> io::Result<()>) -> io::Result<()> {
        self.files += u64::from(outcome.is_file);
        self.records += outcome.records;
        self.matched += outcome.hits.len() as u64;
        for (total, n) in self.fires.iter_mut().zip(&outcome.fires) {
            *total += n;
        }
        self.skipped.extend(outcome.skipped);
        self.skipped.extend(outcome.skipped_records);
        self.records_skipped += outcome.records_skipped;
        outcome.hits.iter().try_for_each(on_hit)
    }
}

/// Queues the work: each file whole, stdin in slices. Stops quietly when the workers are gone.
fn feed(inputs: &[Input], work: &Work) -> anyhow::Result<()> {
    let mut seq = 0;
    for input in inputs {
        match input {
            Input::Path(path) => {
                let origin: Arc<str> = path.display().to_string().into();
                if work.send((seq, origin, Unit::File(path.clone()))).is_err() {
                    return Ok(());
                }
                seq += 1;
            }
            Input::Stdin => {
                let origin: Arc<str> = "-".into();
                let mut slices = Slices::new(io::stdin().lock());
                while let Some(unit) = slices.next_slice().context("reading stdin")? {
                    if work.send((seq, origin.clone(), unit)).is_err() {
                        return Ok(());
                    }
                    seq += 1;
                }
            }
        }
    }
    Ok(())
}

fn process(
    origin: &str,
    unit: Unit,
    catalog_for: &CatalogFor<'_>,
    catalogs: &mut HashMap<Account, Arc<Catalog>>,
    detections: usize,
) -> anyhow::Result<Outcome> {
    let (data, first_line, first_record, is_file) = match unit {
        Unit::File(path) => (read_file(&path)?, 1, 1, true),
        Unit::Reader(reader) => {
            (read_all(BufReader::new(reader)).with_context(|| format!("reading {origin}"))?, 1, 1, true)
        }
        Unit::Slice { data, first_line, first_record } => (data, first_line, first_record, false),
    };
    let mut out = Outcome { fires: vec![0; detections], is_file, ..Outcome::default() };
    let mut index = first_record;
    let mut saw_records = false;
    let not_json = |e: serde_json::Error| {
        anyhow::anyhow!("{origin}: line {}, column {}: not JSON: {e}", first_line + e.line() as u64 - 1, e.column())
    };
    for top in serde_json::Deserializer::from_slice(&data).into_iter::<&RawValue>() {
        let top = top.map_err(not_json)?;
        for raw in records_in(top).map_err(|why| anyhow::anyhow!("{origin}: {why}"))? {
            saw_records = true;
            let record: Value = serde_json::from_str(raw.get())
                .map_err(|e| anyhow::anyhow!("{origin}: record {index}: not JSON: {e}"))?;
            if !record.is_object() {
                anyhow::bail!("{origin}: record {index}: expected a CloudTrail record (a JSON object), found {record}");
            }
            let account = account_of(&record);
            let catalog = match catalogs.get(&account) {
                Some(c) => c.clone(),
                None => match catalog_for(&account) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        catalogs.insert(account, c.clone());
                        c
                    }
                    Err(e) if e.is::<SkipRecord>() => {
                        out.records_skipped += 1;
                        if out.skipped_records.len() < SKIPS_NAMED {
                            out.skipped_records.push(format!("{origin}: record {index}: {e}"));
                        }
                        index += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let (fired, record) = catalog.evaluate(record);
            for &i in &fired {
                if let Some(n) = out.fires.get_mut(i) {
                    *n += 1;
                }
            }
            if !fired.is_empty() {
                let signals = catalog.signals(&record, &fired);
                out.hits.push(Hit { fired, signals, ..summary(origin, index, &record) });
            }
            out.records += 1;
            index += 1;
        }
    }
    if is_file && !saw_records {
        out.skipped = Some(format!("{origin}: no CloudTrail records in it"));
    }
    Ok(out)
}

/// The shape of a top-level object, read without building it: CloudTrail's log files hold
/// `Records`; a record has `eventName`; anything else (a digest file) holds no records.
#[derive(serde::Deserialize)]
struct Top<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "eventName", default)]
    event_name: Option<serde::de::IgnoredAny>,
}

/// The records in one top-level JSON value, still unparsed, so each is built, matched and
/// dropped before the next: `{"Records": [...]}` as CloudTrail delivers to S3, an array of
/// records, or one record.
fn records_in(top: &RawValue) -> Result<Vec<&RawValue>, String> {
    let text = top.get();
    match text.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(text).map_err(|e| e.to_string()),
        Some(b'{') => {
            let shape: Top =
                serde_json::from_str(text).map_err(|e| format!("\"Records\" is not a list of records: {e}"))?;
            Ok(match (shape.records, shape.event_name) {
                (Some(records), _) => records,
                (None, Some(_)) => vec![top],
                (None, None) => Vec::new(),
            })
        }
        _ => Err(format!("expected CloudTrail records, found {}", text.chars().take(40).collect::<String>())),
    }
}

fn account_of(record: &Value) -> Account {
    fn text(v: Option<&Value>) -> &str {
        v.and_then(Value::as_str).unwrap_or("")
    }
    let identity = record.get("userIdentity");
    let arn = text(identity.and_then(|i| i.get("arn")));
    let partition = arn.split(':').nth(1).filter(|p| p.starts_with("aws")).unwrap_or("aws");
    let id = match text(record.get("recipientAccountId")) {
        "" => text(identity.and_then(|i| i.get("accountId"))),
        id => id,
    };
    Account { id: id.to_string(), partition: partition.to_string() }
}

fn summary(origin: &str, index: u64, record: &Value) -> Hit {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let field = |name: &str| text(record.get(name));
    let identity = record.get("userIdentity");
    let principal = match text(identity.and_then(|i| i.get("arn"))) {
        arn if arn.is_empty() => text(identity.and_then(|i| i.get("invokedBy"))),
        arn => arn,
    };
    Hit {
        origin: origin.to_string(),
        index,
        event_time: field("eventTime"),
        region: field("awsRegion"),
        event_source: field("eventSource"),
        event_name: field("eventName"),
        principal,
        error_code: record.get("errorCode").and_then(Value::as_str).map(str::to_string),
        event_id: field("eventID"),
        account: field("recipientAccountId"),
        fired: Vec::new(),
        signals: Vec::new(),
    }
}

/// A whole file, gunzipped when it starts with the gzip magic number (CloudTrail's S3 objects
/// are `.json.gz`; a downloaded copy may have lost its suffix or been decompressed).
fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let context = || format!("reading {}", path.display());
    read_all(BufReader::new(File::open(path).with_context(context)?)).with_context(context)
}

fn read_all(mut reader: impl BufRead) -> io::Result<Vec<u8>> {
    let gzipped = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut data = Vec::new();
    if gzipped {
        flate2::bufread::MultiGzDecoder::new(reader).read_to_end(&mut data)?;
    } else {
        reader.read_to_end(&mut data)?;
    }
    Ok(data)
}

/// Cuts a stream into slices that end where a top-level JSON value ends, so each slice parses
/// alone. Tracks strings and escapes, nothing more: the workers do the real parsing.
struct Slices<R> {
    reader: R,
    carry: Vec<u8>,
    line: u64,
    records: u64,
    eof: bool,
}

impl<R: BufRead> Slices<R> {
    fn new(reader: R) -> Self {
        Slices { reader, carry: Vec::new(), line: 1, records: 1, eof: false }
    }

    fn next_slice(&mut self) -> io::Result<Option<Unit>> {
        let mut data = std::mem::take(&mut self.carry);
        let mut scan = Scan::default();
        // Rescan the carried bytes: they start a new value.
        let mut cut = scan.feed(&data, 0);
        while cut.is_none_or(|(end, _)| end < SLICE_BYTES) && !self.eof {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            let start = data.len();
            data.extend_from_slice(buf);
            let n = buf.len();
            self.reader.consume(n);
            if let Some(found) = scan.feed(&data[start..], start) {
                cut = Some(found);
            }
        }
        let end = if self.eof { data.len() } else { cut.map_or(data.len(), |(end, _)| end) };
        if data[..end].iter().all(u8::is_ascii_whitespace) && (self.eof || end == 0) {
            return Ok(None);
        }
        self.carry = data.split_off(end);
        let values = if self.eof { scan.values_total } else { cut.map_or(0, |(_, v)| v) };
        let (first_line, first_record) = (self.line, self.records);
        self.line += data.iter().filter(|b| **b == b'\n').count() as u64;
        self.records += values;
        Ok(Some(Unit::Slice { data, first_line, first_record }))
    }
}

/// Bracket depth outside strings; remembers the last offset where a top-level value ended.
#[derive(Default)]
struct Scan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    values_total: u64,
    last_cut: Option<(usize, u64)>,
}

impl Scan {
    /// Feeds `bytes`, found at `offset` in the slice; returns the latest value end so far.
    fn feed(&mut self, bytes: &[u8], offset: usize) -> Option<(usize, u64)> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.values_total += 1;
                        self.last_cut = Some((offset + i + 1, self.values_total));
                    }
                }
                _ => {}
            }
        }
        self.last_cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog::{Detection, Feed};
    use serde_json::json;
    use std::io::Write;

    fn record(name: &str, n: u64) -> Value {
        json!({"eventVersion": "1.09", "eventName": name, "eventSource": "cloudtrail.amazonaws.com",
               "eventID": format!("id-{n}"), "recipientAccountId": "123456789012", "awsRegion": "us-east-1",
               "eventTime": "2026-11-27T10:00:00Z", "userIdentity": {"arn": "arn:aws:iam::123456789012:user/a"}})
    }

    fn catalog(_: &Account) -> anyhow::Result<Catalog> {
        let feed = Feed::Topic { topic: None };
        Ok(Catalog { detections: vec![Detection::alarm("stop", r#"{ $.eventName = "StopLogging" }"#, "high", feed)?] })
    }

    fn replay(inputs: &[Input], jobs: usize) -> (Tally, Vec<Hit>) {
        let mut hits = Vec::new();
        let tally = run(inputs, jobs, &catalog, 1, |h| {
            hits.push(h.clone());
            Ok(())
        })
        .unwrap();
        (tally, hits)
    }

    #[test]
    fn reads_every_shape_and_keeps_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Value> = (0..10).map(|n| record(if n % 3 == 0 { "StopLogging" } else { "X" }, n)).collect();
        let log = json!({"Records": records}).to_string();
        std::fs::create_dir_all(dir.path().join("AWSLogs/CloudTrail-Digest")).unwrap();
        std::fs::write(dir.path().join("AWSLogs/CloudTrail-Digest/d.json"), "{}").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(log.as_bytes()).unwrap();
        std::fs::write(dir.path().join("a.json.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("b.json"), serde_json::to_string(&records).unwrap()).unwrap();
        std::fs::write(dir.path().join("c.json"), records[0].to_string()).unwrap();
        let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(dir.path().join("d.jsonl"), lines).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();

        let inputs = expand(&[Input::Path(dir.path().to_path_buf())]).unwrap();
        assert_eq!(inputs.len(), 4, "{inputs:?}");
        for jobs in [1, 2, 3] {
            let (tally, hits) = replay(&inputs, jobs);
            assert_eq!((tally.files, tally.records, tally.matched), (4, 31, 13));
            assert_eq!(tally.fires, vec![13]);
            let order: Vec<(String, u64)> =
                hits.iter().map(|h| (h.origin.rsplit('/').next().unwrap().into(), h.index)).collect();
            assert_eq!(
                order[..5],
                [
                    ("a.json.gz".into(), 1),
                    ("a.json.gz".into(), 4),
                    ("a.json.gz".into(), 7),
                    ("a.json.gz".into(), 10),
                    ("b.json".into(), 1)
                ]
            );
        }
    }

    #[test]
    fn a_record_the_catalog_skips_is_reported_and_the_replay_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.jsonl");
        let mut odd = record("StopLogging", 2);
        odd["recipientAccountId"] = json!("XXXXXXXXXXXX");
        let text = format!("{}\n{odd}\n{}\n", record("StopLogging", 1), record("StopLogging", 3));
        std::fs::write(&path, text).unwrap();
        let skipping = |a: &Account| -> anyhow::Result<Catalog> {
            if a.id.len() != 12 || !a.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SkipRecord(format!("account id {:?} is not an account id", a.id)).into());
            }
            catalog(a)
        };
        let tally = run(&[Input::Path(path)], 1, &skipping, 1, |_| Ok(())).unwrap();
        assert_eq!((tally.records, tally.matched, tally.records_skipped), (2, 2, 1));
        assert!(
            tally.skipped[0].ends_with("record 2: account id \"XXXXXXXXXXXX\" is not an account id"),
            "{:?}",
            tally.skipped
        );
    }

    #[test]
    fn a_digest_file_named_explicitly_is_skipped_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digest.json");
        std::fs::write(&path, r#"{"digestStartTime": "2026-11-27T00:00:00Z"}"#).unwrap();
        let (tally, _) = replay(&[Input::Path(path)], 1);
        assert_eq!((tally.records, tally.skipped.len()), (0, 1));
    }

    #[test]
    fn malformed_input_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, format!("{}\n{{\"eventName\": \n", record("X", 1))).unwrap();
        let e = run(&[Input::Path(path)], 2, &catalog, 1, |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("bad.jsonl: line 3"), "{e:#}");
    }

    #[test]
    fn stdin_slices_end_on_value_boundaries() {
        let text: String = (0..5000).map(|n| format!("{}\n", record("A\"}]{", n))).collect();
        let mut slices = Slices::new(io::BufReader::with_capacity(4096, text.as_bytes()));
        let (mut count, mut units, mut line) = (0u64, 0, 1);
        while let Some(Unit::Slice { data, first_line, first_record }) = slices.next_slice().unwrap() {
            assert_eq!((first_line, first_record), (line, count + 1));
            let values: Vec<Value> =
                serde_json::Deserializer::from_slice(&data).into_iter().map(Result::unwrap).collect();
            count += values.len() as u64;
            line += data.iter().filter(|b| **b == b'\n').count() as u64;
            units += 1;
        }
        assert_eq!(count, 5000);
        assert!(units > 1, "expected several slices");
    }
}
