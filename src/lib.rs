//! ctguard: declare, apply and verify the AWS monitoring that catches destructive actions.

pub mod aws;
pub mod build_info;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod delivery;
pub mod detect;
pub mod drill;
pub mod engine;
pub mod events;
pub mod hunt;
pub mod integrity;
pub mod lookback;
pub mod permissions;
pub mod plan;
pub mod policy;
pub mod printer;
pub mod profile;
pub mod regions;
pub mod render;
pub mod resources;
pub mod saved_plan;
pub mod settings;
pub mod verdict;
pub mod wildcard;
