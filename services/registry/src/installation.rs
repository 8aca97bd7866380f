//! One read for one EV installation (`Contracts.GetInstallationContext`): the provisioning
//! service used to make six calls per CertificateInstallationReq (provisioning certificate,
//! three issuance look-ups, signed contract data); each was an mTLS round trip and a queue
//! on the database worker. The answers are the same as those calls' (same queries, same
//! rules); only pnc's own services may ask, because it reads across tenants.

use pnc_common::PncError;
use pnc_common::ids::Pcid;
use pnc_pki::Certificate;
use pnc_proto::error::ErrorKind;
use pnc_proto::registry::v1::{
    ContractLookup, GetInstallationContextRequest, GetInstallationContextResponse,
    GetSignedContractDataRequest, IssuanceKey, IssuanceStatus, IssuedStatus, get_issued_request,
};

use crate::RegistryCore;
use crate::access::Caller;

/// The leaf and a few Sub-CAs; a bound on the work one request can cause.
const MAX_CERTIFICATES: usize = 8;

impl RegistryCore {
    pub async fn get_installation_context(
        &self,
        caller: &Caller,
        request: GetInstallationContextRequest,
    ) -> Result<GetInstallationContextResponse, PncError> {
        if !matches!(caller, Caller::Service) {
            return Err(PncError::permission_denied(
                "only pnc's services read installation contexts",
            ));
        }
        if request.certificates.len() > MAX_CERTIFICATES {
            return Err(PncError::invalid(format!(
                "at most {MAX_CERTIFICATES} certificates per installation context"
            )));
        }
        let pcid = match request.pcid.trim() {
            "" => None,
            pcid => Some(Pcid::parse(pcid)?),
        };

        let provisioning_certificate = match &pcid {
            Some(pcid) => match self
                .get_provisioning_certificate(caller, pcid.as_str())
                .await
            {
                Ok(record) => Some(record),
                Err(error) if error.kind == ErrorKind::NotFound => None,
                Err(error) => return Err(error),
            },
            None => None,
        };

        let mut keys = request.certificates;
        if let Some(record) = &provisioning_certificate {
            for sub_ca in &record.sub_cas {
                // A stored Sub-CA parsed when it was registered; skip one that no longer does
                // rather than fail the vehicle (path validation will not use it either).
                let Ok(parsed) = Certificate::from_der(&sub_ca.der) else {
                    continue;
                };
                if let Some(issuer_key_id) = parsed.authority_key_identifier() {
                    keys.push(IssuanceKey {
                        issuer_key_id: issuer_key_id.to_vec(),
                        serial: parsed.serial().to_vec(),
                    });
                }
            }
        }
        // The Sub-CAs the caller found are usually the registered ones: one query each.
        let mut unique: Vec<IssuanceKey> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        let mut statuses = Vec::with_capacity(unique.len());
        for key in unique {
            let status = if key.issuer_key_id.is_empty() || key.serial.is_empty() {
                IssuedStatus::Unspecified as i32
            } else {
                match self
                    .issued
                    .get(
                        &get_issued_request::Issuer::IssuerKeyId(key.issuer_key_id.clone()),
                        &key.serial,
                    )
                    .await
                {
                    Ok(record) => record.status,
                    Err(error) if error.kind == ErrorKind::NotFound => {
                        IssuedStatus::Unspecified as i32
                    }
                    Err(error) => return Err(error),
                }
            };
            statuses.push(IssuanceStatus {
                key: Some(key),
                status,
            });
        }

        let mut response = GetInstallationContextResponse {
            provisioning_certificate,
            statuses,
            contract_lookup: ContractLookup::Skipped as i32,
            ..GetInstallationContextResponse::default()
        };
        let Some(pcid) = pcid else {
            return Ok(response);
        };
        if request.v2g_root_fingerprints.is_empty() {
            return Ok(response);
        }
        let found = self
            .get_signed_contract_data(
                caller,
                GetSignedContractDataRequest {
                    pcid: pcid.as_str().to_string(),
                    emaid: String::new(),
                    v2g_root_fingerprints: request.v2g_root_fingerprints,
                },
            )
            .await;
        match found {
            Ok(found) => {
                response.contract_lookup = ContractLookup::Found as i32;
                response.signed_contract_data = Some(found);
            }
            Err(error) if error.kind == ErrorKind::NotFound => {
                response.contract_lookup = ContractLookup::NotFound as i32;
                response.contract_message = error.message;
            }
            Err(error) if error.kind == ErrorKind::ContractCanceled => {
                response.contract_lookup = ContractLookup::Canceled as i32;
                response.contract_message = error.message;
            }
            Err(error) => return Err(error),
        }
        Ok(response)
    }
}
