//! A resolved profile's detections, parsed for matching (`crate::detect::catalog`). Lives here,
//! not in `detect`, so the evaluators know nothing of profiles: the profile calls detect.

use super::Profile;
use crate::detect::catalog::{Catalog, Detection, Feed, Rejected};

impl Profile {
    /// The detections as apply deploys them.
    pub fn catalog(&self) -> Result<Catalog, Rejected> {
        let topic = |s| self.alerts.as_ref().map(|a| a.topic_for(s).name.as_str());
        let mut detections = Vec::new();
        for rule in self.events.iter().flat_map(|e| &e.rules) {
            let d = Detection::rule(&rule.name, &rule.pattern, rule.severity.as_str(), topic(rule.severity))?;
            detections.push(d.restricted_to(&rule.restriction));
        }
        for alarm in &self.alarms {
            let feed = Feed::Metric {
                namespace: alarm.namespace.clone(),
                metric: alarm.metric.clone(),
                alarm: alarm.name.clone(),
                condition: format!(
                    "{} {} in {} x {} s",
                    comparison_symbol(alarm.comparison.as_str()),
                    alarm.threshold,
                    alarm.evaluation_periods,
                    alarm.period
                ),
                topic: topic(alarm.severity).map(str::to_string),
            };
            let d = Detection::alarm(&alarm.id, &alarm.pattern, alarm.severity.as_str(), feed)?;
            detections.push(d.restricted_to(&alarm.restriction));
        }
        Ok(Catalog { detections })
    }
}

fn comparison_symbol(comparison: &str) -> &'static str {
    match comparison {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => ">=",
        "LessThanThreshold" => "<",
        _ => "<=",
    }
}
