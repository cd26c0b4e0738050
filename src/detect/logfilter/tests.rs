//! Table-driven tests: the guide's own examples, close look-alikes that must not match,
//! precedence, the CIS texts ctguard ships or audits, and rejected patterns.

use serde_json::{Value, json};

use super::*;

fn parse(pattern: &str) -> FilterPattern {
    FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?} should parse: {e}"))
}

/// Runs `(pattern, expected)` cases against one event and reports every failure at once.
fn check(event: &Value, cases: &[(&str, bool)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter(|(pattern, expected)| parse(pattern).matches(event) != *expected)
        .map(|(pattern, expected)| format!("{pattern} on {event}: expected {expected}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The example log event of "JSON Metric Filter Examples".
fn guide_event() -> Value {
    json!({
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{ "name": "a", "id": 1 }, { "name": "b", "id": 2 }],
        "SomeObject": null,
        "ThisFlag": true
    })
}

#[test]
fn guide_examples_match() {
    check(
        &guide_event(),
        &[
            (r#"{ $.eventType = "UpdateTrail" }"#, true),
            ("{ $.sourceIPAddress != 123.123.* }", true),
            (r#"{ $.arrayKey[0] = "value" }"#, true),
            ("{ $.objectList[1].id = 2 }", true),
            ("{ $.SomeObject IS NULL }", true),
            ("{ $.SomeOtherObject NOT EXISTS }", true),
            ("{ $.ThisFlag IS TRUE }", true),
        ],
    );
}

#[test]
fn look_alikes_of_the_guide_examples_do_not_match() {
    check(
        &guide_event(),
        &[
            (r#"{ $.eventType = "updatetrail" }"#, false), // case sensitive
            (r#"{ $.eventType = "UpdateTrai" }"#, false),
            (r#"{ $.eventType = "UpdateTrails" }"#, false),
            ("{ $.sourceIPAddress != 111.111.* }", false),
            (r#"{ $.arrayKey[1] = "value" }"#, false),
            (r#"{ $.arrayKey[2] = "value" }"#, false), // past the end
            ("{ $.objectList[1].id = 1 }", false),
            ("{ $.objectList[0].id = 1 }", true),
            ("{ $.objectList[5].id NOT EXISTS }", true),
            ("{ $.objectList.id = 1 }", false), // no implicit array traversal
            ("{ $.SomeObject NOT EXISTS }", false),
            ("{ $.eventType IS NULL }", false),
            ("{ $.missing IS NULL }", false),
            ("{ $.ThisFlag IS FALSE }", false),
            ("{ $.ThisFlag NOT EXISTS }", false),
            ("{ $.eventType IS TRUE }", false),
        ],
    );
}

#[test]
fn wildcards_only_at_the_ends() {
    // "*Event will match PutEvent and GetEvent. Event* will match EventId and EventName.
    // Ev*ent will only match the actual string Ev*ent."
    let names = |name: &str| json!({ "eventName": name });
    let cases = [
        ("*Event", "PutEvent", true),
        ("*Event", "GetEvent", true),
        ("*Event", "PutEvents", false),
        ("Event*", "EventId", true),
        ("Event*", "EventName", true),
        ("Event*", "Event", true),
        ("Event*", "AnEvent", false),
        ("Ev*ent", "Ev*ent", true),
        ("Ev*ent", "Event", false),
        ("Ev*ent", "EvXent", false),
        ("*dateTr*", "UpdateTrail", true),
        ("*dateTr*", "UpdateTRAIL", false),
        ("*", "", true),
        ("*", "anything", true),
        ("\"*\"", "anything", true),
        ("\"\"", "", true),
        ("\"\"", "x", false),
        ("\"*UnauthorizedOperation\"", "Client.UnauthorizedOperation", true),
        ("\"AccessDenied*\"", "AccessDeniedException", true),
        ("\"AccessDenied*\"", "Client.AccessDenied", false),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(value, name, expected)| {
            parse(&format!("{{ $.eventName = {value} }}")).matches(&names(name)) != *expected
        })
        .map(|(value, name, expected)| format!("{value} on {name:?}: expected {expected}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparisons_need_a_value_node() {
    // "both {$.users = 1} and {$.users != 1} will fail to match" an array; likewise for a
    // missing field, null, booleans and objects: only NOT EXISTS sees a missing field.
    let event = json!({ "users": [1, 2, 3], "nothing": null, "flag": true, "object": { "a": 1 } });
    check(
        &event,
        &[
            ("{ $.users = 1 }", false),
            ("{ $.users != 1 }", false),
            ("{ $.users = * }", false),
            ("{ $.missing = x }", false),
            ("{ $.missing != x }", false),
            ("{ $.missing = * }", false),
            ("{ $.nothing = null }", false),
            ("{ $.nothing != x }", false),
            ("{ $.flag = true }", false),
            ("{ $.flag != false }", false),
            ("{ $.object != x }", false),
            ("{ $.object NOT EXISTS }", false),
            ("{ $.missing NOT EXISTS }", true),
            ("{ $.users[0] = 1 }", true),
            ("{ $.users[0] != 2 }", true),
        ],
    );
}

#[test]
fn not_equal_on_a_missing_field_does_not_match() {
    // The CIS 4.3 root filter relies on this only for present fields; a record without
    // eventType satisfies neither = nor !=.
    check(
        &json!({ "eventName": "x" }),
        &[(r#"{ $.eventType != "AwsServiceEvent" }"#, false), (r#"{ $.eventType = "AwsServiceEvent" }"#, false)],
    );
}

#[test]
fn numbers() {
    let event = json!({ "latency": 500, "text": "500", "decimal": 55.5, "negative": -3, "numbers": [5, 0.001], "account": "123456789012" });
    check(
        &event,
        &[
            ("{ $.latency >= 500 }", true),
            ("{ $.latency > 500 }", false),
            ("{ $.latency <= 500 }", true),
            ("{ $.latency < 500 }", false),
            ("{ $.latency > +499 }", true),
            ("{ $.latency < 10e3 }", true),
            ("{ $.latency < 5E2 }", false),
            ("{ $.numbers[1] < 10e-3 }", true),
            ("{ $.decimal <= 55.5 }", true),
            ("{ $.decimal < 55.5 }", false),
            ("{ $.negative < -2.5 }", true),
            ("{ $.negative > -2.5 }", false),
            ("{ $.latency = 500 }", true),
            ("{ $.latency = 500.0 }", true), // numerically equal
            ("{ $.latency != 500 }", false),
            ("{ $.latency != 501 }", true),
            (r#"{ $.latency = "500" }"#, true), // a string against a number compares the text
            ("{ $.latency = 5* }", true),
            ("{ $.latency = * }", true),  // the guide's `$.latency = *` for metricValue
            ("{ $.text >= 500 }", false), // numeric comparisons read numbers only
            ("{ $.text = 500 }", true),   // = against a string compares the text as written
            ("{ $.text = 500.0 }", false),
            ("{ $.account = 123456789012 }", true), // the guide's recipientAccountId example
            ("{ $.missing < 1 }", false),
            ("{ $.missing != 5 }", false),
        ],
    );
}

#[test]
fn compound_conditions_from_the_guide() {
    let event = json!({
        "user": { "id": 1, "email": "John.Stiles@example.com" },
        "users": [{ "id": 2, "email": "John.Doe@example.com" }, { "id": 3, "email": "Jane.Doe@example.com" }],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    });
    check(
        &event,
        &[
            (r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#, true),
            (r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#, false),
            (
                r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
                true,
            ),
            (
                r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
                false,
            ),
            ("{ $.coordinates[0][1] = 1 }", true),
            ("{ $.coordinates[2][2] >= 9 }", true),
            ("{ $.coordinates[1] = 4 }", false),
        ],
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let or_first = "{ $.a = 1 || $.b = 2 && $.c = 3 }"; // a || (b && c)
    let grouped = "{ ($.a = 1 || $.b = 2) && $.c = 3 }";
    let cases = [
        (json!({ "a": 1, "b": 0, "c": 0 }), true, false),
        (json!({ "a": 0, "b": 2, "c": 0 }), false, false),
        (json!({ "a": 0, "b": 2, "c": 3 }), true, true),
        (json!({ "a": 1, "b": 0, "c": 3 }), true, true),
    ];
    for (event, ungrouped_expected, grouped_expected) in cases {
        assert_eq!(parse(or_first).matches(&event), ungrouped_expected, "{or_first} on {event}");
        assert_eq!(parse(grouped).matches(&event), grouped_expected, "{grouped} on {event}");
    }
}

#[test]
fn whitespace_does_not_matter() {
    let event = json!({ "eventName": "ConsoleLogin", "n": 3 });
    for pattern in [
        "{$.eventName=ConsoleLogin&&$.n>2}",
        "{ $.eventName = ConsoleLogin && $.n > 2 }",
        "\n  {\t($.eventName\n=\n\"ConsoleLogin\")\n&&\n(  $.n  >  2  )  }\n",
    ] {
        assert!(parse(pattern).matches(&event), "{pattern:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// CloudTrail records and the CIS texts
// ---------------------------------------------------------------------------------------------

fn trail_record(event_name: &str, extra: Value) -> Value {
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": { "type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012" },
        "eventTime": "2025-01-02T03:04:05Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.5",
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012"
    });
    if let (Some(record), Some(extra)) = (record.as_object_mut(), extra.as_object()) {
        record.extend(extra.clone());
    }
    record
}

#[test]
fn cis_4_1_or_trap() {
    // Security Hub CloudWatch.2 (deployed) vs the CIS v1.4/v3.0 remediation text, which joins the
    // exclusions with || and so matches an ordinary successful call.
    let security_hub = parse(r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#);
    let v3 = parse(
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") || ($.sourceIPAddress!="delivery.logs.amazonaws.com") || ($.eventName!="HeadBucket") }"#,
    );
    let v5 = parse(
        r#"{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }"#,
    );

    let success = trail_record("RunInstances", json!({}));
    assert!(v3.matches(&success), "the v3.0 text fires on every successful call");
    assert!(!security_hub.matches(&success));
    assert!(!v5.matches(&success));

    let denied = trail_record("RunInstances", json!({ "errorCode": "Client.UnauthorizedOperation" }));
    assert!(security_hub.matches(&denied) && v3.matches(&denied) && v5.matches(&denied));

    let log_delivery_probe = trail_record(
        "HeadBucket",
        json!({ "eventSource": "s3.amazonaws.com", "errorCode": "AccessDenied", "sourceIPAddress": "delivery.logs.amazonaws.com" }),
    );
    assert!(security_hub.matches(&log_delivery_probe));
    assert!(!v5.matches(&log_delivery_probe), "v5.0 excludes AccessDenied noise by precedence");
}

#[test]
fn cis_4_3_root_usage() {
    let root = parse(
        r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
    );
    let root_identity = json!({ "type": "Root", "arn": "arn:aws:iam::123456789012:root" });
    let invoked = json!({ "type": "Root", "invokedBy": "support.amazonaws.com" });
    let cases = [
        (trail_record("DeleteBucket", json!({ "userIdentity": root_identity })), true),
        (trail_record("ConsoleLogin", json!({ "userIdentity": root_identity, "eventType": "AwsConsoleSignIn" })), true),
        (trail_record("DeleteBucket", json!({ "userIdentity": invoked })), false),
        (trail_record("Decrypt", json!({ "userIdentity": root_identity, "eventType": "AwsServiceEvent" })), false),
        (trail_record("DeleteBucket", json!({ "userIdentity": { "type": "root" } })), false),
        (trail_record("DeleteBucket", json!({})), false),
        (trail_record("DeleteBucket", json!({ "userIdentity": root_identity, "eventType": null })), false),
    ];
    for (i, (record, expected)) in cases.iter().enumerate() {
        assert_eq!(root.matches(record), *expected, "case {i}");
    }
}

#[derive(serde::Deserialize)]
struct DetectionFile {
    #[serde(default)]
    alarms: Vec<Entry>,
    #[serde(default)]
    published: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    pattern: String,
    #[serde(default)]
    note: String,
}

fn detection_file(name: &str) -> DetectionFile {
    let path = format!("{}/tests/detections/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_shipped_and_published_pattern_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in ["cis.toml", "agent.toml"] {
        let file = detection_file(name);
        for entry in file.alarms.iter().chain(&file.published) {
            checked += 1;
            // The CIS 4.2 "Additional Information" text lacks a ')', which its note records.
            let expect_malformed = entry.note.contains("malformed");
            match (FilterPattern::parse(&entry.pattern), expect_malformed) {
                (Ok(_), false) | (Err(_), true) => {}
                (Ok(_), true) => {
                    failures.push(format!("{name}: accepted a pattern noted as malformed: {}", entry.pattern))
                }
                (Err(e), false) => failures.push(format!("{name}: {e}: {}", entry.pattern)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 50, "only {checked} patterns found; did the files' layout change?");
}

#[test]
fn the_malformed_cis_4_2_text_is_rejected_where_the_paren_is_missing() {
    let text = r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success"}"#;
    let error = FilterPattern::parse(text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("to close the ("), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Rejected patterns
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_patterns_are_rejected_with_position_and_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "character 1", "enclosed in { }"),
        ("ERROR", "character 1", "enclosed in { }"),
        ("x { $.a = 1 }", "character 1", "enclosed in { }"),
        ("{ $.a = 1 } x", "character 13", "after the closing }"),
        ("{ $.a = 1 } { $.b = 2 }", "character 13", "after the closing }"),
        ("{ }", "character 3", "expected a condition"),
        ("{ $.a = 1", "character 10", "closing }"),
        ("{ $.a = }", "character 9", "expected a value after ="),
        ("{ $.a == 1 }", "character 8", "expected a value after ="),
        ("{ $.a => 1 }", "character 8", "expected a value after ="),
        ("{ $.a }", "character 7", "expected an operator"),
        ("{ $.a ~ 1 }", "character 7", "expected an operator"),
        ("{ $.a is null }", "character 7", "expected an operator"),
        ("{ $.a EXISTS }", "character 7", "expected an operator"),
        ("{ $.a IS NOT NULL }", "character 7", "expected an operator"),
        ("{ ($.a = 1 }", "character 12", "to close the ( at character 3"),
        ("{ $.a = 1) }", "character 10", "expected &&, || or the closing }"),
        ("{ $.a = 1 & $.b = 2 }", "character 11", "expected &&, || or the closing }"),
        ("{ $.a = 1 && }", "character 14", "expected a condition"),
        ("{ $.a = 1 || || $.b = 2 }", "character 14", "expected a condition"),
        ("{ a = 1 }", "character 3", "expected a condition"),
        ("{ $a = 1 }", "character 4", "starts with $."),
        ("{ $. = 1 }", "character 5", "property name"),
        ("{ $.a@b = 1 }", "character 6", "expected an operator"),
        ("{ $[0] = 1 }", "character 4", "starts with $."),
        ("{ $.a[x] = 1 }", "character 6", "[NUMBER]"),
        ("{ $.a[0 = 1 }", "character 6", "[NUMBER]"),
        ("{ $.a[] = 1 }", "character 6", "[NUMBER]"),
        ("{ $.a < abc }", "character 9", "compares numbers"),
        ("{ $.a >= \"5\" }", "character 10", "compares numbers"),
        ("{ $.a < 1.2.3 }", "character 9", "compares numbers"),
        ("{ $.a = \"abc }", "character 9", "unterminated"),
        ("{ $.a = foo@bar }", "character 9", "contains '@'"),
        ("{ $.a = é }", "character 9", "contains 'é'"),
        ("{ $.a = %AUTH% }", "character 9", "regular-expression"),
    ];
    let mut failures = Vec::new();
    for (pattern, location, fragment) in cases {
        match FilterPattern::parse(pattern) {
            Ok(_) => failures.push(format!("{pattern:?} was accepted")),
            Err(e) if e.location() != *location || !e.message().contains(fragment) => {
                failures.push(format!("{pattern:?}: got \"{e}\", expected {location}: ...{fragment}..."));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn length_limit_is_1024_characters() {
    let condition = "{ $.a = \"";
    let fill = |total: usize| format!("{condition}{}\" }}", "é".repeat(total - condition.len() - 3));
    let at_limit = fill(1024);
    assert_eq!(at_limit.chars().count(), 1024);
    assert!(FilterPattern::parse(&at_limit).is_ok(), "1024 characters (more bytes) is allowed");
    let error = FilterPattern::parse(&fill(1025)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("1025 characters, more than the 1024 allowed"), "{error}");
}

#[test]
fn truncated_patterns_never_panic() {
    // Every prefix of real patterns: parse may fail, but must not panic; nor may matching.
    let file = detection_file("agent.toml");
    let event = trail_record("RunInstances", json!({ "errorCode": "AccessDenied" }));
    for entry in &file.alarms {
        for (cut, _) in entry.pattern.char_indices() {
            if let Ok(pattern) = FilterPattern::parse(&entry.pattern[..cut]) {
                pattern.matches(&event);
            }
        }
    }
}

#[test]
fn deep_parentheses_are_fine_up_to_the_nesting_limit() {
    let pattern = format!("{{{}$.a = 1{}}}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    assert!(parse(&pattern).matches(&json!({ "a": 1 })));
}

#[test]
fn canonical_form_ignores_spacing_quoting_order_and_nesting() {
    let canonical = |p: &str| FilterPattern::parse(p).unwrap().canonical();
    let a = canonical(r#"{($.eventName=DeleteTrail) || ($.eventName=StopLogging) || ($.eventName=UpdateTrail)}"#);
    let b = canonical(
        r#"{ ($.eventName = "UpdateTrail") || (($.eventName = "StopLogging") || ($.eventName = "DeleteTrail")) }"#,
    );
    assert_eq!(a, b);
    let c = canonical(
        r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    );
    let d = canonical(
        r#"{$.eventType !="AwsServiceEvent" && ($.userIdentity.invokedBy NOT EXISTS && $.userIdentity.type="Root")}"#,
    );
    assert_eq!(c, d);
    // A wildcard, a number and a different operator are different patterns.
    assert_ne!(canonical(r#"{ $.a = "x*" }"#), canonical(r#"{ $.a = "x" }"#));
    assert_ne!(canonical(r#"{ $.a = 400 }"#), canonical(r#"{ $.a = "400" }"#));
    assert_ne!(
        a,
        canonical(r#"{($.eventName=DeleteTrail) && ($.eventName=StopLogging) && ($.eventName=UpdateTrail)}"#)
    );
}
