//! The partition-projected CloudTrail table `ctguard hunt` queries, and its database, in the
//! AWS Glue Data Catalog. Both are made with Athena DDL run in the workgroup (so no Glue client
//! is needed) and read with Athena's GetTableMetadata. The table is external: dropping it, to
//! replace a changed definition, deletes no log file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_athena::types::{QueryExecutionState, TableMetadata};
use serde::Serialize;

use super::athena_workgroup;
use super::kind::{Declared, Delta, Found, Kind, field_names};
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::{Aws, AwsResultExt};
use crate::hunt::table::{self as ddl, COLUMNS, Layout};
use crate::plan::Address;
use crate::profile::Profile;
use crate::profile::athena::Athena;

pub const KIND: &str = "athena_table";

/// Athena's name for the account's Glue Data Catalog.
pub const CATALOG: &str = "AwsDataCatalog";

/// CloudTrail's first day: no log file is older (the start of the projected range when the
/// bucket keeps logs for ever).
const CLOUDTRAIL_LAUNCH: &str = "2013/11/13";

/// A DDL statement finishes in seconds; past this, something is wrong.
const DDL_TIMEOUT: Duration = Duration::from_secs(300);

/// The table's definition, as the catalog reports it. Types are compared as the catalog
/// normalizes them: lower case, no spaces (`struct<arn:string>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSpec {
    /// `s3://<bucket>/<prefix>/AWSLogs/<account or org-id>/`.
    pub location: Option<String>,
    /// `name type`, in order.
    pub columns: Vec<String>,
    pub partition_keys: Vec<String>,
    pub serde: Option<String>,
    pub input_format: Option<String>,
    /// The table properties that say where partitions are: the partition projection
    /// (`projection.*`) and `storage.location.template`.
    pub properties: BTreeMap<String, String>,
    /// Ownership, kept as a table property (a Glue table takes no tags through Athena DDL).
    pub tags: Tags,
}

crate::tagged_spec!(TableSpec);

/// Everything but the ownership tag defines the table: a change is a DROP and a CREATE.
#[derive(Serialize, PartialEq)]
struct Definition<'a> {
    location: &'a Option<String>,
    columns: &'a [String],
    partition_keys: &'a [String],
    serde: &'a Option<String>,
    input_format: &'a Option<String>,
    properties: &'a BTreeMap<String, String>,
}

fn definition(s: &TableSpec) -> Definition<'_> {
    Definition {
        location: &s.location,
        columns: &s.columns,
        partition_keys: &s.partition_keys,
        serde: &s.serde,
        input_format: &s.input_format,
        properties: &s.properties,
    }
}

pub fn address(athena: &Athena, region: &str) -> Address {
    Address { kind: KIND, name: format!("{}.{}", athena.database, athena.table), region: region.into() }
}

/// A type as the catalog stores it.
fn normalize(hive_type: &str) -> String {
    hive_type.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

fn is_projection(key: &str) -> bool {
    key.starts_with("projection.") || key == "storage.location.template"
}

/// What `hunt::table::create_table` needs, from the profile: the trail's logs in the audit
/// bucket, projected over the profile's regions and the days the bucket keeps.
pub fn ddl_spec(profile: &Profile, athena: &Athena) -> ddl::TableSpec {
    let layout = match &athena.organization {
        Some(org) => Layout::Organization { org_id: org.id.clone(), accounts: org.accounts.clone() },
        None => Layout::Account { account: profile.runtime.account_id.clone() },
    };
    let expire = profile.bucket.lifecycle.expire_days;
    let start_day = if expire > 0 { format!("NOW-{expire}DAYS") } else { CLOUDTRAIL_LAUNCH.into() };
    ddl::TableSpec {
        name: format!("{}.{}", athena.database, athena.table),
        bucket: profile.bucket.name.clone(),
        prefix: profile.bucket.trail_prefix.trim_matches('/').to_string(),
        layout,
        regions: profile.regions.clone(),
        start_day,
        properties: vec![(OWNER_TAG.to_string(), profile.name.clone())],
    }
}

/// The definition the DDL writes, as the catalog will report it.
fn declared_spec(spec: &ddl::TableSpec) -> TableSpec {
    let (projection, owned): (Vec<_>, Vec<_>) =
        ddl::table_properties(spec).into_iter().partition(|(k, _)| is_projection(k));
    TableSpec {
        location: Some(spec.logs_root()),
        columns: COLUMNS.iter().map(|c| format!("{} {}", c.name, normalize(&ddl::hive_type(c.shape)))).collect(),
        partition_keys: ddl::partition_keys(&spec.layout).iter().map(|k| format!("{k} string")).collect(),
        serde: Some(ddl::SERDE.into()),
        input_format: Some(ddl::INPUT_FORMAT.into()),
        properties: projection.into_iter().collect(),
        tags: tags::managed(owned.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

/// The table as the spec states it (flatten).
fn flatten(t: &TableMetadata) -> TableSpec {
    let columns = |cols: &[aws_sdk_athena::types::Column]| -> Vec<String> {
        cols.iter().map(|c| format!("{} {}", c.name(), normalize(c.r#type().unwrap_or_default()))).collect()
    };
    let empty = Default::default();
    let params = t.parameters().unwrap_or(&empty);
    let param = |key: &str| params.get(key).cloned();
    TableSpec {
        location: param("location"),
        columns: columns(t.columns()),
        partition_keys: columns(t.partition_keys()),
        serde: param("serde.serialization.lib"),
        input_format: param("inputformat"),
        properties: params.iter().filter(|(k, _)| is_projection(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        tags: tags::managed(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

/// A string literal in Athena DDL.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "\\'"))
}

pub struct AthenaTable {
    database: String,
    table: String,
    workgroup: String,
    region: String,
    /// The CREATE EXTERNAL TABLE statement.
    create: String,
}

impl AthenaTable {
    pub fn new(profile: &Profile, athena: &Athena) -> Declared<Self> {
        let spec = ddl_spec(profile, athena);
        let want = declared_spec(&spec);
        let region = profile.runtime.region.clone();
        let kind = AthenaTable {
            database: athena.database.clone(),
            table: athena.table.clone(),
            workgroup: athena.workgroup.clone(),
            region: region.clone(),
            create: ddl::create_table(&spec),
        };
        // The DDL runs in the workgroup and the table reads the audit bucket.
        let depends = vec![athena_workgroup::address(athena, &region), athena_workgroup::audit_bucket(profile)];
        Declared::new(kind, address(athena, &region), want, depends)
    }

    fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} Athena table {}/{}", self.region, self.name())
    }

    /// Runs one DDL statement in the workgroup and waits until Athena has finished it.
    async fn run(&self, aws: &Aws, sql: &str, doing: &str) -> anyhow::Result<()> {
        let started = aws.athena.start_query_execution().query_string(sql).work_group(&self.workgroup).send();
        let id = started
            .await
            .ctx(|| self.what(doing))?
            .query_execution_id
            .with_context(|| format!("{}: Athena returned no query execution id", self.what(doing)))?;
        let deadline = Instant::now() + DDL_TIMEOUT;
        let mut wait = Duration::from_millis(100);
        loop {
            let got = aws.athena.get_query_execution().query_execution_id(&id).send().await.ctx(|| self.what(doing))?;
            let status = got.query_execution().and_then(|e| e.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(state @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled)) => {
                    let reason = status
                        .and_then(|s| s.athena_error().and_then(|e| e.error_message()).or(s.state_change_reason()))
                        .unwrap_or("no reason given");
                    anyhow::bail!(
                        "{}: Athena query {id} {}: {reason}",
                        self.what(doing),
                        state.as_str().to_lowercase()
                    );
                }
                _ if Instant::now() > deadline => {
                    anyhow::bail!("{}: Athena query {id} still not finished after {DDL_TIMEOUT:?}", self.what(doing))
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 3 / 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

#[async_trait]
impl Kind for AthenaTable {
    type Spec = TableSpec;

    fn replace_on(want: &TableSpec) -> Vec<String> {
        field_names(&definition(want))
    }

    async fn read(&self, aws: &Aws, want: Option<&TableSpec>) -> anyhow::Result<Option<Found<TableSpec>>> {
        let req = aws.athena.get_table_metadata().catalog_name(CATALOG).database_name(&self.database);
        let got = req.table_name(&self.table).send().await.found(|| self.what("reading"))?;
        let Some(table) = got.and_then(|t| t.table_metadata) else { return Ok(None) };
        let mut found = Found::new(flatten(&table));
        if want.is_some_and(|w| definition(w) != definition(&found.spec)) {
            found.notes.push(
                "the definition differs: apply drops the table and creates it again; it is an external table, so no log file is deleted"
                    .into(),
            );
        }
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, _: &TableSpec) -> anyhow::Result<()> {
        // IF NOT EXISTS on both: an earlier, interrupted run may have made either.
        self.run(aws, &format!("CREATE DATABASE IF NOT EXISTS {}", self.database), "creating the database of").await?;
        self.run(aws, &self.create, "creating").await
    }

    /// Only the ownership property changes in place; the rest is a replacement.
    async fn update(&self, aws: &Aws, delta: &Delta<'_, TableSpec>) -> anyhow::Result<()> {
        if delta.changed(|s| &s.tags) {
            let properties: Vec<String> =
                delta.want.tags.iter().map(|(k, v)| format!("{}={}", quote(k), quote(v))).collect();
            let sql = format!("ALTER TABLE {} SET TBLPROPERTIES ({})", self.name(), properties.join(", "));
            self.run(aws, &sql, "tagging").await?;
        }
        Ok(())
    }

    /// Drops the table's definition from the catalog. The table is external, so the log
    /// files under its location stay where they are; the database is left, as it may hold
    /// other tables.
    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        self.run(aws, &format!("DROP TABLE IF EXISTS {}", self.name()), "dropping").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, plan_change};
    use crate::resources::kind::attrs_of;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_athena::types::error::MetadataException;
    use aws_sdk_athena::types::{Column, QueryExecution, QueryExecutionStatus};
    use aws_sdk_athena::{Client, operation as athena};

    fn declared() -> (Profile, Declared<AthenaTable>) {
        let p = flagship();
        let t = AthenaTable::new(&p, p.athena.as_ref().expect("the shipped profile declares [athena]"));
        (p, t)
    }

    /// The table as the Glue Data Catalog holds it after the DDL: Hive's types spelled in
    /// lower case without spaces, the storage descriptor and TBLPROPERTIES as parameters.
    fn catalog_view(spec: &ddl::TableSpec) -> TableMetadata {
        let column = |name: &str, ty: &str| Column::builder().name(name).r#type(ty).build().unwrap();
        let mut t = TableMetadata::builder().name("ctguard_cloudtrail").table_type("EXTERNAL_TABLE");
        for c in COLUMNS {
            t = t.columns(column(c.name, &ddl::hive_type(c.shape).replace(' ', "").to_lowercase()));
        }
        for k in ddl::partition_keys(&spec.layout) {
            t = t.partition_keys(column(k, "string"));
        }
        t = t
            .parameters("EXTERNAL", "TRUE")
            .parameters("location", spec.logs_root())
            .parameters("inputformat", ddl::INPUT_FORMAT)
            .parameters("outputformat", ddl::OUTPUT_FORMAT)
            .parameters("serde.serialization.lib", ddl::SERDE)
            .parameters("transient_lastDdlTime", "1760000000");
        for (k, v) in ddl::table_properties(spec) {
            t = t.parameters(k, v);
        }
        t.build().unwrap()
    }

    #[test]
    fn the_table_projects_the_profiles_regions_over_the_days_the_bucket_keeps() {
        let (p, t) = declared();
        let want = t.want.unwrap();
        assert_eq!(
            want.location.as_deref(),
            Some("s3://ctguard-audit-123456789012-us-east-1/cloudtrail/AWSLogs/123456789012/")
        );
        assert_eq!(want.properties["projection.timestamp.range"], "NOW-2555DAYS,NOW");
        assert_eq!(want.properties["projection.region.values"], p.regions.join(","));
        assert_eq!(want.partition_keys, ["region string", "timestamp string"]);
        assert!(want.columns.contains(&"resources array<struct<arn:string,accountid:string,type:string>>".to_string()));
        assert_eq!(want.tags, tags::owner_tags(&p));
        assert_eq!(t.depends.len(), 2);
        assert!(t.kind.create.contains("'ctguard:profile'='ai-agent-guard'"), "{}", t.kind.create);
    }

    #[tokio::test]
    async fn a_table_made_by_the_ddl_reads_back_as_declared() {
        let (p, t) = declared();
        let spec = ddl_spec(&p, p.athena.as_ref().unwrap());
        let view = catalog_view(&spec);
        let get = mock!(Client::get_table_metadata)
            .match_requests(|r| {
                (r.catalog_name(), r.database_name(), r.table_name())
                    == (Some("AwsDataCatalog"), Some("ctguard"), Some("ctguard_cloudtrail"))
            })
            .then_output(move || {
                athena::get_table_metadata::GetTableMetadataOutput::builder().table_metadata(view.clone()).build()
            });
        let want = t.want.clone().unwrap();
        let found = t.kind.read(&aws(&[&get]), Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
        assert!(found.notes.is_empty(), "{:?}", found.notes);
    }

    #[tokio::test]
    async fn a_missing_table_or_database_reads_as_absent() {
        let (_, t) = declared();
        let get = mock!(Client::get_table_metadata).then_error(|| {
            athena::get_table_metadata::GetTableMetadataError::MetadataException(
                MetadataException::builder().message("Entity Not Found (Service: AmazonDataCatalog)").build(),
            )
        });
        assert!(t.kind.read(&aws(&[&get]), None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_changed_definition_is_a_replacement_that_says_no_log_is_deleted() {
        let (p, t) = declared();
        let mut spec = ddl_spec(&p, p.athena.as_ref().unwrap());
        spec.regions = vec!["us-east-1".into()];
        let view = catalog_view(&spec);
        let get = mock!(Client::get_table_metadata).then_output(move || {
            athena::get_table_metadata::GetTableMetadataOutput::builder().table_metadata(view.clone()).build()
        });
        let want = t.want.clone().unwrap();
        let found = t.kind.read(&aws(&[&get]), Some(&want)).await.unwrap().unwrap();
        assert!(found.notes[0].contains("no log file is deleted"), "{:?}", found.notes);
        let change = plan_change(
            t.address.clone(),
            Some(&attrs_of(&want)),
            Some(&attrs_of(&found.spec)),
            &AthenaTable::replace_on(&want),
        );
        assert_eq!(change.action, Action::Replace);
        assert_eq!(change.diffs.len(), 1, "{:?}", change.diffs);
        // The ownership property alone changes in place.
        let unowned = TableSpec { tags: Tags::new(), ..want.clone() };
        let change = plan_change(
            t.address.clone(),
            Some(&attrs_of(&want)),
            Some(&attrs_of(&unowned)),
            &AthenaTable::replace_on(&want),
        );
        assert_eq!(change.action, Action::Update);
    }

    fn execution(state: QueryExecutionState) -> athena::get_query_execution::GetQueryExecutionOutput {
        let status =
            QueryExecutionStatus::builder().state(state).state_change_reason("line 1:8: no viable alternative").build();
        let execution = QueryExecution::builder().query_execution_id("q-1").status(status).build();
        athena::get_query_execution::GetQueryExecutionOutput::builder().query_execution(execution).build()
    }

    #[tokio::test]
    async fn create_runs_the_database_then_the_table_ddl_in_the_workgroup_and_waits_for_each() {
        let (_, t) = declared();
        let database = mock!(Client::start_query_execution)
            .match_requests(|r| {
                r.query_string() == Some("CREATE DATABASE IF NOT EXISTS ctguard") && r.work_group() == Some("ctguard")
            })
            .then_output(|| {
                athena::start_query_execution::StartQueryExecutionOutput::builder().query_execution_id("q-1").build()
            });
        let table = mock!(Client::start_query_execution)
            .match_requests(|r| {
                r.query_string()
                    .is_some_and(|q| q.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS ctguard.ctguard_cloudtrail ("))
                    && r.work_group() == Some("ctguard")
            })
            .then_output(|| {
                athena::start_query_execution::StartQueryExecutionOutput::builder().query_execution_id("q-1").build()
            });
        let done = mock!(Client::get_query_execution).then_output(|| execution(QueryExecutionState::Succeeded));
        let want = t.want.clone().unwrap();
        t.kind.create(&aws(&[&database, &table, &done]), &want).await.unwrap();
        assert_eq!((database.num_calls(), table.num_calls(), done.num_calls()), (1, 1, 2));
    }

    #[tokio::test]
    async fn a_failed_ddl_is_an_error_with_athenas_reason() {
        let (_, t) = declared();
        let start = mock!(Client::start_query_execution).then_output(|| {
            athena::start_query_execution::StartQueryExecutionOutput::builder().query_execution_id("q-1").build()
        });
        let failed = mock!(Client::get_query_execution).then_output(|| execution(QueryExecutionState::Failed));
        let err = t.kind.delete(&aws(&[&start, &failed])).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("dropping Athena table us-east-1/ctguard.ctguard_cloudtrail"), "{text}");
        assert!(text.contains("failed: line 1:8: no viable alternative"), "{text}");
    }

    #[tokio::test]
    async fn adopting_a_table_sets_only_the_ownership_property() {
        let (_, t) = declared();
        let want = t.want.clone().unwrap();
        let have = TableSpec { tags: Tags::new(), ..want.clone() };
        let alter = mock!(Client::start_query_execution)
            .match_requests(|r| {
                r.query_string()
                    == Some(
                        "ALTER TABLE ctguard.ctguard_cloudtrail SET TBLPROPERTIES ('ctguard:profile'='ai-agent-guard')",
                    )
            })
            .then_output(|| {
                athena::start_query_execution::StartQueryExecutionOutput::builder().query_execution_id("q-1").build()
            });
        let done = mock!(Client::get_query_execution).then_output(|| execution(QueryExecutionState::Succeeded));
        t.kind.update(&aws(&[&alter, &done]), &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(alter.num_calls(), 1);
    }
}
