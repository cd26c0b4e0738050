//! Property tests: parsing and matching never panic on any JSON, every pattern built only from
//! documented forms parses, and a few facts that hold whatever the event.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

/// Cases per property: enough to reach every operator form, few enough that the whole property
/// suite stays within seconds in a debug build.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// Keys for events and patterns: a few field names, and the operator names, so arbitrary JSON
/// often looks like an operator object. `$or` only in patterns: an event key `$or` could not be
/// addressed by a pattern at all.
const FIELDS: &[&str] = &["source", "detail", "eventName", "a", "b", ""];
const OPERATORS: &[&str] =
    &["prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case", "wildcard", "exactly"];

fn field() -> impl Strategy<Value = String> {
    prop::sample::select(FIELDS).prop_map(str::to_owned)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9*\\\\./:-]{0,8}",
        prop::sample::select(&["10.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", "*", "**", "\\"][..])
            .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        (-5_000_000_000i64..=5_000_000_000).prop_map(Value::from),
        (-5_000_000i64..5_000_000).prop_map(|m| json!(m as f64 / 1000.0)),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)]
}

/// Any JSON value, with keys that are often field or operator names.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        field(),
        prop::sample::select(OPERATORS).prop_map(str::to_owned),
        Just("$or".to_owned()),
        any::<String>()
    ];
    scalar().prop_recursive(5, 48, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Events: objects over the field names, nested a few levels, with arrays.
fn event() -> impl Strategy<Value = Value> {
    let tree = scalar().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(field(), tree, 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A string for the operators that take one: no `**` and no stray backslash, so wildcards
/// built from it are valid.
fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.:-]{0,4}(\\*[a-zA-Z0-9.:-]{1,3}){0,2}\\*?"
}

fn nonempty_word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.:-]{1,6}"
}

/// A number numeric matching accepts: within +/-5e9, at most six decimals.
fn comparable_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-5_000_000_000i64..=5_000_000_000).prop_map(|n| n as f64),
        (-5_000_000i64..5_000_000).prop_map(|m| m as f64 / 1000.0)
    ]
}

fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), 0..=32u8).prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(a))),
        (any::<u128>(), 0..=128u8).prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
    ]
}

fn words() -> impl Strategy<Value = Value> {
    prop_oneof![
        nonempty_word().prop_map(Value::String),
        prop::collection::vec(nonempty_word(), 1..3).prop_map(|w| json!(w))
    ]
}

/// One entry of a leaf array, in every documented form.
fn entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        word().prop_map(Value::String),
        comparable_number().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        word().prop_map(|w| json!({ "prefix": w })),
        word().prop_map(|w| json!({ "prefix": { "equals-ignore-case": w } })),
        word().prop_map(|w| json!({ "suffix": w })),
        word().prop_map(|w| json!({ "suffix": { "equals-ignore-case": w } })),
        word().prop_map(|w| json!({ "equals-ignore-case": w })),
        word().prop_map(|w| json!({ "wildcard": w })),
        word().prop_map(|w| json!({ "anything-but": w })),
        comparable_number().prop_map(|n| json!({ "anything-but": n })),
        prop::collection::vec(word(), 1..3).prop_map(|w| json!({ "anything-but": w })),
        prop::collection::vec(comparable_number(), 1..3).prop_map(|n| json!({ "anything-but": n })),
        words().prop_map(|w| json!({ "anything-but": { "prefix": w } })),
        words().prop_map(|w| json!({ "anything-but": { "suffix": w } })),
        words().prop_map(|w| json!({ "anything-but": { "equals-ignore-case": w } })),
        words().prop_map(|w| json!({ "anything-but": { "wildcard": w } })),
        (prop::sample::select(&["=", "<", "<=", ">", ">="][..]), comparable_number())
            .prop_map(|(op, n)| json!({ "numeric": [op, n] })),
        (
            prop::sample::select(&[">", ">="][..]),
            -5_000_000i64..5_000_000,
            1..1_000_000i64,
            prop::sample::select(&["<", "<="][..])
        )
            .prop_map(|(low_op, low, span, high_op)| json!({ "numeric": [low_op, low, high_op, low + span] })),
        any::<bool>().prop_map(|b| json!({ "exists": b })),
        cidr().prop_map(|c| json!({ "cidr": c })),
    ]
}

/// Patterns built only from documented forms: nested fields, leaf arrays of every operator,
/// and `$or` at any level.
fn valid_pattern() -> impl Strategy<Value = Value> {
    let leaf = prop::collection::vec(entry(), 1..4).prop_map(Value::Array);
    let fields = |inner: BoxedStrategy<Value>| {
        prop::collection::btree_map(prop::sample::select(&["source", "detail", "eventName", "a", "b"][..]), inner, 1..3)
            .prop_map(|m| Map::from_iter(m.into_iter().map(|(k, v)| (k.to_owned(), v))))
    };
    leaf.prop_recursive(3, 24, 3, move |inner| {
        let object = fields(inner.clone().boxed()).prop_map(Value::Object);
        let with_or = (fields(inner.clone().boxed()), prop::collection::vec(fields(inner.boxed()), 2..4)).prop_map(
            |(mut base, branches)| {
                base.insert("$or".into(), Value::Array(branches.into_iter().map(Value::Object).collect()));
                Value::Object(base)
            },
        );
        prop_oneof![3 => object, 1 => with_or]
    })
    .prop_filter("the root is an object of fields", Value::is_object)
}

/// Paths through objects only to a scalar, with the scalar.
fn scalar_fields(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                scalar_fields(v, path, out);
                path.pop();
            }
        }
        Value::Array(_) => {}
        scalar => out.push((path.clone(), scalar.clone())),
    }
}

/// `event` with `value` at `path`, replacing whatever stood in the way.
fn plant(mut event: Value, path: &[String], value: Value) -> Value {
    let mut at = &mut event;
    for key in path {
        if !at.is_object() {
            *at = json!({});
        }
        at = at.as_object_mut().expect("just made an object").entry(key.clone()).or_insert(Value::Null);
    }
    *at = value;
    event
}

/// `{"a": {"b": [leaf]}}` for the path `a.b`.
fn pattern_at(path: &[String], leaf: Value) -> Value {
    path.iter().rev().fold(Value::Array(vec![leaf]), |inner, key| json!({ key.as_str(): inner }))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_and_matching_any_json_never_panics(pattern in json_value(), event in json_value()) {
        if let Ok(p) = EventPattern::parse(&pattern) {
            let _ = p.matches(&event);
        }
    }

    #[test]
    fn patterns_from_documented_forms_parse(pattern in valid_pattern(), events in prop::collection::vec(event(), 1..4)) {
        let parsed = EventPattern::parse(&pattern);
        prop_assert!(parsed.is_ok(), "{pattern}: {:?}", parsed.err());
        let parsed = parsed.unwrap();
        for event in &events {
            let _ = parsed.matches(event);
        }
    }

    #[test]
    fn a_field_matches_its_own_value_and_anything_but_it_does_not(
        event in event(),
        planted in (prop::collection::vec(field(), 1..4), scalar()),
        pick in any::<prop::sample::Index>(),
    ) {
        // Plant one scalar so every event has a field to pick.
        let event = plant(event, &planted.0, planted.1);
        let mut fields = Vec::new();
        scalar_fields(&event, &mut Vec::new(), &mut fields);
        let (path, value) = &fields[pick.index(fields.len())];
        let exact = EventPattern::parse(&pattern_at(path, value.clone())).unwrap();
        prop_assert!(exact.matches(&event), "{value} at {path:?} in {event}");
        // anything-but takes strings and numbers numeric matching can represent.
        if let Ok(but) = EventPattern::parse(&pattern_at(path, json!({ "anything-but": [value] }))) {
            prop_assert!(!but.matches(&event), "anything-but [{value}] at {path:?} in {event}");
        }
    }

    #[test]
    fn a_number_equals_itself_under_numeric_equality(n in comparable_number()) {
        let event = json!({ "n": n });
        let p = EventPattern::parse(&json!({ "n": [{ "numeric": ["=", n] }] })).unwrap();
        prop_assert!(p.matches(&event), "numeric = {n}");
    }
}
