//! The gRPC contracts between pnc's services.
//!
//! One package per service (`pnc.<service>.v1`) plus shared types in `pnc.common.v1`.
//! [`error`] maps pnc's typed errors to `tonic::Status` and back, so an error crosses
//! a service boundary intact; [`principal`] carries the caller's identity.

pub mod error;
pub mod principal;

pub mod common {
    pub mod v1 {
        tonic::include_proto!("pnc.common.v1");
    }
}

pub mod registry {
    pub mod v1 {
        tonic::include_proto!("pnc.registry.v1");
    }
}

pub mod truststore {
    pub mod v1 {
        tonic::include_proto!("pnc.truststore.v1");
    }
}

pub mod ocsp {
    pub mod v1 {
        tonic::include_proto!("pnc.ocsp.v1");
    }
}

pub mod provisioning {
    pub mod v1 {
        tonic::include_proto!("pnc.provisioning.v1");
    }
}
