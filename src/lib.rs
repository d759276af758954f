//! keystone-rs: an OpenStack Keystone-compatible identity server.
//! See ARCHITECTURE.md for the module map and the request flow.

pub mod api;
pub mod application_credential;
pub mod assignment;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credential;
pub mod domain_config;
pub mod endpoint_policy;
pub mod error;
pub mod health;
pub mod identity;
pub mod import;
pub mod limit;
pub mod model;
pub mod oauth1;
pub mod policies;
pub mod policy;
pub mod resource;
pub mod revoke;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod trust;
