//! One resource's attribute differences as text, the way Terraform renders JSON attributes:
//! documents (policies, event patterns, targets) as indented, nested blocks in which only the
//! changed keys and elements carry a symbol, added or removed values in full, and unchanged
//! parts of a value that changed counted, not shown.
//!
//! The plan lists differences by path (`policy.Statement[Tls].Effect`, with `[Sid]` naming a
//! policy statement); the paths that share a top-level attribute are put back into one tree.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::Value;

use super::human::Paint;
use crate::plan::{Action, AttrDiff};

/// Writes every difference, each top-level attribute once, at `indent` spaces. `action` is the
/// resource's: inside a resource being created every block is new, inside one being updated a
/// block holding changes is itself changed, not new, even when all its changes are additions.
pub fn write_diffs(w: &mut dyn Write, p: Paint, diffs: &[AttrDiff], action: Action, indent: usize) -> io::Result<()> {
    let mut tree = Node::default();
    for d in diffs {
        tree.insert(&segments(&d.path), d);
    }
    let blocks = match action {
        Action::Create | Action::Delete => action,
        _ => Action::Update,
    };
    let mut out = Out { w, p, forced: false, blocks };
    out.children(&tree, indent)
}

/// One step of a path: an object key, or a policy statement picked by its Sid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Key(String),
    Sid(String),
}

/// `a.b[Sid].c` as segments. Paths join keys with dots, and some keys hold dots themselves
/// (a subscription's `email:alerts@example.com`, a URL): a key that has a `:` or `@` before
/// its next dot runs to the next `[` or the end. Elsewhere a dotted key shows as one more
/// level than the document has, nothing worse.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or(inner.len());
            out.push(Segment::Sid(inner[..end].to_string()));
            rest = inner.get(end + 1..).unwrap_or("");
        } else {
            let rest_trim = rest.strip_prefix('.').unwrap_or(rest);
            let mut end = rest_trim.find(['.', '[']).unwrap_or(rest_trim.len());
            if rest_trim[..end].contains([':', '@']) {
                end = rest_trim.find('[').unwrap_or(rest_trim.len());
            }
            out.push(Segment::Key(rest_trim[..end].to_string()));
            rest = &rest_trim[end..];
        }
    }
    out
}

#[derive(Default)]
struct Node<'a> {
    diff: Option<&'a AttrDiff>,
    children: BTreeMap<Segment, Node<'a>>,
}

impl<'a> Node<'a> {
    fn insert(&mut self, path: &[Segment], d: &'a AttrDiff) {
        match path.split_first() {
            None => self.diff = Some(d),
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest, d),
        }
    }
}

struct Out<'w> {
    w: &'w mut dyn Write,
    p: Paint,
    /// The line being written ends with "# forces replacement".
    forced: bool,
    /// The symbol of a block that holds changes without being changed whole.
    blocks: Action,
}

fn change_of(before: Option<&Value>, after: Option<&Value>) -> Action {
    match (before, after) {
        (None, _) => Action::Create,
        (_, None) => Action::Delete,
        _ => Action::Update,
    }
}

fn sym(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Delete => "-",
        Action::Update | Action::Replace | Action::Adopt => "~",
        Action::NoOp => " ",
    }
}

/// A key as Terraform shows it: bare when it is an identifier, quoted otherwise.
fn label(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_string() } else { Value::from(key).to_string() }
}

fn scalar(v: &Value) -> String {
    v.to_string()
}

fn is_compound(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

impl Out<'_> {
    fn line(&mut self, indent: usize, action: Action, text: &str) -> io::Result<()> {
        let body = format!("{} {text}", sym(action));
        let forced = if std::mem::take(&mut self.forced) { " # forces replacement" } else { "" };
        writeln!(self.w, "{:indent$}{}{}", "", self.p.action(action, &body), self.p.action(Action::Delete, forced))
    }

    /// A line without a symbol: an unchanged identifier, a closing bracket, a count.
    fn plain(&mut self, indent: usize, text: &str) -> io::Result<()> {
        writeln!(self.w, "{:indent$}  {text}", "")
    }

    fn children(&mut self, node: &Node, indent: usize) -> io::Result<()> {
        // As Terraform does, attributes on one line are aligned with each other, not blocks.
        let width = node
            .children
            .iter()
            .filter(|(k, c)| c.diff.is_some() && matches!(k, Segment::Key(_)))
            .map(|(k, _)| label_of(k).len())
            .max()
            .unwrap_or(0);
        for (segment, child) in &node.children {
            self.forced = child.diff.is_some_and(|d| d.forces_replacement);
            let key = format!("{:width$}", label_of(segment));
            match (child.diff, segment) {
                (Some(d), Segment::Sid(_)) => self.element(indent, d.before.as_ref(), d.after.as_ref())?,
                (Some(d), _) => self.attribute(indent, &key, d.before.as_ref(), d.after.as_ref())?,
                (None, Segment::Sid(sid)) => {
                    // A statement that changed inside: named by its Sid, as the document has it.
                    self.line(indent, self.blocks, "{")?;
                    self.plain(indent + 4, &format!("Sid = {}", Value::from(sid.as_str())))?;
                    self.children(child, indent + 4)?;
                    self.plain(indent, "},")?;
                }
                (None, Segment::Key(_)) => {
                    let list = child.children.keys().all(|k| matches!(k, Segment::Sid(_)));
                    let (open, close) = if list { ("[", "]") } else { ("{", "}") };
                    self.line(indent, self.blocks, &format!("{} = {open}", key.trim_end()))?;
                    self.children(child, indent + 4)?;
                    self.plain(indent, close)?;
                }
            }
        }
        Ok(())
    }

    /// `key = value`, `key = before -> after`, or a nested block when a value is a document.
    fn attribute(&mut self, indent: usize, key: &str, before: Option<&Value>, after: Option<&Value>) -> io::Result<()> {
        let action = change_of(before, after);
        if let (Some(b), Some(a)) = (before, after) {
            // From or to nothing: `[] -> ["x"]` says it best, when it fits.
            let empty = |v: &Value| {
                matches!(v, Value::Array(x) if x.is_empty()) || matches!(v, Value::Object(m) if m.is_empty())
            };
            let text = format!("{key} = {} -> {}", one_line(b), one_line(a));
            if (empty(b) || empty(a)) && indent + 2 + text.len() <= WIDTH {
                return self.line(indent, Action::Update, &text);
            }
        }
        match (before, after) {
            (Some(b), Some(a)) if (is_compound(b) || is_compound(a)) && same_shape(b, a) => {
                let (open, close) = if a.is_array() { ("[", "]") } else { ("{", "}") };
                self.line(indent, Action::Update, &format!("{key} = {open}"))?;
                self.changed(indent + 4, b, a)?;
                self.plain(indent, close)
            }
            (Some(b), Some(a)) if !is_compound(b) && !is_compound(a) => {
                self.line(indent, action, &format!("{key} = {} -> {}", scalar(b), scalar(a)))
            }
            (Some(b), Some(a)) => {
                self.whole(indent, Action::Delete, &format!("{key} = "), b, "")?;
                self.whole(indent, Action::Create, &format!("{key} = "), a, "")
            }
            (None, Some(v)) | (Some(v), None) => self.whole(indent, action, &format!("{key} = "), v, ""),
            (None, None) => Ok(()),
        }
    }

    /// An element of a list: a statement added, removed or replaced whole.
    fn element(&mut self, indent: usize, before: Option<&Value>, after: Option<&Value>) -> io::Result<()> {
        if let Some(b) = before {
            self.whole(indent, Action::Delete, "", b, ",")?;
        }
        if let Some(a) = after {
            self.whole(indent, Action::Create, "", a, ",")?;
        }
        Ok(())
    }

    /// A value added or removed: every line carries the symbol. A value that fits the line is
    /// written on it, as compact JSON.
    fn whole(&mut self, indent: usize, action: Action, prefix: &str, v: &Value, comma: &str) -> io::Result<()> {
        let inline = one_line(v);
        if indent + 2 + prefix.len() + inline.len() + comma.len() <= WIDTH {
            return self.line(indent, action, &format!("{prefix}{inline}{comma}"));
        }
        match v {
            Value::Object(m) if !m.is_empty() => {
                self.line(indent, action, &format!("{prefix}{{"))?;
                let width = m.keys().map(|k| label(k).len()).max().unwrap_or(0);
                for (k, v) in m {
                    self.whole(indent + 4, action, &format!("{:width$} = ", label(k)), v, "")?;
                }
                self.plain(indent, &format!("}}{comma}"))
            }
            Value::Array(items) if !items.is_empty() => {
                self.line(indent, action, &format!("{prefix}["))?;
                for item in items {
                    self.whole(indent + 4, action, "", item, ",")?;
                }
                self.plain(indent, &format!("]{comma}"))
            }
            other => self.line(indent, action, &format!("{prefix}{}{comma}", scalar(other))),
        }
    }

    /// Two documents of the same shape: what changed inside, the rest counted.
    fn changed(&mut self, indent: usize, before: &Value, after: &Value) -> io::Result<()> {
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => {
                let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
                let width = keys.iter().map(|k| label(k).len()).max().unwrap_or(0);
                let mut unchanged = 0;
                for k in keys {
                    let (bv, av) = (b.get(k), a.get(k));
                    if bv == av {
                        unchanged += 1;
                        continue;
                    }
                    self.attribute(indent, &format!("{:width$}", label(k)), bv, av)?;
                }
                self.hidden(indent, unchanged, "attribute")
            }
            (Value::Array(b), Value::Array(a)) => {
                // Elements are matched by value: what is only before was removed, what is only
                // after was added (event pattern lists, action lists: order carries no meaning).
                let mut unchanged = 0;
                for v in b {
                    if a.contains(v) {
                        unchanged += 1;
                    } else {
                        self.whole(indent, Action::Delete, "", v, ",")?;
                    }
                }
                for v in a.iter().filter(|v| !b.contains(v)) {
                    self.whole(indent, Action::Create, "", v, ",")?;
                }
                self.hidden(indent, unchanged, "element")
            }
            _ => Ok(()),
        }
    }

    fn hidden(&mut self, indent: usize, n: usize, what: &str) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let text = format!("# ({n} unchanged {what}{} hidden)", if n == 1 { "" } else { "s" });
        self.plain(indent, &text)
    }
}

/// Lines longer than this are broken into one value per line.
const WIDTH: usize = 100;

/// `{"a": 1, "b": [2, 3]}`: JSON on one line, spaced for reading.
fn one_line(v: &Value) -> String {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let items: Vec<String> =
                m.iter().map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), one_line(v))).collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(items) if !items.is_empty() => {
            format!("[{}]", items.iter().map(one_line).collect::<Vec<_>>().join(", "))
        }
        other => other.to_string(),
    }
}

fn label_of(segment: &Segment) -> String {
    match segment {
        Segment::Key(k) => label(k),
        Segment::Sid(s) => Value::from(s.as_str()).to_string(),
    }
}

fn same_shape(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_statements() {
        assert_eq!(
            segments("policy.Statement[Tls].Condition.Bool"),
            vec![
                Segment::Key("policy".into()),
                Segment::Key("Statement".into()),
                Segment::Sid("Tls".into()),
                Segment::Key("Condition".into()),
                Segment::Key("Bool".into()),
            ]
        );
        assert_eq!(segments("versioning"), vec![Segment::Key("versioning".into())]);
        assert_eq!(
            segments("subscriptions.email:alerts@example.com"),
            vec![Segment::Key("subscriptions".into()), Segment::Key("email:alerts@example.com".into())]
        );
    }
}
