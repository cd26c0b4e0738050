//! AWS Config's service-linked role, AWSServiceRoleForConfig: created when missing, never
//! changed or deleted (AWS owns its policies).

use async_trait::async_trait;
use serde::Serialize;

use super::kind::{Decl, Delta, Found, Kind};
use crate::aws::{Aws, AwsResultExt, ErrorKind};
use crate::plan::Address;

pub const KIND: &str = "iam_service_linked_role";
const ROLE: &str = "AWSServiceRoleForConfig";
const SERVICE: &str = "config.amazonaws.com";

pub fn address() -> Address {
    Address { kind: KIND, name: ROLE.into(), region: "global".into() }
}

/// The role exists for this service; AWS decides everything else about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRoleSpec {
    pub service: String,
}

pub struct ConfigServiceRole {
    decl: Decl<ServiceRoleSpec>,
}

impl Default for ConfigServiceRole {
    fn default() -> Self {
        let want = ServiceRoleSpec { service: SERVICE.into() };
        ConfigServiceRole { decl: Decl::new(address(), want, Vec::new()) }
    }
}

#[async_trait]
impl Kind for ConfigServiceRole {
    type Spec = ServiceRoleSpec;

    fn decl(&self) -> &Decl<ServiceRoleSpec> {
        &self.decl
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Found<ServiceRoleSpec>>> {
        let found = aws.iam.get_role().role_name(ROLE).send().await.found(|| format!("reading IAM role {ROLE}"))?;
        Ok(found.map(|_| Found::new(ServiceRoleSpec { service: SERVICE.into() })))
    }

    async fn create(&self, aws: &Aws, _: &ServiceRoleSpec) -> anyhow::Result<()> {
        let created = aws.iam.create_service_linked_role().aws_service_name(SERVICE).send().await;
        match created.ctx(|| format!("creating the service-linked role for {SERVICE}")) {
            Err(e) if crate::aws::error::kind(&e) != ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    async fn update(&self, _: &Aws, _: &Delta<'_, ServiceRoleSpec>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete service-linked roles")
    }
}
