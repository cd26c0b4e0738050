//! Test harness: one moto emulator per test on 127.0.0.1, the real ctguard binary pointed at it,
//! and SDK clients to read state back without trusting ctguard's own output.

// Every test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const BUCKET: &str = "ctguard-audit-123456789012-us-east-1";
pub const ACCESS_BUCKET: &str = "ctguard-audit-123456789012-us-east-1-access";
pub const TRAIL: &str = "ctguard-audit";
pub const LOG_GROUP: &str = "/ctguard/cloudtrail";
pub const ROLE: &str = "ctguard-cloudtrail-to-logs";
pub const KEY_ALIAS: &str = "alias/ctguard-audit";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator behind the fault-injecting proxy (`tests/emulator/proxy.py`). `endpoint`
/// is the proxy's, so every call ctguard or a test makes passes through it and is counted
/// there, retries included. Dropping it stops both; closing their stdin does too, so a test
/// process that dies takes them with it.
pub struct Emulator {
    // Field order is drop order: the proxy goes first, then the emulator behind it.
    proxy: Child,
    _proxy_stdin: ChildStdin,
    server: Child,
    _server_stdin: ChildStdin,
    pub endpoint: String,
}

impl Emulator {
    /// An emulator whose proxy injects no faults until `set_faults` says otherwise.
    pub fn start() -> Emulator {
        let python = repo().join(".venv/bin/python");
        assert!(
            python.exists(),
            "the AWS emulator is not installed ({} is missing): run scripts/emulator-setup, or scripts/test which runs it",
            python.display()
        );
        let server_args = ["--host", "127.0.0.1", "--port", "0", "--exit-on-stdin-eof"];
        let (mut server, server_stdin, upstream) = spawn_reporting_port(&python, "server.py", &server_args)
            .unwrap_or_else(|e| panic!("the AWS emulator: {e}"));
        let proxy_args = ["--upstream", upstream.as_str(), "--port", "0", "--exit-on-stdin-eof"];
        let (proxy, proxy_stdin, endpoint) =
            spawn_reporting_port(&python, "proxy.py", &proxy_args).unwrap_or_else(|e| {
                let _ = server.kill();
                let _ = server.wait();
                panic!("the fault-injecting proxy: {e}")
            });
        Emulator { proxy, _proxy_stdin: proxy_stdin, server, _server_stdin: server_stdin, endpoint }
    }

    /// An emulator whose proxy starts with these fault settings (see `set_faults`).
    pub fn start_with_faults(faults: serde_json::Value) -> Emulator {
        let emu = Emulator::start();
        emu.set_faults(faults);
        emu
    }

    /// Changes the proxy's fault settings; every key is optional. `share` (0 to 1) of requests
    /// fail with one of `kinds` ("throttling", "http-500", "http-503", "drop-before",
    /// "drop-after"); `latency_ms` delays every request; `seed` restarts the random choice;
    /// `force` lists errors answered to matching requests, e.g.
    /// `{"operation": "PutMetricFilter", "body_contains": "cis-4.3", "status": 400,
    /// "code": "AccessDeniedException", "times": null}`. tests/emulator/proxy.py documents them.
    pub fn set_faults(&self, faults: serde_json::Value) {
        http("POST", &format!("{}/_ctguard/faults", self.endpoint), &faults.to_string());
    }

    /// Fails `share` of requests with any fault kind, chosen with `seed`.
    pub fn set_fault_share(&self, share: f64, seed: u64) {
        self.set_faults(serde_json::json!({ "share": share, "seed": seed }));
    }

    /// Answers every request for `operation` whose body contains `body_contains` (if given)
    /// with a non-retryable HTTP 400 `code`, for ever.
    pub fn force_error(&self, operation: &str, body_contains: Option<&str>, code: &str) {
        self.set_faults(serde_json::json!({ "force": [{
            "operation": operation, "body_contains": body_contains, "status": 400, "code": code,
            "message": format!("{code} injected for {operation}"), "times": null,
        }]}));
    }

    /// Registers public keys CloudTrail's ListPublicKeys then returns for `region` (moto lacks
    /// the API; tests/emulator/server.py answers it). Each key is `{"Value": <base64 of the
    /// DER RSAPublicKey>, "Fingerprint", "ValidityStartTime", "ValidityEndTime"}`, times in
    /// epoch seconds.
    pub fn register_public_keys(&self, region: &str, keys: serde_json::Value) {
        let body = serde_json::json!({ "region": region, "keys": keys });
        http("POST", &format!("{}/moto-api/ctguard/cloudtrail-public-keys", self.endpoint), &body.to_string());
    }

    /// Runs ctguard with only the emulator's dummy credentials in its environment.
    pub fn ctguard(&self, args: &[&str]) -> Run {
        self.ctguard_in(args, None)
    }

    /// Runs ctguard with these environment variables added (or replaced).
    pub fn ctguard_in_env(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
        let mut cmd = ctguard_cmd();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd.args(args))
    }

    pub fn ctguard_in(&self, args: &[&str], dir: Option<&Path>) -> Run {
        let mut cmd = ctguard_cmd();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        run(cmd.args(args))
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::new(&self.sdk().await)
    }

    /// Requests the proxy has received, oldest first, faulted ones included.
    pub fn requests(&self) -> Vec<Request> {
        let body = http("GET", &format!("{}/_ctguard/requests", self.endpoint), "");
        let list: Vec<serde_json::Value> = serde_json::from_str(&body).expect("request log is JSON");
        list.into_iter()
            .map(|v| Request {
                method: v["method"].as_str().unwrap_or("").into(),
                path: v["path"].as_str().unwrap_or("").into(),
                query: v["query"].as_str().unwrap_or("").into(),
                operation: v["operation"].as_str().unwrap_or("").into(),
                service: v["service"].as_str().unwrap_or("").into(),
                region: v["region"].as_str().map(str::to_string),
                params: v["params"].clone(),
                status: v["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
                fault: v["fault"].as_str().map(str::to_string),
            })
            .collect()
    }

    pub fn clear_requests(&self) {
        http("POST", &format!("{}/_ctguard/requests/clear", self.endpoint), "");
    }

    /// Adds CloudTrail records to the emulator's event history, which LookupEvents serves
    /// (tests/emulator/server.py, `EventHistory`): each a record, or `{"record", "resources",
    /// "username"}`. The record's awsRegion picks the region.
    /// What DescribeDeliveryChannelStatus reports for a region's Config delivery channels from
    /// now on (tests/emulator/README.md, "DescribeDeliveryChannelStatus").
    pub fn seed_config_delivery_status(&self, status: serde_json::Value) {
        http("POST", &format!("{}/moto-api/ctguard/config-delivery-status", self.endpoint), &status.to_string());
    }

    pub fn seed_event_history(&self, events: &[serde_json::Value]) {
        let body = serde_json::json!({ "events": events }).to_string();
        http("POST", &format!("{}/moto-api/ctguard/cloudtrail-events", self.endpoint), &body);
    }

    /// Every LookupEvents call the emulator answered, oldest first: `region`, `time` (epoch
    /// seconds), `throttled`, `status`, `attribute` (`EventName=X`, or null).
    pub fn lookup_calls(&self) -> Vec<serde_json::Value> {
        let body = http("GET", &format!("{}/moto-api/ctguard/lookup-calls", self.endpoint), "");
        serde_json::from_str(&body).expect("the lookup log is JSON")
    }

    /// The requests that change state.
    pub fn mutating_requests(&self) -> Vec<Request> {
        self.requests().into_iter().filter(Request::mutates).collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for child in [&mut self.proxy, &mut self.server] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts one of the harness's Python servers and waits for its `PORT <n>` line; on failure
/// the process is killed and the error says why.
fn spawn_reporting_port(python: &Path, script: &str, args: &[&str]) -> Result<(Child, ChildStdin, String), String> {
    let mut child = Command::new(python)
        .arg(repo().join("tests/emulator").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {script} with {}: {e}", python.display()))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let port = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| format!("{script} printed {line:?} instead of `PORT <n>`")),
        Err(_) => Err(format!("{script} did not report a port within 60 s")),
    };
    match port {
        Ok(port) => Ok((child, stdin, format!("http://127.0.0.1:{port}"))),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The operation name for query and JSON protocols (Action or X-Amz-Target); empty for S3.
    pub operation: String,
    /// The SigV4 signing name (iam, s3, monitoring, ...).
    pub service: String,
    /// The SigV4 credential scope's region.
    pub region: Option<String>,
    /// The request fields that name what the call touches (the proxy's `RESOURCE_FIELDS`),
    /// as a JSON object; S3 names its bucket and key in `path` instead.
    pub params: serde_json::Value,
    /// The HTTP status the caller got; `None` when the proxy dropped the connection before
    /// forwarding. For "drop-after" it is the emulator's status, which the caller never saw.
    pub status: Option<u16>,
    /// The fault the proxy injected ("throttling", "http-500", "http-503", "drop-before",
    /// "drop-after", or "forced"), or `None` when the request was forwarded untouched.
    pub fault: Option<String>,
}

impl Request {
    /// The IAM action this request needs.
    pub fn iam_action(&self) -> String {
        let prefix = match self.service.as_str() {
            "monitoring" => "cloudwatch",
            "tagging" => "tag",
            other => other,
        };
        if !self.operation.is_empty() {
            return format!("{prefix}:{}", self.operation.rsplit('.').next().unwrap_or_default());
        }
        if self.path == "/listRegions" {
            return "account:ListRegions".into();
        }
        // S3's REST protocol: the subresource names the operation; the SDK names object
        // operations in `x-id`, and ListObjectsV2 by `list-type=2`.
        if let Some(op) = self.query.split('&').find_map(|p| p.strip_prefix("x-id=")) {
            return format!("s3:{op}");
        }
        if self.query.split('&').any(|p| p == "list-type=2") {
            return "s3:ListBucket".into();
        }
        let sub = self.query.split(['=', '&']).next().unwrap_or("");
        let action = match (self.method.as_str(), sub) {
            ("HEAD", "") => "ListBucket",
            ("GET", "versioning") => "GetBucketVersioning",
            ("GET", "encryption") => "GetEncryptionConfiguration",
            ("GET", "publicAccessBlock") => "GetBucketPublicAccessBlock",
            ("GET", "ownershipControls") => "GetBucketOwnershipControls",
            ("GET", "policy") => "GetBucketPolicy",
            ("GET", "lifecycle") => "GetLifecycleConfiguration",
            ("GET", "logging") => "GetBucketLogging",
            ("GET", "object-lock") => "GetBucketObjectLockConfiguration",
            ("GET", "notification") => "GetBucketNotification",
            ("GET", "tagging") => "GetBucketTagging",
            ("GET", "versions") => "ListBucketVersions",
            ("PUT", "") => "CreateBucket",
            ("DELETE", "") => "DeleteBucket",
            ("POST", "delete") => "DeleteObjects",
            ("PUT", "versioning") => "PutBucketVersioning",
            ("PUT", "encryption") => "PutEncryptionConfiguration",
            ("PUT", "publicAccessBlock") => "PutBucketPublicAccessBlock",
            ("PUT", "ownershipControls") => "PutBucketOwnershipControls",
            ("PUT", "policy") => "PutBucketPolicy",
            ("PUT", "lifecycle") => "PutLifecycleConfiguration",
            ("PUT", "logging") => "PutBucketLogging",
            ("PUT", "object-lock") => "PutBucketObjectLockConfiguration",
            ("PUT", "notification") => "PutBucketNotification",
            ("PUT", "tagging") => "PutBucketTagging",
            (method, sub) => return format!("s3:<unmapped {method} ?{sub}>"),
        };
        format!("s3:{action}")
    }

    pub fn mutates(&self) -> bool {
        if self.path.starts_with("/_ctguard") || self.path.starts_with("/moto-api") {
            return false;
        }
        let reads = ["get", "list", "describe", "head", "lookup"];
        if self.operation.is_empty() {
            // REST protocols: S3 reads are GET and HEAD; REST-JSON APIs name the operation in
            // the path (POST /listRegions).
            let verb = self.path.trim_start_matches('/').to_ascii_lowercase();
            return !matches!(self.method.as_str(), "GET" | "HEAD") && !reads.iter().any(|r| verb.starts_with(r));
        }
        let op = self.operation.rsplit('.').next().unwrap_or(&self.operation).to_ascii_lowercase();
        !reads.iter().any(|r| op.starts_with(r))
    }
}

/// A minimal HTTP/1.0 exchange with the proxy's own endpoints (no client crate needed).
fn http(method: &str, url: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("emulator reachable");
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{method} {url}: {head}\n{body}");
    body.to_string()
}

/// ctguard with a clean AWS environment: nothing from the developer's machine leaks in.
pub fn ctguard_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctguard"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    cmd
}

/// The result of one ctguard run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output { status, stdout, stderr } = cmd.output().expect("ctguard runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Run {
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}
