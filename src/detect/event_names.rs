//! Which event names a profile's detections can match: the allow-list `ctguard investigate`
//! looks up by default, so the look-back and the live alerts agree on what matters.
//!
//! Each detection's deployed pattern is read for the values `eventName` may take: ANDed
//! conditions narrow them, ORed ones widen them, and a detection that never constrains
//! `eventName` (or constrains it with `anything-but`, `!=`, or `*`) can match any event name.
//! Prefixes, suffixes and other partial matches cannot be listed either. Both kinds are
//! reported with the detection, never dropped silently. The result is an over-approximation:
//! every name a detection can fire on is in the list (or the detection is reported), but a
//! listed name need not fire on every event.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::detect::catalog::{Catalog, Detection, Kind};
use crate::detect::logfilter::FilterPattern;

/// A partial constraint on a name that cannot be listed value by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Partial {
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// EventBridge `wildcard` with `*` inside.
    Wildcard(String),
    /// EventBridge `equals-ignore-case`.
    IgnoreCase(String),
}

impl Partial {
    fn admits(&self, name: &str) -> bool {
        match self {
            Partial::Prefix(p) => name.starts_with(p.as_str()),
            Partial::Suffix(s) => name.ends_with(s.as_str()),
            Partial::Contains(c) => name.contains(c.as_str()),
            Partial::Wildcard(w) => crate::wildcard::star(w, name),
            Partial::IgnoreCase(v) => name.eq_ignore_ascii_case(v),
        }
    }
}

impl fmt::Display for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partial::Prefix(p) => write!(f, "names starting with {p:?}"),
            Partial::Suffix(s) => write!(f, "names ending with {s:?}"),
            Partial::Contains(c) => write!(f, "names containing {c:?}"),
            Partial::Wildcard(w) => write!(f, "names like {w:?}"),
            Partial::IgnoreCase(v) => write!(f, "{v:?} in any case"),
        }
    }
}

/// The event names a pattern can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Any event name at all.
    Any,
    /// Only these names, and names the partial constraints admit.
    Only { exact: BTreeSet<String>, partial: BTreeSet<Partial> },
}

impl Names {
    pub fn none() -> Names {
        Names::Only { exact: BTreeSet::new(), partial: BTreeSet::new() }
    }

    pub fn exact(names: impl IntoIterator<Item = String>) -> Names {
        Names::Only { exact: names.into_iter().collect(), partial: BTreeSet::new() }
    }

    pub fn partial(p: Partial) -> Names {
        Names::Only { exact: BTreeSet::new(), partial: [p].into() }
    }

    fn admits(&self, name: &str) -> bool {
        match self {
            Names::Any => true,
            Names::Only { exact, partial } => exact.contains(name) || partial.iter().any(|p| p.admits(name)),
        }
    }

    /// Both hold.
    pub fn and(self, other: Names) -> Names {
        match (self, other) {
            (Names::Any, x) | (x, Names::Any) => x,
            (a, b) => {
                let (Names::Only { exact: ea, partial: pa }, Names::Only { exact: eb, partial: pb }) = (&a, &b) else {
                    unreachable!("both sides are Only")
                };
                let mut exact: BTreeSet<String> = ea.iter().filter(|n| b.admits(n)).cloned().collect();
                exact.extend(eb.iter().filter(|n| a.admits(n)).cloned());
                // Two partial constraints together: keep both, an over-approximation of their
                // intersection; a side with none restricts the result to its exact names.
                let partial = if pa.is_empty() || pb.is_empty() { BTreeSet::new() } else { pa | pb };
                Names::Only { exact, partial }
            }
        }
    }

    /// Either holds.
    pub fn or(self, other: Names) -> Names {
        match (self, other) {
            (Names::Any, _) | (_, Names::Any) => Names::Any,
            (Names::Only { exact: mut ea, partial: mut pa }, Names::Only { exact: eb, partial: pb }) => {
                ea.extend(eb);
                pa.extend(pb);
                Names::Only { exact: ea, partial: pa }
            }
        }
    }
}

/// A detection whose event names cannot all be listed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlisted {
    pub detection: String,
    pub kind: Kind,
    /// It can match any event name at all (not only names a partial constraint admits).
    pub any: bool,
    /// "any event name", or the partial constraints (`names starting with "DeleteFunction2"`).
    pub why: String,
}

/// Every event name the catalog's detections can match, and the detections that can match
/// names beyond the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub names: BTreeSet<String>,
    pub unlisted: Vec<Unlisted>,
}

impl AllowList {
    pub fn of<'a>(detections: impl IntoIterator<Item = &'a Detection>) -> AllowList {
        let mut list = AllowList::default();
        for d in detections {
            match event_names(d) {
                Names::Any => list.unlisted.push(Unlisted {
                    detection: d.id.clone(),
                    kind: d.kind,
                    any: true,
                    why: "any event name".into(),
                }),
                Names::Only { exact, partial } => {
                    list.names.extend(exact);
                    if !partial.is_empty() {
                        let why: Vec<String> = partial.iter().map(ToString::to_string).collect();
                        list.unlisted.push(Unlisted {
                            detection: d.id.clone(),
                            kind: d.kind,
                            any: false,
                            why: why.join(", "),
                        });
                    }
                }
            }
        }
        list
    }

    pub fn of_catalog(catalog: &Catalog) -> AllowList {
        AllowList::of(&catalog.detections)
    }
}

/// The event names one deployed detection can match.
pub fn event_names(d: &Detection) -> Names {
    match d.kind {
        Kind::Rule => match serde_json::from_str::<Value>(&d.text) {
            Ok(Value::Object(pattern)) => in_object(&pattern, &["detail", "eventName"]),
            _ => Names::Any,
        },
        Kind::Alarm => FilterPattern::parse(&d.text).map(|p| p.field_names("eventName")).unwrap_or(Names::Any),
    }
}

/// An EventBridge pattern object: its fields are ANDed; `$or` is a list of alternatives ANDed
/// with the fields beside it. `path` leads from this object to `eventName`.
fn in_object(object: &Map<String, Value>, path: &[&str]) -> Names {
    let mut names = Names::Any;
    for (key, value) in object {
        let here = if key == "$or" {
            let alternatives = value.as_array().map(Vec::as_slice).unwrap_or_default();
            alternatives
                .iter()
                .map(|alt| alt.as_object().map_or(Names::Any, |o| in_object(o, path)))
                .reduce(Names::or)
                .unwrap_or(Names::Any)
        } else if path.first() == Some(&key.as_str()) {
            match (&path[1..], value) {
                ([], Value::Array(values)) => values.iter().map(in_value).reduce(Names::or).unwrap_or(Names::Any),
                (rest, Value::Object(inner)) if !rest.is_empty() => in_object(inner, rest),
                _ => Names::Any,
            }
        } else {
            continue;
        };
        names = names.and(here);
    }
    names
}

/// One element of a leaf's value list: a string matches exactly; operators in objects.
fn in_value(value: &Value) -> Names {
    let Value::Object(op) = value else {
        return match value {
            Value::String(s) => Names::exact([s.clone()]),
            // A number, boolean or null never equals a name, which is always a string.
            _ => Names::none(),
        };
    };
    let Some((name, arg)) = op.iter().next() else { return Names::Any };
    let text = arg.as_str().map(str::to_string);
    match (name.as_str(), text) {
        ("prefix", Some(p)) => Names::partial(Partial::Prefix(p)),
        ("suffix", Some(s)) => Names::partial(Partial::Suffix(s)),
        ("equals-ignore-case", Some(v)) => Names::partial(Partial::IgnoreCase(v)),
        ("wildcard", Some(w)) if w.chars().all(|c| c == '*') => Names::Any,
        ("wildcard", Some(w)) if !w.contains('*') => Names::exact([w]),
        ("wildcard", Some(w)) => Names::partial(Partial::Wildcard(w)),
        // `{"prefix": {"equals-ignore-case": …}}`, anything-but, exists, numeric, cidr: not
        // a list of names.
        _ => Names::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog::Feed;
    use serde_json::json;

    fn rule(pattern: Value) -> Detection {
        Detection::rule("r", &pattern, "high", None).unwrap()
    }

    fn alarm(pattern: &str) -> Detection {
        Detection::alarm("a", pattern, "high", Feed::Topic { topic: None }).unwrap()
    }

    fn exact(names: &[&str]) -> Names {
        Names::exact(names.iter().map(|n| n.to_string()))
    }

    #[test]
    fn event_patterns() {
        let cases = [
            (json!({"source": ["aws.ec2"]}), Names::Any),
            (json!({"detail": {"eventName": ["A", "B"]}}), exact(&["A", "B"])),
            (
                json!({"source": ["aws.s3"], "$or": [
                    {"detail": {"eventName": ["A"]}},
                    {"detail": {"eventSource": ["x"], "eventName": ["B", {"prefix": "C2"}]}}]}),
                Names::Only { exact: ["A".into(), "B".into()].into(), partial: [Partial::Prefix("C2".into())].into() },
            ),
            (json!({"$or": [{"detail": {"eventName": ["A"]}}, {"source": ["aws.iam"]}]}), Names::Any),
            (json!({"detail": {"eventName": [{"anything-but": ["A"]}]}}), Names::Any),
            (
                json!({"detail": {"eventName": [{"wildcard": "Delete*"}]}}),
                Names::partial(Partial::Wildcard("Delete*".into())),
            ),
            // The principal restriction ctguard merges in does not touch the names.
            (json!({"detail": {"eventName": ["A"], "userIdentity": {"arn": [{"wildcard": "arn:*"}]}}}), exact(&["A"])),
        ];
        for (pattern, expected) in cases {
            assert_eq!(event_names(&rule(pattern.clone())), expected, "{pattern}");
        }
    }

    #[test]
    fn filter_patterns() {
        let cases = [
            (r#"{ $.eventName = "StopLogging" }"#, exact(&["StopLogging"])),
            (r#"{ ($.eventName = A) || ($.eventName = B) || ($.eventName = C) }"#, exact(&["A", "B", "C"])),
            (
                r#"{ ($.eventSource = kms.amazonaws.com) && (($.eventName = A) || ($.eventName = B)) }"#,
                exact(&["A", "B"]),
            ),
            (r#"{ ($.eventName = A) || ($.errorCode = "AccessDenied*") }"#, Names::Any),
            (r#"{ $.errorCode = "AccessDenied*" }"#, Names::Any),
            (r#"{ $.eventName = "*" }"#, Names::Any),
            (r#"{ $.eventName != "A" }"#, Names::Any),
            (r#"{ $.eventName = "Delete*" }"#, Names::partial(Partial::Prefix("Delete".into()))),
            (r#"{ ($.eventName = "Delete*") && ($.eventName = "DeleteTrail") }"#, exact(&["DeleteTrail"])),
            (r#"{ ($.eventName = A) && ($.eventName = B) }"#, Names::none()),
        ];
        for (pattern, expected) in cases {
            assert_eq!(event_names(&alarm(pattern)), expected, "{pattern}");
        }
    }

    /// Soundness over every sample record under tests/detections/samples: whenever a shipped
    /// detection fires, the record's event name is in the list, or the detection is reported.
    #[test]
    fn every_sample_a_detection_fires_on_is_listed_or_reported() {
        use crate::profile::{self, Runtime, vars::Vars};
        static SAMPLES: include_dir::Dir<'static> =
            include_dir::include_dir!("$CARGO_MANIFEST_DIR/tests/detections/samples");
        let records: Vec<Value> = SAMPLES
            .files()
            .filter_map(|f| serde_json::from_slice::<Value>(f.contents()).ok())
            .flat_map(|sample| {
                let mut out: Vec<Value> = sample["fires"].as_array().cloned().unwrap_or_default();
                for list in ["silent", "gaps"] {
                    out.extend(sample[list].as_array().into_iter().flatten().map(|i| i["record"].clone()));
                }
                out
            })
            .collect();
        assert!(records.len() > 400, "{} sample records", records.len());
        let runtime = Runtime { account_id: "123456789012".into(), ..Runtime::placeholder("us-east-1") };
        for name in ["ai-agent-guard", "cis-aws-foundations"] {
            let profile = profile::load(name).unwrap().resolve(&runtime, &Vars::new()).unwrap();
            let catalog = profile.catalog().unwrap();
            let list = AllowList::of_catalog(&catalog);
            let reported: BTreeSet<&str> = list.unlisted.iter().map(|u| u.detection.as_str()).collect();
            for record in &records {
                let event_name = record["eventName"].as_str().unwrap_or("").to_string();
                let (fired, _) = catalog.evaluate(record.clone());
                for d in fired.iter().map(|&i| &catalog.detections[i]) {
                    assert!(
                        list.names.contains(&event_name) || reported.contains(d.id.as_str()),
                        "{name}: {} fires on {event_name}, which the list neither holds nor reports",
                        d.id
                    );
                }
            }
            for expected in ["StopLogging", "DeleteTrail", "DeleteBucket", "ScheduleKeyDeletion", "ConsoleLogin"] {
                assert!(list.names.contains(expected) || name == "cis-aws-foundations", "{name}: {expected}");
            }
            for open in ["cis-4.1", "cis-4.3"] {
                assert!(reported.contains(open), "{name}: {open} can match any event name");
            }
        }
    }

    #[test]
    fn the_list_reports_what_it_cannot_name() {
        let list = AllowList::of(&[
            rule(json!({"detail": {"eventName": ["DeleteBucket", {"prefix": "DeleteFunction2"}]}})),
            alarm(r#"{ $.eventName = "StopLogging" }"#),
            alarm(r#"{ $.userIdentity.type = "Root" }"#),
        ]);
        assert_eq!(list.names, ["DeleteBucket".to_string(), "StopLogging".to_string()].into());
        assert_eq!(list.unlisted.len(), 2);
        assert_eq!(list.unlisted[0].why, "names starting with \"DeleteFunction2\"");
        assert_eq!(list.unlisted[1].why, "any event name");
    }
}
