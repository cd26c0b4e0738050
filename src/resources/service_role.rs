//! AWS Config's service-linked role, AWSServiceRoleForConfig: created when missing, never
//! changed or deleted (AWS owns its policies).

use async_trait::async_trait;
use serde::Serialize;

use super::kind::{Declared, Delta, Found, Kind, Spec};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
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

impl Spec for ServiceRoleSpec {}

pub struct ConfigServiceRole;

impl ConfigServiceRole {
    pub fn declared() -> Declared<Self> {
        Declared::new(ConfigServiceRole, address(), ServiceRoleSpec { service: SERVICE.into() }, Vec::new())
    }
}

#[async_trait]
impl Kind for ConfigServiceRole {
    type Spec = ServiceRoleSpec;

    async fn read(&self, aws: &Aws, _: Option<&ServiceRoleSpec>) -> anyhow::Result<Option<Found<ServiceRoleSpec>>> {
        let found = aws.iam.get_role().role_name(ROLE).send().await.found(|| format!("reading IAM role {ROLE}"))?;
        Ok(found.map(|_| Found::new(ServiceRoleSpec { service: SERVICE.into() })))
    }

    async fn create(&self, aws: &Aws, _: &ServiceRoleSpec) -> anyhow::Result<()> {
        let made = aws.iam.create_service_linked_role().aws_service_name(SERVICE).send().await;
        created(made.ctx(|| format!("creating the service-linked role for {SERVICE}")))?;
        Ok(())
    }

    async fn update(&self, _: &Aws, _: &Delta<'_, ServiceRoleSpec>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete service-linked roles")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, mock};
    use aws_sdk_iam::{Client, operation as iam};

    #[tokio::test]
    async fn a_missing_role_is_created_for_config() {
        let role = ConfigServiceRole::declared();
        let missing = mock!(Client::get_role).then_error(|| {
            iam::get_role::GetRoleError::NoSuchEntityException(
                aws_sdk_iam::types::error::NoSuchEntityException::builder().build(),
            )
        });
        let create = mock!(Client::create_service_linked_role)
            .match_requests(|r| r.aws_service_name() == Some(SERVICE))
            .then_output(|| iam::create_service_linked_role::CreateServiceLinkedRoleOutput::builder().build());
        let aws = aws(&[&missing, &create]);
        assert!(role.kind.read(&aws, role.want.as_ref()).await.unwrap().is_none());
        role.kind.create(&aws, role.want.as_ref().unwrap()).await.unwrap();
        assert_eq!(create.num_calls(), 1);
    }
}
