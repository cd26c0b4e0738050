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
    assert_eq!(list.len(), 3, "{list:?}");
    let data = list.iter().find(|s| s.name() == Some(LOG_DELETIONS)).unwrap();
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
    let data = reordered.iter().find(|s| s.name() == Some(LOG_DELETIONS)).unwrap();
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
    assert_eq!(selectors(&emu).await.len(), 4, "their selector is still there");
}

const LOG_DELETIONS: &str = "ctguard: deletes of audit log objects";
const AGENT_OBJECTS: &str = "ctguard: agent object reads and deletes";

/// The flagship profile, exported to `dir`, with `extra` (TOML lines) added to its `[trail]`
/// table and `insights` (TOML lines, or nothing) as its `[trail.insights]`.
fn profile(dir: &tempfile::TempDir, extra: &str, insights: &str) -> String {
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    if !dir.path().join("template.toml").exists() {
        run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("record_log_deletions = true\n", "record_log_deletions = true\n#EXTRA#\n", 1);
        let text = text.replacen("[trail.kms]", "#INSIGHTS#\n[trail.kms]", 1);
        std::fs::write(dir.path().join("template.toml"), text).unwrap();
    }
    let template = std::fs::read_to_string(dir.path().join("template.toml")).unwrap();
    let table = if insights.is_empty() { String::new() } else { format!("[trail.insights]\n{insights}\n") };
    std::fs::write(&path, template.replace("#EXTRA#\n", extra).replace("#INSIGHTS#\n", &table)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Someone else's selector: data events of an exports bucket.
fn exports_selector() -> AdvancedEventSelector {
    let fields = vec![
        equals("eventCategory", &["Data"]),
        equals("resources.type", &["AWS::S3::Object"]),
        AdvancedFieldSelector::builder().field("resources.ARN").starts_with("arn:aws:s3:::exports/").build().unwrap(),
    ];
    AdvancedEventSelector::builder().name("exports").set_field_selectors(Some(fields)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_data_events_converge_drift_is_shown_and_a_shared_trail_keeps_foreign_selectors() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, "shared_selectors = true\n", "");
    let first = emu.ctguard(&["plan", "-p", &p]);
    assert!(first.stdout.contains("$0.10 per 100,000 data events delivered"), "{}", first.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", &p]).expect(0);
    let list = selectors(&emu).await;
    let agents = list.iter().find(|s| s.name() == Some(AGENT_OBJECTS)).unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(field(agents, "resources.type").unwrap().equals(), ["AWS::S3::Object"]);
    let mut names = field(agents, "eventName").unwrap().equals().to_vec();
    names.sort();
    assert_eq!(names, ["DeleteObject", "DeleteObjects", "GetObject"]);
    let callers = field(agents, "userIdentity.arn").unwrap().starts_with();
    assert!(callers.contains(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/AIAgent")), "{callers:?}");
    assert!(field(agents, "resources.ARN").is_none(), "every bucket, the agents' calls only");
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &p]).expect(0);

    // Our selector edited by hand (GetObject no longer recorded): drift, repaired by apply.
    let edited: Vec<AdvancedEventSelector> = list
        .iter()
        .map(|s| {
            if s.name() != Some(AGENT_OBJECTS) {
                return s.clone();
            }
            let fields = s
                .field_selectors()
                .iter()
                .map(|f| if f.field() == "eventName" { equals("eventName", &["DeleteObject"]) } else { f.clone() })
                .collect();
            AdvancedEventSelector::builder().name(AGENT_OBJECTS).set_field_selectors(Some(fields)).build().unwrap()
        })
        .collect();
    put(&emu, edited).await;
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", &p]);
    plan.expect(2);
    assert!(plan.stdout.contains("event_selectors"), "{}", plan.stdout);

    // Someone else's selector on a shared trail: kept through the repair, and no drift.
    let mut theirs = selectors(&emu).await;
    theirs.push(exports_selector());
    put(&emu, theirs).await;
    let plan = emu.ctguard(&["plan", "--format", "json", "-p", &p]);
    let change = trail_change(&plan.stdout);
    assert_eq!(change["destructive"], serde_json::json!([]), "{change:#}");
    emu.ctguard(&["apply", "--auto-approve", "-p", &p]).expect(0);
    let after = selectors(&emu).await;
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after.iter().any(|s| s.name() == Some("exports")), "{after:?}");
    let agents = after.iter().find(|s| s.name() == Some(AGENT_OBJECTS)).unwrap();
    assert_eq!(field(agents, "eventName").unwrap().equals().len(), 3, "{agents:?}");
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", &p]);
    plan.expect(0);
    assert!(plan.stdout.contains("does not own"), "the kept selector is mentioned: {}", plan.stdout);

    // The same trail, not shared: their selector is drift, and dropping it is refused.
    let unshared = profile(&dir, "", "");
    let plan = emu.ctguard(&["plan", "--format", "json", "-p", &unshared]);
    let destructive = trail_change(&plan.stdout)["destructive"].to_string();
    assert!(destructive.contains("\\\"exports\\\""), "{destructive}");
    emu.ctguard(&["apply", "--auto-approve", "-p", &unshared]).expect(1);
    assert_eq!(selectors(&emu).await.len(), 4);
}

async fn insight_types(emu: &Emulator) -> Option<Vec<String>> {
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    match ct.get_insight_selectors().trail_name(TRAIL).send().await {
        Ok(out) => {
            let mut types: Vec<String> = out
                .insight_selectors()
                .iter()
                .filter_map(|s| s.insight_type())
                .map(|t| t.as_str().to_string())
                .collect();
            types.sort();
            Some(types)
        }
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_insight_not_enabled_exception(), "{e:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn insights_converge_drift_is_repaired_and_switching_them_off_is_a_coverage_loss() {
    use aws_sdk_cloudtrail::types::{InsightSelector, InsightType};
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let both = profile(&dir, "", "api_call_rate = true\napi_error_rate = true");
    let plan = emu.ctguard(&["plan", "-p", &both]);
    assert!(plan.stdout.contains("$0.35 per 100,000"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", &both]).expect(0);
    assert_eq!(insight_types(&emu).await.unwrap(), ["ApiCallRateInsight", "ApiErrorRateInsight"]);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &both]).expect(0);

    // One type switched off by hand: drift, and apply puts it back (replacing, not appending).
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    let one = InsightSelector::builder().insight_type(InsightType::ApiCallRateInsight).build();
    ct.put_insight_selectors().trail_name(TRAIL).insight_selectors(one).send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", &both]);
    plan.expect(2);
    assert!(plan.stdout.contains("insight_selectors"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", &both]).expect(0);
    assert_eq!(insight_types(&emu).await.unwrap(), ["ApiCallRateInsight", "ApiErrorRateInsight"]);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &both]).expect(0);

    // A profile without [trail.insights] leaves them as they are: someone else's choice and bill.
    let silent = profile(&dir, "", "");
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &silent]).expect(0);

    // The profile switches Insights off: a coverage loss, refused without --allow-data-loss.
    let none = profile(&dir, "", "api_call_rate = false\napi_error_rate = false");
    let plan = emu.ctguard(&["plan", "--format", "json", "-p", &none]);
    let destructive = trail_change(&plan.stdout)["destructive"].to_string();
    assert!(destructive.contains("stops CloudTrail Insights ApiCallRateInsight"), "{destructive}");
    emu.clear_requests();
    emu.ctguard(&["apply", "--auto-approve", "-p", &none]).expect(1);
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss", "-p", &none]).expect(0);
    assert_eq!(insight_types(&emu).await, None, "Insights off");
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &none]).expect(0);
}
