//! Field-by-field difference between two attribute maps. Objects are compared key by key;
//! arrays of policy statements are matched by `Sid`; any other array is one value.

use serde_json::Value;

use super::{AttrDiff, Attrs};

/// Differences from `before` to `after`, in path order. A side that is `None` is absent.
pub fn diff(before: Option<&Attrs>, after: Option<&Attrs>) -> Vec<AttrDiff> {
    let mut out = Vec::new();
    let empty = Attrs::new();
    let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for key in keys {
        walk(key.clone(), b.get(key.as_str()), a.get(key.as_str()), &mut out);
    }
    out
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<AttrDiff>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                walk(format!("{path}.{k}"), b.get(k), a.get(k), out);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) if keyed_by_sid(b) && keyed_by_sid(a) => {
            let sid = |v: &Value| v.get("Sid").and_then(Value::as_str).unwrap_or("").to_string();
            let mut sids: Vec<String> = b.iter().chain(a.iter()).map(sid).collect();
            sids.sort();
            sids.dedup();
            for s in sids {
                let find = |list: &[Value]| list.iter().find(|v| sid(v) == s).cloned();
                let (bv, av) = (find(b), find(a));
                let path = format!("{path}[{s}]");
                // A statement added or removed reads best whole; a changed one, leaf by leaf.
                match (&bv, &av) {
                    (Some(_), Some(_)) => walk(path, bv.as_ref(), av.as_ref(), out),
                    _ => out.push(AttrDiff { path, before: bv, after: av, forces_replacement: false }),
                }
            }
        }
        // One side absent: list the other side's leaves, so a create reads field by field.
        (None, Some(Value::Object(m))) | (Some(Value::Object(m)), None) if !m.is_empty() => {
            for (k, v) in m {
                let (b, a) = if before.is_none() { (None, Some(v)) } else { (Some(v), None) };
                walk(format!("{path}.{k}"), b, a, out);
            }
        }
        (None, Some(Value::Array(list))) | (Some(Value::Array(list)), None) if keyed_by_sid(list) => {
            for v in list {
                let sid = v.get("Sid").and_then(Value::as_str).unwrap_or("");
                let (b, a) = if before.is_none() { (None, Some(v.clone())) } else { (Some(v.clone()), None) };
                out.push(AttrDiff { path: format!("{path}[{sid}]"), before: b, after: a, forces_replacement: false });
            }
        }
        _ => out.push(AttrDiff { path, before: before.cloned(), after: after.cloned(), forces_replacement: false }),
    }
}

/// Every element is an object with a distinct, non-empty `Sid`.
fn keyed_by_sid(list: &[Value]) -> bool {
    let sids: Vec<&str> =
        list.iter().filter_map(|v| v.get("Sid").and_then(Value::as_str)).filter(|s| !s.is_empty()).collect();
    let mut unique = sids.clone();
    unique.sort();
    unique.dedup();
    !list.is_empty() && sids.len() == list.len() && unique.len() == sids.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(key: &str, v: Value) -> Attrs {
        Attrs::from([(key.to_string(), v)])
    }

    #[test]
    fn nested_objects_diff_by_leaf() {
        let b = one("pab", json!({"block_public_acls": true, "restrict_public_buckets": false}));
        let a = one("pab", json!({"block_public_acls": true, "restrict_public_buckets": true}));
        let d = diff(Some(&b), Some(&a));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "pab.restrict_public_buckets");
    }

    #[test]
    fn statements_match_by_sid() {
        let b =
            one("policy", json!({"Statement": [{"Sid": "A", "Effect": "Allow"}, {"Sid": "Extra", "Effect": "Allow"}]}));
        let a =
            one("policy", json!({"Statement": [{"Sid": "A", "Effect": "Allow"}, {"Sid": "Tls", "Effect": "Deny"}]}));
        let paths: Vec<String> = diff(Some(&b), Some(&a)).into_iter().map(|d| d.path).collect();
        assert_eq!(paths, ["policy.Statement[Extra]", "policy.Statement[Tls]"]);
    }

    #[test]
    fn absent_sides() {
        let a = one("x", json!(1));
        let d = diff(None, Some(&a));
        assert_eq!((d[0].before.clone(), d[0].after.clone()), (None, Some(json!(1))));
        assert!(diff(Some(&a), Some(&a)).is_empty());
    }
}
