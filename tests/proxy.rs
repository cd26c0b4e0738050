//! The fault-injecting proxy in front of the emulator: its faults must look to the AWS SDK for
//! Rust exactly as AWS's do, or tests built on them prove nothing. Each protocol ctguard uses
//! is called through it with the SDK, and the proxy's log shows what the SDK did.

mod common;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use common::*;
use serde_json::json;

/// The attempts the SDK makes before giving up, here and in the assertions below.
const ATTEMPTS: u32 = 3;

/// The test SDK config with fast retries, so a call that exhausts its attempts takes
/// milliseconds rather than the standard back-off's seconds.
async fn fast_retry_sdk(emu: &Emulator) -> aws_config::SdkConfig {
    let base = emu.sdk().await;
    base.into_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .build()
}

/// One read call per protocol ctguard speaks; each returns the error code AWS would name
/// (None when the call failed without one, such as a dropped connection).
async fn call(sdk: &aws_config::SdkConfig, protocol: &str) -> Result<(), Option<String>> {
    fn code<E: ProvideErrorMetadata>(e: E) -> Option<String> {
        e.code().map(str::to_string)
    }
    match protocol {
        "s3 (REST XML)" => aws_sdk_s3::Client::new(sdk).list_buckets().send().await.map(drop).map_err(code),
        "iam (query)" => aws_sdk_iam::Client::new(sdk).list_roles().send().await.map(drop).map_err(code),
        "sns (query)" => aws_sdk_sns::Client::new(sdk).list_topics().send().await.map(drop).map_err(code),
        "logs (JSON 1.1)" => {
            aws_sdk_cloudwatchlogs::Client::new(sdk).describe_log_groups().send().await.map(drop).map_err(code)
        }
        "events (JSON 1.1)" => aws_sdk_eventbridge::Client::new(sdk).list_rules().send().await.map(drop).map_err(code),
        "cloudwatch (RPC v2 CBOR)" => {
            aws_sdk_cloudwatch::Client::new(sdk).describe_alarms().send().await.map(drop).map_err(code)
        }
        "account (REST JSON)" => aws_sdk_account::Client::new(sdk).list_regions().send().await.map(drop).map_err(code),
        other => panic!("no call for {other}"),
    }
}

const PROTOCOLS: [&str; 7] = [
    "s3 (REST XML)",
    "iam (query)",
    "sns (query)",
    "logs (JSON 1.1)",
    "events (JSON 1.1)",
    "cloudwatch (RPC v2 CBOR)",
    "account (REST JSON)",
];

#[tokio::test]
async fn every_random_fault_kind_is_retried_by_the_sdk_and_throttling_is_named_as_such() {
    let emu = Emulator::start();
    let sdk = fast_retry_sdk(&emu).await;
    for protocol in PROTOCOLS {
        // Unfaulted first: the proxy forwards each protocol intact.
        emu.set_faults(json!({ "share": 0.0 }));
        emu.clear_requests();
        call(&sdk, protocol).await.unwrap_or_else(|e| panic!("{protocol} through the proxy: {e:?}"));
        let seen = emu.requests();
        assert_eq!(seen.len(), 1, "{protocol}: {seen:?}");
        assert_eq!((seen[0].status, seen[0].fault.as_deref()), (Some(200), None), "{protocol}");

        for kind in ["throttling", "http-500", "http-503", "drop-before", "drop-after"] {
            emu.set_faults(json!({ "share": 1.0, "kinds": [kind] }));
            emu.clear_requests();
            let err = call(&sdk, protocol).await.expect_err("every attempt is faulted");
            let seen = emu.requests();
            assert_eq!(
                seen.len(),
                ATTEMPTS as usize,
                "{protocol}, {kind}: the SDK should retry until its attempts run out: {seen:?}"
            );
            assert!(seen.iter().all(|r| r.fault.as_deref() == Some(kind)), "{protocol}, {kind}: {seen:?}");
            match kind {
                "throttling" => {
                    let code = err.unwrap_or_default();
                    assert!(
                        ["Throttling", "ThrottlingException", "SlowDown", "TooManyRequestsException"]
                            .contains(&code.as_str()),
                        "{protocol}: throttling surfaced as {code:?}"
                    );
                }
                "drop-before" => assert!(seen.iter().all(|r| r.status.is_none()), "{protocol}: {seen:?}"),
                // The emulator answered; the caller never saw it.
                "drop-after" => assert!(seen.iter().all(|r| r.status == Some(200)), "{protocol}: {seen:?}"),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn a_dropped_response_hides_a_call_that_took_effect() {
    let emu = Emulator::start();
    let sdk = fast_retry_sdk(&emu).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);

    emu.set_faults(json!({ "share": 1.0, "kinds": ["drop-after"] }));
    logs.create_log_group().log_group_name("/dropped/after").send().await.expect_err("no response ever arrives");
    emu.set_faults(json!({ "share": 0.0 }));

    let creates: Vec<_> = emu.requests().into_iter().filter(|r| r.operation.ends_with(".CreateLogGroup")).collect();
    assert_eq!(creates.len(), ATTEMPTS as usize, "{creates:?}");
    // The first attempt created it; the retries were told it already exists, and never saw it.
    assert_eq!(creates[0].status, Some(200));
    assert!(creates[1..].iter().all(|r| r.status == Some(400)), "{creates:?}");
    let groups = logs.describe_log_groups().log_group_name_prefix("/dropped/").send().await.unwrap();
    assert_eq!(groups.log_groups().len(), 1, "the call took effect although its caller saw only failures");
}

#[tokio::test]
async fn a_forced_error_hits_only_the_matching_request_and_is_not_retried() {
    let emu = Emulator::start();
    let sdk = fast_retry_sdk(&emu).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    emu.force_error("CreateLogGroup", Some("/forced/denied"), "AccessDeniedException");

    logs.create_log_group().log_group_name("/forced/allowed").send().await.expect("another body is not matched");
    let err = logs.create_log_group().log_group_name("/forced/denied").send().await.expect_err("matched");
    assert_eq!(err.code(), Some("AccessDeniedException"));

    let seen: Vec<_> = emu.requests().into_iter().filter(|r| r.operation.ends_with(".CreateLogGroup")).collect();
    assert_eq!(seen.len(), 2, "AccessDenied is final, so the SDK must not retry it: {seen:?}");
    assert_eq!((seen[0].fault.as_deref(), seen[0].status), (None, Some(200)));
    assert_eq!((seen[1].fault.as_deref(), seen[1].status), (Some("forced"), Some(400)));

    // `times` bounds a forced error; afterwards the operation succeeds again.
    emu.set_faults(
        json!({ "force": [{ "operation": "CreateLogGroup", "code": "AccessDeniedException", "times": 1 }] }),
    );
    assert!(logs.create_log_group().log_group_name("/forced/once").send().await.is_err());
    logs.create_log_group().log_group_name("/forced/once").send().await.expect("the forced error was used up");
}
