//! Table-driven tests: for each operator, values that must match and close look-alikes that
//! must not; then structure (nesting, arrays, `$or`), rejected patterns, ctguard's policies, and
//! the CloudTrail envelope.

use serde_json::{Value, json};

use super::*;

fn parse(pattern: &Value) -> EventPattern {
    EventPattern::parse(pattern).unwrap_or_else(|e| panic!("pattern {pattern} should parse: {e}"))
}

/// Runs `(pattern, event, expected)` cases and reports every failure at once.
fn check(cases: &[(Value, Value, bool)]) {
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter(|(_, (pattern, event, expected))| parse(pattern).matches(event) != *expected)
        .map(|(i, (pattern, event, expected))| format!("case {i}: pattern {pattern} on {event}: expected {expected}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs cases for one leaf array on field `f`; `None` is an event without `f`.
fn check_leaf(leaf: Value, cases: &[(Option<Value>, bool)]) {
    let pattern = json!({ "f": leaf });
    let table: Vec<(Value, Value, bool)> = cases
        .iter()
        .map(|(value, expected)| {
            let event = match value {
                Some(v) => json!({ "f": v, "other": "x" }),
                None => json!({ "other": "x" }),
            };
            (pattern.clone(), event, *expected)
        })
        .collect();
    check(&table);
}

// ---------------------------------------------------------------------------------------------
// Values and operators
// ---------------------------------------------------------------------------------------------

#[test]
fn exact_strings_are_case_sensitive_and_whole() {
    check_leaf(
        json!(["abc"]),
        &[
            (Some(json!("abc")), true),
            (Some(json!("ABC")), false),
            (Some(json!("abcd")), false),
            (Some(json!("ab")), false),
            (Some(json!("")), false),
            (Some(json!(5)), false),
            (Some(json!(null)), false),
            (Some(json!({ "abc": 1 })), false),
            (None, false),
        ],
    );
}

#[test]
fn values_in_a_field_are_ored() {
    check_leaf(json!(["a", "b"]), &[(Some(json!("a")), true), (Some(json!("b")), true), (Some(json!("c")), false)]);
}

#[test]
fn null_empty_string_and_booleans_are_distinct() {
    // "Null values and empty strings are not interchangeable" (Matching null values).
    check_leaf(json!([""]), &[(Some(json!("")), true), (Some(json!(null)), false), (None, false)]);
    check_leaf(
        json!([null]),
        &[(Some(json!(null)), true), (Some(json!("")), false), (Some(json!("null")), false), (None, false)],
    );
    check_leaf(json!([true]), &[(Some(json!(true)), true), (Some(json!(false)), false), (Some(json!("true")), false)]);
    check_leaf(json!([false]), &[(Some(json!(false)), true), (Some(json!(true)), false), (Some(json!(0)), false)]);
}

#[test]
fn numbers_match_numerically() {
    check_leaf(
        json!([5]),
        &[
            (Some(json!(5)), true),
            (Some(json!(5.0)), true),
            (Some(json!(5.000001)), false),
            (Some(json!(4.999999)), false),
            (Some(json!("5")), false),
            (None, false),
        ],
    );
    check_leaf(json!([5.0]), &[(Some(json!(5)), true)]);
    check_leaf(json!([3.0e2]), &[(Some(json!(300)), true), (Some(json!(300.5)), false)]);
    check_leaf(json!([-0.5]), &[(Some(json!(-0.5)), true), (Some(json!(0.5)), false)]);
    // Outside numeric matching's range (an account ID): still matches itself as written.
    check_leaf(
        json!([123456789012u64]),
        &[(Some(json!(123456789012u64)), true), (Some(json!(123456789013u64)), false)],
    );
}

#[test]
fn ip_address_strings_compare_as_addresses() {
    check_leaf(
        json!(["2001:db8::1"]),
        &[(Some(json!("2001:DB8:0:0:0:0:0:1")), true), (Some(json!("2001:db8::2")), false)],
    );
    check_leaf(json!(["10.0.0.1"]), &[(Some(json!("10.0.0.1")), true), (Some(json!("10.0.0.10")), false)]);
}

#[test]
fn prefix() {
    check_leaf(
        json!([{ "prefix": "Delete" }]),
        &[
            (Some(json!("DeleteBucket")), true),
            (Some(json!("Delete")), true),
            (Some(json!("deleteBucket")), false),
            (Some(json!("Delet")), false),
            (Some(json!("XDelete")), false),
            (Some(json!(["GetObject", "DeleteObject"])), true),
            (Some(json!(5)), false),
            (None, false),
        ],
    );
    check_leaf(
        json!([{ "prefix": "" }]),
        &[(Some(json!("anything")), true), (Some(json!("")), true), (Some(json!(1)), false)],
    );
}

#[test]
fn prefix_ignoring_case() {
    check_leaf(
        json!([{ "prefix": { "equals-ignore-case": "EventB" } }]),
        &[
            (Some(json!("eventbridge")), true),
            (Some(json!("EVENTBRIDGE")), true),
            (Some(json!("EventB")), true),
            (Some(json!("Event")), false),
            (Some(json!("xEventB")), false),
        ],
    );
}

#[test]
fn suffix() {
    check_leaf(
        json!([{ "suffix": ".png" }]),
        &[
            (Some(json!("photo.png")), true),
            (Some(json!(".png")), true),
            (Some(json!("photo.PNG")), false),
            (Some(json!("png")), false),
            (Some(json!("photo.png.jpg")), false),
        ],
    );
    check_leaf(
        json!([{ "suffix": { "equals-ignore-case": ".png" } }]),
        &[(Some(json!("photo.PNG")), true), (Some(json!("photo.Png")), true), (Some(json!("photo.pn")), false)],
    );
}

#[test]
fn equals_ignore_case() {
    check_leaf(
        json!([{ "equals-ignore-case": "alice" }]),
        &[
            (Some(json!("ALICE")), true),
            (Some(json!("Alice")), true),
            (Some(json!("alice")), true),
            (Some(json!("alicex")), false),
            (Some(json!("alic")), false),
            (Some(json!(5)), false),
        ],
    );
}

#[test]
fn wildcard() {
    check_leaf(
        json!([{ "wildcard": "Simple*Service" }]),
        &[
            (Some(json!("SimpleService")), true), // `*` may match nothing
            (Some(json!("SimpleQueueService")), true),
            (Some(json!("simpleQueueService")), false),
            (Some(json!("SimpleServiceX")), false),
            (Some(json!("XSimpleService")), false),
        ],
    );
    check_leaf(
        json!([{ "wildcard": "*" }]),
        &[(Some(json!("")), true), (Some(json!("x")), true), (Some(json!(5)), false), (None, false)],
    );
    check_leaf(
        json!([{ "wildcard": "a*b*c" }]),
        &[
            (Some(json!("abc")), true),
            (Some(json!("aXbYc")), true),
            (Some(json!("acb")), false),
            (Some(json!("ab")), false),
        ],
    );
    // The prefix and suffix may not overlap.
    check_leaf(
        json!([{ "wildcard": "a*a" }]),
        &[(Some(json!("a")), false), (Some(json!("aa")), true), (Some(json!("aba")), true)],
    );
    check_leaf(
        json!([{ "wildcard": "arn:aws:sts::*:assumed-role/AIAgent*" }]),
        &[
            (Some(json!("arn:aws:sts::123456789012:assumed-role/AIAgentRole/session")), true),
            (Some(json!("arn:aws:sts::123456789012:assumed-role/Admin/session")), false),
        ],
    );
}

#[test]
fn wildcard_escapes() {
    // `\*` is a literal star; `\\` a literal backslash (event-ruler README, Wildcard matching).
    check_leaf(
        json!([{ "wildcard": "a\\*b" }]),
        &[(Some(json!("a*b")), true), (Some(json!("axb")), false), (Some(json!("ab")), false)],
    );
    check_leaf(
        json!([{ "wildcard": "a\\\\*" }]),
        &[(Some(json!("a\\xyz")), true), (Some(json!("a\\")), true), (Some(json!("axyz")), false)],
    );
    check_leaf(json!([{ "wildcard": "*\\*" }]), &[(Some(json!("x*")), true), (Some(json!("x")), false)]);
}

#[test]
fn anything_but_values() {
    check_leaf(
        json!([{ "anything-but": "initializing" }]),
        &[
            (Some(json!("running")), true),
            (Some(json!("initializing")), false),
            (Some(json!("Initializing")), true), // case sensitive
            (Some(json!(5)), true),              // other types are never excluded
            (Some(json!(null)), true),
            (Some(json!(["initializing"])), false),
            (Some(json!(["initializing", "running"])), true),
            (None, false), // a missing field does not match
        ],
    );
    check_leaf(
        json!([{ "anything-but": ["stopped", "overloaded"] }]),
        &[
            (Some(json!("stopped")), false),
            (Some(json!("overloaded")), false),
            (Some(json!("running")), true),
            (None, false),
        ],
    );
    check_leaf(
        json!([{ "anything-but": 123 }]),
        &[(Some(json!(123)), false), (Some(json!(123.0)), false), (Some(json!(124)), true), (Some(json!("123")), true)],
    );
    check_leaf(json!([{ "anything-but": [100, 200, 300] }]), &[(Some(json!(200)), false), (Some(json!(250)), true)]);
}

#[test]
fn anything_but_operators() {
    check_leaf(
        json!([{ "anything-but": { "prefix": "init" } }]),
        &[(Some(json!("initializing")), false), (Some(json!("running")), true), (Some(json!(5)), true), (None, false)],
    );
    check_leaf(
        json!([{ "anything-but": { "prefix": ["us-", "eu-"] } }]),
        &[(Some(json!("us-east-1")), false), (Some(json!("eu-west-1")), false), (Some(json!("ap-south-1")), true)],
    );
    check_leaf(
        json!([{ "anything-but": { "suffix": ".png" } }]),
        &[(Some(json!("a.png")), false), (Some(json!("a.jpg")), true), (Some(json!("a.PNG")), true)],
    );
    check_leaf(
        json!([{ "anything-but": { "equals-ignore-case": "initializing" } }]),
        &[(Some(json!("INITIALIZING")), false), (Some(json!("initializing")), false), (Some(json!("running")), true)],
    );
    check_leaf(
        json!([{ "anything-but": { "equals-ignore-case": ["a", "B"] } }]),
        &[(Some(json!("b")), false), (Some(json!("c")), true)],
    );
    check_leaf(
        json!([{ "anything-but": { "wildcard": "*/lib/*" } }]),
        &[(Some(json!("/usr/lib/x")), false), (Some(json!("/usr/bin/x")), true), (None, false)],
    );
}

#[test]
fn numeric_ranges() {
    check_leaf(
        json!([{ "numeric": [">", 0, "<=", 5] }]),
        &[
            (Some(json!(0)), false),
            (Some(json!(0.000001)), true),
            (Some(json!(3)), true),
            (Some(json!(5)), true),
            (Some(json!(5.0)), true),
            (Some(json!(5.000001)), false),
            (Some(json!(-1)), false),
            (Some(json!("3")), false), // only JSON numbers
            (Some(json!([9, 4])), true),
            (None, false),
        ],
    );
    check_leaf(
        json!([{ "numeric": ["<", 10] }]),
        &[(Some(json!(9.999999)), true), (Some(json!(10)), false), (Some(json!(-5e9)), true)],
    );
    check_leaf(json!([{ "numeric": ["<=", -1] }]), &[(Some(json!(-1)), true), (Some(json!(-0.999999)), false)]);
    check_leaf(json!([{ "numeric": [">", 5] }]), &[(Some(json!(5)), false), (Some(json!(5.000001)), true)]);
    check_leaf(json!([{ "numeric": [">=", 5] }]), &[(Some(json!(5)), true), (Some(json!(4.999999)), false)]);
    check_leaf(
        json!([{ "numeric": ["=", 3.018e2] }]),
        &[(Some(json!(301.8)), true), (Some(json!(301.80)), true), (Some(json!(301.9)), false)],
    );
    check_leaf(json!([{ "numeric": [">=", 1, "<", 2] }]), &[(Some(json!(1)), true), (Some(json!(2)), false)]);
    // Event numbers numeric matching cannot represent (past 5e9, or more than six decimals)
    // are not compared (event-ruler ComparableNumber).
    check_leaf(json!([{ "numeric": [">", 0] }]), &[(Some(json!(6e9)), false), (Some(json!(1e-7)), false)]);
}

#[test]
fn exists() {
    check_leaf(
        json!([{ "exists": true }]),
        &[
            (Some(json!("x")), true),
            (Some(json!("")), true),
            (Some(json!(null)), true), // null is a value
            (Some(json!([1])), true),
            (Some(json!([])), false),            // no value at all
            (Some(json!({ "c1": 100 })), false), // "only works on leaf nodes"
            (Some(json!([{ "a": 1 }])), false),
            (None, false),
        ],
    );
    check_leaf(
        json!([{ "exists": false }]),
        &[
            (None, true),
            (Some(json!(null)), false),
            (Some(json!("x")), false),
            (Some(json!({ "c1": 100 })), true),
            (Some(json!([])), true),
        ],
    );
    check_leaf(json!([{ "exists": false }, "x"]), &[(None, true), (Some(json!("x")), true), (Some(json!("y")), false)]);
}

#[test]
fn exists_examples_from_the_guide() {
    let absent = json!({ "detail": { "c-count": [{ "exists": false }] } });
    let present = json!({ "detail": { "state": [{ "exists": true }] } });
    let running = json!({ "detail-type": "EC2 Instance State-change Notification", "detail": { "state": ["initializing", "running"] } });
    let nested = json!({ "detail": { "state": "pending", "c-count": { "c1": 100 } } });
    let no_state = json!({ "detail": { "c-count": { "c1": 100 } } });
    check(&[
        (absent.clone(), running.clone(), true),
        (absent.clone(), nested.clone(), true),
        (absent.clone(), json!({ "detail": { "c-count": 1 } }), false),
        (absent.clone(), json!({ "source": "aws.ec2" }), true), // parent missing too
        (absent, json!({ "detail": "text" }), true),
        (present.clone(), running, true),
        (present.clone(), nested, true),
        (present, no_state, false),
    ]);
}

#[test]
fn cidr() {
    check_leaf(
        json!([{ "cidr": "10.0.0.0/24" }]),
        &[
            (Some(json!("10.0.0.0")), true),
            (Some(json!("10.0.0.255")), true),
            (Some(json!("10.0.1.0")), false),
            (Some(json!("9.255.255.255")), false),
            (Some(json!("10.0.0.256")), false),
            (Some(json!("::ffff:10.0.0.1")), false), // IPv6 form: other family
            (Some(json!("ec2.amazonaws.com")), false),
            (Some(json!(10)), false),
            (None, false),
        ],
    );
    check_leaf(
        json!([{ "cidr": "2001:db8::/32" }]),
        &[
            (Some(json!("2001:db8::1")), true),
            (Some(json!("2001:DB8:ffff::abcd")), true),
            (Some(json!("2001:0db8:0000:0000:0000:0000:0000:0001")), true),
            (Some(json!("2001:db9::1")), false),
            (Some(json!("10.0.0.1")), false),
        ],
    );
    check_leaf(
        json!([{ "cidr": "2001:db8::1/128" }]),
        &[(Some(json!("2001:db8::1")), true), (Some(json!("2001:db8::2")), false)],
    );
    check_leaf(json!([{ "cidr": "0.0.0.0/0" }]), &[(Some(json!("203.0.113.9")), true), (Some(json!("::1")), false)]);
    check_leaf(json!([{ "cidr": "::/0" }]), &[(Some(json!("::1")), true)]);
    // Host bits in the block are ignored.
    check_leaf(json!([{ "cidr": "10.0.0.77/24" }]), &[(Some(json!("10.0.0.1")), true)]);
}

// ---------------------------------------------------------------------------------------------
// Structure
// ---------------------------------------------------------------------------------------------

#[test]
fn fields_are_anded_and_nested() {
    let pattern = json!({ "source": ["aws.ec2"], "detail": { "state": ["terminated"] } });
    check(&[
        (pattern.clone(), json!({ "source": "aws.ec2", "detail": { "state": "terminated" } }), true),
        (pattern.clone(), json!({ "source": "aws.ec2", "detail": { "state": "running" } }), false),
        (pattern.clone(), json!({ "source": "aws.s3", "detail": { "state": "terminated" } }), false),
        (pattern.clone(), json!({ "source": "aws.ec2", "state": "terminated" }), false), // wrong nesting
        (pattern.clone(), json!({ "source": "aws.ec2", "detail": "terminated" }), false),
        (pattern, json!({ "source": "aws.ec2" }), false),
    ]);
}

#[test]
fn event_arrays_intersect_with_pattern_arrays() {
    // The example of "Arrays in event patterns".
    let pattern = json!({ "resources": [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
    ] });
    let event = json!({ "resources": [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b:autoScalingGroupName/ASGTerminate",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
    ] });
    let source = json!({ "source": ["aws.ec2"] });
    check(&[
        (pattern.clone(), event, true),
        (pattern.clone(), json!({ "resources": ["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"] }), false),
        (pattern, json!({ "resources": [] }), false),
        // Nested arrays are flattened.
        (source.clone(), json!({ "source": [["aws.s3"], ["x", ["aws.ec2"]]] }), true),
        (source, json!({ "source": [["aws.s3"], []] }), false),
    ]);
}

#[test]
fn exists_through_arrays_of_objects() {
    // A path exists if any element holds a value there; absence means no element does.
    let absent = json!({ "a": { "b": [{ "exists": false }] } });
    let present = json!({ "a": { "b": [{ "exists": true }] } });
    let mixed = json!({ "a": [{ "b": 1 }, { "c": 2 }] });
    let without = json!({ "a": [{ "c": 2 }, { "d": 3 }] });
    check(&[
        (absent.clone(), mixed.clone(), false),
        (absent.clone(), without.clone(), true),
        (absent, json!({ "a": [] }), true),
        (present.clone(), mixed, true),
        (present.clone(), without, false),
        (present, json!({ "a": [] }), false),
    ]);
}

#[test]
fn arrays_of_objects_keep_fields_in_one_element() {
    // event-ruler README, "JSON Array Matching".
    let employees = json!({ "employees": [
        { "firstName": "John", "lastName": "Doe" },
        { "firstName": "Anna", "lastName": "Smith" },
        { "firstName": "Peter", "lastName": "Jones" },
    ] });
    let nested = json!({ "employees": [
        [{ "firstName": "John", "lastName": "Doe" }, { "firstName": "Anna", "lastName": "Smith" }],
        [{ "firstName": "Peter", "lastName": "Jones" }],
    ] });
    let anna = json!({ "employees": { "firstName": ["Anna"] } });
    let anna_smith = json!({ "employees": { "firstName": ["Anna"], "lastName": ["Smith"] } });
    let anna_jones = json!({ "employees": { "firstName": ["Anna"], "lastName": ["Jones"] } });
    check(&[
        (anna.clone(), employees.clone(), true),
        (anna, nested.clone(), true),
        (anna_smith.clone(), employees.clone(), true),
        (anna_smith, nested.clone(), true),
        (anna_jones.clone(), employees, false),
        (anna_jones, nested, false),
    ]);
}

#[test]
fn or_at_top_level_with_anded_siblings() {
    let pattern = json!({ "source": ["aws.ec2"], "$or": [{ "a": ["1"] }, { "b": ["2"] }] });
    check(&[
        (pattern.clone(), json!({ "source": "aws.ec2", "a": "1" }), true),
        (pattern.clone(), json!({ "source": "aws.ec2", "b": "2" }), true),
        (pattern.clone(), json!({ "source": "aws.ec2", "a": "1", "b": "2" }), true),
        (pattern.clone(), json!({ "source": "aws.s3", "a": "1" }), false),
        (pattern.clone(), json!({ "source": "aws.ec2", "a": "2", "b": "1" }), false),
        (pattern, json!({ "source": "aws.ec2" }), false),
    ]);
}

#[test]
fn or_nested_in_objects_and_in_other_ors() {
    // event-ruler README: source && (metricName || (metricType && namespace && (metricId || spaceId)) || scope)
    let nested = json!({
        "source": ["aws.cloudwatch"],
        "$or": [
            { "metricName": ["CPUUtilization", "ReadLatency"] },
            { "metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"], "$or": [{ "metricId": [1234] }, { "spaceId": [1000] }] },
            { "scope": ["Service"] },
        ],
    });
    let base = |extra: Value| {
        let mut event = json!({ "source": "aws.cloudwatch" });
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        event
    };
    // (metricName || namespace) && (detail.source || detail.detail-type)
    let parallel = json!({
        "$or": [{ "metricName": ["CPUUtilization"] }, { "namespace": ["AWS/EC2"] }],
        "detail": { "$or": [{ "source": ["aws.cloudwatch"] }, { "detail-type": ["CloudWatch Alarm State Change"] }] },
    });
    check(&[
        (nested.clone(), base(json!({ "metricName": "ReadLatency" })), true),
        (nested.clone(), base(json!({ "scope": "Service" })), true),
        (nested.clone(), base(json!({ "metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000 })), true),
        (nested.clone(), base(json!({ "metricType": "MetricType", "namespace": "AWS/ES" })), false),
        (nested.clone(), base(json!({ "metricType": "MetricType", "spaceId": 1000 })), false),
        (nested.clone(), json!({ "source": "aws.ec2", "scope": "Service" }), false),
        (
            parallel.clone(),
            json!({ "namespace": "AWS/EC2", "detail": { "detail-type": "CloudWatch Alarm State Change" } }),
            true,
        ),
        (parallel.clone(), json!({ "metricName": "CPUUtilization", "detail": { "source": "aws.cloudwatch" } }), true),
        (parallel.clone(), json!({ "metricName": "CPUUtilization" }), false),
        (parallel, json!({ "detail": { "source": "aws.cloudwatch" } }), false),
    ]);
}

#[test]
fn or_branches_with_exists_and_operators() {
    let pattern = json!({ "detail": { "$or": [
        { "errorCode": [{ "exists": false }] },
        { "errorCode": [{ "prefix": "Throttl" }], "retries": [{ "numeric": ["<", 3] }] },
    ] } });
    check(&[
        (pattern.clone(), json!({ "detail": { "eventName": "RunInstances" } }), true),
        (pattern.clone(), json!({ "detail": { "errorCode": "ThrottlingException", "retries": 1 } }), true),
        (pattern.clone(), json!({ "detail": { "errorCode": "ThrottlingException", "retries": 5 } }), false),
        (pattern, json!({ "detail": { "errorCode": "AccessDenied", "retries": 1 } }), false),
    ]);
}

#[test]
fn or_branch_and_sibling_must_use_the_same_array_element() {
    // Expanded into alternatives, a branch's fields and its siblings' fields are one rule, so
    // array consistency spans them.
    let pattern = json!({ "a": { "x": ["1"] }, "$or": [{ "a": { "y": ["2"] } }, { "z": ["3"] }] });
    check(&[
        (pattern.clone(), json!({ "a": [{ "x": "1" }, { "y": "2" }] }), false),
        (pattern.clone(), json!({ "a": [{ "x": "1", "y": "2" }] }), true),
        (pattern, json!({ "a": [{ "x": "1" }], "z": "3" }), true),
    ]);
}

#[test]
fn a_key_given_twice_keeps_the_last() {
    // Content filtering: "if you include a key more than once the last reference will be the one used".
    let text = r#"{ "detail": { "location": [{ "prefix": "us-" }], "location": [{ "anything-but": "us-east" }] } }"#;
    let pattern = parse(&serde_json::from_str(text).unwrap_or(Value::Null));
    assert!(pattern.matches(&json!({ "detail": { "location": "eu-west" } })));
    assert!(!pattern.matches(&json!({ "detail": { "location": "us-east" } })));
}

#[test]
fn odd_events_do_not_match_and_do_not_panic() {
    let pattern = parse(&json!({ "source": ["aws.ec2"], "detail": { "a": [{ "exists": false }] } }));
    for event in
        [json!(null), json!([]), json!("aws.ec2"), json!(5), json!([{ "source": "aws.ec2" }]), json!({ "source": {} })]
    {
        assert!(!pattern.matches(&event), "{event}");
    }
    // Deep arrays are walked only so far, without overflowing the stack.
    // (Built by moving: `json!` would serialize the nested value recursively.)
    let mut deep = json!("aws.ec2");
    for _ in 0..2000 {
        deep = Value::Array(vec![deep]);
    }
    let mut event = json!({});
    if let Some(map) = event.as_object_mut() {
        map.insert("source".into(), deep);
    }
    assert!(!parse(&json!({ "source": ["aws.ec2"] })).matches(&event));
    std::mem::forget(event); // dropping 2000 nested arrays recursively could itself overflow the stack
}

// ---------------------------------------------------------------------------------------------
// Rejected patterns
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_patterns_are_rejected_with_path_and_reason() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!(["aws.ec2"]), "$", "must be a JSON object"),
        (json!({}), "$", "empty objects"),
        (json!({ "detail": {} }), "$.detail", "empty objects"),
        (json!({ "source": "aws.ec2" }), "$.source", "array of values"),
        (json!({ "source": 5 }), "$.source", "array of values"),
        (json!({ "source": [] }), "$.source", "empty arrays"),
        (json!({ "source": [["aws.ec2"]] }), "$.source[0]", "not an array"),
        (json!({ "source": [{}] }), "$.source[0]", "exactly one key"),
        (json!({ "source": [{ "prefix": "a", "suffix": "b" }] }), "$.source[0]", "exactly one key"),
        (json!({ "source": [{ "contains": "ec2" }] }), "$.source[0].contains", "unknown operator"),
        (json!({ "source": [{ "exactly": "ec2" }] }), "$.source[0].exactly", "unknown operator"),
        (
            json!({ "detail": { "eventName": ["A", { "prefix": 5 }] } }),
            "$.detail.eventName[1].prefix",
            "expected a string",
        ),
        (json!({ "f": [{ "prefix": { "ignore-case": "a" } }] }), "$.f[0].prefix", "equals-ignore-case"),
        (json!({ "f": [{ "suffix": ["a"] }] }), "$.f[0].suffix", "expected a string"),
        (json!({ "f": [{ "equals-ignore-case": 1 }] }), "$.f[0].equals-ignore-case", "expected a string"),
        (json!({ "f": [{ "exists": "true" }] }), "$.f[0].exists", "true or false"),
        (json!({ "f": [{ "numeric": 5 }] }), "$.f[0].numeric", "expected an array"),
        (json!({ "f": [{ "numeric": [] }] }), "$.f[0].numeric[0]", "expected an operator"),
        (json!({ "f": [{ "numeric": [">", "5"] }] }), "$.f[0].numeric[1]", "followed by a number"),
        (json!({ "f": [{ "numeric": ["!=", 5] }] }), "$.f[0].numeric[0]", "unknown numeric operator"),
        (json!({ "f": [{ "numeric": ["=", 5, "<", 6] }] }), "$.f[0].numeric", "too many"),
        (json!({ "f": [{ "numeric": ["<", 5, ">", 1] }] }), "$.f[0].numeric", "too many"),
        (json!({ "f": [{ "numeric": [">", 5, ">", 6] }] }), "$.f[0].numeric[2]", "< or <="),
        (json!({ "f": [{ "numeric": [">", 5, "<", 5] }] }), "$.f[0].numeric", "less than the upper"),
        (json!({ "f": [{ "numeric": [">", 10, "<=", 5] }] }), "$.f[0].numeric", "less than the upper"),
        (json!({ "f": [{ "numeric": [">", 1e10] }] }), "$.f[0].numeric[1]", "outside"),
        (json!({ "f": [{ "numeric": [">", 0.0000001] }] }), "$.f[0].numeric[1]", "6 decimal places"),
        (json!({ "f": [{ "cidr": "10.0.0.0" }] }), "$.f[0].cidr", "ADDRESS/PREFIX-LENGTH"),
        (json!({ "f": [{ "cidr": "10.0.0.0/33" }] }), "$.f[0].cidr", "0 to 32"),
        (json!({ "f": [{ "cidr": "2001:db8::/129" }] }), "$.f[0].cidr", "0 to 128"),
        (json!({ "f": [{ "cidr": "300.0.0.0/8" }] }), "$.f[0].cidr", "not an IPv4 or IPv6 address"),
        (json!({ "f": [{ "cidr": 10 }] }), "$.f[0].cidr", "expected a string"),
        (json!({ "f": [{ "wildcard": "a**b" }] }), "$.f[0].wildcard", "consecutive"),
        (json!({ "f": [{ "wildcard": "a\\b" }] }), "$.f[0].wildcard", "backslash"),
        (json!({ "f": [{ "wildcard": "a\\" }] }), "$.f[0].wildcard", "backslash"),
        (json!({ "f": [{ "anything-but": [] }] }), "$.f[0].anything-but", "non-empty"),
        (json!({ "f": [{ "anything-but": [1, "a"] }] }), "$.f[0].anything-but", "only strings or only numbers"),
        (json!({ "f": [{ "anything-but": null }] }), "$.f[0].anything-but", "expected a string"),
        (json!({ "f": [{ "anything-but": true }] }), "$.f[0].anything-but", "expected a string"),
        (json!({ "f": [{ "anything-but": 1e10 }] }), "$.f[0].anything-but", "outside"),
        (json!({ "f": [{ "anything-but": { "prefix": "" } }] }), "$.f[0].anything-but.prefix", "empty prefix"),
        (json!({ "f": [{ "anything-but": { "prefix": 5 } }] }), "$.f[0].anything-but.prefix", "list of strings"),
        (json!({ "f": [{ "anything-but": { "contains": "x" } }] }), "$.f[0].anything-but.contains", "does not take"),
        (
            json!({ "f": [{ "anything-but": { "prefix": "a", "suffix": "b" } }] }),
            "$.f[0].anything-but",
            "expected one of",
        ),
        (json!({ "f": [{ "anything-but": { "wildcard": "a**" } }] }), "$.f[0].anything-but.wildcard", "consecutive"),
        (json!({ "$or": [{ "a": ["1"] }] }), "$.$or", "at least two"),
        (json!({ "$or": { "a": ["1"] } }), "$.$or", "array of objects"),
        (json!({ "$or": [{ "a": ["1"] }, "b"] }), "$.$or[1]", "must be an object"),
        (json!({ "$or": [{ "a": ["1"] }, {}] }), "$.$or[1]", "empty objects"),
        (json!({ "$or": [{ "numeric": [1] }, { "prefix": ["a"] }] }), "$.$or[0].numeric", "operator name"),
        (
            json!({ "detail": { "$or": [{ "a": { "exists": [true] } }, { "b": ["x"] }] } }),
            "$.detail.$or[0].a.exists",
            "operator name",
        ),
    ];
    let mut failures = Vec::new();
    for (pattern, location, fragment) in &cases {
        match EventPattern::parse(pattern) {
            Ok(_) => failures.push(format!("{pattern} was accepted")),
            Err(e) if e.location() != *location || !e.message().contains(fragment) => {
                failures.push(format!("{pattern}: got \"{e}\", expected {location}: ...{fragment}..."));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn or_expansion_and_nesting_are_bounded() {
    let six = json!([{ "a": ["1"] }, { "a": ["2"] }, { "a": ["3"] }, { "a": ["4"] }, { "a": ["5"] }, { "a": ["6"] }]);
    let three = json!({ "$or": six, "b": { "$or": six }, "c": { "$or": six } }); // 216
    assert!(EventPattern::parse(&three).is_ok());
    let four = json!({ "$or": six, "b": { "$or": six }, "c": { "$or": six }, "d": { "$or": six } }); // 1296
    let error = EventPattern::parse(&four).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("more than 1000 combinations"), "{error}");

    let mut deep = json!({ "leaf": ["x"] });
    for _ in 0..100 {
        deep = json!({ "n": deep });
    }
    let error = EventPattern::parse(&deep).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("nested more than 64 levels"), "{error}");
}

#[test]
fn error_display_has_path_then_reason() {
    let error = EventPattern::parse(&json!({ "detail": { "eventName": [] } })).err();
    assert_eq!(
        error.map(|e| e.to_string()).as_deref(),
        Some("$.detail.eventName: empty arrays are not allowed; list at least one value to match")
    );
}

// ---------------------------------------------------------------------------------------------
// ctguard's policies and the CloudTrail envelope
// ---------------------------------------------------------------------------------------------

fn policy(name: &str) -> EventPattern {
    let path = format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    EventPattern::parse(&value).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn record(event_source: &str, event_name: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": { "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/AIAgent/s1", "accountId": "123456789012" },
        "eventTime": "2025-01-02T03:04:05Z",
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.5",
        "requestParameters": { "instancesSet": { "items": [{ "instanceId": "i-0123456789abcdef0" }] } },
        "responseElements": null,
        "eventID": "6c1a0f6e-0d5b-4a3e-9f4e-111111111111",
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
    })
}

#[test]
fn every_policy_pattern_parses() {
    // The pipeline-tampering templates hold ${placeholders} that resolve to lists; the profile
    // tests cover them as deployed.
    for name in [
        "destructive-actions.json",
        "destructive-actions-extended.json",
        "destructive-identity-and-services.json",
        "protection-removed.json",
        "protection-removed-storage.json",
        "persistence.json",
        "object-deletion.json",
        "monitoring-tampering.json",
        "logging-disabled.json",
    ] {
        policy(name);
    }
}

#[test]
fn destructive_actions_match_by_event_source_and_name() {
    let destructive = policy("destructive-actions.json");
    let cases = [
        (record("ec2.amazonaws.com", "TerminateInstances"), true),
        (record("ec2.amazonaws.com", "DescribeInstances"), false),
        (record("rds.amazonaws.com", "TerminateInstances"), false), // name paired with another service
        (record("rds.amazonaws.com", "DeleteDBCluster"), false),    // databases are in the extended file
        (record("redshift.amazonaws.com", "DeleteCluster"), false), // so is Redshift's DeleteCluster
        (record("eks.amazonaws.com", "DeleteCluster"), true),
        (record("ecs.amazonaws.com", "DeleteCluster"), true),
        (record("lambda.amazonaws.com", "DeleteFunction20150331"), true),
        (record("lambda.amazonaws.com", "DeleteFunction"), true),
        (record("lambda.amazonaws.com", "DeleteFunctionConcurrency20171031"), false),
        (record("autoscaling.amazonaws.com", "DeletePolicy"), false),
    ];
    for (record, expected) in cases {
        let event = envelope(&record);
        assert_eq!(destructive.matches(&event), expected, "{}", event["detail"]["eventName"]);
    }
    // The detail alone (no envelope) has no source or detail-type: no match.
    assert!(!destructive.matches(&record("ec2.amazonaws.com", "TerminateInstances")));
    // A service event is not an API call.
    let mut service_event = record("ec2.amazonaws.com", "TerminateInstances");
    service_event["eventType"] = json!("AwsServiceEvent");
    assert!(!destructive.matches(&envelope(&service_event)));
}

#[test]
fn monitoring_tampering_sees_cloudwatch_as_aws_monitoring() {
    // DeleteAlarms on any alarm is not account-wide tampering: the pipeline-tampering rule
    // matches it on ctguard's own alarm names.
    let tampering = policy("monitoring-tampering.json");
    assert!(tampering.matches(&envelope(&record("kms.amazonaws.com", "ScheduleKeyDeletion"))));
    assert!(!tampering.matches(&envelope(&record("monitoring.amazonaws.com", "DeleteAlarms"))));
    assert!(tampering.matches(&envelope(&record("cloudtrail.amazonaws.com", "StopLogging"))));
    assert!(!tampering.matches(&envelope(&record("cloudtrail.amazonaws.com", "LookupEvents"))));
    let extended = policy("destructive-actions-extended.json");
    assert!(extended.matches(&envelope(&record("redshift.amazonaws.com", "DeleteCluster"))));
    assert!(!extended.matches(&envelope(&record("eks.amazonaws.com", "DeleteCluster"))));
}

#[test]
fn envelope_fields() {
    let event = envelope(&record("ec2.amazonaws.com", "TerminateInstances"));
    assert_eq!(event["version"], "0");
    assert_eq!(event["id"], "6c1a0f6e-0d5b-4a3e-9f4e-111111111111");
    assert_eq!(event["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(event["source"], "aws.ec2");
    assert_eq!(event["account"], "123456789012");
    assert_eq!(event["time"], "2025-01-02T03:04:05Z");
    assert_eq!(event["region"], "eu-west-1");
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["detail"], record("ec2.amazonaws.com", "TerminateInstances"));
}

#[test]
fn envelope_detail_type_and_source_per_event_type() {
    let cases = [
        ("AwsApiCall", "iam.amazonaws.com", "AWS API Call via CloudTrail", "aws.iam"),
        ("AwsConsoleSignIn", "signin.amazonaws.com", "AWS Console Sign In via CloudTrail", "aws.signin"),
        ("AwsServiceEvent", "kms.amazonaws.com", "AWS Service Event via CloudTrail", "aws.kms"),
        ("AwsConsoleAction", "s3.amazonaws.com", "AWS Console Action via CloudTrail", "aws.s3"),
        ("AwsVpceEvent", "cloudtrail-data.amazonaws.com", "AWS API Call via CloudTrail", "aws.cloudtrail-data"),
        ("AwsApiCall", "monitoring.amazonaws.com", "AWS API Call via CloudTrail", "aws.monitoring"),
    ];
    for (event_type, event_source, detail_type, source) in cases {
        let event = envelope(&json!({ "eventType": event_type, "eventSource": event_source }));
        assert_eq!(
            (event["detail-type"].as_str(), event["source"].as_str()),
            (Some(detail_type), Some(source)),
            "{event_type}"
        );
    }
    // Missing fields stay null rather than inventing values.
    let bare = envelope(&json!({}));
    assert_eq!((bare["source"].clone(), bare["account"].clone()), (Value::Null, Value::Null));
}
