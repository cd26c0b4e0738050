use super::*;

fn runtime() -> Runtime {
    Runtime {
        account_id: "123456789012".into(),
        partition: "aws".into(),
        region: "us-east-1".into(),
        enabled_regions: vec!["us-east-1".into()],
        organization: None,
    }
}

/// Writes a profile (and optionally templates) into a temp dir laid out like the repo.
fn on_disk(profile: &str, templates: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    for (name, text) in source::builtin_templates() {
        std::fs::write(dir.path().join("policies").join(name), text).unwrap();
    }
    for (name, text) in templates {
        std::fs::write(dir.path().join("policies").join(name), text).unwrap();
    }
    let path = dir.path().join("profiles").join("p.toml");
    std::fs::write(&path, profile).unwrap();
    let spec = path.to_string_lossy().into_owned();
    (dir, spec)
}

fn flagship() -> String {
    source::builtin_profile("ai-agent-guard").unwrap().text
}

fn problems(spec: &str, overrides: &Vars) -> Vec<Problem> {
    match load(spec) {
        Err(e) => e.downcast::<Invalid>().expect("an Invalid error").0,
        Ok(loaded) => loaded.resolve(&runtime(), overrides).expect_err("should be invalid").0,
    }
}

#[test]
fn flagship_resolves_with_every_name_filled() {
    let profile = load("ai-agent-guard").unwrap().resolve(&runtime(), &Vars::new()).unwrap();
    assert_eq!(profile.bucket.name, "ctguard-audit-123456789012-us-east-1");
    assert_eq!(profile.trail.arn, "arn:aws:cloudtrail:us-east-1:123456789012:trail/ctguard-audit");
    let cw = profile.cloudwatch_logs.unwrap();
    assert_eq!(cw.role_arn, "arn:aws:iam::123456789012:role/ctguard/ctguard-cloudtrail-to-logs");
    assert_eq!(cw.log_group_arn, "arn:aws:logs:us-east-1:123456789012:log-group:/ctguard/cloudtrail:*");
    let text = profile.bucket.policy.to_string();
    assert!(
        text.contains("arn:aws:s3:::ctguard-audit-123456789012-us-east-1/cloudtrail/AWSLogs/123456789012/*"),
        "{text}"
    );
    assert!(!text.contains("${"), "no placeholder may survive: {text}");
}

#[test]
fn an_organization_trail_may_deliver_every_members_stream_to_the_log_group() {
    let text = flagship().replacen("[trail]\n", "[trail]\norganization = true\n", 1);
    let (_dir, spec) = on_disk(&text, &[]);
    let management = Runtime { organization: Some(Organization::stand_in()), ..runtime() };
    let profile = load(&spec).unwrap().resolve(&management, &Vars::new()).unwrap();
    let policy = profile.cloudwatch_logs.unwrap().role_policy.to_string();
    let group = "arn:aws:logs:us-east-1:123456789012:log-group:/ctguard/cloudtrail";
    assert!(policy.contains(&format!("{group}:log-stream:123456789012_CloudTrail_*")), "{policy}");
    assert!(policy.contains(&format!("{group}:log-stream:o-exampleorgid_*")), "{policy}");
    let single = load("ai-agent-guard").unwrap().resolve(&runtime(), &Vars::new()).unwrap();
    assert!(!single.cloudwatch_logs.unwrap().role_policy.to_string().contains("o-exampleorgid"));
}

#[test]
fn an_organization_trails_table_reads_the_organization_layout() {
    let text = flagship().replacen("[trail]\n", "[trail]\norganization = true\n", 1);
    let (_dir, spec) = on_disk(&text, &[]);
    let real = Organization { id: "o-a1b2c3d4e5".into(), management_account: "123456789012".into() };
    let management = Runtime { organization: Some(real), ..runtime() };
    let profile = load(&spec).unwrap().resolve(&management, &Vars::new()).unwrap();
    let org = profile.athena.unwrap().organization.unwrap();
    assert_eq!((org.id.as_str(), org.accounts.as_slice()), ("o-a1b2c3d4e5", ["123456789012".to_string()].as_slice()));

    let other =
        text.replacen("[athena]\n", "[athena]\norganization_id = \"o-zzzzzzzzzz\"\naccounts = [\"123456789012\"]\n", 1);
    let (_dir, spec) = on_disk(&other, &[]);
    let found = load(&spec).unwrap().resolve(&management, &Vars::new()).unwrap_err().0;
    assert!(found.iter().any(|p| p.key == "athena.organization_id" && p.message.contains("o-a1b2c3d4e5")), "{found:?}");
}

#[test]
fn var_overrides_a_declared_variable() {
    let overrides = Vars::from([("trail_name".to_string(), json!("org-audit"))]);
    let profile = load("ai-agent-guard").unwrap().resolve(&runtime(), &overrides).unwrap();
    assert_eq!(profile.trail.name, "org-audit");
    assert!(profile.bucket.policy.to_string().contains("trail/org-audit"));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = flagship().replace("log_file_validation = true", "log_file_validaton = true");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert!(p.file.ends_with("p.toml"));
    let line = text.lines().position(|l| l.starts_with("log_file_validaton")).unwrap() + 1;
    assert_eq!(p.line, Some(line));
    assert_eq!(p.key, "trail.log_file_validaton");
    assert!(p.message.contains("unknown key"), "{}", p.message);
}

#[test]
fn wrong_type_is_reported() {
    let text = flagship().replace("retention_days = 365", "retention_days = \"a year\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "cloudwatch_logs.retention_days");
    assert!(p.message.contains("invalid type: string \"a year\""), "{}", p.message);
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let text = flagship()
        .replace("audit_bucket = \"ctguard-audit-${account_id}-${region}\"", "audit_bucket = \"Audit_Logs\"")
        .replace("retention_days = 365", "retention_days = 366")
        .replace("role_name = \"ctguard-cloudtrail-to-logs\"", "role_name = \"has space\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let keys: Vec<String> = problems(&spec, &Vars::new()).into_iter().map(|p| p.key).collect();
    for key in ["bucket.name", "cloudwatch_logs.retention_days", "cloudwatch_logs.role_name"] {
        assert!(keys.contains(&key.to_string()), "{key} missing from {keys:?}");
    }
}

#[test]
fn unresolved_placeholder_in_profile() {
    let text = flagship().replace("name = \"${trail_name}\"", "name = \"${trail_nam}\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "trail.name");
    assert!(p.message.contains("${trail_nam}"), "{}", p.message);
}

#[test]
fn unresolved_placeholder_in_template() {
    let bad = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "${nope}"}]}"#;
    let (_dir, spec) = on_disk(&flagship(), &[("audit-bucket-policy.json", bad)]);
    let p = &problems(&spec, &Vars::new())[0];
    assert!(p.file.ends_with("audit-bucket-policy.json"));
    assert_eq!(p.key, "$.Statement[0].Resource");
    assert!(p.message.contains("${nope}"));
}

#[test]
fn a_shared_document_template_statement_needs_ctguards_sid() {
    let bad = r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "CtguardAccountManagesTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},
        {"Sid": "TeamPublish", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}"#;
    let (_dir, spec) = on_disk(&flagship(), &[("alert-topic-policy.json", bad)]);
    let found = problems(&spec, &Vars::new());
    let mine: Vec<_> = found.iter().filter(|p| p.file.ends_with("alert-topic-policy.json")).collect();
    assert_eq!(mine.len(), 2, "{found:#?}");
    assert!(mine[0].message.contains("\"TeamPublish\"") && mine[0].message.contains("\"Ctguard\""));
    assert!(mine[1].message.contains("#3 has no Sid"));
    // A role's inline policy is ctguard's as a whole, by its name: its Sids are free.
    let inline = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}"#;
    let (_dir, spec) = on_disk(&flagship(), &[("cloudtrail-logs-role-policy.json", inline)]);
    load(&spec).unwrap().resolve(&runtime(), &Vars::new()).unwrap();
}

#[test]
fn malformed_template_json() {
    let (_dir, spec) = on_disk(
        &flagship(),
        &[("cloudtrail-logs-trust.json", "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}")],
    );
    let p = &problems(&spec, &Vars::new())[0];
    assert!(p.file.ends_with("cloudtrail-logs-trust.json"));
    assert_eq!(p.line, Some(4));
    assert!(p.message.starts_with("malformed JSON"));
}

#[test]
fn missing_template_names_the_key() {
    let text = flagship().replace("policy = \"audit-bucket-policy.json\"", "policy = \"nope.json\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "bucket.policy");
    assert!(p.message.contains("nope.json"));
}

#[test]
fn undeclared_var_override_is_an_error() {
    let p = &problems("ai-agent-guard", &Vars::from([("trail_nme".to_string(), json!("x"))]))[0];
    assert_eq!(p.key, "--var trail_nme");
}

#[test]
fn lifecycle_order_is_checked() {
    let text = flagship().replace(
        "transition_to_ia_days = 30\ntransition_to_glacier_days = 90",
        "transition_to_ia_days = 10\ntransition_to_glacier_days = 90",
    );
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "bucket.lifecycle.transition_to_ia_days");
}

#[test]
fn audit_logs_kept_under_a_year_need_a_stated_reason() {
    let short = flagship().replace("expire_days = 2555", "expire_days = 364");
    let (_dir, spec) = on_disk(&short, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "bucket.lifecycle.expire_days");
    assert!(p.message.contains("at least 365 days") && p.message.contains("allow_short_retention"), "{}", p.message);

    let reasoned = flagship().replace(
        "expire_days = 2555",
        "expire_days = 120\nallow_short_retention = \"a SIEM keeps the copy of record\"",
    );
    let valid = |spec: &str| load(spec).unwrap().resolve(&runtime(), &Vars::new()).is_ok();
    let (_dir, spec) = on_disk(&reasoned, &[]);
    assert!(valid(&spec));

    let empty = flagship().replace("expire_days = 2555", "expire_days = 120\nallow_short_retention = \" \"");
    let (_dir, spec) = on_disk(&empty, &[]);
    assert_eq!(problems(&spec, &Vars::new())[0].key, "bucket.lifecycle.allow_short_retention");

    // Keeping for ever (0), or a short noncurrent window, is not short retention.
    let never = flagship().replace("expire_days = 2555", "expire_days = 0");
    let (_dir, spec) = on_disk(&never, &[]);
    assert!(valid(&spec));
}

#[test]
fn kms_key_needs_one_mode() {
    let text = flagship().replace(
        "alias = \"alias/ctguard-audit\"",
        "alias = \"alias/ctguard-audit\"\nkey_arn = \"arn:aws:kms:us-east-1:123456789012:key/x\"",
    );
    let (_dir, spec) = on_disk(&text, &[]);
    assert_eq!(problems(&spec, &Vars::new())[0].key, "trail.kms");
}

#[test]
fn the_bucket_encrypts_with_the_trail_key_only_when_ctguard_creates_it() {
    let p = load(&on_disk(&flagship(), &[]).1).unwrap().resolve(&runtime(), &Vars::new()).unwrap();
    assert!(p.bucket.trail_key && p.bucket.kms_key_arn.is_none());
    let existing = flagship().replace(
        "alias = \"alias/ctguard-audit\"\npolicy = \"trail-key-policy.json\"",
        "key_arn = \"arn:aws:kms:us-east-1:123456789012:key/x\"",
    );
    let (_dir, spec) = on_disk(&existing, &[]);
    assert_eq!(problems(&spec, &Vars::new())[0].key, "bucket.kms_key");
    let both = flagship().replace(
        "kms_key = \"trail\"",
        "kms_key = \"trail\"\nkms_key_arn = \"arn:aws:kms:us-east-1:123456789012:key/x\"",
    );
    let (_dir, spec) = on_disk(&both, &[]);
    assert_eq!(problems(&spec, &Vars::new())[0].key, "bucket.kms_key");
}

#[test]
fn each_managed_key_has_its_own_alias() {
    let text = flagship().replace("alias = \"alias/ctguard-logs\"", "alias = \"alias/ctguard-audit\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let found = problems(&spec, &Vars::new());
    assert_eq!(found[0].key, "cloudwatch_logs.kms.alias", "{found:?}");
    assert!(found[0].message.contains("trail.kms"), "{found:?}");
}

#[test]
fn problems_display_as_file_line_key_message() {
    let p = Problem { file: "p.toml".into(), line: Some(3), key: "bucket.name".into(), message: "bad".into() };
    assert_eq!(p.to_string(), "p.toml:3: bucket.name: bad");
}

#[test]
fn malformed_event_pattern_names_the_template_and_json_path() {
    let bad = r#"{"source": ["aws.ec2"], "detail": {"eventName": [{"prefx": "Terminate"}]}}"#;
    let (_dir, spec) = on_disk(&flagship(), &[("monitoring-tampering.json", bad)]);
    let problems = problems(&spec, &Vars::new());
    let p = problems.iter().find(|p| p.file.ends_with("monitoring-tampering.json")).expect("a problem in the template");
    assert_eq!(p.key, "$.detail.eventName[0].prefx");
    assert!(p.message.contains("unknown operator \"prefx\""), "{}", p.message);
    assert!(p.message.contains("events.rules[6]"), "names the rule that uses it: {}", p.message);
}

#[test]
fn malformed_filter_pattern_names_the_alarm_key_and_character() {
    let text = flagship().replace(
        r#"pattern = '{ ($.eventName = "ConsoleLogin") && ($.responseElements.ConsoleLogin = "Failure") }'"#,
        r#"pattern = '{ ($.eventName = "ConsoleLogin") && ($.responseElements.ConsoleLogin = "Failure" }'"#,
    );
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert!(p.key.starts_with("alarms[") && p.key.ends_with("].pattern"), "{}", p.key);
    assert!(p.message.starts_with("character "), "{}", p.message);
    assert!(p.message.contains("expected && or || or )"), "{}", p.message);
}

#[test]
fn an_iam_role_arn_as_a_principal_says_what_to_write_instead() {
    let text = flagship().replace(
        "name = \"ctguard-agent-object-deletion\"",
        "principals = [\"arn:aws:iam::123456789012:role/AIAgent*\"]\nname = \"ctguard-agent-object-deletion\"",
    );
    let (_dir, spec) = on_disk(&text, &[]);
    let problems = problems(&spec, &Vars::new());
    let p = problems.iter().find(|p| p.key.ends_with(".principals[0]")).expect("the rule's principal");
    assert!(p.message.contains("\"arn:aws:sts::123456789012:assumed-role/AIAgent*/*\""), "{}", p.message);
    assert!(p.message.contains("[agents] roles"), "{}", p.message);
}

#[test]
fn agent_patterns_are_checked_and_named_by_key() {
    let text = flagship()
        .replace("agent_source_identities = [\"agent-*\"]", "agent_source_identities = [\"agent:*\", \"\"]")
        .replace("agent_roles = [\"AIAgent*\"]", "agent_roles = [\"arn:aws:iam::123456789012:role/AIAgent\"]");
    let (_dir, spec) = on_disk(&text, &[]);
    let problems = problems(&spec, &Vars::new());
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["agents.roles[0]", "agents.source_identities[0]", "agents.source_identities[1]"], "{problems:?}");
    assert!(problems[0].message.contains("write \"AIAgent\""), "{}", problems[0].message);
    assert!(problems[1].message.contains("cannot contain ':'"), "{}", problems[1].message);
    assert!(problems[2].message.contains("empty pattern"), "{}", problems[2].message);
}

#[test]
fn an_unknown_agents_key_is_an_error_with_file_line_and_key() {
    let text = flagship().replace("session_names = \"${agent_session_names}\"", "sessions = [\"agent-*\"]");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert!(p.key.starts_with("agents"), "{p}");
    assert!(p.line.is_some() && p.message.contains("unknown key sessions"), "{p}");
}

#[test]
fn an_agent_rule_needs_a_declared_signal() {
    let overrides: Vars = ["agent_roles", "agent_session_names", "agent_source_identities", "agent_users"]
        .iter()
        .chain(&["agent_sso_permission_sets", "agent_user_agents"])
        .map(|k| (k.to_string(), json!("")))
        .collect();
    let problems = problems("ai-agent-guard", &overrides);
    assert!(problems.iter().all(|p| p.key.ends_with(".agents")), "{problems:?}");
    assert!(problems[0].message.contains("declares no signal"), "{}", problems[0].message);
}

#[test]
fn agent_data_events_refuse_a_role_pattern_that_starts_with_a_wildcard() {
    // "*-agent" would select by the prefix "assumed-role/": every role session's data events.
    let overrides = Vars::from([("agent_roles".to_string(), json!("*-agent"))]);
    let on_selector = |overrides: &Vars| -> Vec<Problem> {
        problems("ai-agent-guard", overrides).into_iter().filter(|p| p.key.starts_with("trail.data_events")).collect()
    };
    let found = on_selector(&overrides);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "trail.data_events[0].agents");
    for part in ["\"*-agent\" starts with a wildcard", "every role session"] {
        assert!(found[0].message.contains(part), "{part:?} in {}", found[0].message);
    }
    let found = on_selector(&Vars::from([("agent_users".to_string(), json!("*bot"))]));
    assert!(found.len() == 1 && found[0].message.contains("every IAM user"), "{found:?}");
}

#[test]
fn var_replaces_an_agent_list_with_a_comma_separated_one() {
    let overrides = Vars::from([("agent_roles".to_string(), json!("ops-bot, claude-*"))]);
    let profile = load("ai-agent-guard").unwrap().resolve(&runtime(), &overrides).unwrap();
    let roles: Vec<&str> = profile
        .agents
        .as_ref()
        .unwrap()
        .signals
        .iter()
        .filter(|s| s.kind == crate::detect::agents::Kind::Roles)
        .map(|s| s.pattern.as_str())
        .collect();
    assert_eq!(roles, ["ops-bot", "claude-*"]);
    let rule = &profile.events.as_ref().unwrap().rules.iter().find(|r| r.name == "ctguard-agent-persistence").unwrap();
    let text = rule.pattern.to_string();
    assert!(text.contains("\"arn:aws:sts::123456789012:assumed-role/ops-bot/\""), "{text}");
    assert!(text.contains("{\"prefix\":\"arn:aws:sts::123456789012:assumed-role/claude-\"}"), "{text}");
}

#[test]
fn a_metric_filter_refuses_an_agent_pattern_it_cannot_express() {
    let overrides = Vars::from([("agent_session_names".to_string(), json!("agent-*-prod"))]);
    let problems = problems("ai-agent-guard", &overrides);
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p.key == "agents.session_names"), "{problems:?}");
    assert!(problems[0].message.contains("only a literal '*'"), "{}", problems[0].message);
}

#[test]
fn tamper_rules_name_ctguards_own_resources() {
    let profile = load("ai-agent-guard").unwrap().resolve(&runtime(), &Vars::new()).unwrap();
    let rules = &profile.events.as_ref().unwrap().rules;
    let text = |name: &str| rules.iter().find(|r| r.name == name).unwrap().pattern.to_string();
    let storage = text("ctguard-pipeline-storage-tampering");
    assert!(
        storage.contains("[\"ctguard-audit-123456789012-us-east-1\",\"ctguard-audit-123456789012-us-east-1-access\"]")
    );
    assert!(
        storage.contains("[\"alias/ctguard-audit\"]") && storage.contains("\"ctguard-events-forwarder\""),
        "{storage}"
    );
    let pipeline = text("ctguard-pipeline-tampering");
    assert!(pipeline.contains("arn:aws:sns:us-east-1:123456789012:ctguard-alerts:"), "{pipeline}");
    assert!(pipeline.contains("[\"/ctguard/cloudtrail\"]"), "{pipeline}");
    // Service calls are left out of the destructive rules, never out of tampering rules.
    assert!(text("ctguard-destructive-actions").contains("AWSServiceRoleFor"));
    assert!(!text("ctguard-monitoring-tampering").contains("invokedBy"));
    assert!(!text("ctguard-agent-destructive-actions").contains("invokedBy"));
}

#[test]
fn home_region_is_validated_with_the_profile() {
    let text = flagship()
        .replace("policies_dir = \"../policies\"", "policies_dir = \"../policies\"\nhome_region = \"us-east1\"");
    let (_dir, spec) = on_disk(&text, &[]);
    let p = &problems(&spec, &Vars::new())[0];
    assert_eq!(p.key, "profile.home_region");
    assert!(p.message.contains("a region code like us-east-1"), "{}", p.message);
}

/// The flagship profile with its rules in these regions, resolved with this home region.
fn rules_in(home: &str, regions: &[&str]) -> Result<Profile, Invalid> {
    let text = flagship()
        .replace("regions = \"all-enabled\"", &format!("regions = {}", serde_json::to_string(regions).unwrap()));
    let (_dir, spec) = on_disk(&text, &[]);
    load(&spec).unwrap().resolve(&Runtime { region: home.into(), ..runtime() }, &Vars::new())
}

#[test]
fn rules_must_cover_the_partitions_global_region() {
    let problems = rules_in("eu-west-1", &["eu-west-1", "eu-central-1"]).unwrap_err().0;
    let p = problems.iter().find(|p| p.key == "profile.regions").expect("a problem on profile.regions");
    assert!(p.message.contains("but not us-east-1"), "{}", p.message);
    assert!(p.message.contains("IAM, STS, Organizations and Route 53"), "{}", p.message);
    assert!(rules_in("eu-west-1", &["us-east-1"]).is_ok());
    // GovCloud and China have their own global regions.
    let gov = rules_in("us-gov-east-1", &[]).unwrap_err().0;
    assert!(gov.iter().any(|p| p.message.contains("but not us-gov-west-1")), "{gov:?}");
    assert!(rules_in("us-gov-east-1", &["us-gov-west-1"]).is_ok());
    assert!(rules_in("cn-northwest-1", &["cn-north-1"]).is_ok());
    // The account's enabled regions always include it.
    let text = flagship();
    let (_dir, spec) = on_disk(&text, &[]);
    let all = Runtime { region: "eu-west-1".into(), enabled_regions: vec!["eu-west-1".into()], ..runtime() };
    assert!(load(&spec).unwrap().resolve(&all, &Vars::new()).is_ok());
}

#[test]
fn a_rule_on_s3_object_events_needs_the_buckets_eventbridge_notifications() {
    let text = flagship().replace("eventbridge_notifications = true", "eventbridge_notifications = false");
    let (_dir, spec) = on_disk(&text, &[]);
    let all = problems(&spec, &Vars::new());
    // Both rules on S3's own events: deletions and writes in the audit bucket.
    assert_eq!(all.len(), 2, "{all:?}");
    for p in &all {
        assert!(p.key.ends_with("].pattern"), "{p:?}");
        assert!(p.message.contains("[bucket] eventbridge_notifications = true"), "{}", p.message);
    }
}

#[test]
fn a_rule_on_s3_object_events_cannot_be_restricted_to_agents() {
    let rule = "pattern = \"audit-log-object-deleted.json\"\ntitle = \"Audit logs deleted\"\nseverity = \"critical\"\n";
    let text = flagship().replace(rule, &format!("{rule}agents = true\n"));
    assert_ne!(text, flagship());
    let (_dir, spec) = on_disk(&text, &[]);
    let all = problems(&spec, &Vars::new());
    let p = all.iter().find(|p| p.key.ends_with("].agents")).expect("a problem on agents");
    assert!(p.message.contains("account ID or service principal"), "{}", p.message);
}

#[test]
fn a_rule_named_like_ctguards_own_drill_or_forwarding_rule_is_refused() {
    for taken in ["ctguard-drill", "ctguard-forward-to-home-2"] {
        let text = flagship().replacen("name = \"ctguard-destructive-actions\"", &format!("name = \"{taken}\""), 1);
        let (_dir, spec) = on_disk(&text, &[]);
        let found = problems(&spec, &Vars::new());
        assert!(
            found.iter().any(|p| p.key == "events.rules" && p.message.contains("ctguard's own rule")),
            "{taken}: {found:?}"
        );
    }
}

#[test]
fn the_stand_in_account_is_in_the_home_regions_partition() {
    assert_eq!(Runtime::placeholder("us-gov-west-1").partition, "aws-us-gov");
    assert_eq!(Runtime::placeholder("cn-north-1").partition, "aws-cn");
    assert_eq!(Runtime::placeholder("eu-west-1").partition, "aws");
}

/// The flagship profile with `central_bus = arn`, in us-east-1 and eu-west-1.
fn with_central_bus(arn: &str) -> String {
    let text = flagship().replacen("regions = \"all-enabled\"", "regions = [\"us-east-1\", \"eu-west-1\"]", 1);
    let events = "forwarder_role_policy = \"events-forwarder-policy.json\"\n";
    assert!(text.contains(events));
    text.replacen(events, &format!("{events}central_bus = \"{arn}\"\n"), 1)
}

#[test]
fn a_central_bus_in_this_account_needs_its_organization_and_the_home_region() {
    // Owned here, but the account is in no organization and the bus is not in the home region.
    let (_dir, spec) = on_disk(&with_central_bus("arn:aws:events:eu-west-1:123456789012:event-bus/central"), &[]);
    let got = problems(&spec, &Vars::new());
    let central: Vec<&Problem> = got.iter().filter(|p| p.key == "events.central_bus").collect();
    assert_eq!(central.len(), 2, "{got:#?}");
    assert!(central[0].message.contains("home region in us-east-1"), "{}", central[0].message);
    assert!(central[1].message.contains("belongs to no AWS Organizations organization"), "{}", central[1].message);

    // In the home region, with the organization: the policy admits the organization.
    let (_dir, spec) = on_disk(&with_central_bus("arn:aws:events:us-east-1:123456789012:event-bus/central"), &[]);
    let runtime = Runtime {
        enabled_regions: vec!["us-east-1".into(), "eu-west-1".into()],
        organization: Some(Organization { id: "o-a1b2c3d4e5".into(), management_account: "999988887777".into() }),
        ..runtime()
    };
    let p = load(&spec).unwrap().resolve(&runtime, &Vars::new()).unwrap();
    let bus = p.events.unwrap().central.unwrap();
    let central_bus::CentralRole::Owner { policy } = &bus.role else { panic!("{bus:?}") };
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"], "o-a1b2c3d4e5");
    assert_eq!(statement["Resource"], "arn:aws:events:us-east-1:123456789012:event-bus/central");
}

#[test]
fn a_central_bus_of_another_account_is_checked_offline_and_admitted_by_the_forwarding_role() {
    for (arn, expected) in [
        ("arn:aws:events:us-east-1:999988887777:bus/central", "expected an event bus ARN"),
        ("arn:aws-cn:events:cn-north-1:999988887777:event-bus/central", "in partition aws-cn, but account"),
        ("arn:aws:events:ap-south-1:999988887777:event-bus/central", "not one the profile declares"),
        ("arn:aws:events:us-east-1:999988887777:event-bus/default", "a custom event bus"),
    ] {
        let (_dir, spec) = on_disk(&with_central_bus(arn), &[]);
        let got = problems(&spec, &Vars::new());
        assert!(got.iter().any(|p| p.key == "events.central_bus" && p.message.contains(expected)), "{arn}: {got:#?}");
        assert!(got.iter().all(|p| p.file.ends_with("p.toml")), "{got:#?}");
    }
    let (_dir, spec) = on_disk(&with_central_bus("arn:aws:events:eu-west-1:999988887777:event-bus/central"), &[]);
    let p = load(&spec).unwrap().resolve(&runtime(), &Vars::new()).unwrap();
    let bus = p.events.unwrap().central.unwrap();
    let central_bus::CentralRole::Member { forwarder_policy } = &bus.role else { panic!("{bus:?}") };
    assert_eq!(forwarder_policy["Statement"][0]["Action"], "events:PutEvents");
    assert_eq!(forwarder_policy["Statement"][0]["Resource"], "arn:aws:events:eu-west-1:999988887777:event-bus/central");
}
