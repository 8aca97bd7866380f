//! The pieces of the `pnc` binary that tests reuse: starting components in one process.

pub mod serve;
