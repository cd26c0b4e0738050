//! An event found in CloudTrail event history, and what `ctguard investigate` reports about it.

use serde_json::{Value, json};

use crate::lookback::principal::Identity;
use crate::lookback::severity::Assessment;
use crate::lookback::window::{format_time, parse_event_time};

/// One event as LookupEvents returned it, with its CloudTrail record parsed.
#[derive(Debug, Clone)]
pub struct Found {
    pub region: String,
    /// Epoch seconds.
    pub time: i64,
    pub event_id: String,
    /// `Resources` of the lookup result: (type, name), as CloudTrail read them from the request.
    pub resources: Vec<(String, String)>,
    /// The CloudTrail record (`CloudTrailEvent`, a JSON string in the response).
    pub record: Value,
}

impl Found {
    pub fn from_lookup(region: &str, event: &aws_sdk_cloudtrail::types::Event) -> Found {
        let record = event
            .cloud_trail_event()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .filter(Value::is_object)
            // Without a readable record, keep what the lookup result itself says.
            .unwrap_or_else(|| {
                json!({
                    "eventID": event.event_id(),
                    "eventName": event.event_name(),
                    "eventSource": event.event_source(),
                    "eventTime": event.event_time().map(|t| format_time(t.secs())),
                    "awsRegion": region,
                    "userIdentity": {"userName": event.username()},
                })
            });
        let time = event
            .event_time()
            .map(|t| t.secs())
            .or_else(|| record.get("eventTime").and_then(Value::as_str).and_then(parse_event_time))
            .unwrap_or(0);
        let resources = event
            .resources()
            .iter()
            .map(|r| (r.resource_type().unwrap_or("").to_string(), r.resource_name().unwrap_or("").to_string()))
            .filter(|(_, name)| !name.is_empty())
            .collect();
        Found {
            region: region.to_string(),
            time,
            event_id: event.event_id().unwrap_or("").to_string(),
            resources,
            record,
        }
    }

    /// Breaks ties in time: region, then event id.
    pub fn tie_break(&self) -> String {
        format!("{}\u{0}{}", self.region, self.event_id)
    }
}

/// An event as reported: who, what, on what, whether it failed, how serious, which detections.
#[derive(Debug, Clone)]
pub struct Finding {
    pub time: i64,
    pub region: String,
    pub principal: String,
    pub principal_type: String,
    pub event_name: String,
    pub event_source: String,
    pub event_id: String,
    /// Resource identifiers from the request: the lookup's `Resources`, then names, ids and
    /// ARNs among the top-level request parameters.
    pub resources: Vec<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub assessment: Assessment,
    pub record: Value,
}

impl Finding {
    pub fn new(found: Found, assessment: Assessment, record: Value) -> Finding {
        let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_string);
        let who = Identity::of(&record);
        let (principal, principal_type) = (who.display(), who.kind.to_string());
        let mut resources: Vec<String> = found.resources.iter().map(|(_, name)| name.clone()).collect();
        for id in request_identifiers(&record) {
            if !resources.contains(&id) {
                resources.push(id);
            }
        }
        Finding {
            time: found.time,
            region: text("awsRegion").unwrap_or(found.region),
            principal,
            principal_type,
            event_name: text("eventName").unwrap_or_default(),
            event_source: text("eventSource").unwrap_or_default(),
            event_id: text("eventID").unwrap_or(found.event_id),
            resources,
            error_code: text("errorCode").filter(|c| !c.is_empty()),
            error_message: text("errorMessage"),
            assessment,
            record,
        }
    }
}

/// Names, ids and ARNs among the request's top-level parameters (`bucketName`, `roleName`,
/// `keyId`, `trailName`, ...), and the instance ids of an EC2 `instancesSet`.
fn request_identifiers(record: &Value) -> Vec<String> {
    let Some(Value::Object(params)) = record.get("requestParameters") else { return Vec::new() };
    let mut out = Vec::new();
    for (key, value) in params {
        let identifier =
            ["Name", "name", "Id", "Arn", "ARN", "Identifier"].iter().any(|s| key.ends_with(s)) || key == "key";
        match value {
            Value::String(s) if identifier && !s.is_empty() && s.len() <= 256 => out.push(s.clone()),
            Value::Object(set) if key == "instancesSet" => {
                let items = set.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                out.extend(items.iter().filter_map(|i| i.get("instanceId")?.as_str().map(str::to_string)));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_come_from_the_request() {
        let record = json!({"requestParameters": {
            "bucketName": "prod-data", "policy": "{...}", "roleName": "r",
            "instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}, "force": true}});
        assert_eq!(request_identifiers(&record), ["prod-data", "i-1", "i-2", "r"]);
        assert!(request_identifiers(&json!({"requestParameters": null})).is_empty());
    }
}
