//! The contract every resource kind implements, and the one place its typed state becomes the
//! plan's generic attributes.
//!
//! A kind describes its state as a spec struct (`Kind::Spec`, deriving `Serialize` and
//! `PartialEq`): built from the profile for the desired state, filled from AWS for the live
//! state. The engine and the planner never see a spec: the blanket `Resource` impl below turns
//! each into `plan::Attrs` with serde (`attrs_of`), hands the live spec back to the kind when
//! it updates, and lets `Delta` tell which fields differ. So a field is spelled once, as a
//! struct field, and the plan's field names are its serde names.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use super::tags::{OWNER_TAG, Tags};
use crate::aws::Aws;
use crate::plan::{Action, Address, Attrs, Ownership};

/// One health check result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Values a resource gives the resources that depend on it (a key's ARN), never compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exports {
    pub arn: Option<String>,
}

/// Exports of every resource read or applied so far.
pub type Outputs = HashMap<Address, Exports>;

/// A kind's state: what both the profile and AWS are turned into. A spec whose kind carries
/// ctguard's ownership tag says where its tags are.
pub trait Spec: Serialize + PartialEq + Clone + Debug + Send + Sync + 'static {
    fn tags(&self) -> Option<&Tags> {
        None
    }
}

/// `impl Spec` for a spec whose ownership tags are its `tags` field.
#[macro_export]
macro_rules! tagged_spec {
    ($($spec:ty),+) => {$(
        impl $crate::resources::kind::Spec for $spec {
            fn tags(&self) -> Option<&$crate::resources::tags::Tags> {
                Some(&self.tags)
            }
        }
    )+};
}

/// What one read found.
#[derive(Debug, Clone)]
pub struct Found<S> {
    pub spec: S,
    pub exports: Exports,
    /// Runtime health that no plan can fix by declaration alone (delivery errors).
    pub checks: Vec<Check>,
    /// What the reader should know that is not drift (things found and left alone).
    pub notes: Vec<String>,
    /// The read saw the resource holds no data at all (an empty bucket or log group), so a
    /// shorter retention deletes nothing: what a run interrupted before configuring the
    /// resource it had just created leaves. `false` when not known.
    pub empty: bool,
}

impl<S> Found<S> {
    pub fn new(spec: S) -> Self {
        Found { spec, exports: Exports::default(), checks: Vec::new(), notes: Vec::new(), empty: false }
    }
}

/// What an update must write: the fields where `want` differs from what was read, or every
/// field when nothing was (a create converging what an interrupted run left behind).
pub struct Delta<'a, S> {
    pub want: &'a S,
    have: Option<&'a S>,
}

impl<'a, S> Delta<'a, S> {
    pub fn between(want: &'a S, have: Option<&'a S>) -> Self {
        Delta { want, have }
    }

    /// Every field is to be written.
    pub fn all(want: &'a S) -> Self {
        Delta { want, have: None }
    }

    /// The live state the change starts from; `None` when every field is to be written.
    pub fn before(&self) -> Option<&'a S> {
        self.have
    }

    /// Whether the field `part` picks differs.
    pub fn changed<T: PartialEq + ?Sized>(&self, part: impl Fn(&S) -> &T) -> bool {
        self.have.is_none_or(|have| part(have) != part(self.want))
    }

    /// Whether the value `view` makes of the spec differs (for a spec minus some fields).
    pub fn differs<T: PartialEq>(&self, view: impl Fn(&S) -> T) -> bool {
        self.have.is_none_or(|have| view(have) != view(self.want))
    }
}

impl<S: Spec> Delta<'_, S> {
    /// For APIs whose Put takes tags only when creating (CloudWatch alarms, Config rules): runs
    /// `put` when anything but the tags differs (`untagged` blanks them), then `tag` when the
    /// tags differ.
    pub async fn put_then_tag(
        &self,
        untagged: impl Fn(&S) -> S,
        put: impl Future<Output = anyhow::Result<()>>,
        tag: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        if self.differs(untagged) {
            put.await?;
        }
        if self.differs(|s| s.tags().cloned()) {
            tag.await?;
        }
        Ok(())
    }
}

/// One resource kind: read, create, update, delete, typed. Implement this; the engine sees it
/// through `Declared`, which holds what the profile says about it.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    type Spec: Spec;

    /// The desired state once the exports of what it depends on are known: values of
    /// resources not yet created are `plan::UNKNOWN`.
    fn resolve(&self, want: Self::Spec, _outputs: &Outputs) -> Self::Spec {
        want
    }

    /// The fields that cannot change in place, as their plan names (see `field_names`).
    fn replace_on(_want: &Self::Spec) -> Vec<String> {
        Vec::new()
    }

    /// Why going from `have` to `want` deletes or shortens audit data or coverage, one reason
    /// each (`want == None`: deleting it); empty when nothing is lost. `empty`: the read saw
    /// the resource hold no data (`Found::empty`). Helpers in `loss`.
    fn destructive(_want: Option<&Self::Spec>, _have: &Self::Spec, _empty: bool) -> Vec<String> {
        Vec::new()
    }

    /// What a reader must know before the change from `have` (`None`: a create) to `want` is
    /// made that the diff does not say: a setting AWS never lets anyone take back. Plan
    /// shows each as a note on the change.
    fn cautions(_want: &Self::Spec, _have: Option<&Self::Spec>) -> Vec<String> {
        Vec::new()
    }

    /// `None` when the resource does not exist. `want` is the declared state, for kinds whose
    /// read depends on it (which tags to expect, what to report); `None` when undeclared.
    async fn read(&self, aws: &Aws, want: Option<&Self::Spec>) -> anyhow::Result<Option<Found<Self::Spec>>>;

    /// Drops whatever batched read this resource shares, so the next read sees a write.
    async fn forget(&self) {}

    /// By default a create is an update of every field: for APIs that put a whole resource.
    async fn create(&self, aws: &Aws, want: &Self::Spec) -> anyhow::Result<()> {
        self.update(aws, &Delta::all(want)).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, Self::Spec>) -> anyhow::Result<()>;
    async fn delete(&self, aws: &Aws) -> anyhow::Result<()>;

    /// Health that only verify asks about, at the cost of extra calls (rule compliance).
    async fn health(&self, _aws: &Aws) -> Vec<Check> {
        Vec::new()
    }
}

/// A kind with what the profile says about it: where it is, what it needs first, and what it
/// should be (`want`; `None` for a resource the profile owns but no longer declares).
pub struct Declared<K: Kind> {
    pub address: Address,
    pub depends: Vec<Address>,
    pub want: Option<K::Spec>,
    pub kind: K,
}

impl<K: Kind> Declared<K> {
    pub fn new(kind: K, address: Address, want: K::Spec, depends: Vec<Address>) -> Self {
        Declared { address, depends, want: Some(want), kind }
    }

    /// Owned by the profile but no longer declared: plan proposes deleting it.
    pub fn undeclared(kind: K, address: Address) -> Self {
        Declared { address, depends: Vec::new(), want: None, kind }
    }

    fn resolved(&self, outputs: &Outputs) -> Option<K::Spec> {
        self.want.clone().map(|w| self.kind.resolve(w, outputs))
    }
}

/// Live state of one resource, as the planner and the engine see it.
#[derive(Debug, Clone)]
pub struct Live {
    /// Comparable attributes, in the same shape `Resource::desired` returns.
    pub attrs: Attrs,
    pub owner: Ownership,
    pub exports: Exports,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
    /// See `Found::empty`.
    pub empty: bool,
    /// The kind's own live spec, handed back to it when it updates.
    spec: Arc<dyn Any + Send + Sync>,
}

#[cfg(test)]
impl Live {
    /// A live state with these attributes and owner, and no spec behind them.
    pub fn for_tests(attrs: Attrs, owner: Ownership) -> Self {
        Live {
            attrs,
            owner,
            exports: Exports::default(),
            checks: vec![],
            notes: vec![],
            empty: false,
            spec: Arc::new(()),
        }
    }
}

/// A resource kind with its spec type erased: what the engine, the planner and verify use.
#[async_trait]
pub trait Resource: Send + Sync {
    fn address(&self) -> Address;
    /// Resources that must exist before this one is created or updated.
    fn depends_on(&self) -> &[Address];
    /// False for a resource ctguard owns that the profile no longer declares.
    fn declared(&self) -> bool;
    fn desired(&self, outputs: &Outputs) -> Option<Attrs>;
    fn replace_on(&self) -> Vec<String>;
    /// The kind's verdict on data loss for the change from `have` to the desired state.
    fn destructive(&self, have: &Live, outputs: &Outputs) -> Vec<String>;
    /// The kind's verdict on data loss for deleting the resource as read (`ctguard destroy`).
    fn destroying(&self, have: &Live) -> Vec<String>;
    /// The kind's cautions on the change from `have` to the desired state (`Kind::cautions`).
    fn cautions(&self, _have: Option<&Live>, _outputs: &Outputs) -> Vec<String> {
        Vec::new()
    }
    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>>;
    /// Reads again after a write, past any batched read.
    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>>;
    /// Carries out `action`, given what plan read (`have`) and the exports known so far.
    async fn apply(&self, aws: &Aws, action: Action, have: Option<&Live>, outputs: &Outputs) -> anyhow::Result<()>;
    async fn health(&self, aws: &Aws) -> Vec<Check>;
}

#[async_trait]
impl<K: Kind> Resource for Declared<K> {
    fn address(&self) -> Address {
        self.address.clone()
    }

    fn depends_on(&self) -> &[Address] {
        &self.depends
    }

    fn declared(&self) -> bool {
        self.want.is_some()
    }

    fn desired(&self, outputs: &Outputs) -> Option<Attrs> {
        self.resolved(outputs).map(|s| attrs_of(&s))
    }

    fn replace_on(&self) -> Vec<String> {
        self.want.as_ref().map(K::replace_on).unwrap_or_default()
    }

    fn destructive(&self, live: &Live, outputs: &Outputs) -> Vec<String> {
        let Some(have) = live.spec.downcast_ref::<K::Spec>() else { return Vec::new() };
        K::destructive(self.resolved(outputs).as_ref(), have, live.empty)
    }

    fn destroying(&self, live: &Live) -> Vec<String> {
        let Some(have) = live.spec.downcast_ref::<K::Spec>() else { return Vec::new() };
        K::destructive(None, have, live.empty)
    }

    fn cautions(&self, have: Option<&Live>, outputs: &Outputs) -> Vec<String> {
        let Some(want) = self.resolved(outputs) else { return Vec::new() };
        K::cautions(&want, have.and_then(|l| l.spec.downcast_ref::<K::Spec>()))
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        Ok(self.kind.read(aws, self.want.as_ref()).await?.map(live))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.kind.forget().await;
        Resource::read(self, aws).await
    }

    async fn apply(&self, aws: &Aws, action: Action, have: Option<&Live>, outputs: &Outputs) -> anyhow::Result<()> {
        let want = || {
            self.resolved(outputs).ok_or_else(|| anyhow::anyhow!("internal error: {} is not declared", self.address))
        };
        let kind = &self.kind;
        match action {
            Action::NoOp => Ok(()),
            Action::Create => kind.create(aws, &want()?).await,
            // Adopting is converging in place; the ownership tag is one of the fields written.
            Action::Update | Action::Adopt => {
                let want = want()?;
                let have = have.and_then(|l| l.spec.downcast_ref::<K::Spec>());
                kind.update(aws, &Delta::between(&want, have)).await
            }
            Action::Replace => {
                let want = want()?;
                kind.delete(aws).await?;
                kind.create(aws, &want).await
            }
            Action::Delete => kind.delete(aws).await,
        }
    }

    async fn health(&self, aws: &Aws) -> Vec<Check> {
        self.kind.health(aws).await
    }
}

fn live<S: Spec>(found: Found<S>) -> Live {
    let owner = match found.spec.tags() {
        None => Ownership::Untracked,
        Some(tags) => tags.get(OWNER_TAG).map_or(Ownership::Unowned, |o| Ownership::Profile(o.clone())),
    };
    Live {
        attrs: attrs_of(&found.spec),
        owner,
        exports: found.exports,
        checks: found.checks,
        notes: found.notes,
        empty: found.empty,
        spec: Arc::new(found.spec),
    }
}

/// The one conversion from a typed spec to the plan's attributes: its serde form. A spec is a
/// struct of named fields, which serializes to a JSON object whatever its values.
pub fn attrs_of<S: Serialize>(spec: &S) -> Attrs {
    match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        other => panic!("internal error: a resource spec must serialize to a JSON object, not {other:?}"),
    }
}

/// The plan names of the fields of `part`: for `Kind::replace_on`, given the (flattened) part
/// of a spec whose fields force replacement.
pub fn field_names<S: Serialize>(part: &S) -> Vec<String> {
    attrs_of(part).into_keys().collect()
}
