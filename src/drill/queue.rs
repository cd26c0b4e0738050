//! The drill's temporary subscriber: one SQS queue in the home region, subscribed to every alert
//! topic, that only those topics may send to. Everything here is found again by name, so
//! cleanup works whether or not the call that created a thing returned before an interruption.

use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::json;

use super::{EXPIRES_TAG, PREFIX, Received, envelope};
use crate::aws::{Aws, AwsResultExt, all_pages};

/// The queue of run `run`: `ctguard-drill-<run>`.
pub fn name(run: &str) -> String {
    format!("{PREFIX}{run}")
}

pub fn arn(aws: &Aws, name: &str) -> String {
    let c = &aws.caller;
    format!("arn:{}:sqs:{}:{}:{name}", c.partition, c.region, c.account_id)
}

/// The queue policy: SNS may send, only for the alert topics (SNS Developer Guide, "Sending
/// Amazon SNS messages to an Amazon SQS queue": `aws:SourceArn` is the topic).
pub fn policy(queue_arn: &str, topics: &[String]) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CtguardDrillAlertTopics",
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": topics } },
        }],
    })
}

/// Creates the queue, tagged with when it expires, and subscribes it to every topic; returns its
/// URL.
pub async fn create(aws: &Aws, run: &str, topics: &[String], expires: &str, profile: &str) -> anyhow::Result<String> {
    let name = name(run);
    let arn = arn(aws, &name);
    let what = || format!("creating the drill's SQS queue {name}");
    let created = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::Policy, policy(&arn, topics).to_string())
        .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .tags(EXPIRES_TAG, expires)
        .tags("ctguard:drill-profile", profile)
        .send()
        .await
        .ctx(what)?;
    let url = created.queue_url().unwrap_or_default().to_string();
    for topic in topics {
        let req = aws.sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(&arn).return_subscription_arn(true);
        req.send().await.ctx(|| format!("subscribing the drill's queue to {topic}"))?;
    }
    Ok(url)
}

/// What arrived, waiting up to `wait` for the first message.
pub async fn receive(aws: &Aws, url: &str, wait: Duration) -> anyhow::Result<Vec<Received>> {
    let secs = wait.as_secs().clamp(0, 20) as i32;
    let out = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(secs)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .ctx(|| "receiving the drill's messages".into())?;
    let received = |m: &aws_sdk_sqs::types::Message| {
        let mut r = envelope(m.body()?)?;
        // Epoch milliseconds at which SNS delivered it to the queue (SQS API Reference,
        // ReceiveMessage): the arrival time, however late the drill reads it.
        let sent = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp));
        r.at = sent.and_then(|t| t.parse::<u64>().ok()).map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        Some(r)
    };
    Ok(out.messages().iter().filter_map(received).collect())
}

/// Unsubscribes the queue of `name` from every topic and deletes it; what is already gone is
/// fine. Returns what it removed, in words.
pub async fn remove(aws: &Aws, name: &str, topics: &[String]) -> anyhow::Result<Vec<String>> {
    let arn = arn(aws, name);
    let mut done = Vec::new();
    for topic in topics {
        let list = |token| async move {
            let req = aws.sns.list_subscriptions_by_topic().topic_arn(topic).set_next_token(token);
            req.send().await.ctx(|| format!("listing the subscriptions of {topic}"))
        };
        let pages = all_pages(
            list,
            aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput::next_token,
        )
        .await?;
        for sub in pages.iter().flat_map(|p| p.subscriptions()) {
            if sub.endpoint() != Some(arn.as_str()) {
                continue;
            }
            let Some(sub_arn) = sub.subscription_arn().filter(|a| a.starts_with("arn:")) else { continue };
            let req = aws.sns.unsubscribe().subscription_arn(sub_arn);
            if req.send().await.found(|| format!("unsubscribing {name} from {topic}"))?.is_some() {
                done.push(format!("unsubscribed {name} from {topic}"));
            }
        }
    }
    let url = aws.sqs.get_queue_url().queue_name(name).send().await.found(|| format!("finding SQS queue {name}"))?;
    if let Some(url) = url.and_then(|u| u.queue_url) {
        let req = aws.sqs.delete_queue().queue_url(&url);
        if req.send().await.found(|| format!("deleting SQS queue {name}"))?.is_some() {
            done.push(format!("deleted SQS queue {name}"));
        }
    }
    Ok(done)
}

/// The drill queues a killed run left: named with the prefix and past their expiry tag.
pub async fn stale(aws: &Aws, now: &str) -> anyhow::Result<Vec<String>> {
    let list = |token| async move {
        let req = aws.sqs.list_queues().queue_name_prefix(PREFIX).set_next_token(token);
        req.send().await.ctx(|| "listing the drill's SQS queues".into())
    };
    let pages = all_pages(list, aws_sdk_sqs::operation::list_queues::ListQueuesOutput::next_token).await?;
    let mut out = Vec::new();
    for url in pages.iter().flat_map(|p| p.queue_urls()) {
        let tags =
            aws.sqs.list_queue_tags().queue_url(url).send().await.found(|| format!("reading the tags of {url}"))?;
        let expires = tags.as_ref().and_then(|t| t.tags()).and_then(|t| t.get(EXPIRES_TAG)).cloned();
        // RFC 3339 UTC timestamps of one width compare as text.
        if expires.is_some_and(|e| e.as_str() < now) {
            out.push(url.rsplit('/').next().unwrap_or_default().to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_alert_topics_may_send() {
        let p = policy("arn:aws:sqs:us-east-1:1:q", &["arn:aws:sns:us-east-1:1:a".into()]);
        let s = &p["Statement"][0];
        assert_eq!(s["Principal"]["Service"], "sns.amazonaws.com");
        assert_eq!(s["Action"], "sqs:SendMessage");
        assert_eq!(s["Condition"]["ArnEquals"]["aws:SourceArn"][0], "arn:aws:sns:us-east-1:1:a");
    }
}
