//! Property tests: parsing never panics on any text, every pattern the grammar generates parses,
//! matching never panics on any event, and a few facts that hold whatever the input.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Cases per property: enough to reach every production, few enough that the whole property
/// suite stays within seconds in a debug build.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// Property names used both in events and in selectors, so generated patterns hit fields.
const NAMES: &[&str] = &["eventName", "errorCode", "a", "b", "user-id", "x_1"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_owned)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6..1e6f64).prop_map(Value::from),
        "[a-zA-Z0-9 *\"\\\\.:-]{0,12}".prop_map(Value::String),
    ]
}

/// JSON log events, nested a few levels, over the same property names as the patterns.
fn event() -> impl Strategy<Value = Value> {
    let leaf = scalar();
    let tree = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(name(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(name(), tree, 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn selector() -> impl Strategy<Value = String> {
    let step = prop_oneof![3 => name().prop_map(|n| format!(".{n}")), 1 => (0..3usize).prop_map(|i| format!("[{i}]"))];
    (name(), prop::collection::vec(step, 0..3)).prop_map(|(first, rest)| format!("$.{first}{}", rest.concat()))
}

/// A value as the grammar writes it: quoted (with `\"` for a quote), an unquoted word, or a
/// number, with `*` wildcards at either end.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .:@$-]{0,10}".prop_map(|s| format!("\"{s}\"")),
        "\\*?[a-zA-Z][a-zA-Z0-9._-]{0,8}\\*?",
        any::<i32>().prop_map(|n| n.to_string()),
        "-?[0-9]{1,4}\\.[0-9]{1,3}",
        "[0-9]{1,3}[eE][+-]?[0-9]{1,2}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![any::<i32>().prop_map(|n| n.to_string()), "-?[0-9]{1,4}\\.[0-9]{1,3}", "[0-9]{1,3}e[0-9]"]
}

fn condition() -> impl Strategy<Value = String> {
    let test = prop_oneof![
        (prop::sample::select(&["=", "!="][..]), value()).prop_map(|(op, v)| format!("{op} {v}")),
        (prop::sample::select(&["<", "<=", ">", ">="][..]), number()).prop_map(|(op, n)| format!("{op} {n}")),
        prop::sample::select(&["IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS"][..]).prop_map(str::to_owned),
    ];
    (selector(), test).prop_map(|(s, t)| format!("{s} {t}"))
}

/// An expression from the grammar: conditions joined by `&&` and `||`, some parenthesized.
fn expression() -> impl Strategy<Value = String> {
    condition().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            (inner.clone(), prop::sample::select(&[" && ", " || ", "&&", "||"][..]), inner)
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
        ]
    })
}

fn pattern() -> impl Strategy<Value = String> {
    (expression(), prop::sample::select(&["", " ", "  "][..])).prop_map(|(e, pad)| format!("{{{pad}{e}{pad}}}"))
}

/// A generated pattern with one character deleted, replaced or inserted.
fn mutated() -> impl Strategy<Value = String> {
    (
        pattern(),
        any::<prop::sample::Index>(),
        prop::sample::select(&['{', '}', '(', ')', '"', '=', '&', '|', '[', '$', ' ', 'x'][..]),
        0..3u8,
    )
        .prop_map(|(p, at, c, how)| {
            let mut chars: Vec<char> = p.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => {
                    chars.remove(i);
                }
                1 => chars[i] = c,
                _ => chars.insert(i, c),
            }
            chars.into_iter().collect()
        })
}

/// The event's string fields reachable through objects, with their selector.
fn string_fields(value: &Value, selector: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                string_fields(v, &format!("{selector}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                string_fields(v, &format!("{selector}[{i}]"), out);
            }
        }
        Value::String(s) => out.push((selector.to_string(), s.clone())),
        _ => {}
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_any_text_never_panics(text in any::<String>()) {
        let _ = FilterPattern::parse(&text);
    }

    #[test]
    fn parsing_grammar_like_text_never_panics(text in "[{}()$.\\[\\]a-zA-Z0-9 =!<>&|\"*\\\\%-]{0,60}", event in event()) {
        if let Ok(p) = FilterPattern::parse(&text) {
            let _ = p.matches(&event);
        }
    }

    #[test]
    fn every_pattern_the_grammar_generates_parses(p in pattern(), event in event()) {
        let parsed = FilterPattern::parse(&p);
        prop_assert!(parsed.is_ok(), "{p:?}: {:?}", parsed.err());
        let _ = parsed.unwrap().matches(&event);
    }

    #[test]
    fn mutated_patterns_never_panic(p in mutated(), event in event()) {
        if let Ok(parsed) = FilterPattern::parse(&p) {
            let _ = parsed.matches(&event);
        }
    }

    #[test]
    fn a_field_equals_its_own_value_and_not_a_different_one(
        event in event(),
        planted in (name(), "[a-zA-Z0-9 *\"\\\\.:-]{0,12}[a-zA-Z0-9 *\".:-]"),
        pick in any::<prop::sample::Index>(),
    ) {
        // Plant one string so every event has a field to pick.
        let mut event = event;
        event.as_object_mut().expect("events are objects").insert(planted.0, Value::String(planted.1));
        let mut fields = Vec::new();
        string_fields(&event, "$", &mut fields);
        let (selector, value) = &fields[pick.index(fields.len())];
        // A backslash just before the closing quote would escape it: no quoted value ends so.
        prop_assume!(!value.ends_with('\\'));
        let quoted = value.replace('"', "\\\"");
        let equal = FilterPattern::parse(&format!("{{ {selector} = \"{quoted}\" }}")).unwrap();
        let not_equal = FilterPattern::parse(&format!("{{ {selector} != \"{quoted}\" }}")).unwrap();
        prop_assert!(equal.matches(&event), "{selector} = {value:?} on {event}");
        prop_assert!(!not_equal.matches(&event), "{selector} != {value:?} on {event}");
    }

    #[test]
    fn a_number_field_equals_itself_as_written(n in prop_oneof![any::<i64>().prop_map(Value::from), any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from)]) {
        let event = Value::Object(Map::from_iter([("n".to_string(), n.clone())]));
        let p = FilterPattern::parse(&format!("{{ $.n = {n} }}")).unwrap();
        prop_assert!(p.matches(&event), "$.n = {n}");
    }
}

#[test]
fn deeply_nested_parentheses_are_an_error_not_a_stack_overflow() {
    let nested = |depth: usize| format!("{{ {}$.a = 1{} }}", "(".repeat(depth), ")".repeat(depth));
    let event = serde_json::json!({ "a": 1 });
    // As deep as the parser goes: it parses and matches on a test thread's stack.
    assert!(FilterPattern::parse(&nested(MAX_NESTING)).unwrap().matches(&event));
    // Deeper, up to what 1024 characters allow, is refused; this used to overflow the stack.
    let e = FilterPattern::parse(&nested(MAX_NESTING + 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("character {}: parentheses nested more than {MAX_NESTING} deep", MAX_NESTING + 3)
    );
    assert!(FilterPattern::parse(&nested(500)).is_err());
    assert!(FilterPattern::parse(&format!("{{ {}", "(".repeat(1020))).is_err());
}
