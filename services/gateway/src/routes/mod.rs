//! The HTTP routes, one module per API family.

pub mod oauth;
pub mod roots;
pub mod system;
