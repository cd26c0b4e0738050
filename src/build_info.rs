//! What `ctguard --version` says about this build (set by build.rs).

/// "0.1.0 (3f2c1a9b7d4e 2026-11-27)".
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("CTGUARD_GIT_COMMIT"), " ", env!("CTGUARD_BUILD_DATE"), ")");

/// `--version` with the details on their own lines.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit:     ",
    env!("CTGUARD_GIT_COMMIT"),
    "\nbuild date: ",
    env!("CTGUARD_BUILD_DATE"),
);

pub const COMMIT: &str = env!("CTGUARD_GIT_COMMIT");
