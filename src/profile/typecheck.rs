//! Type-checks a profile's TOML against the schema in `types`, reporting every unknown key,
//! wrong type and bad value in one run, each with its line and in plain words.
//!
//! serde stops at the first error. So the document is parsed once into a tree, deserialized
//! with the path of any error kept (serde_path_to_error), and each error is recorded and then
//! repaired in the tree (an unknown key removed, a wrong value replaced by one of the expected
//! kind) before the next attempt, until the document deserializes or nothing more can be
//! repaired. The schema stays the serde types themselves: a field added there is checked here.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::Value;

use super::{Problem, SourceFile};

/// More problems than this in one file means something other than typos.
const MAX_PROBLEMS: usize = 50;

/// The document, or every problem found in it.
pub fn parse<T: DeserializeOwned>(file: &SourceFile) -> Result<T, Vec<Problem>> {
    let mut tree: toml::Table = toml::from_str(&file.text).map_err(|e| vec![syntax(file, &e)])?;
    let mut problems = Vec::new();
    // Keys put in to get past a missing one: what serde says about them next is not news.
    let mut stand_ins: Vec<String> = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match serde_path_to_error::deserialize::<_, T>(Value::Table(tree.clone())) {
            Ok(doc) if problems.is_empty() => return Ok(doc),
            Ok(_) => return Err(in_file_order(problems)),
            Err(e) => e,
        };
        let path: Vec<Segment> = error.path().iter().cloned().collect();
        let message = error.inner().message().trim().to_string();
        let found = Found::of(&message);
        let mut key_path = path.clone();
        if let Found::UnknownField(name) | Found::MissingField(name) = &found {
            // The unknown key itself is where the problem is; serde names it without a path.
            if !matches!(key_path.last(), Some(Segment::Map { key }) if key == name) {
                key_path.push(Segment::Map { key: name.clone() });
            }
        }
        let problem = Problem {
            file: file.display.clone(),
            line: line_of(&file.text, &key_path, matches!(found, Found::MissingField(_))),
            key: dotted(&key_path),
            message: plain(&message),
        };
        let repeated = problems.contains(&problem);
        let under_stand_in = stand_ins.iter().any(|s| problem.key == *s || problem.key.starts_with(&format!("{s}.")));
        if matches!(found, Found::MissingField(_)) && !under_stand_in {
            stand_ins.push(problem.key.clone());
        }
        if !repeated && !under_stand_in {
            problems.push(problem);
        }
        let stuck = repeated && !under_stand_in;
        if stuck
            || problems.len() >= MAX_PROBLEMS
            || attempts > 4 * MAX_PROBLEMS
            || !repair(&mut tree, &key_path, &found)
        {
            return Err(in_file_order(problems));
        }
    }
}

/// By line, as a reader fixes them; problems without a line last.
fn in_file_order(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| (p.line.is_none(), p.line));
    problems
}

fn syntax(file: &SourceFile, e: &toml::de::Error) -> Problem {
    let line = e.span().map(|s| file.text[..s.start].matches('\n').count() + 1);
    let key = line.map(|l| super::key_at_line(&file.text, l)).unwrap_or_default();
    Problem { file: file.display.clone(), line, key, message: e.message().trim().to_string() }
}

/// What serde's message says went wrong.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    UnknownField(String),
    MissingField(String),
    /// A value of the wrong type or out of the allowed set; what to put there instead.
    Expected(Value),
    Other,
}

impl Found {
    fn of(message: &str) -> Found {
        let quoted = |m: &str| m.split('`').nth(1).unwrap_or("").to_string();
        if message.starts_with("unknown field") {
            return Found::UnknownField(quoted(message));
        }
        if message.starts_with("missing field") {
            return Found::MissingField(quoted(message));
        }
        if message.starts_with("unknown variant") {
            // "unknown variant `x`, expected one of `a`, `b`": any of the listed ones will do.
            let first = message.split("expected").nth(1).and_then(|rest| rest.split('`').nth(1));
            return first.map_or(Found::Other, |v| Found::Expected(Value::String(v.to_string())));
        }
        let expected = message.rsplit("expected ").next().unwrap_or("");
        stand_in(expected).map_or(Found::Other, Found::Expected)
    }
}

/// A value of the kind serde's "expected …" names, to stand in while the rest is checked.
fn stand_in(expected: &str) -> Option<Value> {
    let e = expected.trim();
    Some(if e.starts_with("a boolean") {
        Value::Boolean(false)
    } else if e.starts_with('i') || e.starts_with('u') {
        Value::Integer(0)
    } else if e.starts_with('f') {
        Value::Float(0.0)
    } else if e.starts_with("a string") || e.starts_with("a borrowed string") {
        Value::String(String::new())
    } else if e.starts_with("a sequence") {
        Value::Array(Vec::new())
    } else if e.starts_with("a map") || e.starts_with("struct") {
        Value::Table(toml::Table::new())
    } else {
        return None;
    })
}

/// serde's wording, in words a person who writes TOML uses.
fn plain(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, words) in [
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u16", "expected a whole number, 0 or more"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a table"),
        ("invalid type: sequence", "invalid type: list"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: integer", "invalid type: whole number"),
        ("invalid type: floating point", "invalid type: number"),
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
        ("unknown variant", "unknown value"),
    ] {
        text = text.replace(rust, words);
    }
    // "expected struct TrailDoc": the table's name in Rust means nothing to the reader.
    if let Some(at) = text.find("expected struct ") {
        text.replace_range(at.., "expected a table");
    }
    if text.contains("did not match any variant of untagged enum") {
        text = "expected a list of strings, or a string (such as \"${variable}\")".into();
    }
    // The list of keys serde offers repeats the schema: keep it, spelt as keys.
    text.replace("expected one of", "expected one of:").replace('`', "")
}

/// `alarms[1].threshold`, as problems elsewhere name keys.
fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The line where the key at `path` is written; for a missing key, where its table starts.
fn line_of(text: &str, path: &[Segment], missing: bool) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table = Some(doc.get_ref());
    let mut value: Option<&toml::Spanned<toml::de::DeValue>> = None;
    let keys = if missing { &path[..path.len().saturating_sub(1)] } else { path };
    for s in keys {
        match s {
            Segment::Map { key } => {
                let (k, v) = table?.iter().find(|(k, _)| k.get_ref().as_ref() == key.as_str())?;
                span = Some(k.span());
                value = Some(v);
            }
            Segment::Seq { index } => {
                let item = value?.get_ref().as_array()?.get(*index)?;
                span = Some(item.span());
                value = Some(item);
            }
            _ => return None,
        }
        table = value.and_then(|v| v.get_ref().as_table());
    }
    let start = span?.start;
    // A table's span starts after its `[name]` header: report the header's line.
    let line = text[..start].matches('\n').count() + 1;
    Some(if missing { header_line(text, line) } else { line })
}

/// The line of the nearest table header at or above `line`.
fn header_line(text: &str, line: usize) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    (1..=line.min(lines.len())).rev().find(|&l| lines[l - 1].trim_start().starts_with('[')).unwrap_or(line)
}

/// Repairs the tree where the error was, so the next attempt gets past it. False when there is
/// nothing to repair.
fn repair(tree: &mut toml::Table, path: &[Segment], found: &Found) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    if parents.is_empty() {
        return fix_table(tree, last, found);
    }
    match walk(tree, parents) {
        Some(Value::Table(t)) => fix_table(t, last, found),
        Some(Value::Array(a)) => match (found, last) {
            (Found::Expected(v), Segment::Seq { index }) if *index < a.len() && a[*index] != *v => {
                a[*index] = v.clone();
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn fix_table(t: &mut toml::Table, last: &Segment, found: &Found) -> bool {
    let Segment::Map { key } = last else { return false };
    match found {
        Found::UnknownField(_) => t.remove(key).is_some(),
        // Only the key's name is known; if the schema wants another kind than a string, the
        // next attempt says which and that is repaired in turn.
        Found::MissingField(_) => t.insert(key.clone(), Value::String(String::new())).is_none(),
        Found::Expected(v) => t.insert(key.clone(), v.clone()).as_ref() != Some(v),
        Found::Other => false,
    }
}

/// The value at `path` below the root table.
fn walk<'a>(tree: &'a mut toml::Table, path: &[Segment]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let Segment::Map { key } = first else { return None };
    let mut value = tree.get_mut(key)?;
    for s in rest {
        value = match (s, value) {
            (Segment::Map { key }, Value::Table(t)) => t.get_mut(key)?,
            (Segment::Seq { index }, Value::Array(a)) => a.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        retention: i32,
        #[serde(default)]
        on: bool,
        level: Level,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Level {
        Low,
        High,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        #[serde(default)]
        count: i32,
    }

    fn file(text: &str) -> SourceFile {
        SourceFile { display: "p.toml".into(), text: text.into() }
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let text = "name = \"x\"\nretention = \"a year\"\non = \"yes\"\nlevel = \"urgent\"\ncolour = 1\n\n[[items]]\nid = \"a\"\ncuont = 2\n";
        let problems = parse::<Doc>(&file(text)).unwrap_err();
        let got: Vec<(Option<usize>, &str)> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(2), "retention"),
                (Some(3), "on"),
                (Some(4), "level"),
                (Some(5), "colour"),
                (Some(9), "items[0].cuont")
            ],
            "{problems:#?}"
        );
        assert_eq!(problems[0].message, "invalid type: string \"a year\", expected a whole number");
        assert_eq!(problems[2].message, "unknown value urgent, expected low or high");
        assert!(
            problems[3].message.starts_with("unknown key colour, expected one of: name, retention"),
            "{}",
            problems[3].message
        );
    }

    #[test]
    fn a_missing_key_is_reported_with_the_others() {
        let problems = parse::<Doc>(&file("level = \"low\"\nretention = true\n")).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["retention", "name"], "{problems:#?}");
        assert_eq!(problems[1].message, "missing key name");
        assert!(!problems.iter().any(|p| p.message.contains("i32") || p.message.contains("struct")));
    }

    #[test]
    fn a_missing_table_is_one_problem_not_one_per_key_inside_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Doc,
            other: i32,
        }
        let problems = parse::<Outer>(&file("other = \"x\"\n")).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["other", "inner"], "{problems:#?}");
    }

    #[test]
    fn a_valid_document_parses() {
        let doc = parse::<Doc>(&file("name = \"x\"\nretention = 3\nlevel = \"high\"\n")).unwrap();
        assert_eq!(doc.retention, 3);
    }
}
