//! Policy documents: their canonical form, so that two documents AWS treats as the same
//! compare equal (key order, whitespace, a one-element list versus a string, statement order,
//! IAM's URL-encoding, condition values written as booleans or numbers versus strings), and
//! ownership inside a shared document (see `ownership`).

pub mod grants;
pub mod ownership;

use serde_json::{Map, Value};

/// Keys whose value may be a string or a list of strings with the same meaning.
const SET_KEYS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

/// Parses a policy as returned by AWS, in canonical form. IAM returns documents URL-encoded
/// (RFC 3986); S3, KMS and CloudWatch Logs return plain JSON.
pub fn parse_live(text: &str) -> anyhow::Result<Value> {
    Ok(canonical(&parse_raw(text)?))
}

/// Parses a policy as returned by AWS, exactly as written: for the statements ctguard keeps.
pub fn parse_raw(text: &str) -> anyhow::Result<Value> {
    let trimmed = text.trim_start();
    let decoded;
    let json = if trimmed.starts_with('{') {
        text
    } else {
        decoded = percent_encoding::percent_decode_str(text).decode_utf8()?;
        &decoded
    };
    Ok(serde_json::from_str(json)?)
}

/// The canonical form of a policy document.
pub fn canonical(doc: &Value) -> Value {
    let Value::Object(map) = doc else { return doc.clone() };
    let mut out = Map::new();
    for (k, v) in map {
        let v = match k.as_str() {
            "Statement" => statements(v),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn statements(v: &Value) -> Value {
    let list = match v {
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    let mut list: Vec<Value> = list.iter().map(statement).collect();
    // Statement order carries no meaning; sort by Sid, then by content.
    list.sort_by_cached_key(|s| (s.get("Sid").and_then(Value::as_str).unwrap_or("").to_string(), s.to_string()));
    Value::Array(list)
}

fn statement(v: &Value) -> Value {
    let Value::Object(map) = v else { return v.clone() };
    let mut out = Map::new();
    for (k, v) in map {
        let v = match k.as_str() {
            k if SET_KEYS.contains(&k) => string_set(v),
            "Principal" | "NotPrincipal" => principal(v),
            "Condition" => condition(v),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Sorted, de-duplicated; a single element collapses to a bare string.
fn string_set(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(scalar_as_string).collect();
            items.sort_by_key(|i| i.to_string());
            items.dedup();
            if items.len() == 1 { items.pop().unwrap_or(Value::Null) } else { Value::Array(items) }
        }
        other => scalar_as_string(other),
    }
}

fn scalar_as_string(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

fn principal(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), string_set(v))).collect()),
        other => other.clone(),
    }
}

/// `{"Operator": {"key": value-or-list}}`: values are a set of strings.
fn condition(v: &Value) -> Value {
    let Value::Object(ops) = v else { return v.clone() };
    let ops = ops
        .iter()
        .map(|(op, keys)| {
            let keys = match keys {
                Value::Object(keys) => Value::Object(keys.iter().map(|(k, v)| (k.clone(), string_set(v))).collect()),
                other => other.clone(),
            };
            (op.clone(), keys)
        })
        .collect();
    Value::Object(ops)
}

/// The canonical form of an EventBridge event pattern. Every array in a pattern is a set of
/// alternatives (values, `$or` branches, operator objects), so order carries no meaning.
pub fn canonical_pattern(v: &Value) -> Value {
    match v {
        // `numeric` takes ordered operator/operand pairs: the one list whose order means something.
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), if k == "numeric" { v.clone() } else { canonical_pattern(v) }))
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical_pattern).collect();
            items.sort_by_cached_key(|i| i.to_string());
            items.dedup();
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reordered_policy_is_equal() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "B", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "A", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b"],
             "Condition": {"Bool": {"aws:SecureTransport": false}}}
        ]});
        let b = json!({"Statement": [
            {"Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}, "Sid": "A", "Effect": "Deny",
             "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
            {"Resource": ["arn:aws:s3:::b/*"], "Action": "s3:PutObject", "Effect": "Allow", "Sid": "B"}
        ], "Version": "2012-10-17"});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn single_statement_object_equals_list() {
        let a = json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}});
        let b = json!({"Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"]}]});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn principal_lists_collapse() {
        let a = json!({"Statement": [{"Principal": {"Service": ["cloudtrail.amazonaws.com"]}}]});
        let b = json!({"Statement": [{"Principal": {"Service": "cloudtrail.amazonaws.com"}}]});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn iam_url_encoded_documents_decode() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let plain = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]});
        assert_eq!(parse_live(encoded).unwrap(), canonical(&plain));
    }

    #[test]
    fn event_patterns_ignore_order() {
        let a = json!({"detail": {"eventName": ["B", "A"]}, "$or": [{"x": [1]}, {"y": [2]}]});
        let b = json!({"$or": [{"y": [2]}, {"x": [1]}], "detail": {"eventName": ["A", "B"]}});
        assert_eq!(canonical_pattern(&a), canonical_pattern(&b));
        assert_ne!(canonical_pattern(&a), canonical_pattern(&json!({"detail": {"eventName": ["A"]}})));
    }

    #[test]
    fn a_changed_statement_is_not_equal() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents"}]});
        let b = json!({"Statement": [{"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:*"]}]});
        assert_ne!(canonical(&a), canonical(&b));
    }
}
