//! The trail's event selectors, against the emulator: management events and the deletes of
//! audit log objects as advanced selectors, compared as a set; a hand-edited selector is
//! drift that apply repairs, and a data-event selector someone added is not dropped without
//! --allow-data-loss.

mod common;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use common::*;
use serde_json::Value;

async fn selectors(emu: &Emulator) -> Vec<AdvancedEventSelector> {
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    let out = ct.get_event_selectors().trail_name(TRAIL).send().await.unwrap();
    assert!(out.event_selectors().is_empty(), "basic selectors left: {:?}", out.event_selectors());
    out.advanced_event_selectors().to_vec()
}

async fn put(emu: &Emulator, list: Vec<AdvancedEventSelector>) {
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    ct.put_event_selectors().trail_name(TRAIL).set_advanced_event_selectors(Some(list)).send().await.unwrap();
}

fn field<'a>(s: &'a AdvancedEventSelector, name: &str) -> Option<&'a AdvancedFieldSelector> {
    s.field_selectors().iter().find(|f| f.field() == name)
}

fn equals(field: &str, values: &[&str]) -> AdvancedFieldSelector {
    let b = AdvancedFieldSelector::builder().field(field);
    values.iter().fold(b, |b, v| b.equals(*v)).build().unwrap()
}

fn trail_change(plan: &str) -> Value {
    let doc: Value = serde_json::from_str(plan).unwrap();
    let address = format!("cloudtrail_trail.{TRAIL}");
    let changes = doc["resource_changes"].as_array().unwrap();
    changes.iter().find(|c| c["address"] == address).cloned().unwrap_or_else(|| panic!("no {address} in {doc:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_records_log_deletions_and_its_selectors_converge() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let list = selectors(&emu).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let data = list.iter().find(|s| field(s, "eventCategory").unwrap().equals() == ["Data"]).unwrap();
    assert_eq!(field(data, "resources.type").unwrap().equals(), ["AWS::S3::Object"]);
    assert_eq!(field(data, "resources.ARN").unwrap().starts_with(), [format!("arn:aws:s3:::{BUCKET}/")]);
    assert_eq!(field(data, "eventName").unwrap().equals(), ["DeleteObject", "DeleteObjects"]);
    let management = list.iter().find(|s| field(s, "eventCategory").unwrap().equals() == ["Management"]).unwrap();
    assert!(field(management, "readOnly").is_none(), "all management events: {management:?}");
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);

    // The same selectors in another order are no drift: CloudTrail applies them as a set.
    let reordered: Vec<AdvancedEventSelector> = list
        .iter()
        .rev()
        .map(|s| {
            let mut fields: Vec<AdvancedFieldSelector> = s.field_selectors().iter().rev().cloned().collect();
            for f in fields.iter_mut().filter(|f| f.field() == "eventName") {
                let reversed: Vec<&str> = f.equals().iter().rev().map(String::as_str).collect();
                *f = equals("eventName", &reversed);
            }
            let b = AdvancedEventSelector::builder().set_name(s.name().map(str::to_string));
            b.set_field_selectors(Some(fields)).build().unwrap()
        })
        .collect();
    let data = reordered.iter().find(|s| field(s, "eventName").is_some()).unwrap();
    assert_eq!(field(data, "eventName").unwrap().equals(), ["DeleteObjects", "DeleteObject"]);
    put(&emu, reordered).await;
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);

    // Management events narrowed to writes by hand: drift, repaired by apply.
    let edited: Vec<AdvancedEventSelector> = list
        .iter()
        .map(|s| {
            if field(s, "eventCategory").unwrap().equals() != ["Management"] {
                return s.clone();
            }
            let fields = vec![equals("eventCategory", &["Management"]), equals("readOnly", &["false"])];
            let b = AdvancedEventSelector::builder().set_name(s.name().map(str::to_string));
            b.set_field_selectors(Some(fields)).build().unwrap()
        })
        .collect();
    put(&emu, edited).await;
    let plan = emu.ctguard(&["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(plan.stdout.contains("event_selectors"), "{}", plan.stdout);
    let drift = emu.ctguard(&["plan", "--format", "json"]);
    let change = trail_change(&drift.stdout);
    assert_eq!(change["actions"], serde_json::json!(["update"]), "{change:#}");
    assert_eq!(change["destructive"], serde_json::json!([]), "{change:#}");
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);

    // Someone's own data-event selector: drift, and dropping it needs --allow-data-loss.
    let mut theirs = selectors(&emu).await;
    let fields = vec![
        equals("eventCategory", &["Data"]),
        equals("resources.type", &["AWS::S3::Object"]),
        AdvancedFieldSelector::builder().field("resources.ARN").starts_with("arn:aws:s3:::exports/").build().unwrap(),
    ];
    theirs.push(AdvancedEventSelector::builder().name("exports").set_field_selectors(Some(fields)).build().unwrap());
    put(&emu, theirs).await;
    let plan = emu.ctguard(&["plan", "--format", "json"]);
    let change = trail_change(&plan.stdout);
    let destructive = change["destructive"].to_string();
    assert!(destructive.contains("stops recording the data events of advanced event selector"), "{change:#}");
    emu.clear_requests();
    let refused = emu.ctguard(&["apply", "--auto-approve"]);
    refused.expect(1);
    assert!(refused.stderr.contains("--allow-data-loss"), "{}", refused.stderr);
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    assert_eq!(selectors(&emu).await.len(), 3, "their selector is still there");
}
