//! One read for one EV installation (`Contracts.GetInstallationContext`): the provisioning
//! service used to make six calls per CertificateInstallationReq (provisioning certificate,
//! three issuance look-ups, signed contract data); each was an mTLS round trip and a queue
//! on the database worker. The answers are the same as those calls' (same queries, same
//! rules); only pnc's own services may ask, because it reads across tenants.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use pnc_common::PncError;
use pnc_common::db::{Columns, Param, Reader};
use pnc_common::ids::Pcid;
use pnc_pki::Certificate;
use pnc_proto::error::ErrorKind;
use pnc_proto::registry::v1::{
    ContractLookup, GetInstallationContextRequest, GetInstallationContextResponse,
    GetSignedContractDataRequest, IssuanceKey, IssuanceStatus, IssuedStatus,
};

use crate::RegistryCore;
use crate::access::Caller;

/// Issuer key id and serial without sign padding.
type IssuanceLookup<'a> = (&'a [u8], &'a [u8]);

/// The leaf and a few Sub-CAs; a bound on the work one request can cause.
const MAX_CERTIFICATES: usize = 8;

/// A registered Sub-CA's AKI and serial. The same few Sub-CAs come with every installation,
/// so they are parsed once, not per call; the cache is keyed by the whole DER, so it can
/// never answer for another certificate. `None`: the DER no longer parses (it did when it
/// was registered; path validation will not use it either) or has no AKI.
fn sub_ca_issuance_key(der: &[u8]) -> Option<IssuanceKey> {
    /// Far more Sub-CAs than a deployment's OEMs have; past it the cache starts over.
    const MAX_CACHED: usize = 1024;
    type Cached = HashMap<Vec<u8>, Option<IssuanceKey>>;
    static KEYS: LazyLock<Mutex<Cached>> = LazyLock::new(Mutex::default);
    if let Some(key) = KEYS.lock().ok().and_then(|keys| keys.get(der).cloned()) {
        return key;
    }
    let key = Certificate::from_der(der).ok().and_then(|parsed| {
        Some(IssuanceKey {
            issuer_key_id: parsed.authority_key_identifier()?.to_vec(),
            serial: parsed.serial().to_vec(),
        })
    });
    if let Ok(mut keys) = KEYS.lock() {
        if keys.len() >= MAX_CACHED {
            keys.clear();
        }
        keys.insert(der.to_vec(), key.clone());
    }
    key
}

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

        // Every statement on one read connection: inline on SQLite (no worker hand-offs),
        // one pooled connection on PostgreSQL.
        let mut connection = self.database.reads().await?;
        let provisioning_certificate = match &pcid {
            Some(pcid) => {
                caller.require_pcp_read(pcid)?;
                self.provisioning_certificate_on(&mut connection, pcid)
                    .await?
            }
            None => None,
        };

        let mut keys = request.certificates;
        if let Some(record) = &provisioning_certificate {
            for sub_ca in &record.sub_cas {
                if let Some(key) = sub_ca_issuance_key(&sub_ca.der) {
                    keys.push(key);
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
        let statuses = self.issuance_statuses(&mut connection, unique).await?;

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
            .signed_contract_data_on(
                &mut connection,
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

    /// The issuance status of every key in one statement (was one `SELECT *` per key, each
    /// reading the certificate's DER): `Revoked`, `Good`, or `Unspecified` for a certificate
    /// pnc did not issue or a key without issuer key id or serial.
    async fn issuance_statuses(
        &self,
        connection: &mut impl Reader,
        keys: Vec<IssuanceKey>,
    ) -> Result<Vec<IssuanceStatus>, PncError> {
        // Serials are stored without sign padding (`00 8F` and `8F` are the same serial).
        let lookups: Vec<Option<IssuanceLookup>> = keys
            .iter()
            .map(|key| {
                if key.issuer_key_id.is_empty() || key.serial.is_empty() {
                    return None;
                }
                let first = key
                    .serial
                    .iter()
                    .position(|byte| *byte != 0)
                    .unwrap_or(key.serial.len());
                Some((key.issuer_key_id.as_slice(), &key.serial[first..]))
            })
            .collect();
        let mut revoked_by_key: Vec<(IssuanceLookup, bool)> = Vec::new();
        let asked = lookups.iter().flatten().count();
        if asked > 0 {
            let mut sql = String::from(
                "SELECT issuer_key_id, serial, revoked FROM issued_certificates WHERE ",
            );
            for index in 0..asked {
                if index > 0 {
                    sql.push_str(" OR ");
                }
                let first = 2 * index + 1;
                sql.push_str(&format!(
                    "(issuer_key_id = ${first} AND serial = ${})",
                    first + 1
                ));
            }
            let params: Vec<Param> = lookups
                .iter()
                .flatten()
                .flat_map(|(issuer_key_id, serial)| {
                    [Param::Blob(issuer_key_id), Param::Blob(serial)]
                })
                .collect();
            let rows = connection.select(&sql, &params).await?;
            for row in &rows {
                let issuer_key_id = row.blob("issuer_key_id")?;
                let serial = row.blob("serial")?;
                let revoked = row.int("revoked")?;
                if let Some(lookup) = lookups.iter().flatten().find(|(key_id, number)| {
                    *key_id == issuer_key_id.as_slice() && *number == serial.as_slice()
                }) {
                    revoked_by_key.push((*lookup, revoked != 0));
                }
            }
        }
        let statuses = lookups
            .iter()
            .map(|lookup| {
                let found = lookup.and_then(|lookup| {
                    revoked_by_key
                        .iter()
                        .find(|(key, _)| *key == lookup)
                        .map(|(_, revoked)| *revoked)
                });
                match found {
                    Some(true) => IssuedStatus::Revoked as i32,
                    Some(false) => IssuedStatus::Good as i32,
                    None => IssuedStatus::Unspecified as i32,
                }
            })
            .collect::<Vec<_>>();
        Ok(keys
            .into_iter()
            .zip(statuses)
            .map(|(key, status)| IssuanceStatus {
                key: Some(key),
                status,
            })
            .collect())
    }
}
