//! The CloudTrail table `ctguard hunt` queries: AWS's documented Athena table for CloudTrail logs
//! (Athena User Guide, "Create the table for CloudTrail logs in Athena using partition
//! projection"), with its columns named and typed exactly as there, partitioned by projection on
//! region and day (and account, for an organization trail's bucket layout).
//!
//! [`COLUMNS`] is the one description of that schema: the compiler walks it to map a CloudTrail
//! field to its column, and [`create_table`] writes the DDL from it.

use std::fmt::Write as _;

/// What a column holds, as the compiler must read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A CloudTrail string field; NULL when the record does not have it.
    Text,
    /// A CloudTrail boolean (`readOnly`), which the table's STRING column holds as `true`/`false`.
    Bool,
    /// A CloudTrail object stored as its JSON text (`requestParameters` and its kind), read with
    /// `json_extract`/`json_extract_scalar`. NULL when the record has `null` or nothing.
    Json,
    /// A struct of further columns.
    Struct(&'static [Column]),
    /// An array of structs (`resources`).
    Array(&'static [Column]),
    /// `map<string,string>` (web identity federation attributes).
    Map,
}

/// One column: the CloudTrail record key it comes from (case-sensitive, as EventBridge and
/// CloudWatch Logs match it), its name in the table, and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub key: &'static str,
    pub name: &'static str,
    pub shape: Shape,
}

const fn col(key: &'static str, name: &'static str, shape: Shape) -> Column {
    Column { key, name, shape }
}

use Shape::{Array, Bool, Json, Map, Struct, Text};

const ON_BEHALF_OF: &[Column] = &[col("userId", "userid", Text), col("identityStoreArn", "identitystorearn", Text)];

const SESSION_ATTRIBUTES: &[Column] =
    &[col("mfaAuthenticated", "mfaauthenticated", Text), col("creationDate", "creationdate", Text)];

const SESSION_ISSUER: &[Column] = &[
    col("type", "type", Text),
    col("principalId", "principalid", Text),
    col("arn", "arn", Text),
    col("accountId", "accountid", Text),
    col("userName", "username", Text),
];

const WEB_IDENTITY: &[Column] =
    &[col("federatedProvider", "federatedprovider", Text), col("attributes", "attributes", Map)];

/// AWS's published DDL stops at `webidfederationdata`; `sourceIdentity` (the `sts:SourceIdentity`
/// of the session, kept across role chaining: CloudTrail User Guide, "CloudTrail userIdentity
/// element") is added, because the agent detections match on it. The JSON SerDe reads a field
/// only when the table declares it.
const SESSION_CONTEXT: &[Column] = &[
    col("attributes", "attributes", Struct(SESSION_ATTRIBUTES)),
    col("sessionIssuer", "sessionissuer", Struct(SESSION_ISSUER)),
    col("ec2RoleDelivery", "ec2roledelivery", Text),
    col("webIdFederationData", "webidfederationdata", Struct(WEB_IDENTITY)),
    col("sourceIdentity", "sourceidentity", Text),
];

const USER_IDENTITY: &[Column] = &[
    col("type", "type", Text),
    col("principalId", "principalid", Text),
    col("arn", "arn", Text),
    col("accountId", "accountid", Text),
    col("invokedBy", "invokedby", Text),
    col("accessKeyId", "accesskeyid", Text),
    col("userName", "username", Text),
    col("onBehalfOf", "onbehalfof", Struct(ON_BEHALF_OF)),
    col("sessionContext", "sessioncontext", Struct(SESSION_CONTEXT)),
];

const RESOURCE: &[Column] = &[col("ARN", "arn", Text), col("accountId", "accountid", Text), col("type", "type", Text)];

const ADDENDUM: &[Column] = &[
    col("reason", "reason", Text),
    col("updatedFields", "updatedfields", Text),
    col("originalRequestID", "originalrequestid", Text),
    col("originalEventID", "originaleventid", Text),
];

const TLS_DETAILS: &[Column] = &[
    col("tlsVersion", "tlsversion", Text),
    col("cipherSuite", "ciphersuite", Text),
    col("clientProvidedHostHeader", "clientprovidedhostheader", Text),
];

/// The table's data columns, in AWS's order.
pub const COLUMNS: &[Column] = &[
    col("eventVersion", "eventversion", Text),
    col("userIdentity", "useridentity", Struct(USER_IDENTITY)),
    col("eventTime", "eventtime", Text),
    col("eventSource", "eventsource", Text),
    col("eventName", "eventname", Text),
    col("awsRegion", "awsregion", Text),
    col("sourceIPAddress", "sourceipaddress", Text),
    col("userAgent", "useragent", Text),
    col("errorCode", "errorcode", Text),
    col("errorMessage", "errormessage", Text),
    col("requestParameters", "requestparameters", Json),
    col("responseElements", "responseelements", Json),
    col("additionalEventData", "additionaleventdata", Json),
    col("requestID", "requestid", Text),
    col("eventID", "eventid", Text),
    col("readOnly", "readonly", Bool),
    col("resources", "resources", Array(RESOURCE)),
    col("eventType", "eventtype", Text),
    col("apiVersion", "apiversion", Text),
    col("recipientAccountId", "recipientaccountid", Text),
    col("serviceEventDetails", "serviceeventdetails", Json),
    col("sharedEventID", "sharedeventid", Text),
    col("vpcEndpointId", "vpcendpointid", Text),
    col("vpcEndpointAccountId", "vpcendpointaccountid", Text),
    col("eventCategory", "eventcategory", Text),
    col("addendum", "addendum", Struct(ADDENDUM)),
    col("sessionCredentialFromConsole", "sessioncredentialfromconsole", Text),
    col("edgeDeviceDetails", "edgedevicedetails", Json),
    col("tlsDetails", "tlsdetails", Struct(TLS_DETAILS)),
];

/// The partition column holding the day a log file was delivered for, `yyyy/MM/dd` as in the
/// S3 key. `timestamp` is the name AWS's own projected table uses.
pub const DAY_PARTITION: &str = "timestamp";

/// How the trail's bucket is laid out under its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<MM>/<dd>/`.
    Account { account: String },
    /// An organization trail: `AWSLogs/<org-id>/<account>/CloudTrail/<region>/<yyyy>/<MM>/<dd>/`,
    /// with an `account` partition over the listed accounts.
    Organization { org_id: String, accounts: Vec<String> },
}

/// What [`create_table`] needs: where the logs are and which partitions to project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// `database.table` or `table`.
    pub name: String,
    pub bucket: String,
    /// The trail's S3 key prefix, without slashes at either end; empty for none.
    pub prefix: String,
    pub layout: Layout,
    pub regions: Vec<String>,
    /// First projected day: `yyyy/MM/dd`, or relative to now as partition projection takes it
    /// (`NOW-2555DAYS`).
    pub start_day: String,
    /// Further table properties, after the projection's (ownership).
    pub properties: Vec<(String, String)>,
}

impl TableSpec {
    /// `s3://bucket/prefix/AWSLogs/<account or org-id>/`.
    pub fn logs_root(&self) -> String {
        let prefix = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let owner = match &self.layout {
            Layout::Account { account } => account,
            Layout::Organization { org_id, .. } => org_id,
        };
        format!("s3://{}/{prefix}AWSLogs/{owner}/", self.bucket)
    }
}

/// The column type in Hive DDL, as Athena's CREATE EXTERNAL TABLE takes it.
pub fn hive_type(shape: Shape) -> String {
    let fields = |cols: &[Column]| {
        cols.iter().map(|c| format!("{}: {}", c.name, hive_type(c.shape))).collect::<Vec<_>>().join(", ")
    };
    match shape {
        Text | Bool | Json => "STRING".into(),
        Struct(cols) => format!("STRUCT<{}>", fields(cols)),
        Array(cols) => format!("ARRAY<STRUCT<{}>>", fields(cols)),
        Map => "MAP<STRING, STRING>".into(),
    }
}

/// The partition columns, all strings: region and day, after the account for an organization.
pub fn partition_keys(layout: &Layout) -> Vec<&'static str> {
    match layout {
        Layout::Account { .. } => vec!["region", DAY_PARTITION],
        Layout::Organization { .. } => vec!["account", "region", DAY_PARTITION],
    }
}

/// The table properties: the partition projection, the template that maps a partition to its S3
/// prefix, then `spec.properties`.
pub fn table_properties(spec: &TableSpec) -> Vec<(String, String)> {
    let root = spec.logs_root();
    let template_owner = match &spec.layout {
        Layout::Account { .. } => "",
        Layout::Organization { .. } => "${account}/",
    };
    let mut properties: Vec<(String, String)> = [
        ("projection.enabled", "true".to_string()),
        ("projection.region.type", "enum".into()),
        ("projection.region.values", spec.regions.join(",")),
        ("projection.timestamp.type", "date".into()),
        ("projection.timestamp.format", "yyyy/MM/dd".into()),
        ("projection.timestamp.range", format!("{},NOW", spec.start_day)),
        ("projection.timestamp.interval", "1".into()),
        ("projection.timestamp.interval.unit", "DAYS".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Layout::Organization { accounts, .. } = &spec.layout {
        properties.push(("projection.account.type".into(), "enum".into()));
        properties.push(("projection.account.values".into(), accounts.join(",")));
    }
    properties.push((
        "storage.location.template".into(),
        format!("{root}{template_owner}CloudTrail/${{region}}/${{timestamp}}"),
    ));
    properties.extend(spec.properties.iter().cloned());
    properties
}

/// AWS's documented SerDe and input format for CloudTrail logs.
pub const SERDE: &str = "org.apache.hive.hcatalog.data.JsonSerDe";
pub const INPUT_FORMAT: &str = "com.amazon.emr.cloudtrail.CloudTrailInputFormat";
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/// Athena DDL for the partition-projected table: AWS's documented columns, SerDe and input
/// format, with region and day (and account) projected, so no partition is ever added by hand
/// and a query that filters on them reads only those prefixes.
pub fn create_table(spec: &TableSpec) -> String {
    let mut ddl = format!("CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n", spec.name);
    let columns: Vec<String> = COLUMNS.iter().map(|c| format!("  {} {}", c.name, hive_type(c.shape))).collect();
    ddl.push_str(&columns.join(",\n"));
    ddl.push_str("\n)\n");
    // `timestamp` is a reserved word in DDL: quoted with backticks.
    let partitions: Vec<String> = partition_keys(&spec.layout)
        .iter()
        .map(|k| if *k == DAY_PARTITION { format!("`{k}` STRING") } else { format!("{k} STRING") })
        .collect();
    let _ = writeln!(ddl, "PARTITIONED BY ({})", partitions.join(", "));
    let _ = writeln!(ddl, "ROW FORMAT SERDE '{SERDE}'");
    let _ = writeln!(ddl, "STORED AS INPUTFORMAT '{INPUT_FORMAT}'");
    let _ = writeln!(ddl, "OUTPUTFORMAT '{OUTPUT_FORMAT}'");
    let _ = writeln!(ddl, "LOCATION '{}'", spec.logs_root());
    let properties: Vec<String> = table_properties(spec).iter().map(|(k, v)| format!("  '{k}'='{v}'")).collect();
    let _ = write!(ddl, "TBLPROPERTIES (\n{}\n)", properties.join(",\n"));
    ddl
}

/// Looks a CloudTrail key up among `columns`.
pub fn find(columns: &'static [Column], key: &str) -> Option<&'static Column> {
    columns.iter().find(|c| c.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout) -> TableSpec {
        TableSpec {
            name: "ctguard.ctguard_cloudtrail".into(),
            bucket: "audit-bucket".into(),
            prefix: "cloudtrail".into(),
            layout,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            start_day: "2025/01/01".into(),
            properties: Vec::new(),
        }
    }

    #[test]
    fn single_account_ddl_projects_region_and_day() {
        let ddl = create_table(&spec(Layout::Account { account: "123456789012".into() }));
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS ctguard.ctguard_cloudtrail (\n  eventversion STRING,\n  useridentity STRUCT<type: STRING, principalid: STRING, arn: STRING,"), "{ddl}");
        assert!(
            ddl.contains(
                "  readonly STRING,\n  resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>,"
            ),
            "{ddl}"
        );
        assert!(
            ddl.contains("webidfederationdata: STRUCT<federatedprovider: STRING, attributes: MAP<STRING, STRING>>")
        );
        assert!(ddl.contains("PARTITIONED BY (region STRING, `timestamp` STRING)\n"), "{ddl}");
        assert!(ddl.contains("LOCATION 's3://audit-bucket/cloudtrail/AWSLogs/123456789012/'\n"), "{ddl}");
        assert!(ddl.contains("'projection.region.values'='us-east-1,eu-west-1'"));
        assert!(ddl.contains("'projection.timestamp.range'='2025/01/01,NOW'"));
        assert!(ddl.ends_with(
            "'storage.location.template'='s3://audit-bucket/cloudtrail/AWSLogs/123456789012/CloudTrail/${region}/${timestamp}'\n)"
        ), "{ddl}");
        assert!(!ddl.contains("account STRING"));
    }

    #[test]
    fn organization_ddl_adds_an_account_partition() {
        let layout = Layout::Organization {
            org_id: "o-abc123".into(),
            accounts: vec!["111111111111".into(), "222222222222".into()],
        };
        let ddl = create_table(&TableSpec { prefix: String::new(), ..spec(layout) });
        assert!(ddl.contains("PARTITIONED BY (account STRING, region STRING, `timestamp` STRING)\n"), "{ddl}");
        assert!(ddl.contains("LOCATION 's3://audit-bucket/AWSLogs/o-abc123/'\n"), "{ddl}");
        assert!(ddl.contains("'projection.account.values'='111111111111,222222222222'"));
        assert!(ddl.contains(
            "'storage.location.template'='s3://audit-bucket/AWSLogs/o-abc123/${account}/CloudTrail/${region}/${timestamp}'"
        ), "{ddl}");
    }

    #[test]
    fn every_column_name_is_the_lower_cased_key() {
        fn check(cols: &[Column]) {
            for c in cols {
                assert_eq!(c.name, c.key.to_ascii_lowercase(), "{}", c.key);
                if let Struct(inner) | Array(inner) = c.shape {
                    check(inner);
                }
            }
        }
        check(COLUMNS);
    }
}
