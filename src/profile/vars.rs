//! `${name}` placeholders. Names are `[A-Za-z_][A-Za-z0-9_]*`; anything else inside `${…}`
//! (IAM policy variables such as `${aws:username}`) is left for AWS to interpret.

use std::collections::BTreeMap;

use serde_json::Value;

pub type Vars = BTreeMap<String, Value>;

/// A placeholder that no variable defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unresolved placeholder ${{{name}}}")]
pub struct Unresolved {
    pub name: String,
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Yields (start, end, name) for each ctguard placeholder in `s`.
fn placeholders(s: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(rel) = s[from..].find("${") {
            let start = from + rel;
            let len = s[start + 2..].find('}')?;
            let end = start + 2 + len + 1;
            let name = &s[start + 2..end - 1];
            from = end;
            if is_var_name(name) {
                return Some((start, end, name));
            }
        }
        None
    })
}

/// Names referenced by `s`.
pub fn references(s: &str) -> Vec<String> {
    placeholders(s).map(|(_, _, n)| n.to_string()).collect()
}

/// Interpolates `s`. A string that is exactly one placeholder takes the variable's value
/// whatever its type (so a list can fill a JSON array); otherwise values are spliced as text.
pub fn substitute(s: &str, vars: &Vars) -> Result<Value, Unresolved> {
    let found: Vec<_> = placeholders(s).collect();
    if let [(0, end, name)] = found.as_slice()
        && *end == s.len()
    {
        return vars.get(*name).cloned().ok_or_else(|| Unresolved { name: name.to_string() });
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (start, end, name) in found {
        let value = vars.get(name).ok_or_else(|| Unresolved { name: name.to_string() })?;
        out.push_str(&s[last..start]);
        match value {
            Value::String(v) => out.push_str(v),
            other => out.push_str(&other.to_string()),
        }
        last = end;
    }
    out.push_str(&s[last..]);
    Ok(Value::String(out))
}

/// Substitutes in every string of a JSON document. On failure returns the JSON path of the
/// string that held the unresolved placeholder.
pub fn substitute_json(doc: &Value, vars: &Vars) -> Result<Value, (String, Unresolved)> {
    fn walk(v: &Value, vars: &Vars, path: &mut String) -> Result<Value, (String, Unresolved)> {
        Ok(match v {
            Value::String(s) => substitute(s, vars).map_err(|e| (path.clone(), e))?,
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(walk(item, vars, path)?);
                    path.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, item) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    out.insert(k.clone(), walk(item, vars, path)?);
                    path.truncate(len);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    walk(doc, vars, &mut String::from("$"))
}

/// Resolves variables that refer to other variables, in any order. Returns every variable,
/// and a problem for each root cause that stops some from resolving: a placeholder nothing
/// defines, or a cycle (reported once, at its first member). A variable that cannot be resolved
/// keeps its raw value, so it is reported here once rather than again at every use.
pub fn resolve_all(mut pending: Vars, known: &Vars) -> (Vars, Vec<(String, String)>) {
    let mut done = known.clone();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vars::new();
        for (name, value) in pending {
            match substitute_json(&value, &done) {
                Ok(v) => {
                    done.insert(name, v);
                }
                Err(_) => {
                    still.insert(name, value);
                }
            }
        }
        if still.len() == before {
            let problems = stuck(&still, &done);
            done.extend(still);
            return (done, problems);
        }
        pending = still;
    }
    (done, Vec::new())
}

/// Why no variable in `stuck` resolves, given the variables already `done`.
fn stuck(stuck: &Vars, done: &Vars) -> Vec<(String, String)> {
    // Each stuck variable waits on its first reference that is not resolved yet; following
    // those links ends at a name nothing defines or goes round a cycle.
    let waits_on = |value: &Value| json_references(value).into_iter().find(|r| !done.contains_key(r));
    let mut problems = Vec::new();
    let mut in_reported_cycle = std::collections::BTreeSet::new();
    for (name, value) in stuck {
        let Some(next) = waits_on(value) else { continue };
        if !stuck.contains_key(&next) {
            problems.push((name.clone(), Unresolved { name: next }.to_string()));
            continue;
        }
        let mut chain = vec![name.clone()];
        let mut at = next;
        while !chain.contains(&at) {
            chain.push(at.clone());
            match stuck.get(&at).and_then(waits_on) {
                Some(next) if stuck.contains_key(&next) => at = next,
                _ => break,
            }
        }
        // Only a chain that comes back to `name` is a cycle through it; any other is reported
        // at its own root.
        if at == *name && !in_reported_cycle.contains(name) {
            in_reported_cycle.extend(chain.iter().cloned());
            chain.push(name.clone());
            let message = format!("the variables refer to each other in a cycle: {}", chain.join(" -> "));
            problems.push((name.clone(), message));
        }
    }
    problems
}

/// Names referenced anywhere in a JSON value's strings, in document order.
fn json_references(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => references(s),
        Value::Array(items) => items.iter().flat_map(json_references).collect(),
        Value::Object(map) => map.values().flat_map(json_references).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars::from([
            ("account_id".into(), json!("123456789012")),
            ("regions".into(), json!(["us-east-1", "eu-west-1"])),
        ])
    }

    #[test]
    fn interpolates_inside_text() {
        assert_eq!(substitute("a-${account_id}-b", &vars()).unwrap(), json!("a-123456789012-b"));
    }

    #[test]
    fn whole_placeholder_takes_the_value_type() {
        assert_eq!(substitute("${regions}", &vars()).unwrap(), json!(["us-east-1", "eu-west-1"]));
    }

    #[test]
    fn iam_policy_variables_pass_through() {
        assert_eq!(substitute("home/${aws:username}/*", &vars()).unwrap(), json!("home/${aws:username}/*"));
    }

    #[test]
    fn unresolved_is_an_error() {
        assert_eq!(substitute("x${nope}", &vars()).unwrap_err().name, "nope");
    }

    #[test]
    fn json_error_names_the_path() {
        let doc = json!({"Statement": [{"Resource": "arn:${missing}"}]});
        let (path, err) = substitute_json(&doc, &vars()).unwrap_err();
        assert_eq!(path, "$.Statement[0].Resource");
        assert_eq!(err.name, "missing");
    }

    #[test]
    fn variables_resolve_through_each_other() {
        let pending = Vars::from([("b".into(), json!("${a}-logs")), ("a".into(), json!("audit-${account_id}"))]);
        let (all, problems) = resolve_all(pending, &vars());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(all["b"], json!("audit-123456789012-logs"));
    }

    #[test]
    fn cycles_are_reported_once_and_undefined_names_at_their_root() {
        let pending = Vars::from([
            ("a".into(), json!("${b}")),
            ("b".into(), json!("x-${a}")),
            ("c".into(), json!("${a}")),
            ("d".into(), json!("${nope}")),
            ("e".into(), json!("${d}")),
            ("f".into(), json!("${f}")),
            ("ok".into(), json!("${account_id}")),
        ]);
        let (all, problems) = resolve_all(pending, &vars());
        assert_eq!(
            problems,
            vec![
                ("a".to_string(), "the variables refer to each other in a cycle: a -> b -> a".to_string()),
                ("d".to_string(), "unresolved placeholder ${nope}".to_string()),
                ("f".to_string(), "the variables refer to each other in a cycle: f -> f".to_string()),
            ]
        );
        // The rest still resolve, and the stuck ones keep their raw text.
        assert_eq!(all["ok"], json!("123456789012"));
        assert_eq!(all["c"], json!("${a}"));
    }
}
