//! Looking back: `ctguard investigate` over CloudTrail event history (LookupEvents), and
//! `ctguard test s3://…` over the log files the trail delivered to S3.
//!
//! - [`window`]: the time window, from `--since` or `--start`/`--end`;
//! - [`principal`]: `--principal` patterns and the profile's AI-agent principals;
//! - [`lookup`]: paginated LookupEvents streams per region and event name, paced by [`pace`];
//! - [`merge`]: the streams merged newest first, released as soon as their order is certain;
//! - [`severity`] and [`event`]: what each event is, and how serious;
//! - [`render`]: the table, the JSON document and JSON lines;
//! - [`s3`]: the trail's objects for a window, listed and downloaded concurrently for replay.

pub mod event;
pub mod lookup;
pub mod merge;
pub mod pace;
pub mod principal;
pub mod render;
pub mod s3;
pub mod severity;
pub mod window;
