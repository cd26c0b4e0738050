//! EventBridge event patterns, evaluated offline.
//!
//! [`EventPattern::parse`] rejects what PutRule rejects; [`EventPattern::matches`] tests an event
//! (for CloudTrail, the [`envelope`] of a record). The semantics are the EventBridge User Guide's
//! ("Event patterns", "Comparison operators for use in event patterns", "Arrays in event
//! patterns", "Matching null values and empty strings"), and where the guide is silent, those of
//! `aws/event-ruler`, the open-source engine behind EventBridge:
//!
//! - Fields are ANDed, the values in a field's array ORed; a field missing from the event does
//!   not match, except `{"exists": false}`. `anything-but` does not match a missing field.
//! - An event array matches if any element matches. When a pattern reaches into an array of
//!   objects, all the fields it tests must come from the same element (event-ruler README, "JSON
//!   Array Matching": no match "in which any two fields are within JSON objects that are in
//!   different elements of the same array").
//! - `$or` (at any level, beside ANDed sibling fields) is expanded into alternatives, as
//!   event-ruler's `JsonRuleCompiler` does, so array consistency holds inside each alternative.
//! - `exists` looks only at scalars ("Exists matching only works on leaf nodes"): a field holding
//!   an object or an empty array does not exist; `null` does.

pub(crate) mod leaf;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::detect::PatternError;
use leaf::Leaf;

/// Deepest object nesting accepted in a pattern.
const MAX_PATTERN_DEPTH: usize = 64;

/// Deepest nesting followed in an event (objects plus arrays); anything deeper does not match.
/// serde_json refuses to parse past 128 levels, so real events never reach this.
const MAX_DEPTH: usize = 256;

/// Most alternatives `$or` may expand to. A guard against exponential patterns; the figure is
/// the one tests/detections/NOTES.md recalls from the EventBridge guide (not verified).
const MAX_ALTERNATIVES: usize = 1000;

/// Names that cannot be fields inside `$or`, so `[{"numeric": ...}, {"prefix": ...}]` is not
/// taken for two branches (event-ruler `Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP`).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// A parsed event pattern: its `$or`-free alternatives, any of which matching is a match.
#[derive(Debug, Clone)]
pub struct EventPattern {
    pub(crate) alternatives: Vec<Node>,
}

impl EventPattern {
    /// Parses and validates a pattern. Errors name the JSON path of the offending value.
    pub fn parse(pattern: &Value) -> Result<EventPattern, PatternError> {
        let Value::Object(fields) = pattern else {
            return Err(PatternError::new("$", "an event pattern must be a JSON object"));
        };
        let mut parser = Parser { alternatives: Vec::new(), path: Vec::new() };
        parser.object(fields, "$", false)?;
        Ok(EventPattern { alternatives: parser.alternatives.iter().map(|flat| Node::build(flat)).collect() })
    }

    /// Whether `event` matches. Never fails: a value of the wrong type simply does not match,
    /// and neither does an event that is not a JSON object.
    pub fn matches(&self, event: &Value) -> bool {
        event.is_object() && self.alternatives.iter().any(|root| root.matches(Some(event), event, 0))
    }
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

/// An object level of one alternative: every field must match.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) fields: Vec<Field>,
}

/// A field of a [`Node`]: a leaf array, nested fields, or (after `$or` expansion) both.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) key: String,
    pub(crate) leaf: Option<Leaf>,
    pub(crate) child: Option<Node>,
    /// Full path from the event root, kept for `{"exists": false}`.
    pub(crate) path: Vec<String>,
}

impl Node {
    /// `value` is the event's value at this level (`None` if missing); `event` the whole event.
    fn matches(&self, value: Option<&Value>, event: &Value, depth: usize) -> bool {
        if let Some(Value::Array(items)) = value {
            // One element must satisfy every field of this level (array consistency).
            if items.is_empty() || depth >= MAX_DEPTH {
                return self.matches(None, event, depth + 1);
            }
            return items.iter().any(|item| self.matches(Some(item), event, depth + 1));
        }
        let object = value.and_then(Value::as_object);
        self.fields.iter().all(|field| field.matches(object.and_then(|o| o.get(&field.key)), event, depth + 1))
    }

    fn build(flat: &[(Vec<String>, Leaf)]) -> Node {
        let mut root = Node::default();
        for (path, leaf) in flat {
            root.insert(path, 0, leaf);
        }
        root
    }

    fn insert(&mut self, path: &[String], at: usize, leaf: &Leaf) {
        let Some(key) = path.get(at) else { return };
        let index = match self.fields.iter().position(|f| f.key == *key) {
            Some(index) => index,
            None => {
                let field = Field { key: key.clone(), leaf: None, child: None, path: path[..=at].to_vec() };
                self.fields.push(field);
                self.fields.len() - 1
            }
        };
        let field = &mut self.fields[index];
        if at + 1 == path.len() {
            field.leaf = Some(leaf.clone());
        } else {
            field.child.get_or_insert_default().insert(path, at + 1, leaf);
        }
    }
}

impl Field {
    fn matches(&self, value: Option<&Value>, event: &Value, depth: usize) -> bool {
        let leaf_ok = self.leaf.as_ref().is_none_or(|leaf| {
            // Absence is global: the path holds no scalar anywhere in the event (event-ruler
            // `Finder`: `exists: false` matches "if a particular key is not present in the event").
            leaf.matches_present(value) || (leaf.wants_absence() && !has_scalar_at(event, &self.path, 0))
        });
        leaf_ok && self.child.as_ref().is_none_or(|child| child.matches(value, event, depth))
    }
}

/// Whether any scalar (string, number, boolean, null) sits at `path`, through arrays.
fn has_scalar_at(value: &Value, path: &[String], depth: usize) -> bool {
    if depth >= MAX_DEPTH {
        return false;
    }
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|item| has_scalar_at(item, path, depth + 1)),
        (Value::Object(map), Some((key, rest))) => map.get(key).is_some_and(|v| has_scalar_at(v, rest, depth + 1)),
        (Value::Object(_), None) => false,
        (_, None) => true,
        (_, Some(_)) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// One alternative in flat form: (path from the root, leaf), as event-ruler compiles it.
type Flat = Vec<(Vec<String>, Leaf)>;

struct Parser {
    alternatives: Vec<Flat>,
    /// Keys from the root to the object being parsed.
    path: Vec<String>,
}

impl Parser {
    /// Parses the fields of an object; `at` is its JSON path, `in_or` whether it is inside `$or`.
    fn object(&mut self, fields: &Map<String, Value>, at: &str, in_or: bool) -> Result<(), PatternError> {
        if fields.is_empty() {
            return Err(PatternError::new(at, "empty objects are not allowed"));
        }
        if self.path.len() >= MAX_PATTERN_DEPTH {
            return Err(PatternError::new(at, format!("nested more than {MAX_PATTERN_DEPTH} levels deep")));
        }
        for (key, value) in fields {
            let at = format!("{at}.{key}");
            if key == "$or" {
                self.or(value, &at)?;
                continue;
            }
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return Err(PatternError::new(
                    at,
                    format!("{key:?} is an operator name and cannot be a field name inside $or"),
                ));
            }
            match value {
                Value::Object(inner) => {
                    self.path.push(key.clone());
                    let result = self.object(inner, &at, in_or);
                    self.path.pop();
                    result?;
                }
                Value::Array(items) => {
                    let leaf = leaf::parse_leaf(items, &at)?;
                    self.add(key, leaf);
                }
                _ => return Err(PatternError::new(at, "a field must hold an array of values or an object of fields")),
            }
        }
        Ok(())
    }

    /// Adds a leaf to every alternative. A path given twice keeps the last one ("if you include
    /// a key more than once the last reference will be the one used", Content filtering).
    fn add(&mut self, key: &str, leaf: Leaf) {
        let mut path = self.path.clone();
        path.push(key.to_owned());
        if self.alternatives.is_empty() {
            self.alternatives.push(Flat::new());
        }
        for flat in &mut self.alternatives {
            flat.retain(|(p, _)| *p != path);
            flat.push((path.clone(), leaf.clone()));
        }
    }

    /// `"$or": [{...}, {...}, ...]`: each branch continues every alternative built so far.
    fn or(&mut self, value: &Value, at: &str) -> Result<(), PatternError> {
        let Value::Array(branches) = value else {
            return Err(PatternError::new(at, "$or takes an array of objects"));
        };
        if branches.len() < 2 {
            return Err(PatternError::new(at, "$or needs at least two objects"));
        }
        let mut before = std::mem::take(&mut self.alternatives);
        if before.is_empty() {
            before.push(Flat::new());
        }
        for (i, branch) in branches.iter().enumerate() {
            let branch_at = format!("{at}[{i}]");
            let Value::Object(fields) = branch else {
                return Err(PatternError::new(branch_at, "each $or entry must be an object"));
            };
            if self.alternatives.len() + before.len() > MAX_ALTERNATIVES {
                return Err(PatternError::new(at, format!("$or expands to more than {MAX_ALTERNATIVES} combinations")));
            }
            let done = std::mem::replace(&mut self.alternatives, before.clone());
            let result = self.object(fields, &branch_at, true);
            let mut added = std::mem::replace(&mut self.alternatives, done);
            result?;
            self.alternatives.append(&mut added);
        }
        if self.alternatives.len() > MAX_ALTERNATIVES {
            return Err(PatternError::new(at, format!("$or expands to more than {MAX_ALTERNATIVES} combinations")));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// CloudTrail records as EventBridge events
// ---------------------------------------------------------------------------------------------

/// The EventBridge event a CloudTrail record becomes on the default bus: the record is `detail`,
/// and the envelope fields come from it (EventBridge User Guide, "AWS service events delivered
/// via AWS CloudTrail"). `id` is the record's eventID here; EventBridge assigns its own.
pub fn envelope(record: &Value) -> Value {
    into_envelope(record.clone())
}

/// [`envelope`], moving the record into `detail` instead of copying it: the per-record path of
/// `ctguard test` builds one envelope per record. An event a service sends EventBridge itself
/// (see [`is_event`]) is already what rules see, and comes back as it is.
pub fn into_envelope(record: Value) -> Value {
    if is_event(&record) {
        return record;
    }
    let field = |name: &str| record.get(name).cloned().unwrap_or(Value::Null);
    // An Insights record names its API under insightDetails and has no eventSource of its own;
    // EventBridge receives it from source aws.cloudtrail, detail-type "AWS Insight via CloudTrail".
    let insight = record.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight");
    let event_source =
        if insight { Some("cloudtrail.amazonaws.com") } else { record.get("eventSource").and_then(Value::as_str) };
    let mut event = Map::with_capacity(9);
    event.insert("version".into(), Value::from("0"));
    event.insert("id".into(), field("eventID"));
    event.insert("detail-type".into(), Value::from(detail_type(record.get("eventType").and_then(Value::as_str))));
    event.insert("source".into(), event_source.map_or(Value::Null, |s| Value::String(source(s))));
    event.insert("account".into(), field("recipientAccountId"));
    event.insert("time".into(), field("eventTime"));
    event.insert("region".into(), field("awsRegion"));
    event.insert("resources".into(), Value::Array(Vec::new()));
    event.insert("detail".into(), record);
    Value::Object(event)
}

/// Whether `value` is an EventBridge event rather than a CloudTrail record: S3's "Object
/// Deleted" (S3 User Guide, "EventBridge event message structure") and every other event a
/// service sends EventBridge itself carry `source`, `detail-type` and a `detail` object, which
/// no CloudTrail record has.
pub fn is_event(value: &Value) -> bool {
    value.get("detail-type").is_some_and(Value::is_string)
        && value.get("source").is_some_and(Value::is_string)
        && value.get("detail").is_some_and(Value::is_object)
}

/// Whether a pattern matches only events services send EventBridge themselves, never one a
/// CloudTrail record becomes: it names its detail-types, and none is a CloudTrail one ("... via
/// CloudTrail"). Such events are in no trail, so `ctguard hunt` cannot search for them.
pub fn service_events_only(pattern: &Value) -> bool {
    let Some(types) = pattern.get("detail-type").and_then(Value::as_array) else { return false };
    !types.is_empty() && types.iter().all(|t| t.as_str().is_some_and(|t| !t.ends_with("via CloudTrail")))
}

/// Whether a pattern matches only CloudTrail Insights events, which EventBridge receives with
/// detail-type "AWS Insight via CloudTrail" and a trail delivers under `CloudTrail-Insight/`,
/// apart from the API calls (CloudTrail User Guide, "Working with CloudTrail Insights").
pub fn insights_only(pattern: &Value) -> bool {
    let Some(types) = pattern.get("detail-type").and_then(Value::as_array) else { return false };
    !types.is_empty() && types.iter().all(|t| t == "AWS Insight via CloudTrail")
}

/// Whether a pattern matches only S3's own object events (`source` aws.s3, no CloudTrail
/// detail-type). S3 sends them to the default bus of the bucket's own region, and only for a
/// bucket whose EventBridge notifications are on (S3 User Guide, "Using EventBridge").
pub fn s3_events_only(pattern: &Value) -> bool {
    let s3 = pattern.get("source").and_then(Value::as_array).is_some_and(|s| s.len() == 1 && s[0] == "aws.s3");
    s3 && service_events_only(pattern)
}

/// CloudTrail `eventType` to EventBridge `detail-type` (same guide page, which lists the five
/// types; it spells the sign-in one "AWS Console Signin via CloudTrail", but the events carry
/// "AWS Console Sign In via CloudTrail", the value rules match on).
fn detail_type(event_type: Option<&str>) -> &'static str {
    DETAIL_TYPES.iter().find(|(t, _)| Some(*t) == event_type).map_or(DEFAULT_DETAIL_TYPE, |(_, d)| d)
}

/// The eventType values with their own detail-type; any other is [`DEFAULT_DETAIL_TYPE`].
pub(crate) const DETAIL_TYPES: &[(&str, &str)] = &[
    ("AwsConsoleSignIn", "AWS Console Sign In via CloudTrail"),
    ("AwsServiceEvent", "AWS Service Event via CloudTrail"),
    ("AwsConsoleAction", "AWS Console Action via CloudTrail"),
    ("AwsCloudTrailInsight", "AWS Insight via CloudTrail"),
];

pub(crate) const DEFAULT_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// eventSource values whose EventBridge `source` is not `aws.` plus the eventSource host name.
///
/// Empty: every service checked follows the rule in the EventBridge events reference
/// (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-*.html, section "... events
/// delivered via AWS CloudTrail"), including the two that look like exceptions: CloudWatch API
/// calls (`monitoring.amazonaws.com`, events-ref-monitoring.html) arrive as `aws.monitoring`, not
/// `aws.cloudwatch`, and console sign-ins (`signin.amazonaws.com`) as `aws.signin`. Add a row
/// here, with its reference page, if a real exception is found.
pub(crate) const SOURCE_EXCEPTIONS: &[(&str, &str)] = &[];

/// `ec2.amazonaws.com` becomes `aws.ec2`.
fn source(event_source: &str) -> String {
    if let Some((_, source)) = SOURCE_EXCEPTIONS.iter().find(|(from, _)| *from == event_source) {
        return (*source).to_owned();
    }
    let service = match event_source.strip_suffix(".amazonaws.com") {
        Some(service) => service,
        None => event_source.split('.').next().unwrap_or(event_source),
    };
    format!("aws.{service}")
}
