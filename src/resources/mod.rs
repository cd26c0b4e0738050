//! Resource kinds, one file each, and the registry of what a profile declares. A kind states
//! its desired and live state as a typed spec (`kind::Kind`), and knows how to create, update
//! and delete itself; the engine decides when, and a kind never prints. README.md beside this
//! file is the recipe for adding a kind.
//!
//! Shared mechanics live apart from the kinds: `kind` (the contract and the conversion to plan
//! attributes), `tags` (ownership and SDK tag types), `snapshot` (batched reads), `tag_index`
//! (tags of rules and alarms in one call), `discovery` (what the profile owns but dropped),
//! `loss` (what counts as losing audit data).

pub mod alarm;
pub mod athena_table;
pub mod athena_workgroup;
pub mod bucket;
pub mod config_channel;
pub mod config_recorder;
pub mod config_recording;
pub mod config_region;
pub mod config_rule;
pub mod discovery;
pub mod event_bus;
pub mod foreign;
pub mod kind;
pub mod kms_key;
pub mod log_group;
pub mod loss;
pub mod metric_filter;
pub mod org_trail;
pub mod role;
pub mod rule;
pub mod service_role;
pub mod snapshot;
pub mod subscriptions;
pub mod tag_index;
pub mod tags;
pub mod teardown;
#[cfg(test)]
pub mod testing;
pub mod topic;
pub mod trail;

use std::sync::Arc;

pub use discovery::{Listings, undeclared};
pub use kind::{Check, Exports, Live, Outputs, Resource};

use crate::profile::{Kms, Profile};

/// Every resource the profile declares, in dependency order: one line per kind and place.
pub fn declared(profile: &Profile, listings: &Listings) -> Vec<Box<dyn Resource>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    let home = &profile.runtime.region;
    if let Some(logs) = &profile.access_log_bucket {
        out.push(Box::new(bucket::Bucket::access_logs(profile, logs)));
    }
    // The trail's key comes first: the audit bucket may encrypt with it (`kms_key = "trail"`).
    if let Some(Kms::Managed { alias, policy }) = &profile.trail.kms {
        out.push(Box::new(kms_key::KmsKey::new(profile, alias, policy, "encrypts CloudTrail logs")));
    }
    out.push(Box::new(bucket::Bucket::audit(profile)));
    if let Some(cw) = &profile.cloudwatch_logs {
        if let Some(Kms::Managed { alias, policy }) = &cw.kms {
            out.push(Box::new(kms_key::KmsKey::new(profile, alias, policy, "encrypts the CloudTrail log group")));
        }
        out.push(Box::new(log_group::LogGroup::new(profile, cw)));
        out.push(Box::new(role::Role::cloudtrail_logs(profile, cw)));
    }
    if profile.trail.use_organization_trail {
        out.push(Box::new(org_trail::OrganizationTrail::new(profile, home)));
    } else {
        out.push(Box::new(trail::Trail::new(profile, home)));
    }
    if let Some(athena) = &profile.athena {
        out.push(Box::new(athena_workgroup::AthenaWorkGroup::new(profile, athena)));
        out.push(Box::new(athena_table::AthenaTable::new(profile, athena)));
    }
    if let Some(alerts) = &profile.alerts {
        if let Some(Kms::Managed { alias, policy }) = &alerts.kms {
            out.push(Box::new(kms_key::KmsKey::new(profile, alias, policy, "encrypts the alert topic")));
        }
        for t in &alerts.topics {
            out.push(Box::new(topic::Topic::new(profile, alerts, t)));
            out.push(Box::new(subscriptions::Subscriptions::new(profile, alerts, t)));
        }
    }
    if let Some(events) = &profile.events {
        let central = events.central.as_ref();
        let forwards_to_central = central.is_some_and(|b| !b.owned_here());
        // The forwarding role is only needed when there is another region to forward from, or
        // a central bus of another account to send to.
        if profile.regions.len() > 1 || forwards_to_central {
            out.push(Box::new(role::Role::events_forwarder(profile, events)));
        }
        // The rules run in the home region only; every other region forwards what they watch
        // to the home bus, once per event, where the rules match it as one of their own.
        for r in &profile.regions {
            let (listed, tags) = (&listings.event_rules[r], &listings.tags[r]);
            if r == home {
                for rule in &events.rules {
                    for part in &rule.parts {
                        let kind = rule::EventRule::new(profile, rule, part, listed.clone(), tags.clone());
                        out.push(Box::new(kind));
                    }
                }
            } else {
                for (i, pattern) in events.forward.iter().enumerate() {
                    let kind = rule::EventRule::forwarder(profile, events, i, pattern, r, listed.clone(), tags.clone());
                    out.push(Box::new(kind));
                }
            }
            if !events.rules.is_empty() {
                out.push(Box::new(rule::EventRule::drill(profile, events, r, listed.clone(), tags.clone())));
            }
        }
        if let Some(bus) = central {
            central_bus(profile, events, bus, listings, &mut out);
        }
    }
    if let Some(setup) = &profile.config {
        if setup.service_linked {
            out.push(Box::new(service_role::ConfigServiceRole::declared()));
        }
        for r in &profile.regions {
            let shared = Arc::new(config_region::RegionConfig::default());
            out.push(Box::new(config_recorder::Recorder::new(profile, setup, r, shared.clone())));
            out.push(Box::new(config_channel::Channel::new(profile, setup, r, shared.clone())));
            out.push(Box::new(config_recording::Recording::new(setup, r, shared)));
            let here: Vec<_> = setup.rules.iter().filter(|rule| rule.regions.contains(r)).collect();
            let names = here.iter().map(|rule| rule.name.clone()).collect();
            let shared =
                config_rule::RegionRules::new(names, listings.config_rules[r].clone(), listings.tags[r].clone());
            for rule in here {
                let fail = setup.fail_on_noncompliance;
                out.push(Box::new(config_rule::ManagedConfigRule::new(profile, rule, r, fail, shared.clone())));
            }
        }
    }
    if let Some(cw) = &profile.cloudwatch_logs {
        // An alarm on S3 data events is valid only on a trail that records them.
        let alarms: Vec<&crate::profile::Alarm> = profile.alarms.iter().collect();
        let set = alarm::AlarmSet::new(alarms.iter().map(|a| a.name.clone()).collect(), listings.tags[home].clone());
        for a in alarms {
            out.push(Box::new(metric_filter::MetricFilter::new(profile, cw, a, listings.metric_filters.clone())));
            out.push(Box::new(alarm::CloudWatchAlarm::new(profile, a, set.clone())));
        }
    }
    out
}

/// The central bus's part (`[events] central_bus`): in the account that owns it, the bus and
/// the profile's rules on it; in every other account, the home region's rules that send to it
/// (the other regions' forwarding rules send to it as well, see `rule::EventRule::forwarder`).
fn central_bus(
    profile: &Profile,
    events: &crate::profile::Events,
    bus: &crate::profile::central_bus::CentralBus,
    listings: &Listings,
    out: &mut Vec<Box<dyn Resource>>,
) {
    let home = &profile.runtime.region;
    if let Some(declared) = event_bus::EventBus::new(profile, bus) {
        out.push(Box::new(declared));
        let (listed, tags) = (Arc::new(rule::RegionEventRules::on_bus(&bus.name)), &listings.tags[&bus.region]);
        for r in &events.rules {
            for part in &r.parts {
                out.push(Box::new(rule::EventRule::central(profile, r, part, bus, listed.clone(), tags.clone())));
            }
        }
        return;
    }
    // What the rules watch, each event once: the forwarding patterns (CloudTrail calls and
    // Insights events), and the rules on S3's own object events, which no region forwards.
    let s3_rules = events.rules.iter().filter(|r| crate::detect::eventbridge::s3_events_only(&r.pattern));
    let patterns = events.forward.iter().cloned().chain(s3_rules.flat_map(|r| r.parts.iter().map(|(_, p)| p.clone())));
    let (listed, tags) = (&listings.event_rules[home], &listings.tags[home]);
    for (i, pattern) in patterns.enumerate() {
        let kind = rule::EventRule::central_forwarder(profile, events, bus, i, &pattern, listed.clone(), tags.clone());
        out.push(Box::new(kind));
    }
}
