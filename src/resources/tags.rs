//! Tags: the ownership tag every created resource carries, which tags are compared, and the
//! one conversion to each service's SDK tag type.

use std::collections::BTreeMap;

use crate::profile::Profile;

/// Tags as ctguard compares them: key to value, in key order.
pub type Tags = BTreeMap<String, String>;

/// The tag that marks what ctguard created, valued with the profile's name.
pub const OWNER_TAG: &str = "ctguard:profile";
/// An alarm's severity, for whoever routes its notifications.
pub const SEVERITY_TAG: &str = "ctguard:severity";

/// Tag keys whose values ctguard declares; other tags (the user's, or ctguard's own
/// bookkeeping such as subscription records) are not compared.
pub const MANAGED_KEYS: [&str; 2] = [OWNER_TAG, SEVERITY_TAG];

/// The ownership tags every resource carries.
pub fn owner_tags(profile: &Profile) -> Tags {
    Tags::from([(OWNER_TAG.to_string(), profile.name.clone())])
}

/// Live tags, cut down to the keys ctguard manages so other tags are not drift.
pub fn managed<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    tags.into_iter().filter(|(k, _)| MANAGED_KEYS.contains(k)).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A service's own tag type, built from a key and a value.
pub trait SdkTag: Sized {
    fn build(key: &str, value: &str) -> anyhow::Result<Self>;
}

/// `tags` in the SDK shape a tagging call of that service takes.
pub fn sdk<T: SdkTag>(tags: &Tags) -> anyhow::Result<Vec<T>> {
    tags.iter().map(|(k, v)| T::build(k, v)).collect()
}

/// Services whose tag builder fails when a required field is missing.
macro_rules! checked_tag {
    ($($t:ty),+) => {$(
        impl SdkTag for $t {
            fn build(key: &str, value: &str) -> anyhow::Result<Self> {
                Ok(<$t>::builder().key(key).value(value).build()?)
            }
        }
    )+};
}

/// Services whose tag builder cannot fail.
macro_rules! plain_tag {
    ($($t:ty),+) => {$(
        impl SdkTag for $t {
            fn build(key: &str, value: &str) -> anyhow::Result<Self> {
                Ok(<$t>::builder().key(key).value(value).build())
            }
        }
    )+};
}

checked_tag!(
    aws_sdk_s3::types::Tag,
    aws_sdk_iam::types::Tag,
    aws_sdk_cloudtrail::types::Tag,
    aws_sdk_sns::types::Tag,
    aws_sdk_eventbridge::types::Tag
);
plain_tag!(aws_sdk_cloudwatch::types::Tag, aws_sdk_config::types::Tag, aws_sdk_athena::types::Tag);

impl SdkTag for aws_sdk_kms::types::Tag {
    fn build(key: &str, value: &str) -> anyhow::Result<Self> {
        Ok(aws_sdk_kms::types::Tag::builder().tag_key(key).tag_value(value).build()?)
    }
}
