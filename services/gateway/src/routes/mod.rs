//! The HTTP routes, one module per API family.

pub mod ccp;
pub mod cps;
pub mod ev;
pub mod oauth;
pub mod ocpp_fast;
pub mod ocpp_ocsp;
pub mod ocsp;
pub mod opnc_ccp;
pub mod opnc_cps;
pub mod opnc_event;
pub mod opnc_pcp;
pub mod opnc_rcp;
pub mod pcp;
pub mod roots;
pub mod system;
pub mod trust;
pub mod webhooks;
