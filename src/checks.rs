//! Checks verify runs on what it read, beyond drift: do the detections deployed in the account
//! still fire, and what will an auditor make of each CIS metric filter.
//!
//! Deployed patterns are read back from AWS and run, through the same evaluators as
//! `ctguard test`, over the sample CloudTrail records shipped under tests/detections/samples
//! (built into the binary). A pattern that differs from the profile only cosmetically passes; one
//! that decides any sample record differently (a truncated list, a hand-edited operator) fails,
//! naming the records it now misses or newly fires on.

use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_json::Value;

use crate::detect::catalog::Detection;
use crate::detect::eventbridge::envelope;
use crate::detect::logfilter::FilterPattern;
use crate::engine::LiveState;
use crate::plan::Address;
use crate::profile::Profile;
use crate::resources::{Check, Outputs, Resource, metric_filter, rule};

static SAMPLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/detections/samples");
static CIS: &str = include_str!("../tests/detections/cis.toml");

/// How many differing records a failing check names.
const SHOWN: usize = 3;

/// A sample record, with where it comes from and the event EventBridge makes of it.
struct Probe {
    label: String,
    record: Value,
    event: Value,
}

fn probes() -> &'static [Probe] {
    static PROBES: OnceLock<Vec<Probe>> = OnceLock::new();
    PROBES.get_or_init(|| {
        let mut out = Vec::new();
        for file in SAMPLES.files().filter(|f| f.path().extension().is_some_and(|e| e == "json")) {
            let name = file.path().display().to_string();
            let Ok(sample) = serde_json::from_slice::<Value>(file.contents()) else { continue };
            let lists = [("fires", ""), ("silent", "record"), ("gaps", "record")];
            for (list, inner) in lists {
                for (i, item) in sample[list].as_array().into_iter().flatten().enumerate() {
                    let record = if inner.is_empty() { item.clone() } else { item[inner].clone() };
                    let what = |k: &str| record[k].as_str().unwrap_or("?").to_string();
                    let label = format!("{} {} ({name} {list}[{i}])", what("eventSource"), what("eventName"));
                    out.push(Probe { label, event: envelope(&record), record });
                }
            }
        }
        out
    })
}

/// For every deployed rule and metric filter the profile declares: does the live pattern
/// decide every sample record the way the declared one does?
pub fn deployed_patterns(
    profile: &Profile,
    resources: &[Box<dyn Resource>],
    live: &LiveState,
) -> Vec<(Address, Check)> {
    // The declared restriction of each agent rule and alarm filter, so a miss names the agent
    // signal it lost.
    let restriction = |address: &Address| {
        let found = match address.kind {
            rule::KIND => profile
                .events
                .iter()
                .flat_map(|e| &e.rules)
                .find(|r| address_names(&address.name, &r.name))
                .map(|r| &r.restriction),
            _ => profile.alarms.iter().find(|a| a.name == address.name).map(|a| &a.restriction),
        };
        found.cloned().unwrap_or_default()
    };
    let mut out = Vec::new();
    for r in resources.iter().filter(|r| r.declared()) {
        let address = r.address();
        let is_rule = match address.kind {
            rule::KIND => true,
            metric_filter::KIND => false,
            _ => continue,
        };
        let Some(have) = live.get(&address).and_then(Option::as_ref) else { continue };
        let declared = r.desired(&Outputs::new()).unwrap_or_default();
        let (Some(want), Some(got)) = (declared.get("pattern"), have.attrs.get("pattern")) else { continue };
        let parse = |p: &Value| match is_rule {
            true => Detection::rule(&address.name, p, "", None),
            false => Detection::alarm(&address.name, p.as_str().unwrap_or(""), "", no_feed()),
        };
        let name = "deployed pattern fires as declared on the sample records".to_string();
        let check = match (parse(want), parse(got)) {
            (Ok(want), Ok(got)) => compare(&want.restricted_to(&restriction(&address)), &got),
            (Ok(_), Err(e)) => (false, format!("the deployed pattern does not parse: {}", e.error)),
            (Err(_), _) => continue,
        };
        out.push((address, Check { name, ok: check.0, detail: check.1 }));
    }
    out
}

/// A rule's address name is "<region>/<rule name>".
fn address_names(address: &str, rule: &str) -> bool {
    address.rsplit_once('/').is_some_and(|(_, name)| name == rule)
}

fn no_feed() -> crate::detect::catalog::Feed {
    crate::detect::catalog::Feed::Topic { topic: None }
}

fn compare(want: &Detection, got: &Detection) -> (bool, String) {
    let probes = probes();
    let (mut missed, mut extra) = (Vec::new(), Vec::new());
    let mut lost_signals: Vec<String> = Vec::new();
    let mut agent_matches = 0;
    for p in probes {
        let wanted = want.fires(&p.record, &p.event);
        if wanted && want.is_agent_only() {
            agent_matches += 1;
        }
        match (wanted, got.fires(&p.record, &p.event)) {
            (true, false) => {
                missed.push(p.label.as_str());
                // Which agent signal made the record an agent's: a deployed pattern that lost a
                // signal misses every record that only it matched.
                let catalog = crate::detect::catalog::Catalog { detections: vec![want.clone()] };
                for m in catalog.signals(&p.record, &[0]) {
                    let s = format!("{} {:?}", m.signal.key(), m.pattern);
                    if !lost_signals.contains(&s) {
                        lost_signals.push(s);
                    }
                }
            }
            (false, true) => extra.push(p.label.as_str()),
            _ => {}
        }
    }
    if missed.is_empty() && extra.is_empty() {
        let agents = match agent_matches {
            0 => String::new(),
            n => format!(" ({n} matched as agents' calls, by the declared agent signals)"),
        };
        return (true, format!("{} sample records decided as declared{agents}", probes.len()));
    }
    let list = |v: &[&str]| {
        let more = v.len().saturating_sub(SHOWN);
        let shown = v.iter().take(SHOWN).copied().collect::<Vec<_>>().join("; ");
        if more > 0 { format!("{shown}; and {more} more") } else { shown }
    };
    let mut parts = Vec::new();
    if !missed.is_empty() {
        parts.push(format!("no longer fires on {} it should: {}", missed.len(), list(&missed)));
    }
    if !lost_signals.is_empty() {
        parts.push(format!("the records it misses were agents' by {}", lost_signals.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("now fires on {} it should not: {}", extra.len(), list(&extra)));
    }
    (false, format!("the deployed pattern {}", parts.join("; ")))
}

/// A text a source publishes for a CIS control.
#[derive(Debug, Deserialize)]
struct Published {
    control: String,
    source: String,
    pattern: String,
    correct: bool,
}

/// How an auditor's check recognises a control's filter: a regular expression over the text.
#[derive(Debug, Deserialize)]
struct AuditorCheck {
    control: String,
    auditor: String,
    check: String,
    regex: String,
}

#[derive(Deserialize)]
struct CisFile {
    #[serde(default)]
    published: Vec<Published>,
    #[serde(default)]
    auditor: Vec<AuditorCheck>,
}

fn cis_file() -> &'static CisFile {
    static FILE: OnceLock<CisFile> = OnceLock::new();
    FILE.get_or_init(|| {
        toml::from_str::<CisFile>(CIS).unwrap_or(CisFile { published: Vec::new(), auditor: Vec::new() })
    })
}

fn published() -> &'static [Published] {
    &cis_file().published
}

/// What each auditor will conclude about a deployed CIS filter: Prowler searches the text with
/// its check's regular expression; Security Hub's CloudWatch.N controls run the CIS audit step,
/// which compares the text with the published one. One line per auditor, saying why it would
/// flag the alarm.
fn auditors(control: &str, deployed: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in cis_file().auditor.iter().filter(|a| a.control == control) {
        let found =
            regex_lite::RegexBuilder::new(&a.regex).dot_matches_new_line(true).build().map(|re| re.is_match(deployed));
        out.push(match found {
            Ok(true) => format!("{} {}: passes", a.auditor, a.check),
            Ok(false) => format!(
                "{} {}: would flag it (its check looks for these terms in this order: {})",
                a.auditor,
                a.check,
                terms_of(&a.regex)
            ),
            Err(e) => format!("{} {}: its check expression does not compile here ({e})", a.auditor, a.check),
        });
    }
    for sh in published().iter().filter(|p| p.control == control && p.source.starts_with("AWS Security Hub")) {
        let name = sh.source.split(' ').take(4).collect::<Vec<_>>().join(" ");
        let name = name.trim_end_matches(|c: char| c == ';' || c == ',');
        out.push(if sh.pattern == deployed {
            format!("{name}: passes (the exact text)")
        } else {
            format!("{name}: would flag it (its audit step expects exactly {})", sh.pattern)
        });
    }
    out
}

/// The event names and sources a Prowler expression requires, for the report.
fn terms_of(regex: &str) -> String {
    regex
        .split(".+")
        .map(|t| {
            let t = t.replace("\\s*", " ").replace(".?", "").replace("\\$\\.", "$.").replace("\\", "");
            t.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// For each deployed CIS metric filter: is its pattern exactly a published CIS / Security Hub
/// text, equivalent to one (same normal form), or different from all of them? Informational:
/// it never fails verify (a pattern that differs from the profile is drift already), it says
/// what an auditor comparing texts will conclude.
pub fn cis_texts(profile: &Profile, live: &LiveState) -> Vec<(Address, Check)> {
    let mut out = Vec::new();
    for alarm in &profile.alarms {
        let texts: Vec<&Published> = published().iter().filter(|p| p.control == alarm.id).collect();
        if texts.is_empty() {
            continue;
        }
        let address = metric_filter::address(&alarm.name, &profile.runtime.region);
        let Some(have) = live.get(&address).and_then(Option::as_ref) else { continue };
        let deployed = have.attrs.get("pattern").and_then(Value::as_str).unwrap_or("");
        let mut detail = classify(deployed, &texts);
        for line in auditors(&alarm.id, deployed) {
            detail.push_str("; ");
            detail.push_str(&line);
        }
        let name = format!("{} pattern against the published CIS and Security Hub texts", alarm.id.to_uppercase());
        out.push((address, Check { name, ok: true, detail }));
    }
    out
}

fn classify(deployed: &str, texts: &[&Published]) -> String {
    let sources = |ps: Vec<&&Published>| {
        ps.iter()
            .map(|p| format!("{}{}", p.source, if p.correct { "" } else { " (a flawed text)" }))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let exact: Vec<&&Published> = texts.iter().filter(|p| p.pattern == deployed).collect();
    if !exact.is_empty() {
        return format!("exact: the text of {}", sources(exact));
    }
    let normal = |p: &str| FilterPattern::parse(p).ok().map(|f| f.canonical());
    let mine = normal(deployed);
    let same: Vec<&&Published> = texts.iter().filter(|p| mine.is_some() && normal(&p.pattern) == mine).collect();
    if !same.is_empty() {
        return format!(
            "equivalent: the same terms as {}, written differently; an auditor comparing text verbatim will flag it",
            sources(same)
        );
    }
    format!(
        "different from every published text ({}); an auditor comparing text will flag it",
        sources(texts.iter().collect())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_file_is_built_in_and_parses() {
        let files = SAMPLES.files().filter(|f| f.path().extension().is_some_and(|e| e == "json")).count();
        assert!(files >= 20, "{files}");
        assert!(probes().len() > 400, "{}", probes().len());
        assert!(published().len() >= 15, "{}", published().len());
    }

    #[test]
    fn a_truncated_event_name_list_is_caught_and_a_reordered_one_is_not() {
        let want = r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"#;
        let reordered = r#"{($.eventName="StopLogging")||($.eventName="StartLogging")||($.eventName="DeleteTrail")||($.eventName="UpdateTrail")||($.eventName="CreateTrail")}"#;
        let truncated =
            r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) }"#;
        let d = |p: &str| Detection::alarm("x", p, "", no_feed()).unwrap();
        assert!(compare(&d(want), &d(reordered)).0);
        let (ok, detail) = compare(&d(want), &d(truncated));
        assert!(!ok);
        assert!(detail.contains("no longer fires on") && detail.contains("StopLogging"), "{detail}");
    }

    #[test]
    fn a_filter_that_lost_an_agent_signal_names_it() {
        let runtime = crate::profile::Runtime {
            account_id: "123456789012".into(),
            ..crate::profile::Runtime::placeholder("us-east-1")
        };
        let profile = crate::profile::load("ai-agent-guard").unwrap().resolve(&runtime, &Default::default()).unwrap();
        let alarm = profile.alarms.iter().find(|a| a.id == "agent-api-call-volume").unwrap();
        let term = r#" || ($.userIdentity.sessionContext.sourceIdentity = "agent-*")"#;
        assert!(alarm.pattern.contains(term), "{}", alarm.pattern);
        let lost = alarm.pattern.replace(term, "");
        let want =
            Detection::alarm(&alarm.id, &alarm.pattern, "", no_feed()).unwrap().restricted_to(&alarm.restriction);
        let (ok, detail) = compare(&want, &Detection::alarm(&alarm.id, &lost, "", no_feed()).unwrap());
        assert!(!ok);
        assert!(detail.contains(r#"the records it misses were agents' by source_identities "agent-*""#), "{detail}");
        let (ok, detail) = compare(&want, &Detection::alarm(&alarm.id, &alarm.pattern, "", no_feed()).unwrap());
        assert!(ok && detail.contains("matched as agents' calls"), "{detail}");
    }

    #[test]
    fn each_deployed_cis_filter_passes_prowler_and_security_hub_where_one_text_can() {
        let profile = crate::profile::load("ai-agent-guard")
            .unwrap()
            .resolve(&crate::profile::Runtime::placeholder("us-east-1"), &Default::default())
            .unwrap();
        let mut flagged = Vec::new();
        for alarm in profile.alarms.iter().filter(|a| a.id.starts_with("cis-4.")) {
            for line in auditors(&alarm.id, &alarm.pattern) {
                assert!(!line.contains("does not compile"), "{line}");
                if line.contains("would flag") {
                    flagged.push(format!("{}: {line}", alarm.id));
                }
            }
        }
        // 4.13: Prowler requires the eventSource term, Security Hub's CIS v1.4.0 audit text has
        // none; one text cannot pass both, and the scoped one is also the correct one (API
        // Gateway has a CreateRoute too). Every other control passes both.
        assert_eq!(flagged.len(), 1, "{flagged:#?}");
        assert!(flagged[0].starts_with("cis-4.13: AWS Security Hub CloudWatch.13"), "{flagged:#?}");
        let prowler = auditors("cis-4.13", r#"{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable)}"#);
        assert!(
            prowler[0].contains("would flag it") && prowler[0].contains("$.eventSource = ec2.amazonaws.com"),
            "{prowler:?}"
        );
    }

    #[test]
    fn cis_texts_are_classified() {
        let texts = published();
        let sh: Vec<&Published> = texts.iter().filter(|p| p.control == "cis-4.1").collect();
        let exact = r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#;
        assert!(
            classify(exact, &sh).starts_with("exact: the text of AWS Security Hub CloudWatch.2"),
            "{}",
            classify(exact, &sh)
        );
        let respaced = r#"{ ($.errorCode = "AccessDenied*") || ($.errorCode = "*UnauthorizedOperation") }"#;
        assert!(classify(respaced, &sh).starts_with("equivalent"), "{}", classify(respaced, &sh));
        assert!(classify(r#"{ $.errorCode = "AccessDenied" }"#, &sh).starts_with("different"));
    }
}
