//! The audit bucket's EventBridge notifications and the rule on S3's own "Object Deleted"
//! events, against the emulator: apply turns the setting on and keeps every topic and queue
//! notification someone else configured; turning it off by hand is drift that apply repairs;
//! deleting a log object raises an alert on the alert topic that names what happened, and so does
//! overwriting one; CloudTrail's own deliveries, writes outside the trail's log prefix and a delete
//! in another bucket raise none.
//!
//! The emulator delivers synchronously (tests/emulator/delivery.py and its S3 events in
//! server.py): a message is in its queue when the call that caused it returns.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, EventBridgeConfiguration, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter, TopicConfiguration, VersioningConfiguration,
};
use common::*;
use serde_json::Value;

const TEAM_TOPIC: &str = "team-log-arrivals";
const TEAM_QUEUE: &str = "team-log-removals";
const OTHER_BUCKET: &str = "team-exports-123456789012";
const LOG_KEY: &str = "cloudtrail/AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/01/log.json.gz";

/// Someone else's notifications on the audit bucket: a topic for new logs, a queue for removals.
fn theirs() -> (TopicConfiguration, QueueConfiguration) {
    let suffix = FilterRule::builder().name(FilterRuleName::Suffix).value(".gz").build();
    let filter =
        NotificationConfigurationFilter::builder().key(S3KeyFilter::builder().filter_rules(suffix).build()).build();
    let topic = TopicConfiguration::builder()
        .id("team-topic")
        .topic_arn(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TEAM_TOPIC}"))
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .unwrap();
    let queue = QueueConfiguration::builder()
        .id("team-queue")
        .queue_arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{TEAM_QUEUE}"))
        .events(Event::from("s3:ObjectRemoved:*"))
        .build()
        .unwrap();
    (topic, queue)
}

async fn notifications(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> (Vec<TopicConfiguration>, Vec<QueueConfiguration>, bool) {
    let out = s3.get_bucket_notification_configuration().bucket(bucket).send().await.unwrap();
    (
        out.topic_configurations().to_vec(),
        out.queue_configurations().to_vec(),
        out.event_bridge_configuration().is_some(),
    )
}

async fn put_theirs(s3: &aws_sdk_s3::Client, bucket: &str, eventbridge: bool) {
    let (topic, queue) = theirs();
    let mut conf = NotificationConfiguration::builder().topic_configurations(topic).queue_configurations(queue);
    if eventbridge {
        conf = conf.event_bridge_configuration(EventBridgeConfiguration::builder().build());
    }
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(conf.build())
        .send()
        .await
        .unwrap();
}

/// Every message in the queue, removed from it: the SNS envelopes' `Message`.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in &messages {
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            // The rule's input transformer makes the alert a JSON string.
            let message = envelope["Message"].as_str().unwrap_or_default();
            out.push(serde_json::from_str::<String>(message).unwrap_or_else(|_| message.to_string()));
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

/// An object written as a log-delivery service would write it. A test cannot sign as a service
/// principal; the emulator's test-only header names the requester S3 reports for it.
async fn delivered_by(s3: &aws_sdk_s3::Client, service: &'static str, key: &str) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from_static(b"{\"Records\": []}"))
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert("x-emulator-s3-requester", service);
        })
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_audit_logs_raise_an_alert_and_foreign_notifications_survive() {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    let (s3, sns, sqs) =
        (aws_sdk_s3::Client::new(&conf), aws_sdk_sns::Client::new(&conf), aws_sdk_sqs::Client::new(&conf));
    sns.create_topic().name(TEAM_TOPIC).send().await.unwrap();
    sqs.create_queue().queue_name(TEAM_QUEUE).send().await.unwrap();
    // The audit bucket exists already, with someone else's notifications on it.
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_theirs(&s3, BUCKET, false).await;
    let (topic, queue) = theirs();

    emu.ctguard(&["apply", "--auto-approve", "--adopt", "-p", "ai-agent-guard"]).expect(0);
    assert_eq!(notifications(&s3, BUCKET).await, (vec![topic.clone()], vec![queue.clone()], true));
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", "ai-agent-guard"]).expect(0);

    // Turned off by hand (their configuration written back without EventBridge): drift.
    put_theirs(&s3, BUCKET, false).await;
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "--format", "json", "-p", "ai-agent-guard"]);
    plan.expect(2);
    assert!(plan.stdout.contains("eventbridge_notifications"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", "ai-agent-guard"]).expect(0);
    assert_eq!(notifications(&s3, BUCKET).await, (vec![topic], vec![queue], true));
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", "ai-agent-guard"]).expect(0);

    // A subscriber of the alert topic.
    let url = sqs.create_queue().queue_name("pager").send().await.unwrap().queue_url.unwrap();
    let alerts = format!("arn:aws:sns:{REGION}:{ACCOUNT}:ctguard-alerts");
    let pager = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:pager");
    sns.subscribe().topic_arn(&alerts).protocol("sqs").endpoint(&pager).send().await.unwrap();

    // CloudTrail delivering a log (S3 names the requester by CloudTrail's service principal):
    // Object Created, no alert.
    let body = || ByteStream::from_static(b"{\"Records\": []}");
    delivered_by(&s3, "cloudtrail.amazonaws.com", LOG_KEY).await;
    assert_eq!(drain(&sqs, &url).await, Vec::<String>::new(), "CloudTrail's delivery raises no alert");

    // The same key overwritten by a principal of the account: an alert naming key and requester.
    s3.put_object().bucket(BUCKET).key(LOG_KEY).body(body()).send().await.unwrap();
    let overwrite = drain(&sqs, &url).await;
    assert_eq!(overwrite.len(), 1, "{overwrite:?}");
    let alert = &overwrite[0];
    assert!(
        alert.starts_with(
            "[CRITICAL] Audit log written by someone other than CloudTrail: 123456789012 from 127.0.0.1: Object Created"
        ),
        "{alert}"
    );
    assert!(alert.contains(&format!("(PutObject, ) s3://{BUCKET}/{LOG_KEY}")), "{alert}");
    // Config's snapshots and Athena's results are outside the trail's log prefix: no alert.
    delivered_by(&s3, "config.amazonaws.com", "config/AWSLogs/123456789012/Config/us-east-1/snapshot.json.gz").await;
    s3.put_object().bucket(BUCKET).key("athena-results/q1.csv").body(body()).send().await.unwrap();
    assert_eq!(drain(&sqs, &url).await, Vec::<String>::new(), "writes outside the log prefix raise no alert");
    // Back to CloudTrail's own version on top, so the deletes below delete a delivered log.
    delivered_by(&s3, "cloudtrail.amazonaws.com", LOG_KEY).await;

    // Someone deletes it: a delete marker (the bucket is versioned), then the version itself.
    s3.delete_object().bucket(BUCKET).key(LOG_KEY).send().await.unwrap();
    let marker = drain(&sqs, &url).await;
    assert_eq!(marker.len(), 1, "{marker:?}");
    let alert = &marker[0];
    assert!(alert.starts_with("[CRITICAL] Audit logs deleted: 123456789012 from 127.0.0.1: Object Deleted"), "{alert}");
    for part in ["(DeleteObject, Delete Marker Created)", &format!("s3://{BUCKET}/{LOG_KEY}"), "in us-east-1 at "] {
        assert!(alert.contains(part), "{part:?} in {alert}");
    }
    let versions = s3.list_object_versions().bucket(BUCKET).prefix(LOG_KEY).send().await.unwrap();
    let version = versions.versions()[0].version_id().unwrap().to_string();
    s3.delete_object().bucket(BUCKET).key(LOG_KEY).version_id(&version).send().await.unwrap();
    let permanent = drain(&sqs, &url).await;
    assert_eq!(permanent.len(), 1, "{permanent:?}");
    assert!(permanent[0].contains("(DeleteObject, Permanently Deleted)"), "{}", permanent[0]);
    assert!(permanent[0].contains(&format!("version {version}")), "{}", permanent[0]);

    // A delete in another bucket that also sends its events to EventBridge: no alert.
    s3.create_bucket().bucket(OTHER_BUCKET).send().await.unwrap();
    let on = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(OTHER_BUCKET).versioning_configuration(on).send().await.unwrap();
    put_theirs(&s3, OTHER_BUCKET, true).await;
    s3.put_object().bucket(OTHER_BUCKET).key("exports/part-0000.parquet").body(body()).send().await.unwrap();
    s3.delete_object().bucket(OTHER_BUCKET).key("exports/part-0000.parquet").send().await.unwrap();
    assert_eq!(drain(&sqs, &url).await, Vec::<String>::new(), "a delete in another bucket raises no alert");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_that_leaves_eventbridge_off_never_touches_the_buckets_notifications() {
    let emu = Emulator::start();
    let s3 = emu.s3().await;
    emu.ctguard(&["apply", "--auto-approve", "-p", "cis-aws-foundations"]).expect(0);
    let requests = emu.requests();
    let touched: Vec<_> = requests.iter().filter(|r| r.service == "s3" && r.query.contains("notification")).collect();
    assert!(touched.is_empty(), "{touched:?}");
    let (topics, queues, eventbridge) = notifications(&s3, "ctguard-cis-123456789012-us-east-1").await;
    assert!(topics.is_empty() && queues.is_empty() && !eventbridge);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", "cis-aws-foundations"]).expect(0);
}
