//! Plumbing shared by pnc's services and the gateway.
//!
//! - [`config`]: the TOML configuration with environment overrides and redaction;
//! - [`component`]: the components and who may call whom;
//! - [`db`]: SQLite/PostgreSQL storage with per-service migrations;
//! - [`tls`]: the internal CA and each component's mTLS identity;
//! - [`ids`]: eMAID, PCID, WMI, provider and operator IDs as validated newtypes;
//! - [`grpc`]: the server and client builders (mTLS, allowlist, health, request IDs, metrics);
//! - [`runtime`]: what a component gets to start with, and shutdown;
//! - [`telemetry`]: logs and Prometheus metrics.

pub mod cli;
pub mod component;
pub mod config;
pub mod db;
pub mod grpc;
pub mod ids;
pub mod runtime;
pub mod telemetry;
pub mod tls;

pub use component::Component;
pub use config::Config;
pub use pnc_proto::error::{ErrorKind, PncError};
