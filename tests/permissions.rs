//! `ctguard permissions` prints the policies ctguard needs; the calls seen at the emulator
//! prove plan and verify stay inside the read-only one and apply inside the full one.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

fn actions(read_only: bool) -> BTreeSet<String> {
    let mut args = vec!["permissions"];
    if read_only {
        args.push("--read-only");
    }
    let r = run(ctguard_cmd().args(&args));
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(list) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Value::String(a) => vec![a.clone()],
            _ => Vec::new(),
        })
        .collect()
}

fn seen(emu: &Emulator) -> BTreeSet<String> {
    emu.requests().iter().map(Request::iam_action).collect()
}

#[test]
fn plan_and_verify_need_only_the_read_only_policy_and_apply_the_full_one() {
    let (read, full) = (actions(true), actions(false));
    assert!(read.is_subset(&full));
    let emu = Emulator::start();

    emu.clear_requests();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let applied = seen(&emu);
    let outside: Vec<&String> = applied.difference(&full).filter(|a| !a.starts_with("iam:PassRole")).collect();
    assert!(outside.is_empty(), "apply called actions its policy lacks: {outside:?}");

    emu.clear_requests();
    emu.ctguard(&["plan"]).expect(0);
    emu.ctguard(&["verify"]).expect(0);
    let read_calls = seen(&emu);
    assert!(read_calls.len() > 30, "too few distinct calls to prove anything: {read_calls:?}");
    let outside: Vec<&String> = read_calls.difference(&read).collect();
    assert!(outside.is_empty(), "plan or verify called actions outside the read-only policy: {outside:?}");
}
