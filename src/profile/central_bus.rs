//! `[events] central_bus`: the event bus in a security account where every account's alerting
//! matches also go. Checked offline (an ARN that parses, a custom bus name EventBridge takes,
//! a region the profile declares) and, once the account is known, against its partition and,
//! in the account that owns the bus, its organization.

use serde_json::{Value, json};

use super::types::EventsDoc;
use super::vars::Vars;
use super::{Resolver, Runtime, validate};

/// The central bus as this account sees it.
#[derive(Debug, Clone)]
pub struct CentralBus {
    pub arn: String,
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    /// What this account does with it.
    pub role: CentralRole,
}

/// The account that owns the bus manages it; every other account forwards to it.
#[derive(Debug, Clone)]
pub enum CentralRole {
    /// The bus's resource policy, ctguard's statement: `events:PutEvents` from the organization.
    Owner { policy: Value },
    /// The forwarding role's inline policy admitting the bus.
    Member { forwarder_policy: Value },
}

impl CentralBus {
    pub fn owned_here(&self) -> bool {
        matches!(self.role, CentralRole::Owner { .. })
    }
}

/// The parts of `arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME`, or what is wrong with it.
pub fn parse_arn(arn: &str) -> Result<(&str, &str, &str, &str), String> {
    let expected = "an event bus ARN such as arn:aws:events:us-east-1:111122223333:event-bus/ctguard-central";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(expected.into());
    };
    if prefix != "arn" || service != "events" {
        return Err(expected.into());
    }
    if !["aws", "aws-cn", "aws-us-gov"].contains(&partition) {
        return Err(format!("{expected} (partition aws, aws-cn or aws-us-gov, got {partition:?})"));
    }
    validate::region(region)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{expected} (a 12-digit account ID, got {account:?})"));
    }
    let Some(name) = resource.strip_prefix("event-bus/") else { return Err(expected.into()) };
    bus_name(name)?;
    Ok((partition, region, account, name))
}

/// A custom event bus name (EventBridge API Reference, CreateEventBus: 1 to 256 of
/// `[/\.\-_A-Za-z0-9]`, no `/` in a custom bus's name, and not `default`, the account's own
/// bus, which takes every AWS service's events and which ctguard does not make or tag).
pub fn bus_name(name: &str) -> Result<(), String> {
    let chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if name.is_empty() || name.len() > 256 || !chars {
        return Err(format!("a custom event bus name of 1 to 256 letters, digits, '.', '_' or '-', got {name:?}"));
    }
    if name == "default" {
        return Err("a custom event bus: the default bus of the security account carries that account's own \
                    events and is not one ctguard creates; name a bus of its own, such as ctguard-central"
            .into());
    }
    Ok(())
}

impl Resolver<'_> {
    /// The central bus, if the profile declares one. `regions`: every region the profile
    /// covers, the home region first.
    pub(super) fn central_bus(
        &mut self,
        e: &EventsDoc,
        runtime: &Runtime,
        regions: &[String],
        vars: &Vars,
    ) -> Option<CentralBus> {
        const KEY: &str = "events.central_bus";
        let raw = e.central_bus.as_ref()?;
        let arn = self.text(KEY, raw, vars);
        if !super::vars::references(&arn).is_empty() {
            return None;
        }
        let (partition, region, account, name) = match parse_arn(&arn) {
            Ok(parts) => parts,
            Err(expected) => {
                self.problem(KEY, format!("{arn:?} is not valid: expected {expected}"));
                return None;
            }
        };
        if partition != runtime.partition {
            self.problem(
                KEY,
                format!(
                    "{arn:?} is in partition {partition}, but account {} is in {}: EventBridge cannot send events \
                     across partitions; name a bus in {}",
                    runtime.account_id, runtime.partition, runtime.partition
                ),
            );
        }
        if !regions.iter().any(|r| r == region) {
            self.problem(
                KEY,
                format!(
                    "the bus's region {region} is not one the profile declares ({}): add it to profile.regions",
                    regions.join(", ")
                ),
            );
        }
        let mut own = vars.clone();
        own.insert("central_bus_arn".into(), json!(arn));
        let role = if account == runtime.account_id {
            // Its rules publish to the alert topics, which are in the home region, and an SNS
            // target must be in the rule's region (only an event bus may be in another).
            if region != runtime.region {
                self.problem(
                    KEY,
                    format!(
                        "the bus is in {region}, but account {account}, which owns it, has its home region in {}: \
                         the rules on the bus publish to the alert topics there, and EventBridge sends to an SNS \
                         topic only in the rule's own region; put the bus in {} or make {region} the home region",
                        runtime.region, runtime.region
                    ),
                );
            }
            match &runtime.organization {
                Some(o) => own.insert("organization_id".into(), json!(o.id)),
                None => {
                    self.problem(
                        KEY,
                        format!(
                            "account {account} owns the bus, but belongs to no AWS Organizations organization: its \
                             policy admits the organization's accounts (aws:PrincipalOrgID)"
                        ),
                    );
                    None
                }
            };
            let policy = self.shared_document("events.central_bus_policy", &e.central_bus_policy, &own);
            CentralRole::Owner { policy }
        } else {
            let forwarder_policy = self.template("events.central_forwarder_policy", &e.central_forwarder_policy, &own);
            CentralRole::Member { forwarder_policy }
        };
        Some(CentralBus {
            arn: arn.clone(),
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            name: name.into(),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_arns() {
        let (p, r, a, n) = parse_arn("arn:aws:events:us-east-1:111122223333:event-bus/ctguard-central").unwrap();
        assert_eq!((p, r, a, n), ("aws", "us-east-1", "111122223333", "ctguard-central"));
        assert!(parse_arn("arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/central").is_ok());
        for bad in [
            "",
            "ctguard-central",
            "arn:aws:sns:us-east-1:111122223333:event-bus/central",
            "arn:aws:events:us-east-1:111122223333:rule/central",
            "arn:aws:events:us-east-1:1111:event-bus/central",
            "arn:aws:events:nowhere:111122223333:event-bus/central",
            "arn:aws-moon:events:us-east-1:111122223333:event-bus/central",
            "arn:aws:events:us-east-1:111122223333:event-bus/default",
            "arn:aws:events:us-east-1:111122223333:event-bus/aws.partner/x/y",
            "arn:aws:events:us-east-1:111122223333:event-bus/",
        ] {
            assert!(parse_arn(bad).is_err(), "{bad}");
        }
    }
}
