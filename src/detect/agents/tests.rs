use super::*;
use crate::detect::eventbridge::envelope;
use crate::detect::logfilter::FilterPattern;

fn agents(signals: &[(Kind, &str)]) -> Agents {
    Agents {
        signals: signals.iter().map(|(kind, p)| Signal { kind: *kind, pattern: p.to_string() }).collect(),
        accounts: vec!["123456789012".into()],
        partition: "aws".into(),
    }
}

fn session(role: &str, session: &str) -> Value {
    json!({
        "eventName": "TerminateInstances", "eventSource": "ec2.amazonaws.com", "eventType": "AwsApiCall",
        "userAgent": "Boto3/1.35.99 md/Botocore#1.35.99 ua/2.0 os/linux lang/python#3.12.8",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROA3EXAMPLEROLE0001:{session}"),
            "arn": format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}"),
            "accountId": "123456789012",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROA3EXAMPLEROLE0001",
                    "arn": format!("arn:aws:iam::123456789012:role/{role}"), "accountId": "123456789012", "userName": role},
                "attributes": {"creationDate": "2026-01-10T09:00:00Z", "mfaAuthenticated": "false"}
            }
        }
    })
}

/// Both languages, and the attribution, on one record: they must agree.
fn decide(r: &Restriction, record: &Value) -> (bool, bool, Vec<Kind>) {
    let mut rule = json!({"detail-type": ["AWS API Call via CloudTrail"]});
    crate::profile::restrict_event_pattern(&mut rule, r.event_branches()).unwrap();
    let rule = EventPattern::parse(&rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let filter = format!("{{ ($.eventName = \"*\") && ({}) }}", r.filter_clause().unwrap());
    let filter = FilterPattern::parse(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let event = envelope(record);
    let kinds = r.compile().attribute(&event).into_iter().map(|m| m.signal).collect();
    (rule.matches(&event), filter.matches(record), kinds)
}

#[test]
fn each_signal_matches_its_own_records_in_both_languages_and_names_itself() {
    let a = agents(&[
        (Kind::Roles, "AIAgent*"),
        (Kind::SessionNames, "agent-*"),
        (Kind::SourceIdentities, "agent-*"),
        (Kind::Users, "ai-agent-*"),
        (Kind::SsoPermissionSets, "AIAgentOps"),
        (Kind::UserAgents, "awslabs/mcp/"),
    ]);
    let r = Restriction::new(Some(&a), &[]);
    let mut sourced = session("DataPipeline", "i-0abc");
    sourced["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("agent-claude");
    let mut user = json!({"eventName": "DeleteBucket", "userIdentity": {"type": "IAMUser", "userName": "ai-agent-ci",
        "arn": "arn:aws:iam::123456789012:user/bots/ai-agent-ci", "principalId": "AIDA3EXAMPLEUSER0001", "accountId": "123456789012"}});
    user["eventSource"] = json!("s3.amazonaws.com");
    let mut mcp = session("Developer", "alice");
    mcp["userAgent"] = json!(
        "Boto3/1.38.3 md/Botocore#1.38.3 ua/2.1 os/macos lang/python#3.12.9 awslabs/mcp/aws-api-mcp-server/1.0.2"
    );
    let cases: Vec<(&str, Value, Vec<Kind>)> = vec![
        ("role", session("AIAgentRunner", "run-42"), vec![Kind::Roles]),
        ("session under another role", session("Deployer", "agent-7f3a"), vec![Kind::SessionNames]),
        ("source identity", sourced, vec![Kind::SourceIdentities]),
        ("iam user", user, vec![Kind::Users]),
        (
            "sso",
            session("AWSReservedSSO_AIAgentOps_5b6c1e2d3f4a5b6c", "alice@example.com"),
            vec![Kind::SsoPermissionSets],
        ),
        ("mcp user agent", mcp, vec![Kind::UserAgents]),
        ("two signals", session("AIAgentRunner", "agent-9"), vec![Kind::Roles, Kind::SessionNames]),
        ("a person", session("Developer", "alice"), vec![]),
        ("role name only a prefix of the pattern", session("AIAgen", "x1"), vec![]),
        ("session name containing agent- later", session("Developer", "my-agent-x"), vec![]),
        ("other SSO permission set", session("AWSReservedSSO_AIAgentOpsAdmin_5b6c1e2d3f4a5b6c", "bob"), vec![]),
    ];
    for (what, record, expected) in cases {
        let (rule, filter, kinds) = decide(&r, &record);
        let wanted = !expected.is_empty();
        assert_eq!((rule, filter, kinds), (wanted, wanted, expected), "{what}");
    }
}

#[test]
fn a_role_in_another_account_is_not_an_agent_of_this_one() {
    let r = Restriction::new(Some(&agents(&[(Kind::Roles, "AIAgent*")])), &[]);
    let mut other = session("AIAgentRunner", "s");
    other["userIdentity"]["arn"] = json!("arn:aws:sts::210987654321:assumed-role/AIAgentRunner/s");
    assert_eq!(decide(&r, &other).0, false);
}

#[test]
fn a_role_pattern_with_a_leading_star_uses_the_session_issuer() {
    let r = Restriction::new(Some(&agents(&[(Kind::Roles, "*-agent")])), &[]);
    assert!(r.filter_clause().unwrap().contains("sessionIssuer.userName = \"*-agent\""));
    assert_eq!(decide(&r, &session("prod-agent", "s")), (true, true, vec![Kind::Roles]));
    assert_eq!(decide(&r, &session("prod-agent-x", "s")).0, false);
}

#[test]
fn an_inner_star_is_refused_for_metric_filters_only() {
    let r = Restriction::new(Some(&agents(&[(Kind::SessionNames, "agent-*-prod")])), &[]);
    let refused = r.filter_clause().unwrap_err();
    assert_eq!(refused[0].0.pattern, "agent-*-prod");
    assert!(refused[0].1.contains("only a literal '*'"), "{}", refused[0].1);
    assert!(EventPattern::parse(&json!({"detail": r.event_branches()[0]})).is_ok());
}

#[test]
fn declared_values_are_checked() {
    let bad: &[(Kind, &str, &str)] = &[
        (Kind::Roles, "", "empty pattern"),
        (Kind::Roles, "*", "every caller"),
        (Kind::Roles, "arn:aws:iam::123456789012:role/AIAgent", "write \"AIAgent\""),
        (Kind::Roles, "AI Agent", "cannot contain ' '"),
        (Kind::SourceIdentities, "agent:*", "cannot contain ':'"),
        (Kind::SsoPermissionSets, &"x".repeat(33), "at most 32"),
        (Kind::SessionNames, "a**", "`**`"),
        (Kind::Principals, "arn:aws:iam::123456789012:role/AIAgent*", "assumed-role/AIAgent*/*"),
        (Kind::Principals, "AIAgent*", "not an ARN pattern"),
    ];
    for (kind, value, fragment) in bad {
        let e = check(*kind, value).expect_err(value);
        assert!(e.contains(fragment), "{value}: {e}");
    }
    for (kind, value) in [(Kind::Roles, "AIAgent*"), (Kind::UserAgents, "awslabs/mcp/"), (Kind::Users, "bot@corp")] {
        assert_eq!(check(kind, value), Ok(()), "{value}");
    }
}

#[test]
fn matchers_are_the_cheapest_that_do_the_job() {
    assert_eq!(event_matcher("x"), json!("x"));
    assert_eq!(event_matcher("x*"), json!({"prefix": "x"}));
    assert_eq!(event_matcher("*x"), json!({"suffix": "x"}));
    assert_eq!(event_matcher("*x*"), json!({"wildcard": "*x*"}));
    assert_eq!(event_matcher("a*b"), json!({"wildcard": "a*b"}));
}

#[test]
fn the_exclusion_matches_exactly_the_records_no_signal_matches() {
    let full = Restriction::new(
        Some(&agents(&[
            (Kind::Roles, "AIAgent*"),
            (Kind::Roles, "*-agent"),
            (Kind::SessionNames, "agent-*"),
            (Kind::SourceIdentities, "agent-*"),
            (Kind::Users, "ai-agent-*"),
            (Kind::Users, "bot"),
            (Kind::SsoPermissionSets, "AIAgentOps"),
            (Kind::UserAgents, "awslabs/mcp/"),
        ])),
        &["arn:aws:sts::123456789012:assumed-role/Ops/*".to_string()],
    );
    let only_ua = Restriction::new(Some(&agents(&[(Kind::UserAgents, "awslabs/mcp/")])), &[]);
    let mut sourced = session("DataPipeline", "i-0abc");
    sourced["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("agent-claude");
    let user = |name: &str| {
        json!({"eventName": "DeleteBucket", "eventSource": "s3.amazonaws.com", "userAgent": "aws-cli/2.17.0",
            "userIdentity": {"type": "IAMUser", "userName": name, "arn": format!("arn:aws:iam::123456789012:user/{name}"),
            "principalId": "AIDA3EXAMPLEUSER0001", "accountId": "123456789012"}})
    };
    let mut mcp = session("Developer", "alice");
    mcp["userAgent"] = json!("Boto3/1.38.3 awslabs/mcp/aws-api-mcp-server/1.0.2");
    let mut no_agent = session("Developer", "alice");
    no_agent.as_object_mut().unwrap().remove("userAgent");
    let service = json!({"eventName": "DeleteSnapshot", "eventSource": "ec2.amazonaws.com",
        "userIdentity": {"type": "AWSService", "invokedBy": "backup.amazonaws.com"}});
    let root = json!({"eventName": "DeleteBucket", "eventSource": "s3.amazonaws.com", "userAgent": "console",
        "userIdentity": {"type": "Root", "arn": "arn:aws:iam::123456789012:root", "principalId": "123456789012"}});
    let records = [
        session("AIAgentRunner", "run-42"),
        session("prod-agent", "s"),
        session("Deployer", "agent-7f3a"),
        sourced,
        user("ai-agent-ci"),
        user("bot"),
        user("alice"),
        session("AWSReservedSSO_AIAgentOps_5b6c1e2d3f4a5b6c", "alice@example.com"),
        session("Ops", "x"),
        mcp,
        session("Developer", "alice"),
        session("prod-agent-x", "s"),
        no_agent,
        service,
        root,
    ];
    for r in [&full, &only_ua] {
        let branches = r.event_branches();
        let mut agent = json!({"detail-type": ["AWS API Call via CloudTrail"]});
        crate::profile::restrict_event_pattern(&mut agent, branches).unwrap();
        let agent = EventPattern::parse(&agent).unwrap();
        let others = json!({"detail-type": ["AWS API Call via CloudTrail"], "detail": r.exclusion(&[]).unwrap()});
        let others = EventPattern::parse(&others).unwrap_or_else(|e| panic!("{others}: {e}"));
        for record in &records {
            let event = envelope(record);
            assert_ne!(agent.matches(&event), others.matches(&event), "{record}");
        }
    }
}
