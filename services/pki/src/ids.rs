//! The identifier rules certificate profiles need (iso15118-notes §12). One implementation
//! for all of pnc lives in [`pnc_common::ids`]; this module re-exports the syntax checks
//! the profiles use.

pub use pnc_common::ids::{emaid_check_digit, is_canonical_emaid, is_pcid};
