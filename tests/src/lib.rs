//! pnc's test sandbox (after quickwit's cluster sandbox): every component started
//! in-process on ephemeral ports against a fresh data dir and a fresh database, with an
//! HTTP client and helpers to make API clients and tokens.

pub mod openssl_ocsp;
pub mod openssl_oem;
pub mod postgres;
pub mod sandbox;

pub use sandbox::{Backend, Sandbox, TestClient};
