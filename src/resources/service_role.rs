//! AWS Config's service-linked role, AWSServiceRoleForConfig: created when missing, never
//! changed or deleted (AWS owns its policies).

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::json;

use super::{Live, Resource, Spec};
use crate::aws::{Aws, AwsResultExt, ErrorKind};
use crate::plan::{Address, Attrs};

pub const KIND: &str = "iam_service_linked_role";
const ROLE: &str = "AWSServiceRoleForConfig";
const SERVICE: &str = "config.amazonaws.com";

pub fn address() -> Address {
    Address { kind: KIND, name: ROLE.into(), region: "global".into() }
}

pub struct ConfigServiceRole {
    spec: Spec,
}

impl Default for ConfigServiceRole {
    fn default() -> Self {
        let want = Attrs::from([("service".to_string(), json!(SERVICE))]);
        ConfigServiceRole { spec: Spec::new(address(), want, Vec::new()) }
    }
}

#[async_trait]
impl Resource for ConfigServiceRole {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let found = aws.iam.get_role().role_name(ROLE).send().await.found(|| format!("reading IAM role {ROLE}"))?;
        Ok(found.map(|_| Live { attrs: self.spec.want.clone(), ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, _: &Attrs) -> anyhow::Result<()> {
        let created = aws.iam.create_service_linked_role().aws_service_name(SERVICE).send().await;
        match created.ctx(|| format!("creating the service-linked role for {SERVICE}")) {
            Err(e) if crate::aws::error::kind(&e) != ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    async fn update(&self, _: &Aws, _: &Attrs, _: &BTreeSet<String>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete service-linked roles")
    }
}
