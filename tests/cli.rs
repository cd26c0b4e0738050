//! The command line without AWS: help, exit codes, built-in profiles.

mod common;

use common::{ctguard_cmd, run};

#[test]
fn help_names_every_command() {
    let r = run(ctguard_cmd().arg("--help"));
    r.expect(0);
    for cmd in ["plan", "apply", "verify", "profiles"] {
        assert!(r.stdout.contains(cmd), "{cmd} missing from help:\n{}", r.stdout);
    }
    let r = run(ctguard_cmd().args(["verify", "--help"]));
    r.expect(0);
    assert!(r.stdout.contains("2 drift"), "{}", r.stdout);
}

#[test]
fn usage_errors_exit_1_never_2() {
    // 2 means drift to CI; a typo must not look like drift.
    let r = run(ctguard_cmd().args(["verify", "--no-such-flag"]));
    r.expect(1);
    assert!(r.stderr.contains("--no-such-flag"), "{}", r.stderr);
    run(ctguard_cmd().arg("frobnicate")).expect(1);
}

#[test]
fn version_is_printed() {
    let r = run(ctguard_cmd().arg("--version"));
    r.expect(0);
    assert!(r.stdout.starts_with(&format!("ctguard {}\ncommit:", env!("CARGO_PKG_VERSION"))), "{}", r.stdout);
}

#[test]
fn unknown_profile_lists_the_built_in_ones() {
    let r = run(ctguard_cmd().args(["plan", "-p", "no-such-profile"]));
    r.expect(1);
    assert!(r.stderr.contains("no profile named \"no-such-profile\""), "{}", r.stderr);
    assert!(r.stderr.contains("ai-agent-guard"), "{}", r.stderr);
}

#[test]
fn bad_var_flag_is_rejected() {
    let r = run(ctguard_cmd().args(["plan", "--var", "novalue"]));
    r.expect(1);
    assert!(r.stderr.contains("expected KEY=VALUE"), "{}", r.stderr);
}

#[test]
fn profiles_list_show_and_export() {
    let r = run(ctguard_cmd().args(["profiles", "list"]));
    r.expect(0);
    assert!(r.stdout.starts_with("ai-agent-guard"), "{}", r.stdout);

    let r = run(ctguard_cmd().args(["profiles", "show", "ai-agent-guard"]));
    r.expect(0);
    let shipped = std::fs::read_to_string(common::repo().join("profiles/ai-agent-guard.toml")).unwrap();
    assert_eq!(r.stdout, shipped);

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().to_str().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", target])).expect(0);
    let exported = dir.path().join("profiles/ai-agent-guard.toml");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), shipped);
    assert!(dir.path().join("policies/audit-bucket-policy.json").exists());
    // Never overwrites a file the user may have edited.
    let again = run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", target]));
    again.expect(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}
