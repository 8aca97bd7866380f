//! The caller's identity as it travels from the gateway to the services.
//!
//! The gateway authenticates (JWT or mTLS client certificate) and attaches the
//! [`Principal`] to every gRPC call as protobuf bytes in binary metadata. Services trust
//! it because only mTLS-authenticated pnc components can reach them.

use prost::Message;
use tonic::metadata::{BinaryMetadataValue, MetadataMap};

pub use crate::common::v1::{Principal, Role};

const PRINCIPAL_METADATA_KEY: &str = "x-pnc-principal-bin";

/// Attaches `principal` to outgoing call metadata.
pub fn attach(metadata: &mut MetadataMap, principal: &Principal) {
    let bytes = principal.encode_to_vec();
    metadata.insert_bin(
        PRINCIPAL_METADATA_KEY,
        BinaryMetadataValue::from_bytes(&bytes),
    );
}

/// Reads the principal of an incoming call, if the caller attached one.
pub fn from_metadata(metadata: &MetadataMap) -> Option<Principal> {
    let value = metadata.get_bin(PRINCIPAL_METADATA_KEY)?;
    let bytes = value.to_bytes().ok()?;
    Principal::decode(bytes.as_ref()).ok()
}

impl Role {
    /// The lower-case name used in tokens, configuration and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Role::Unspecified => "unspecified",
            Role::Admin => "admin",
            Role::Oem => "oem",
            Role::Emsp => "emsp",
            Role::Cpo => "cpo",
            Role::Charger => "charger",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        match name.to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "oem" => Some(Role::Oem),
            "emsp" | "mo" => Some(Role::Emsp),
            "cpo" => Some(Role::Cpo),
            "charger" => Some(Role::Charger),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_round_trips_through_metadata() {
        let principal = Principal {
            client_id: "c1".into(),
            role: Role::Oem as i32,
            wmis: vec!["PNC".into()],
            provider_ids: vec![],
            operator_ids: vec![],
        };
        let mut metadata = MetadataMap::new();
        attach(&mut metadata, &principal);
        assert_eq!(from_metadata(&metadata), Some(principal));
    }

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Admin, Role::Oem, Role::Emsp, Role::Cpo, Role::Charger] {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::from_name("root"), None);
    }
}
