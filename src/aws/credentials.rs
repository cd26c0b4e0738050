//! Who ctguard acts as, decided the way `aws --profile` decides it, and said plainly when it
//! cannot be decided.
//!
//! Precedence: a named profile (`--aws-profile`, or `AWS_PROFILE`) is used alone, even when
//! `AWS_ACCESS_KEY_ID` is set, so an explicit choice can never silently act on another account.
//! Without one, the SDK's default chain runs: key variables, the shared files' `default`
//! profile (keys, `credential_process`, SSO, assumed roles), web identity, the container
//! endpoint, and EC2 instance metadata. Credentials are resolved once before the first call,
//! so a failure names every source tried and how to fix it.

use std::path::PathBuf;

use aws_config::SdkConfig;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

/// Credentials could not be had; the text says what was tried and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsProblem(pub String);

/// The credentials of one named profile and nothing else. `http` and `region` serve the
/// profile's own calls (SSO, an assumed role).
pub fn named_profile(
    name: &str,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    region: Option<&str>,
) -> SharedCredentialsProvider {
    let conf = ProviderConfig::without_region()
        .with_http_client(http)
        .with_region(region.map(|r| aws_config::Region::new(r.to_string())));
    SharedCredentialsProvider::new(
        ProfileFileCredentialsProvider::builder().configure(&conf).profile_name(name).build(),
    )
}

/// Resolves the configured credentials once. `aws_profile` is the profile the command line or
/// AWS_PROFILE named, if any.
pub async fn check(config: &SdkConfig, aws_profile: Option<&str>) -> anyhow::Result<()> {
    let found = profile_names().await?;
    if let Some(name) = aws_profile
        && !found.iter().any(|p| p == name)
    {
        return Err(CredentialsProblem(unknown_profile(name, &found)).into());
    }
    let Some(provider) = config.credentials_provider() else {
        return Err(CredentialsProblem("no AWS credentials provider is configured".into()).into());
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let default_profile = found.iter().any(|p| p == "default");
            Err(CredentialsProblem(explain(&e, aws_profile, default_profile)).into())
        }
    }
}

/// The shared config file, as the SDK finds it.
fn config_file() -> PathBuf {
    shared_file("AWS_CONFIG_FILE", "config")
}

/// The shared credentials file, as the SDK finds it.
fn credentials_file() -> PathBuf {
    shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

fn shared_file(var: &str, name: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => std::env::home_dir().unwrap_or_default().join(".aws").join(name),
    }
}

fn files() -> String {
    format!("{} and {}", config_file().display(), credentials_file().display())
}

/// Names of the profiles in the shared config and credentials files.
async fn profile_names() -> anyhow::Result<Vec<String>> {
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &EnvConfigFiles::default(), None)
        .await
        .map_err(|e| anyhow::anyhow!("reading the shared AWS files ({}): {}", files(), super::error::causes(&e)))?;
    let mut names: Vec<String> = set.profiles().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

fn unknown_profile(name: &str, found: &[String]) -> String {
    let listed =
        if found.is_empty() { "there are none".to_string() } else { format!("they define: {}", found.join(", ")) };
    format!(
        "the AWS profile {name:?} (from --aws-profile or AWS_PROFILE) is not in the shared AWS files, {}; {listed}. \
         Pass one of those, or create it with `aws configure --profile {name}` (or `aws configure sso --profile {name}`)",
        files()
    )
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

fn state(vars: &[&str]) -> &'static str {
    if vars.iter().all(|v| set(v)) { "set" } else { "not set" }
}

/// What went wrong, what was tried, and what to do. When no source before the instance
/// metadata service is configured, the chain's last error is IMDS's, and what matters is that
/// no credentials were found anywhere.
fn explain(e: &CredentialsError, aws_profile: Option<&str>, default_profile: bool) -> String {
    let cause = super::error::causes(e);
    if let Some(name) = aws_profile {
        return format!(
            "could not load credentials for the AWS profile {name:?} (from --aws-profile or AWS_PROFILE): {cause}. \
             Check the profile in {}; for SSO, run `aws sso login --profile {name}`",
            files()
        );
    }
    let configured = set("AWS_ACCESS_KEY_ID")
        || default_profile
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if configured && !matches!(e, CredentialsError::CredentialsNotLoaded(_)) {
        return format!(
            "could not load AWS credentials: {cause}. Fix the source named above, or choose another with --aws-profile NAME"
        );
    }
    let imds = if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        "switched off by AWS_EC2_METADATA_DISABLED".to_string()
    } else {
        format!("no credentials: {cause}")
    };
    format!(
        "no AWS credentials found. ctguard looked, in this order, at:\n\
         \x20   1. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({keys})\n\
         \x20   2. the `default` profile in the shared files, {files} ({default})\n\
         \x20   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN ({web})\n\
         \x20   4. the container credentials endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI ({ecs})\n\
         \x20   5. the EC2 instance metadata service ({imds})\n\
         \x20 To fix it, do one of:\n\
         \x20   - pass --aws-profile NAME (or set AWS_PROFILE) for a profile made with `aws configure` or `aws configure sso`;\n\
         \x20   - export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys);\n\
         \x20   - in CI, assume a role through OIDC (on GitHub Actions, aws-actions/configure-aws-credentials)",
        keys = state(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        files = files(),
        default = if default_profile { "no credentials in it" } else { "no such profile" },
        web = state(&["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"]),
        ecs = if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            "set, no answer"
        } else {
            "not set"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_profile_lists_the_ones_there_are() {
        let text = unknown_profile("prod", &["default".into(), "dev".into()]);
        assert!(text.contains("\"prod\""), "{text}");
        assert!(text.contains("they define: default, dev"), "{text}");
        assert!(unknown_profile("prod", &[]).contains("there are none"));
    }

    #[test]
    fn no_credentials_lists_every_source_in_order_and_the_fixes() {
        let text = explain(&CredentialsError::not_loaded_no_source(), None, false);
        let order = ["AWS_ACCESS_KEY_ID", "`default` profile", "web identity", "container", "instance metadata"];
        let at: Vec<usize> = order.iter().map(|s| text.find(s).unwrap_or_else(|| panic!("{s}: {text}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("--aws-profile NAME"), "{text}");
    }
}
