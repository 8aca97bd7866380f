//! The pieces of the `pnc` binary that tests reuse: starting components in one process,
//! and the EV simulator.

pub mod ev;
pub mod serve;
