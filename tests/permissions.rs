//! `ctguard permissions -p PROFILE` prints policies scoped to what the profile declares. Every
//! call plan, verify, validate-logs and apply make is recorded at the emulator with the
//! resource it names, and evaluated here against the printed policies: plan, verify and
//! validate-logs must stay inside the read-only one, apply inside the full one, for both
//! shipped profiles. The evaluator is a small model of IAM's (Allow statements only): actions
//! and resources with `*` and `?` wildcards, and the condition keys a test can know:
//! `iam:PassedToService` (the roles CreateTrail, PutTargets and PutConfigurationRecorder hand
//! over), `iam:AWSServiceName`, `aws:RequestTag`, `aws:TagKeys`, and `aws:ResourceTag` of KMS
//! keys (read back from the emulator).

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// One authorization AWS makes for a call: an action on a resource, with its context.
#[derive(Debug, Clone)]
struct Check {
    action: String,
    resource: String,
    context: BTreeMap<String, Vec<String>>,
    /// The request, for the failure message.
    call: String,
}

/// What the account holds after the runs, for resources a request names only indirectly.
#[derive(Default)]
struct State {
    /// Role name to ARN (the path is part of the ARN IAM authorizes).
    roles: BTreeMap<String, String>,
    /// KMS alias name (`alias/x`) to key ARN, and key ARN to its tags.
    aliases: BTreeMap<String, String>,
    key_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Athena query ID to its workgroup, which IAM authorizes reading a query against.
    queries: BTreeMap<String, String>,
}

/// `ctguard permissions -p PROFILE [FLAG]`, parsed.
fn printed_policy(emu: &Emulator, profile: &str, flag: Option<&str>) -> Value {
    let mut args = vec!["permissions", "-p", profile];
    args.extend(flag);
    let run = emu.ctguard(&args);
    run.expect(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("permissions prints JSON: {e}\n{}", run.stdout))
}

// ---------------------------------------------------------------------------------------------
// From a recorded request to the authorizations AWS would make for it
// ---------------------------------------------------------------------------------------------

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The tags a request sets, whatever the service calls their fields.
fn request_tags(params: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for field in ["Tags", "TagsList", "tags"] {
        match &params[field] {
            Value::Array(list) => {
                for t in list {
                    let key = ["Key", "TagKey", "key"].iter().find_map(|k| t[*k].as_str());
                    let value = ["Value", "TagValue", "value"].iter().find_map(|k| t[*k].as_str()).unwrap_or("");
                    if let Some(key) = key {
                        out.push((key.to_string(), value.to_string()));
                    }
                }
            }
            Value::Object(map) => out.extend(map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").into()))),
            _ => {}
        }
    }
    out
}

fn checks_for(r: &Request, state: &State) -> Vec<Check> {
    let action = r.iam_action();
    // DeleteObjects is authorised per object: DeleteObject, or DeleteObjectVersion for a
    // version or a delete marker. The log keeps no keys, so any object of the bucket stands in.
    if action == "s3:DeleteObjects" {
        let object = format!("arn:aws:s3:::{}/any-object", r.path.trim_matches('/'));
        return ["s3:DeleteObject", "s3:DeleteObjectVersion"]
            .map(|a| Check {
                action: a.into(),
                resource: object.clone(),
                context: BTreeMap::new(),
                call: action.clone(),
            })
            .into();
    }
    let region = r.region.clone().unwrap_or_else(|| REGION.to_string());
    let p = &r.params;
    let op = action.split(':').nth(1).unwrap_or_default().to_string();
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{region}:{ACCOUNT}:{rest}");
    let role = |name: &str| {
        state.roles.get(name).cloned().unwrap_or_else(|| {
            let path = p["Path"].as_str().unwrap_or("/");
            format!("arn:aws:iam::{ACCOUNT}:role{path}{name}")
        })
    };
    let key = |id: &str| {
        if id.starts_with("alias/") {
            state.aliases.get(id).cloned().unwrap_or_else(|| arn("kms", id))
        } else if id.starts_with("arn:") {
            id.to_string()
        } else {
            arn("kms", &format!("key/{id}"))
        }
    };
    let trail = |name: &str| {
        if name.starts_with("arn:") { name.to_string() } else { arn("cloudtrail", &format!("trail/{name}")) }
    };
    let rule = |name: &str| arn("events", &format!("rule/{name}"));
    let alarm = |name: &str| arn("cloudwatch", &format!("alarm:{name}"));
    // AWS Config names a rule's ARN by an ID it generates; the name stands in for it.
    let config_rule = |name: &str| arn("config", &format!("config-rule/{name}"));
    let first = |fields: &[&str]| fields.iter().find_map(|f| p[*f].as_str().map(str::to_string));

    let mut resources: Vec<String> = match action.split(':').next().unwrap_or_default() {
        "s3" => {
            let path = r.path.trim_start_matches('/');
            match path.split_once('/') {
                Some((bucket, object)) if !object.is_empty() => vec![format!("arn:aws:s3:::{bucket}/{object}")],
                _ => vec![format!("arn:aws:s3:::{}", path.trim_end_matches('/'))],
            }
        }
        "iam" if op == "ListRoles" => vec!["*".into()],
        "iam" if op == "CreateServiceLinkedRole" => {
            let service = p["AWSServiceName"].as_str().unwrap_or_default();
            vec![format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/AWSServiceRoleForConfig")]
        }
        "iam" => first(&["RoleName"]).map(|n| role(&n)).into_iter().collect(),
        "cloudtrail" => match op.as_str() {
            "DescribeTrails" | "ListPublicKeys" => vec!["*".into()],
            "AddTags" => first(&["ResourceId"]).map(|n| trail(&n)).into_iter().collect(),
            "ListTags" => strings(&p["ResourceIdList"]).iter().map(|n| trail(n)).collect(),
            _ => first(&["Name", "TrailName"]).map(|n| trail(&n)).into_iter().collect(),
        },
        "kms" => match op.as_str() {
            "CreateKey" | "ListKeys" => vec!["*".into()],
            "CreateAlias" | "DeleteAlias" => {
                // Authorized twice: on the alias and on the key it names.
                let alias = p["AliasName"].as_str().unwrap_or_default();
                let mut both = vec![arn("kms", alias)];
                both.extend(first(&["TargetKeyId"]).map(|k| key(&k)).or_else(|| state.aliases.get(alias).cloned()));
                both
            }
            _ => first(&["KeyId"]).map(|k| key(&k)).into_iter().collect(),
        },
        "logs" => match op.as_str() {
            "DescribeLogGroups" => {
                vec![arn("logs", &format!("log-group:{}*", p["logGroupNamePrefix"].as_str().unwrap_or_default()))]
            }
            "ListTagsForResource" | "TagResource" => first(&["resourceArn"]).into_iter().collect(),
            _ => first(&["logGroupName", "logGroupIdentifier"])
                .map(|g| arn("logs", &format!("log-group:{g}")))
                .into_iter()
                .collect(),
        },
        "sns" => match op.as_str() {
            "Unsubscribe" => vec!["*".into()],
            "CreateTopic" => first(&["Name"]).map(|n| arn("sns", &n)).into_iter().collect(),
            _ => first(&["TopicArn", "ResourceArn"]).into_iter().collect(),
        },
        "sqs" => match op.as_str() {
            "ListQueues" => vec!["*".into()],
            _ => first(&["QueueName"])
                .or_else(|| first(&["QueueUrl"]).map(|u| u.rsplit('/').next().unwrap_or_default().to_string()))
                .map(|q| arn("sqs", &q))
                .into_iter()
                .collect(),
        },
        "sts" => match op.as_str() {
            "AssumeRole" => first(&["RoleArn"]).into_iter().collect(),
            _ => vec!["*".into()],
        },
        "events" => match op.as_str() {
            // Every drill event goes to the default bus.
            "PutEvents" => vec![arn("events", "event-bus/default")],
            "ListRules" => vec!["*".into()],
            "ListTagsForResource" | "TagResource" => first(&["ResourceARN"]).into_iter().collect(),
            "CreateEventBus" | "DescribeEventBus" | "DeleteEventBus" => {
                first(&["Name"]).map(|n| arn("events", &format!("event-bus/{n}"))).into_iter().collect()
            }
            "PutPermission" => {
                first(&["EventBusName"]).map(|n| arn("events", &format!("event-bus/{n}"))).into_iter().collect()
            }
            // A rule on a custom bus: rule/BUS/NAME.
            _ => {
                let on = p["EventBusName"].as_str().map(|b| format!("{b}/")).unwrap_or_default();
                first(&["Name", "Rule"]).map(|n| rule(&format!("{on}{n}"))).into_iter().collect()
            }
        },
        "cloudwatch" => match op.as_str() {
            "GetMetricData" => vec!["*".into()],
            "ListTagsForResource" | "TagResource" => first(&["ResourceARN"]).into_iter().collect(),
            "DescribeAlarms" => {
                let names = strings(&p["AlarmNames"]);
                if names.is_empty() {
                    vec![alarm(&format!("{}*", p["AlarmNamePrefix"].as_str().unwrap_or_default()))]
                } else {
                    names.iter().map(|n| alarm(n)).collect()
                }
            }
            _ => {
                let mut names = strings(&p["AlarmNames"]);
                names.extend(first(&["AlarmName"]));
                names.iter().map(|n| alarm(n)).collect()
            }
        },
        "config" => match op.as_str() {
            "ListTagsForResource" | "TagResource" => first(&["ResourceArn"]).into_iter().collect(),
            "PutConfigRule" => {
                let name = p["ConfigRule"]["ConfigRuleName"].as_str().unwrap_or_default();
                vec![config_rule(name)]
            }
            "DescribeConfigRules" | "DescribeComplianceByConfigRule" => {
                let names = strings(&p["ConfigRuleNames"]);
                if names.is_empty() { vec![config_rule("*")] } else { names.iter().map(|n| config_rule(n)).collect() }
            }
            "DeleteConfigRule" | "GetComplianceDetailsByConfigRule" => {
                first(&["ConfigRuleName"]).map(|n| config_rule(&n)).into_iter().collect()
            }
            _ => vec!["*".into()],
        },
        "athena" => match op.as_str() {
            "ListTagsForResource" | "TagResource" => first(&["ResourceARN"]).into_iter().collect(),
            "GetTableMetadata" => {
                first(&["CatalogName"]).map(|c| arn("athena", &format!("datacatalog/{c}"))).into_iter().collect()
            }
            "GetQueryExecution" | "GetQueryResults" | "StopQueryExecution" => first(&["QueryExecutionId"])
                .and_then(|id| state.queries.get(&id).cloned())
                .map(|w| arn("athena", &format!("workgroup/{w}")))
                .into_iter()
                .collect(),
            _ => first(&["Name", "WorkGroup"]).map(|w| arn("athena", &format!("workgroup/{w}"))).into_iter().collect(),
        },
        _ => vec!["*".into()],
    };

    if resources.is_empty() {
        // A request whose resource the log did not capture must fail, not pass unchecked.
        resources.push(format!("<no resource named in {}>", p));
    }
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let tags = request_tags(p);
    if !tags.is_empty() {
        context.insert("aws:TagKeys".into(), tags.iter().map(|(k, _)| k.clone()).collect());
        for (k, v) in &tags {
            context.insert(format!("aws:RequestTag/{k}"), vec![v.clone()]);
        }
    }
    if let Some(service) = p["AWSServiceName"].as_str() {
        context.insert("iam:AWSServiceName".into(), vec![service.into()]);
    }
    let call = format!(
        "{action} ({region}) {}",
        if p.is_null() || p == &serde_json::json!({}) { r.path.clone() } else { p.to_string() }
    );
    let mut out: Vec<Check> = resources
        .into_iter()
        .map(|resource| {
            let mut context = context.clone();
            if let Some(tags) = state.key_tags.get(&resource) {
                for (k, v) in tags {
                    context.insert(format!("aws:ResourceTag/{k}"), vec![v.clone()]);
                }
            }
            Check { action: action.clone(), resource, context, call: call.clone() }
        })
        .collect();
    // Tagging a key as it is created needs kms:TagResource, on no key in particular.
    // CreateQueue with tags is also authorised as sqs:TagQueue (SQS Developer Guide, "Amazon SQS
    // cost allocation tags").
    if action == "sqs:CreateQueue" && !tags.is_empty() {
        let queue = first(&["QueueName"]).map(|q| arn("sqs", &q)).unwrap_or_default();
        out.push(Check {
            action: "sqs:TagQueue".into(),
            resource: queue,
            context: BTreeMap::new(),
            call: call.clone(),
        });
    }
    if action == "kms:CreateKey" && !tags.is_empty() {
        out.push(Check {
            action: "kms:TagResource".into(),
            resource: arn("kms", "key/*"),
            context,
            call: call.clone(),
        });
    }
    // The roles a call hands to a service need iam:PassRole, to that service.
    let passed: Vec<(String, &str)> = match action.as_str() {
        "cloudtrail:CreateTrail" | "cloudtrail:UpdateTrail" => {
            first(&["CloudWatchLogsRoleArn"]).map(|a| (a, "cloudtrail.amazonaws.com")).into_iter().collect()
        }
        "events:PutTargets" => p["Targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["RoleArn"].as_str())
            .map(|a| (a.to_string(), "events.amazonaws.com"))
            .collect(),
        "config:PutConfigurationRecorder" => p["ConfigurationRecorder"]["roleARN"]
            .as_str()
            .map(|a| (a.to_string(), "config.amazonaws.com"))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    for (role_arn, service) in passed.into_iter().filter(|(a, _)| !a.is_empty()) {
        let context = BTreeMap::from([("iam:PassedToService".to_string(), vec![service.to_string()])]);
        out.push(Check { action: "iam:PassRole".into(), resource: role_arn, context, call: call.clone() });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The evaluator
// ---------------------------------------------------------------------------------------------

/// IAM's wildcard match: `*` any run of characters, `?` any one.
/// IAM's wildcards; actions are matched case-insensitively, as IAM does.
fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        ctguard::wildcard::iam(&pattern.to_lowercase(), &text.to_lowercase())
    } else {
        ctguard::wildcard::iam(pattern, text)
    }
}

fn condition_holds(condition: &Value, context: &BTreeMap<String, Vec<String>>) -> bool {
    let Some(operators) = condition.as_object() else { return true };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().into_iter().flatten().all(|(key, wanted)| {
            let wanted = strings(wanted);
            let have = context.get(key);
            match operator.as_str() {
                "StringEquals" => have.is_some_and(|h| h.iter().any(|v| wanted.contains(v))),
                "StringLike" => have.is_some_and(|h| h.iter().any(|v| wanted.iter().any(|w| glob(w, v, false)))),
                "ForAllValues:StringEquals" => have.is_none_or(|h| h.iter().all(|v| wanted.contains(v))),
                "Null" => wanted.iter().all(|w| (w == "true") == have.is_none()),
                other => panic!("the test's evaluator does not know the condition operator {other}"),
            }
        })
    })
}

/// How well a statement fits a check: (action, resource, condition) each matching or not.
fn fit(statement: &Value, check: &Check) -> (bool, bool, bool) {
    let action = strings(&statement["Action"]).iter().any(|a| glob(a, &check.action, true));
    let resource = strings(&statement["Resource"]).iter().any(|r| glob(r, &check.resource, false));
    let condition = condition_holds(&statement["Condition"], &check.context);
    (action, resource, condition)
}

/// `Err` naming the check and the statement closest to allowing it.
fn evaluate(policy: &Value, check: &Check) -> Result<(), String> {
    let statements = policy["Statement"].as_array().expect("a policy with statements");
    let mut closest: Option<(usize, &Value, (bool, bool, bool))> = None;
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let f = fit(s, check);
        if f == (true, true, true) {
            return Ok(());
        }
        let score = usize::from(f.0) * 4 + usize::from(f.1) * 2 + usize::from(f.2);
        if closest.is_none_or(|(best, _, _)| score > best) {
            closest = Some((score, s, f));
        }
    }
    let near = closest.map_or("none".to_string(), |(_, s, (a, r, c))| {
        let why = [(!a, "action"), (!r, "resource"), (!c, "condition")]
            .iter()
            .filter(|(miss, _)| *miss)
            .map(|(_, what)| *what)
            .collect::<Vec<_>>()
            .join(", ");
        format!("{} (does not match: {why})", s["Sid"].as_str().unwrap_or("?"))
    });
    Err(format!(
        "{} on {} with {:?}\n    call: {}\n    closest statement: {near}",
        check.action, check.resource, check.context, check.call
    ))
}

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

async fn state(emu: &Emulator) -> State {
    let conf = emu.sdk().await;
    let mut state = State::default();
    let iam = aws_sdk_iam::Client::new(&conf);
    for r in iam.list_roles().send().await.unwrap().roles() {
        state.roles.insert(r.role_name().to_string(), r.arn().to_string());
    }
    let kms = aws_sdk_kms::Client::new(&conf);
    for a in kms.list_aliases().send().await.unwrap().aliases() {
        if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
            state.aliases.insert(name.to_string(), format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{target}"));
        }
    }
    for k in kms.list_keys().send().await.unwrap().keys() {
        let (Some(id), Some(arn)) = (k.key_id(), k.key_arn()) else { continue };
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        let tags = tags.tags().iter().map(|t| (t.tag_key().to_string(), t.tag_value().to_string())).collect();
        state.key_tags.insert(arn.to_string(), tags);
    }
    state.queries = queries(emu).await;
    state
}

/// Athena query ID to its workgroup, for every query run so far.
async fn queries(emu: &Emulator) -> BTreeMap<String, String> {
    let athena = aws_sdk_athena::Client::new(&emu.sdk().await);
    let mut out = BTreeMap::new();
    for id in athena.list_query_executions().send().await.unwrap().query_execution_ids() {
        let query = athena.get_query_execution().query_execution_id(id).send().await.unwrap();
        let workgroup = query.query_execution().and_then(|q| q.work_group()).unwrap_or("primary");
        out.insert(id.clone(), workgroup.to_string());
    }
    out
}

/// Every AWS request of one ctguard run, each with the authorizations it needs.
fn recorded(emu: &Emulator, args: &[&str], codes: &[i32]) -> Vec<Request> {
    emu.clear_requests();
    let run = emu.ctguard(args);
    assert!(codes.contains(&run.code), "{args:?} exited {}\n{}\n{}", run.code, run.stdout, run.stderr);
    emu.requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/moto-api") && !r.path.starts_with("/_ctguard"))
        .collect()
}

fn outside(policy: &Value, requests: &[Request], state: &State) -> Vec<String> {
    let mut failures: Vec<String> =
        requests.iter().flat_map(|r| checks_for(r, state)).filter_map(|c| evaluate(policy, &c).err()).collect();
    failures.sort();
    failures.dedup();
    failures
}

fn calls_stay_inside_the_printed_policies(profile: &str) {
    let emu = Emulator::start();
    let (read_only, full) = (printed_policy(&emu, profile, Some("--read-only")), printed_policy(&emu, profile, None));
    let destroying = printed_policy(&emu, profile, Some("--destroy"));

    let applied = recorded(&emu, &["apply", "--auto-approve", "-p", profile], &[0]);
    let reapplied = recorded(&emu, &["apply", "--auto-approve", "-p", profile], &[0]);
    let mut reads = recorded(&emu, &["plan", "-p", profile], &[0]);
    reads.extend(recorded(&emu, &["verify", "-p", profile], &[0, 2]));
    // No digest files in the emulator: what matters here is the calls, not the verdict.
    reads.extend(recorded(&emu, &["validate-logs", "-p", profile, "--start", "2h"], &[0, 1, 2]));
    let state = tokio::runtime::Runtime::new().unwrap().block_on(state(&emu));

    let distinct: std::collections::BTreeSet<String> = reads.iter().map(Request::iam_action).collect();
    assert!(distinct.len() > 20, "too few distinct read calls to prove anything: {distinct:?}");
    assert!(applied.iter().filter(|r| r.mutates()).count() > 20, "apply made too few writes to prove anything");

    let writes_outside: Vec<String> = applied
        .iter()
        .chain(&reapplied)
        .flat_map(|r| checks_for(r, &state))
        .filter_map(|c| evaluate(&full, &c).err())
        .collect();
    let mut writes_outside = writes_outside;
    writes_outside.sort();
    writes_outside.dedup();
    assert!(
        writes_outside.is_empty(),
        "{profile}: apply made calls its printed policy does not allow:\n{}",
        writes_outside.join("\n")
    );
    let reads_outside = outside(&read_only, &reads, &state);
    assert!(
        reads_outside.is_empty(),
        "{profile}: plan, verify or validate-logs made calls the read-only policy does not allow:\n{}",
        reads_outside.join("\n")
    );
    // The proof covers the conditions too: roles were passed, keys created with their tags
    // and written only with them.
    let checks: Vec<Check> = applied.iter().flat_map(|r| checks_for(r, &state)).collect();
    let passed = checks.iter().filter(|c| c.action == "iam:PassRole").count();
    assert!(passed > 0, "{profile}: no role was passed, so iam:PassedToService went unchecked");
    let owned_key_writes = checks
        .iter()
        .filter(|c| c.action == "kms:EnableKeyRotation" && c.context.contains_key("aws:ResourceTag/ctguard:profile"))
        .count();
    assert!(owned_key_writes > 0, "{profile}: no owned key was written to, so aws:ResourceTag went unchecked");
    assert!(checks.iter().any(|c| c.action == "kms:CreateKey" && c.context.contains_key("aws:TagKeys")));

    // destroy, with audit data, in a bucket that holds a log: inside the --destroy policy, and
    // the deletes of audit data are outside apply's.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s3 = aws_sdk_s3::Client::new(&emu.sdk().await);
        let buckets = s3.list_buckets().send().await.unwrap();
        let audit = buckets.buckets().iter().filter_map(|b| b.name()).find(|b| !b.ends_with("-access")).unwrap();
        let body = b"{}".to_vec().into();
        s3.put_object().bucket(audit).key("AWSLogs/x.json.gz").body(body).send().await.unwrap();
    });
    let destroyed = recorded(&emu, &["destroy", "--auto-approve", "--allow-data-loss", "-p", profile], &[0]);
    // Dropping the Athena table runs a query: its workgroup is known only now.
    let mut state = state;
    state.queries.extend(runtime.block_on(queries(&emu)));
    let called: std::collections::BTreeSet<String> = destroyed.iter().map(Request::iam_action).collect();
    for needed in
        ["s3:DeleteBucket", "s3:DeleteObjects", "logs:DeleteLogGroup", "kms:ScheduleKeyDeletion", "kms:DeleteAlias"]
    {
        assert!(called.contains(needed), "{profile}: destroy did not call {needed}, so it went unchecked: {called:?}");
    }
    let destroy_outside = outside(&destroying, &destroyed, &state);
    assert!(
        destroy_outside.is_empty(),
        "{profile}: destroy made calls the --destroy policy does not allow:\n{}",
        destroy_outside.join("\n")
    );
    let beyond_apply = outside(&full, &destroyed, &state);
    for audit in ["s3:DeleteBucket on", "s3:DeleteObjectVersion on", "logs:DeleteLogGroup on"] {
        assert!(
            beyond_apply.iter().any(|f| f.starts_with(audit)),
            "{profile}: apply's policy allows {audit}…: {beyond_apply:?}"
        );
    }
}

#[test]
fn the_flagship_profile_stays_inside_its_printed_policies() {
    calls_stay_inside_the_printed_policies("ai-agent-guard");
}

#[test]
fn the_cis_profile_stays_inside_its_printed_policies() {
    calls_stay_inside_the_printed_policies("cis-aws-foundations");
}

/// The account that owns a central bus (`[events] central_bus`): making the bus, writing its
/// policy and the rules on it, and reading them back stay inside the printed policies.
#[test]
fn the_central_bus_stays_inside_its_printed_policies() {
    let emu = Emulator::start();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let org = aws_sdk_organizations::Client::new(&emu.sdk().await);
        let all = aws_sdk_organizations::types::OrganizationFeatureSet::All;
        org.create_organization().feature_set(all).send().await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let events = "forwarder_role_policy = \"events-forwarder-policy.json\"\n";
    let bus = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/ctguard-central");
    let text =
        std::fs::read_to_string(&path).unwrap().replacen(events, &format!("{events}central_bus = \"{bus}\"\n"), 1);
    std::fs::write(&path, text).unwrap();
    let profile = path.to_str().unwrap();
    let (read_only, full) = (printed_policy(&emu, profile, Some("--read-only")), printed_policy(&emu, profile, None));

    let applied = recorded(&emu, &["apply", "--auto-approve", "-p", profile], &[0]);
    let mut reads = recorded(&emu, &["plan", "-p", profile], &[0]);
    reads.extend(recorded(&emu, &["verify", "-p", profile], &[0, 2]));
    let state = tokio::runtime::Runtime::new().unwrap().block_on(state(&emu));
    let on_bus = |r: &&Request| {
        r.params["EventBusName"].as_str() == Some("ctguard-central")
            || r.params["Name"].as_str() == Some("ctguard-central")
    };
    let called: std::collections::BTreeSet<String> = applied.iter().filter(on_bus).map(Request::iam_action).collect();
    for needed in ["events:CreateEventBus", "events:PutPermission", "events:PutRule", "events:PutTargets"] {
        assert!(called.contains(needed), "apply did not call {needed} on the bus, so it went unchecked: {called:?}");
    }
    let read_on_bus: std::collections::BTreeSet<String> =
        reads.iter().filter(on_bus).map(Request::iam_action).collect();
    assert!(read_on_bus.contains("events:DescribeEventBus"), "{read_on_bus:?}");
    let writes_outside = outside(&full, &applied, &state);
    assert!(
        writes_outside.is_empty(),
        "apply made calls its printed policy does not allow:\n{}",
        writes_outside.join("\n")
    );
    let reads_outside = outside(&read_only, &reads, &state);
    assert!(
        reads_outside.is_empty(),
        "plan or verify made calls the read-only policy does not allow:\n{}",
        reads_outside.join("\n")
    );
}

/// `ctguard drill`, every path including --end-to-end, stays inside `permissions --drill`, which
/// allows none of apply's writes.
#[test]
fn the_drill_stays_inside_its_printed_policy() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()]));
    out.expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("regions = \"all-enabled\"\n", "regions = [\"us-east-1\", \"eu-west-1\"]\n");
    std::fs::write(&path, text).unwrap();
    let profile = path.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", profile]).expect(0);
    let drill_policy = printed_policy(&emu, profile, Some("--drill"));
    // The emulator feeds CloudTrail to no log group, so the end-to-end path fails (exit 2);
    // what matters here is the calls.
    let drilled = recorded(&emu, &["drill", "-p", profile, "--end-to-end", "--timeout", "2s"], &[2]);
    let mut state = tokio::runtime::Runtime::new().unwrap().block_on(state(&emu));
    for r in drilled.iter().filter(|r| r.iam_action() == "iam:CreateRole") {
        let (name, role_path) = (r.params["RoleName"].as_str().unwrap(), r.params["Path"].as_str().unwrap());
        state.roles.insert(name.to_string(), format!("arn:aws:iam::{ACCOUNT}:role{role_path}{name}"));
    }
    let called: std::collections::BTreeSet<String> = drilled.iter().map(Request::iam_action).collect();
    for needed in ["events:PutEvents", "cloudwatch:SetAlarmState", "sqs:CreateQueue", "sns:Subscribe", "sts:AssumeRole"]
    {
        assert!(called.contains(needed), "the drill did not call {needed}: {called:?}");
    }
    // S3 ListBuckets is the end-to-end path's denied call, made as the drill's own role.
    let as_caller: Vec<Request> = drilled.into_iter().filter(|r| r.iam_action() != "s3:ListBuckets").collect();
    let failures = outside(&drill_policy, &as_caller, &state);
    assert!(failures.is_empty(), "drill made calls permissions --drill does not allow:\n{}", failures.join("\n"));
    let text = drill_policy.to_string();
    for apply_only in ["events:PutRule", "events:PutTargets", "sns:SetTopicAttributes", "iam:PassRole"] {
        assert!(!text.contains(apply_only), "{apply_only} in the drill policy");
    }
}

#[test]
fn a_call_outside_the_policy_is_named_with_its_closest_statement() {
    let policy = serde_json::json!({"Statement": [
        {"Sid": "Buckets", "Effect": "Allow", "Action": ["s3:PutBucketPolicy"], "Resource": ["arn:aws:s3:::ours-*"]},
        {"Sid": "Keys", "Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": "arn:aws:kms:*:1:key/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/ctguard:profile": "p"}}},
    ]});
    let check = |action: &str, resource: &str, context: &[(&str, &str)]| Check {
        action: action.into(),
        resource: resource.into(),
        context: context.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect(),
        call: "test".into(),
    };
    assert!(evaluate(&policy, &check("s3:putbucketpolicy", "arn:aws:s3:::ours-audit", &[])).is_ok());
    let e = evaluate(&policy, &check("s3:PutBucketPolicy", "arn:aws:s3:::theirs", &[])).unwrap_err();
    assert!(e.contains("arn:aws:s3:::theirs") && e.contains("Buckets (does not match: resource)"), "{e}");
    let tagged = [("aws:ResourceTag/ctguard:profile", "p")];
    assert!(evaluate(&policy, &check("kms:PutKeyPolicy", "arn:aws:kms:us-east-1:1:key/k", &tagged)).is_ok());
    let e = evaluate(&policy, &check("kms:PutKeyPolicy", "arn:aws:kms:us-east-1:1:key/k", &[])).unwrap_err();
    assert!(e.contains("Keys (does not match: condition)"), "{e}");
    assert!(glob("arn:aws:iam::1:role/ctguard/*", "arn:aws:iam::1:role/ctguard/x", false));
    assert!(!glob("arn:aws:iam::1:role/ctguard/*", "arn:aws:iam::1:role/other", false));
}
