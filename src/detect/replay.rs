//! Replays CloudTrail records through a profile's detections, on every core, in flat memory.
//!
//! Input is cut into chunks of whole records by a streaming splitter ([`Splitter`]) that
//! understands the shapes CloudTrail records come in: a log file as delivered to S3
//! (`{"Records": [...]}`, gzipped or not), a JSON array of records, single records, and JSON
//! lines. A file small on disk goes whole to one worker, which splits it as it reads; a large
//! file and stdin are split by the reader thread, so their chunks spread over every worker.
//! Workers parse and match; results come back in input order. Memory is bounded by the queue's
//! length times [`CHUNK_BYTES`], whatever the size of a file.
//!
//! Nothing passes on nothing: input that holds no CloudTrail records is a problem named with
//! the shape that was found, and a malformed file is named with the position of the fault;
//! the other inputs still replay, and the problems are reported at the end.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::detect::agents::Matched;
use crate::detect::catalog::Catalog;

/// Bytes of records in one chunk handed to a worker.
pub const CHUNK_BYTES: usize = 1 << 20;
/// A file larger than this on disk is split by the reader so every worker takes part.
const SPLIT_BYTES: u64 = 8 << 20;
/// A top-level value that is not a `Records` list is held whole; past this it is refused.
const MAX_VALUE_BYTES: usize = 64 << 20;
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

/// Told how many input bytes were read, as they are; for a progress bar.
pub type Progress<'a> = dyn Fn(u64) + Sync + 'a;

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

/// An input that could not be replayed, or not to its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputProblem {
    /// The file, directory or `-`.
    pub input: String,
    pub message: String,
}

/// Totals over everything replayed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    pub files: u64,
    pub records: u64,
    pub matched: u64,
    /// Fires per detection, by catalog index.
    pub fires: Vec<u64>,
    /// Inputs that held no records or broke off, in input order.
    pub problems: Vec<InputProblem>,
    /// Records passed over (see [`SkipRecord`]), the first few of each chunk named with why.
    pub passed_over: Vec<String>,
    pub records_skipped: u64,
}

/// A catalog builder's answer for a record it cannot match, such as one whose account id is a
/// documentation placeholder: the record is reported and passed over, and the replay goes on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SkipRecord(pub String);

/// How many passed-over records one chunk names; the rest are only counted.
const SKIPS_NAMED: usize = 5;

/// Some inputs could not be replayed (each is named in the output, with where and why), or
/// nothing was replayed at all.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InputProblems {
    pub message: String,
    /// The problems are in the JSON document already written: no second document for them.
    pub in_document: bool,
}

/// An alarm's condition, from the profile. A match counts one towards the alarm's metric; it
/// raises an alert by itself only when one count crosses the threshold in a single period.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Threshold {
    pub threshold: f64,
    pub comparison: String,
    pub period: i32,
    pub evaluation_periods: i32,
    pub alerts_on_one_match: bool,
}

impl Threshold {
    pub fn new(threshold: f64, comparison: &str, period: i32, evaluation_periods: i32) -> Self {
        let one_crosses = match comparison {
            "GreaterThanOrEqualToThreshold" => 1.0 >= threshold,
            "GreaterThanThreshold" => 1.0 > threshold,
            // Fewer than N matches: a match can only keep such an alarm quiet.
            _ => false,
        };
        Threshold {
            threshold,
            comparison: comparison.to_string(),
            period,
            evaluation_periods,
            alerts_on_one_match: one_crosses && evaluation_periods <= 1,
        }
    }

    /// "> 500 in 1 x 600 s".
    pub fn condition(&self) -> String {
        let op = match self.comparison.as_str() {
            "GreaterThanOrEqualToThreshold" => ">=",
            "GreaterThanThreshold" => ">",
            "LessThanThreshold" => "<",
            "LessThanOrEqualToThreshold" => "<=",
            other => other,
        };
        format!("{op} {} in {} x {} s", self.threshold, self.evaluation_periods, self.period)
    }
}

/// The files `inputs` name, directories walked in name order. Inside a directory only
/// `.json`, `.jsonl` and their `.gz` forms are read, and CloudTrail digest files are passed
/// over: they sit beside the logs in the S3 layout and hold hashes, not records. A path that
/// cannot be read, or a directory with no log file in it, is a problem, not an input.
pub fn expand(inputs: &[Input]) -> (Vec<Input>, Vec<InputProblem>) {
    let (mut out, mut problems) = (Vec::new(), Vec::new());
    let problem = |path: &Path, message: String| InputProblem { input: path.display().to_string(), message };
    for input in inputs {
        let Input::Path(path) = input else {
            out.push(Input::Stdin);
            continue;
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                problems.push(problem(path, format!("cannot be read: {}", io_words(&e))));
                continue;
            }
        };
        if !meta.is_dir() {
            out.push(input.clone());
            continue;
        }
        let before = out.len();
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() && is_log_file(e.path()) => out.push(Input::Path(e.into_path())),
                Ok(_) => {}
                Err(e) => problems.push(problem(path, format!("cannot be walked: {e}"))),
            }
        }
        if out.len() == before {
            problems.push(problem(
                path,
                "no CloudTrail log files in it: expected *.json, *.jsonl or their .gz forms (digest files are passed over)"
                    .into(),
            ));
        }
    }
    (out, problems)
}

/// "No such file or directory", without Rust's "(os error 2)".
fn io_words(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn is_log_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let digest = path.components().any(|c| c.as_os_str() == "CloudTrail-Digest") || name.contains("CloudTrail-Digest");
    !digest && (name.ends_with(".json") || name.ends_with(".jsonl"))
}

/// Whole records, one after another, and where each starts.
#[derive(Debug, Default)]
pub struct Chunk {
    data: Vec<u8>,
    /// (offset in `data`, line in the input) of each record.
    starts: Vec<(usize, u64)>,
    /// The input's index of the first record, counting from 1.
    first_record: u64,
}

/// One unit of work.
enum Unit {
    /// A file small enough for one worker, which splits it itself.
    File(PathBuf),
    /// Data opened elsewhere (an S3 object), read whole by one worker like a file.
    Reader(Box<dyn Read + Send>),
    Chunk(Chunk),
    /// The end of a file or of stdin split by the reader.
    End(Ending),
}

/// How an input ended: whether it looked like CloudTrail at all, and what broke it off.
#[derive(Debug, Default)]
struct Ending {
    cloudtrail: bool,
    error: Option<String>,
    /// A file rather than stdin.
    file: bool,
}

struct Job {
    seq: u64,
    origin: Arc<str>,
    unit: Unit,
}

#[derive(Default)]
struct Outcome {
    origin: Arc<str>,
    records: u64,
    hits: Vec<Hit>,
    fires: Vec<u64>,
    /// The record that could not be matched, with why; the rest of its input is skipped.
    error: Option<String>,
    passed_over: Vec<String>,
    records_skipped: u64,
    ending: Option<Ending>,
}

/// Replays `inputs` on `jobs` workers. `on_hit` sees every record that fired, in input order.
/// Problems with one input are collected in the tally and the others still replay; only an
/// error from `on_hit` (stdout closed) stops the run.
pub fn run(
    inputs: &[Input],
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    progress: &Progress<'_>,
    on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    replay(move |work| feed(inputs, work, progress), jobs, catalog_for, detections, progress, on_hit)
}

/// Like [`run`], over sources opened elsewhere, in the order the iterator yields them. An
/// `Err` from it is a problem with the input, and ends the feeding.
pub fn run_sources(
    sources: impl Iterator<Item = anyhow::Result<Source>> + Send,
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    progress: &Progress<'_>,
    on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    let feed = move |work: &crossbeam_channel::Sender<Job>| {
        for (seq, source) in (0..).zip(sources) {
            let job = match source {
                Ok(Source { origin, reader }) => Job { seq, origin: origin.into(), unit: Unit::Reader(reader) },
                Err(e) => {
                    let ending = Ending { cloudtrail: false, error: Some(format!("{e:#}")), file: true };
                    let _ = work.send(Job { seq, origin: "s3".into(), unit: Unit::End(ending) });
                    return;
                }
            };
            if work.send(job).is_err() {
                return;
            }
        }
    };
    replay(feed, jobs, catalog_for, detections, progress, on_hit)
}

fn replay(
    feed: impl FnOnce(&crossbeam_channel::Sender<Job>) + Send,
    jobs: usize,
    catalog_for: &CatalogFor<'_>,
    detections: usize,
    progress: &Progress<'_>,
    mut on_hit: impl FnMut(&Hit) -> io::Result<()>,
) -> anyhow::Result<Tally> {
    let jobs = jobs.max(1);
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Job>(jobs * QUEUE_PER_WORKER);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, Outcome)>(jobs * QUEUE_PER_WORKER);
    let mut tally = Tally { fires: vec![0; detections], ..Tally::default() };

    std::thread::scope(|scope| -> anyhow::Result<()> {
        scope.spawn(move || feed(&work_tx));
        for _ in 0..jobs {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let mut catalogs = HashMap::new();
                for job in work_rx {
                    let outcome = process(job.origin, job.unit, catalog_for, &mut catalogs, detections, progress);
                    if done_tx.send((job.seq, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((work_rx, done_tx));

        // Results arrive out of order; hold them until their turn.
        let mut next = 0;
        let mut waiting = BTreeMap::new();
        let mut files = Files::default();
        for (seq, outcome) in &done_rx {
            waiting.insert(seq, outcome);
            while let Some(outcome) = waiting.remove(&next) {
                next += 1;
                if let Err(e) = files.add(&mut tally, outcome, &mut on_hit) {
                    // Dropping the receiver makes the workers and the feeder stop.
                    return Err(e.into());
                }
            }
        }
        Ok(())
    })?;
    Ok(tally)
}

/// Per input: records so far, and whether it already failed (its later chunks are dropped).
#[derive(Default)]
struct Files {
    seen: HashMap<Arc<str>, (u64, bool)>,
}

impl Files {
    fn add(
        &mut self,
        tally: &mut Tally,
        outcome: Outcome,
        on_hit: &mut impl FnMut(&Hit) -> io::Result<()>,
    ) -> io::Result<()> {
        let (records, failed) = self.seen.entry(outcome.origin.clone()).or_default();
        if *failed {
            return Ok(());
        }
        tally.records += outcome.records;
        *records += outcome.records;
        tally.records_skipped += outcome.records_skipped;
        tally.passed_over.extend(outcome.passed_over);
        tally.matched += outcome.hits.len() as u64;
        for (total, n) in tally.fires.iter_mut().zip(&outcome.fires) {
            *total += n;
        }
        outcome.hits.iter().try_for_each(&mut *on_hit)?;
        let problem = |message: String| InputProblem { input: outcome.origin.to_string(), message };
        if let Some(message) = outcome.error {
            *failed = true;
            tally.problems.push(problem(message));
            return Ok(());
        }
        if let Some(ending) = outcome.ending {
            tally.files += u64::from(ending.file);
            if let Some(message) = ending.error {
                *failed = true;
                tally.problems.push(problem(message));
            } else if *records == 0 && !ending.cloudtrail {
                tally.problems.push(problem("no CloudTrail records in it: it is empty".into()));
            }
        }
        Ok(())
    }
}

/// Queues the work: small files whole, large files and stdin in chunks. Stops quietly when
/// the workers are gone.
fn feed(inputs: &[Input], work: &crossbeam_channel::Sender<Job>, progress: &Progress<'_>) {
    let mut seq = 0;
    let mut send = |origin: &Arc<str>, unit: Unit| {
        let ok = work.send(Job { seq, origin: origin.clone(), unit }).is_ok();
        seq += 1;
        ok
    };
    for input in inputs {
        let (origin, reader): (Arc<str>, io::Result<Box<dyn Read + Send>>) = match input {
            Input::Path(path) => {
                let origin: Arc<str> = path.display().to_string().into();
                let small = std::fs::metadata(path).map_or(true, |m| m.len() <= SPLIT_BYTES);
                if small {
                    if !send(&origin, Unit::File(path.clone())) {
                        return;
                    }
                    continue;
                }
                (origin, File::open(path).map(|f| Box::new(f) as Box<dyn Read + Send>))
            }
            Input::Stdin => ("-".into(), Ok(Box::new(io::stdin()))),
        };
        let file = matches!(input, Input::Path(_));
        let ending = match reader.and_then(|r| open(Counting { inner: r, progress })) {
            Err(e) => Ending { cloudtrail: false, error: Some(format!("cannot be read: {}", io_words(&e))), file },
            Ok(reader) => {
                let mut splitter = Splitter::new(reader);
                loop {
                    match splitter.next_chunk() {
                        Ok(Some(chunk)) => {
                            if !send(&origin, Unit::Chunk(chunk)) {
                                return;
                            }
                        }
                        Ok(None) => break Ending { cloudtrail: splitter.cloudtrail, error: None, file },
                        Err(e) => break Ending { cloudtrail: splitter.cloudtrail, error: Some(e), file },
                    }
                }
            }
        };
        if !send(&origin, Unit::End(ending)) {
            return;
        }
    }
}

/// Reports the bytes read from disk or stdin (before gunzipping) to a progress listener.
struct Counting<'p, R> {
    inner: R,
    progress: &'p Progress<'p>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// A buffered reader, gunzipping when the data starts with the gzip magic number (CloudTrail's
/// S3 objects are `.json.gz`; a downloaded copy may have lost its suffix or been decompressed).
fn open<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn BufRead + 'a>> {
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    if reader.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(256 << 10, flate2::bufread::MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

fn process(
    origin: Arc<str>,
    unit: Unit,
    catalog_for: &CatalogFor<'_>,
    catalogs: &mut HashMap<Account, Arc<Catalog>>,
    detections: usize,
    progress: &Progress<'_>,
) -> Outcome {
    let mut out = Outcome { origin: origin.clone(), fires: vec![0; detections], ..Outcome::default() };
    match unit {
        Unit::Chunk(chunk) => out.error = matched(&origin, &chunk, catalog_for, catalogs, &mut out).err(),
        Unit::End(ending) => out.ending = Some(ending),
        Unit::Reader(reader) => {
            whole(&origin, open(Counting { inner: reader, progress }), catalog_for, catalogs, &mut out)
        }
        Unit::File(path) => {
            let reader = File::open(&path).and_then(|f| open(Counting { inner: f, progress }));
            whole(&origin, reader, catalog_for, catalogs, &mut out);
        }
    }
    out
}

/// A whole input, split and matched by this worker.
fn whole<'r>(
    origin: &str,
    reader: io::Result<Box<dyn BufRead + 'r>>,
    catalog_for: &CatalogFor<'_>,
    catalogs: &mut HashMap<Account, Arc<Catalog>>,
    out: &mut Outcome,
) {
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            let error = Some(format!("cannot be read: {}", io_words(&e)));
            out.ending = Some(Ending { cloudtrail: false, error, file: true });
            return;
        }
    };
    let mut splitter = Splitter::new(reader);
    let error = loop {
        match splitter.next_chunk() {
            Ok(Some(chunk)) => {
                if let Err(e) = matched(origin, &chunk, catalog_for, catalogs, out) {
                    out.error = Some(e);
                    break None;
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    out.ending = Some(Ending { cloudtrail: splitter.cloudtrail, error, file: true });
}

/// Parses and matches every record of a chunk into `out`; the first record that is not a
/// CloudTrail record ends it, with where and why.
fn matched(
    origin: &str,
    chunk: &Chunk,
    catalog_for: &CatalogFor<'_>,
    catalogs: &mut HashMap<Account, Arc<Catalog>>,
    out: &mut Outcome,
) -> Result<(), String> {
    for (i, &(start, line)) in chunk.starts.iter().enumerate() {
        let end = chunk.starts.get(i + 1).map_or(chunk.data.len(), |s| s.0);
        let index = chunk.first_record + i as u64;
        let at = format!("record {index} (line {line})");
        let record: Value = serde_json::from_slice(&chunk.data[start..end])
            .map_err(|e| format!("{at}: not JSON: {}", json_words(&e, line)))?;
        if let Some(why) = not_a_record(&record) {
            return Err(format!("{at}: not a CloudTrail record: {why}"));
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
                    if out.passed_over.len() < SKIPS_NAMED {
                        out.passed_over.push(format!("{origin}: {at}: {e}"));
                    }
                    continue;
                }
                Err(e) => return Err(format!("{at}: {e:#}")),
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
    }
    Ok(())
}

/// serde_json's message with the position made absolute: its line counts from the record.
fn json_words(e: &serde_json::Error, first_line: u64) -> String {
    let text = e.to_string();
    let bare = text.split(" at line ").next().unwrap_or(&text);
    format!("{bare} at line {}, column {}", first_line + e.line() as u64 - 1, e.column())
}

/// Why a JSON value is not a CloudTrail record, if it is not one. An event a service sends
/// EventBridge itself (S3's "Object Deleted") passes too: rules on such events are replayed on it.
fn not_a_record(v: &Value) -> Option<String> {
    let Value::Object(m) = v else { return Some(format!("found {}", shape_of(v))) };
    if crate::detect::eventbridge::is_event(v) {
        return None;
    }
    let known = ["eventName", "eventSource", "eventVersion"].iter().any(|k| m.contains_key(*k));
    (!known).then(|| format!("found {}, with no eventName or eventSource", shape_of(v)))
}

/// "an object with keys a, b, c", "a list", "the number 3".
fn shape_of(v: &Value) -> String {
    match v {
        Value::Object(m) => object_words(m.keys().map(String::as_str)),
        Value::Array(_) => "a list".into(),
        Value::String(s) => format!("the text {:?}", s.chars().take(40).collect::<String>()),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
    }
}

fn object_words<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let keys: Vec<&str> = keys.collect();
    match keys.len() {
        0 => "an empty object".into(),
        n if n > 8 => format!("an object with keys {}, … ({n} in all)", keys[..8].join(", ")),
        _ => format!("an object with keys {}", keys.join(", ")),
    }
}

fn account_of(record: &Value) -> Account {
    fn text(v: Option<&Value>) -> &str {
        v.and_then(Value::as_str).unwrap_or("")
    }
    if crate::detect::eventbridge::is_event(record) {
        // The bucket's ARN names the partition ("arn:aws:s3:::bucket").
        let resource = record.pointer("/resources/0").and_then(Value::as_str).unwrap_or("");
        let partition = resource.split(':').nth(1).filter(|p| p.starts_with("aws")).unwrap_or("aws");
        return Account { id: text(record.get("account")).to_string(), partition: partition.to_string() };
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
    if crate::detect::eventbridge::is_event(record) {
        // S3's events name the requester by account ID or service principal, not by ARN.
        return Hit {
            origin: origin.to_string(),
            index,
            event_time: field("time"),
            region: field("region"),
            event_source: field("source"),
            event_name: field("detail-type"),
            principal: text(record.pointer("/detail/requester")),
            error_code: None,
            event_id: field("id"),
            account: field("account"),
            fired: Vec::new(),
            signals: Vec::new(),
        };
    }
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

/// Where the splitter is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between top-level values.
    Top,
    /// Inside a top-level object, held whole until it turns out to be a log file's wrapper
    /// (its `Records` list starts) or ends (a single record, or something else).
    Object,
    /// Inside a list whose elements are records: a top-level array (depth 1) or a log file's
    /// `Records` (depth 2).
    Records { depth: u32 },
    /// After a log file's `Records`, to the end of its object.
    Tail,
}

/// Cuts a stream of CloudTrail JSON into chunks of whole records without parsing them: tracks
/// strings, escapes and bracket depth, and the keys of top-level objects. The workers parse.
pub struct Splitter<R> {
    reader: R,
    mode: Mode,
    depth: u32,
    in_string: bool,
    escaped: bool,
    line: u64,
    next_record: u64,
    /// The value being collected, and the line it started on.
    value: Vec<u8>,
    value_line: u64,
    /// Inside a top-level object: the last string seen at depth 1, the key it became, and
    /// the keys so far (to name the shape found).
    string_at_1: Option<Vec<u8>>,
    key: Vec<u8>,
    keys: Vec<String>,
    /// The input has shown a CloudTrail shape (a Records list, or a record).
    pub cloudtrail: bool,
    chunk: Chunk,
    eof: bool,
    /// A fault found while the records before it were still to be handed out.
    failed: Option<String>,
}

impl<R: BufRead> Splitter<R> {
    pub fn new(reader: R) -> Self {
        Splitter {
            reader,
            mode: Mode::Top,
            depth: 0,
            in_string: false,
            escaped: false,
            line: 1,
            next_record: 1,
            value: Vec::new(),
            value_line: 1,
            string_at_1: None,
            key: Vec::new(),
            keys: Vec::new(),
            cloudtrail: false,
            chunk: Chunk { first_record: 1, ..Chunk::default() },
            eof: false,
            failed: None,
        }
    }

    /// The next chunk of about [`CHUNK_BYTES`], `None` at the end, or what is wrong with the
    /// input and where (after the records before the fault).
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, String> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        while self.chunk.data.len() < CHUNK_BYTES && !self.eof {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf.to_vec(),
                Err(e) => {
                    self.failed = Some(format!("line {}: cannot be read: {}", self.line, io_words(&e)));
                    break;
                }
            };
            if buf.is_empty() {
                self.eof = true;
                if let Err(e) = self.finish() {
                    self.failed = Some(e);
                }
                break;
            }
            match self.scan(&buf) {
                Ok(used) => self.reader.consume(used),
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            }
        }
        if self.chunk.starts.is_empty() {
            return match self.failed.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.chunk.first_record = self.next_record;
        Ok(Some(chunk))
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.depth > 0 || self.in_string {
            return Err(format!(
                "line {}: the JSON ends inside a value that started on line {} (the file is cut short)",
                self.line, self.value_line
            ));
        }
        Ok(())
    }

    /// Scans bytes; returns how many were consumed (all, unless a chunk filled up between
    /// records).
    fn scan(&mut self, bytes: &[u8]) -> Result<usize, String> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.chunk.data.len() >= CHUNK_BYTES && self.value.is_empty() && !self.in_string {
                return Ok(i);
            }
            self.byte(b)?;
        }
        Ok(bytes.len())
    }

    fn byte(&mut self, b: u8) -> Result<(), String> {
        if b == b'\n' {
            self.line += 1;
        }
        let collecting = !self.value.is_empty() || self.starts_value(b);
        if collecting {
            if self.value.is_empty() {
                self.value_line = self.line;
            }
            self.value.push(b);
            if self.value.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "line {}: a JSON value of more than {} MiB that is not a list of records",
                    self.value_line,
                    MAX_VALUE_BYTES >> 20
                ));
            }
        }
        if self.in_string {
            if let Some(s) = self.string_at_1.as_mut() {
                s.push(b);
            }
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => {
                    self.in_string = false;
                    if let Some(mut s) = self.string_at_1.take() {
                        s.pop();
                        self.key = s;
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let at_element = match self.mode {
            Mode::Top => true,
            Mode::Records { depth } => self.depth == depth,
            _ => false,
        };
        if at_element && self.value.is_empty() && !matches!(b, b'{' | b'}' | b']' | b',') && !b.is_ascii_whitespace() {
            if self.mode == Mode::Top && b == b'[' {
                // A list of records at the top: its elements are the records.
            } else {
                let what = if self.mode == Mode::Top { "CloudTrail JSON" } else { "a CloudTrail record (an object)" };
                let found = match b {
                    b'"' => "a string".to_string(),
                    b'[' => "a list".to_string(),
                    other => format!("{:?}", String::from_utf8_lossy(&[other])),
                };
                return Err(format!("line {}: expected {what}, found {found}", self.line));
            }
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.mode == Mode::Object && self.depth == 1 {
                    self.string_at_1 = Some(Vec::new());
                }
            }
            b':' if self.mode == Mode::Object && self.depth == 1 => {
                self.keys.push(String::from_utf8_lossy(&self.key).into_owned());
            }
            b'{' | b'[' => {
                if self.mode == Mode::Top {
                    self.mode = if b == b'{' { Mode::Object } else { Mode::Records { depth: 1 } };
                    self.keys.clear();
                    if b == b'[' {
                        // A list of records: the list itself is not collected.
                        self.value.clear();
                    }
                }
                self.depth += 1;
                if b == b'['
                    && self.mode == Mode::Object
                    && self.depth == 2
                    && self.keys.last().is_some_and(|k| k == "Records")
                {
                    // A log file: drop the wrapper collected so far; its records follow.
                    self.value.clear();
                    self.mode = Mode::Records { depth: 2 };
                    self.cloudtrail = true;
                }
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                self.closed()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `b` starts a value that is to be collected: a record in a list, or a top-level
    /// object.
    fn starts_value(&self, b: u8) -> bool {
        match self.mode {
            Mode::Top => b == b'{',
            Mode::Records { depth } => self.depth == depth && b == b'{' && !self.in_string,
            Mode::Object | Mode::Tail => false,
        }
    }

    /// A bracket closed: a record, a list or a top-level object may have ended.
    fn closed(&mut self) -> Result<(), String> {
        match self.mode {
            Mode::Records { depth } if self.depth == depth && !self.value.is_empty() => self.push_record(),
            Mode::Records { depth } if self.depth < depth => {
                self.mode = if depth == 1 { Mode::Top } else { Mode::Tail };
                self.cloudtrail = true;
            }
            Mode::Tail if self.depth == 0 => {
                self.value.clear();
                self.mode = Mode::Top;
            }
            Mode::Object if self.depth == 0 => {
                self.mode = Mode::Top;
                let keys = std::mem::take(&mut self.keys);
                // An EventBridge event (`detail-type`) is replayed too: see `not_a_record`.
                let record = keys
                    .iter()
                    .any(|k| matches!(k.as_str(), "eventName" | "eventSource" | "eventVersion" | "detail-type"));
                if !record {
                    let line = self.value_line;
                    self.value.clear();
                    return Err(format!("line {line}: not CloudTrail records: {}", describe_object(&keys)));
                }
                self.cloudtrail = true;
                self.push_record();
            }
            _ => {}
        }
        Ok(())
    }

    fn push_record(&mut self) {
        self.chunk.starts.push((self.chunk.data.len(), self.value_line));
        self.chunk.data.append(&mut self.value);
        self.chunk.data.push(b'\n');
        self.next_record += 1;
    }
}

/// What a top-level object that holds no records is, in words.
fn describe_object(keys: &[String]) -> String {
    if keys.iter().any(|k| k == "digestStartTime" || k == "logFiles") {
        return "found a CloudTrail digest file, which holds hashes of log files, not records".into();
    }
    let mut text = format!("found {}", object_words(keys.iter().map(String::as_str)));
    if keys.iter().any(|k| k != "Records" && k.eq_ignore_ascii_case("records")) {
        text.push_str(" (CloudTrail spells it \"Records\")");
    }
    text.push_str("; expected a log file ({\"Records\": [...]}), records, or JSON lines of records");
    text
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
        let tally = run(inputs, jobs, &catalog, 1, &|_| {}, |h| {
            hits.push(h.clone());
            Ok(())
        })
        .unwrap();
        (tally, hits)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every record the splitter hands out, as (index, line, eventID).
    fn split(text: &str) -> Result<Vec<(u64, u64, String)>, String> {
        let mut splitter = Splitter::new(io::BufReader::with_capacity(7, text.as_bytes()));
        let mut out = Vec::new();
        while let Some(chunk) = splitter.next_chunk()? {
            for (i, &(start, line)) in chunk.starts.iter().enumerate() {
                let end = chunk.starts.get(i + 1).map_or(chunk.data.len(), |s| s.0);
                let v: Value = serde_json::from_slice(&chunk.data[start..end]).unwrap();
                out.push((chunk.first_record + i as u64, line, v["eventID"].as_str().unwrap_or("").to_string()));
            }
        }
        Ok(out)
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
        write(dir.path(), "b.json", &serde_json::to_string(&records).unwrap());
        write(dir.path(), "c.json", &records[0].to_string());
        let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
        write(dir.path(), "d.jsonl", &lines);
        write(dir.path(), "notes.txt", "not read");

        let (inputs, problems) = expand(&[Input::Path(dir.path().to_path_buf())]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(inputs.len(), 4, "{inputs:?}");
        for jobs in [1, 2, 3] {
            let (tally, hits) = replay(&inputs, jobs);
            assert_eq!((tally.files, tally.records, tally.matched), (4, 31, 13));
            assert_eq!(tally.fires, vec![13]);
            assert!(tally.problems.is_empty(), "{:?}", tally.problems);
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
    fn the_splitter_finds_records_in_every_shape_with_their_lines() {
        let wrapped =
            format!("{{\"Records\": [\n{},\n{}\n], \"extra\": {{\"a\": \"]}}\"}}}}", record("A", 1), record("B", 2));
        assert_eq!(split(&wrapped).unwrap(), [(1, 2, "id-1".into()), (2, 3, "id-2".into())]);
        let lines = format!("{}\n\n{}\n", record("A\"}]{", 1), record("B", 2));
        assert_eq!(split(&lines).unwrap(), [(1, 1, "id-1".into()), (2, 3, "id-2".into())]);
        let array = format!("[{}, {}]", record("A", 1), record("B", 2));
        assert_eq!(split(&array).unwrap().len(), 2);
        assert_eq!(split("").unwrap(), []);
    }

    #[test]
    fn shapes_that_are_not_cloudtrail_are_named() {
        let e = split(r#"{"records": [{"eventName": "X"}]}"#).unwrap_err();
        assert!(e.contains("an object with keys records (CloudTrail spells it \"Records\")"), "{e}");
        let e = split(r#"{"digestStartTime": "2026-11-27T00:00:00Z", "logFiles": []}"#).unwrap_err();
        assert!(e.contains("digest file"), "{e}");
        let e = split(r#"{"Records": [1, 2]}"#).unwrap_err();
        assert!(e.contains("expected a CloudTrail record (an object), found \"1\""), "{e}");
        let e = split("hello").unwrap_err();
        assert!(e.starts_with("line 1: expected CloudTrail JSON"), "{e}");
        let e = split(&format!("{}\n{{\"eventName\": \"X\"", record("A", 1))).unwrap_err();
        assert!(e.contains("started on line 2 (the file is cut short)"), "{e}");
    }

    #[test]
    fn a_bad_file_is_named_and_the_others_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.json", &json!({"Records": [record("StopLogging", 1)]}).to_string());
        let other = write(dir.path(), "other.json", r#"{"records": []}"#);
        let broken = write(dir.path(), "broken.jsonl", &format!("{}\n{{\"eventName\": }}\n", record("StopLogging", 2)));
        let empty = write(dir.path(), "empty.json", "  \n");
        let not_records = write(dir.path(), "rows.jsonl", "{\"id\": 1, \"eventName\": 3}\n[{\"user\": \"a\"}]\n");
        let inputs: Vec<Input> =
            [&other, &good, &broken, &empty, &not_records].iter().map(|p| Input::Path(p.to_path_buf())).collect();
        let (tally, hits) = replay(&inputs, 2);
        assert_eq!((tally.records, hits.len()), (3, 2), "{:?}", tally.problems);
        let problems: Vec<(String, String)> = tally
            .problems
            .iter()
            .map(|p| (p.input.rsplit('/').next().unwrap().to_string(), p.message.clone()))
            .collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0].0, "other.json");
        assert!(problems[0].1.contains("keys records"), "{problems:?}");
        assert_eq!(problems[1].0, "broken.jsonl");
        assert!(problems[1].1.starts_with("record 2 (line 2): not JSON"), "{problems:?}");
        assert_eq!(problems[2], ("empty.json".into(), "no CloudTrail records in it: it is empty".into()));
        assert_eq!(problems[3].0, "rows.jsonl");
        assert!(problems[3].1.contains("record 2 (line 2)"), "{problems:?}");
    }

    #[test]
    fn a_large_file_is_split_across_workers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        write!(f, "{{\"Records\": [").unwrap();
        let mut n = 0u64;
        while f.get_ref().metadata().unwrap().len() <= SPLIT_BYTES + (1 << 20) {
            for _ in 0..1000 {
                if n > 0 {
                    write!(f, ",").unwrap();
                }
                write!(f, "{}", record(if n % 1000 == 7 { "StopLogging" } else { "X" }, n)).unwrap();
                n += 1;
            }
            f.flush().unwrap();
        }
        write!(f, "]}}").unwrap();
        drop(f);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let mut hits = Vec::new();
        let tally = run(
            &[Input::Path(path.clone())],
            3,
            &catalog,
            1,
            &|n| {
                bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
            |h| {
                hits.push(h.index);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((tally.files, tally.records, tally.matched), (1, n, n / 1000));
        assert!(hits.windows(2).all(|w| w[0] < w[1]) && hits[0] == 8, "{:?}", &hits[..3]);
        assert_eq!(bytes.into_inner(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn a_directory_without_log_files_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "notes.txt", "x");
        let (inputs, problems) =
            expand(&[Input::Path(dir.path().to_path_buf()), Input::Path(dir.path().join("nope.json"))]);
        assert!(inputs.is_empty());
        assert!(problems[0].message.starts_with("no CloudTrail log files in it"), "{problems:?}");
        assert_eq!(problems[1].message, "cannot be read: No such file or directory");
    }
}
