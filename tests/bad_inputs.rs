//! The bad-input corpus (tests/bad-inputs/, format in its README): every case runs the real
//! binary against one emulator, and must exit 1, name the location and what was expected on
//! stderr, and reach the emulator with no request at all, so in particular no write.

mod common;

use std::path::{Path, PathBuf};

use common::Emulator;
use serde::Deserialize;

/// A case's `case.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default = "default_args")]
    args: Vec<String>,
    #[serde(default = "default_commands")]
    commands: Vec<String>,
    location: String,
    expected: String,
    #[serde(default)]
    replace: Vec<Replace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replace {
    from: String,
    to: String,
}

fn default_args() -> Vec<String> {
    vec!["-p".into(), PROFILE.into()]
}

fn default_commands() -> Vec<String> {
    ["apply", "plan", "verify", "validate"].map(String::from).to_vec()
}

/// Where each case's profile sits in its working directory.
const PROFILE: &str = "profiles/bad.toml";

/// The corpus is meant to cover every kind of input ctguard reads; fewer cases means some went
/// missing.
const MIN_CASES: usize = 30;

fn corpus() -> PathBuf {
    common::repo().join("tests/bad-inputs")
}

/// The case directories, sorted by name.
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(corpus())
        .expect("tests/bad-inputs exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), path))
        .collect();
    cases.sort();
    cases
}

/// Lays out a working directory like an exported profile: `profiles/bad.toml` and `policies/`
/// (the shipped templates, overlaid by the case's own).
fn workspace(case_dir: Option<&Path>, case: Option<&Case>) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (profiles, policies) = (dir.path().join("profiles"), dir.path().join("policies"));
    std::fs::create_dir_all(&profiles).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&policies).map_err(|e| e.to_string())?;
    let mut sources = vec![common::repo().join("policies")];
    sources.extend(case_dir.map(|d| d.join("policies")));
    for source in sources.iter().filter(|s| s.is_dir()) {
        for entry in std::fs::read_dir(source).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).map_err(|e| e.to_string())?;
        }
    }
    let own = case_dir.map(|d| d.join("profile.toml")).filter(|p| p.is_file());
    let mut text =
        std::fs::read_to_string(own.unwrap_or_else(|| corpus().join("base.toml"))).map_err(|e| e.to_string())?;
    for edit in case.map(|c| c.replace.as_slice()).unwrap_or_default() {
        // An edit that matched nothing would leave the case testing the valid base profile.
        match text.matches(&edit.from).count() {
            1 => text = text.replacen(&edit.from, &edit.to, 1),
            n => return Err(format!("replace.from {:?} occurs {n} times in the profile, expected once", edit.from)),
        }
    }
    std::fs::write(dir.path().join(PROFILE), text).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Runs one case with every command it lists; returns what went wrong, one line each.
fn run_case(emulator: &Emulator, name: &str, case_dir: &Path) -> (usize, Vec<String>) {
    let fail = |what: String| (0, vec![format!("{name}: {what}")]);
    let text = match std::fs::read_to_string(case_dir.join("case.toml")) {
        Ok(text) => text,
        Err(e) => return fail(format!("reading case.toml: {e}")),
    };
    let case: Case = match toml::from_str(&text) {
        Ok(case) => case,
        Err(e) => return fail(format!("case.toml: {e}")),
    };
    if case.about.trim().is_empty() || case.location.trim().is_empty() || case.expected.trim().is_empty() {
        return fail("case.toml must say what is wrong (about), where (location) and what was expected".into());
    }
    let dir = match workspace(Some(case_dir), Some(&case)) {
        Ok(dir) => dir,
        Err(e) => return fail(e),
    };
    let mut failures = Vec::new();
    for command in &case.commands {
        let mut args = vec![command.as_str()];
        // apply asks for confirmation, and refuses without a terminal, before reading the
        // profile: --auto-approve lets the run reach validation, the thing under test.
        if command == "apply" {
            args.push("--auto-approve");
        }
        args.extend(case.args.iter().map(String::as_str));
        emulator.clear_requests();
        let run = emulator.ctguard_in(&args, Some(dir.path()));
        let label = format!("{name} (ctguard {})", args.join(" "));
        let mut problems = Vec::new();
        if run.code != 1 {
            problems.push(format!("exit code {}, expected 1", run.code));
        }
        for (what, text) in [("location", &case.location), ("expected", &case.expected)] {
            if !run.stderr.contains(text.as_str()) {
                problems.push(format!("stderr lacks the {what} {text:?}"));
            }
        }
        let writes = emulator.mutating_requests();
        if !writes.is_empty() {
            let ops: Vec<String> = writes.iter().map(|r| r.iam_action()).collect();
            problems.push(format!("{} mutating requests reached AWS: {}", writes.len(), ops.join(", ")));
        }
        let requests = emulator.requests();
        if !requests.is_empty() {
            let ops: Vec<String> = requests.iter().map(|r| r.iam_action()).collect();
            problems.push(format!("validation is not complete before the first AWS call: {}", ops.join(", ")));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{label}: {}\n    stderr: {}",
                problems.join("; "),
                run.stderr.trim().replace('\n', "\n    ")
            ));
        }
    }
    (case.commands.len(), failures)
}

#[test]
fn every_bad_input_fails_with_its_location_and_changes_nothing() {
    let emulator = Emulator::start();
    let cases = cases();
    let mut failures = Vec::new();
    let mut runs = 0;
    for (name, dir) in &cases {
        let (ran, mut failed) = run_case(&emulator, name, dir);
        runs += ran;
        failures.append(&mut failed);
    }
    println!("{} bad-input cases, {runs} runs of ctguard", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} runs ({} cases) went wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases under tests/bad-inputs, expected at least {MIN_CASES}",
        cases.len()
    );

    // The control: the base profile the cases edit is valid, and a real apply of it does show
    // up as writes in the request log the cases were checked against.
    let dir = workspace(None, None).expect("workspace for the base profile");
    emulator.clear_requests();
    let run = emulator.ctguard_in(&["apply", "--auto-approve", "-p", PROFILE], Some(dir.path()));
    run.expect(0);
    let writes = emulator.mutating_requests();
    assert!(writes.len() > 10, "applying the base profile should write, the log shows {} writes", writes.len());
}
