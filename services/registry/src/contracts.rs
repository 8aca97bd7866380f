//! Contracts by (PCID, eMAID) with their pre-signed contract data per V2G root, the
//! PCID's default, and cancellation (OPCP CCP storage; `pnc.registry.v1.Contracts`).

use std::sync::LazyLock;

use pnc_common::PncError;
use pnc_common::db::{Columns, Param, Reader, map_sqlx_error, unix_now};
use pnc_common::ids::{Emaid, Pcid};
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::error::ErrorKind;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::contracts_server::Contracts;
use pnc_proto::registry::v1::{
    ApplyContractRenewalRequest, CancelContractRequest, CancelContractResponse, Contract,
    ContractMode, FindContractsRequest, GetProvisioningCertificateRequest,
    GetSignedContractDataRequest, GetSignedContractDataResponse, ListContractsRequest,
    ListContractsResponse, ProvisioningCertificate, PutContractRequest, SetDefaultContractRequest,
    SignedContractData, list_contracts_request,
};
use prost::Message;
use sqlx::Row;
use tonic::{Request, Response, Status};

use crate::RegistryCore;
use crate::access::Caller;
use crate::audit::AuditedTransaction;
use crate::events::{Audience, Event};
use crate::issued::NewIssued;
use crate::pcp::{FORMAT_COMPACT, parse_certificate};

mod renewals;

const CONTRACT_COLUMNS: &str = "pcid, emaid, is_default, cancelled, contract_pb, format, \
                                chain_fingerprints, certificate_not_before, certificate_not_after";
/// How many other usable contracts the vehicle of a `contracts` row has, counted in SQL:
/// decoding them only to count them cost an allocation per contract per installation.
const OTHERS_COLUMN: &str = "(SELECT COUNT(*) FROM contracts sibling \
     WHERE sibling.pcid_key = contracts.pcid_key AND sibling.cancelled = 0 \
     AND sibling.emaid_key <> contracts.emaid_key) AS others";
const SIGNED_COLUMNS: &str = "v2g_root_fingerprint, signed_data_pb, format, \
                              cps_chain_fingerprints, contract_chain_fingerprints, v2g_root_dn";

/// RFC 5280 CRLReason cessationOfOperation: the eMSP ended the contract.
const REASON_CESSATION: i32 = 5;
/// Signed-data parts are small (-2: 48, 65 and 64 bytes; -20 a little more).
const MAX_SIGNED_PART: usize = 4096;
/// One V2G root per signed data; a handful of roots at most [V2G2-878].
const MAX_SIGNED_DATA: usize = 16;

/// A V2G root fingerprint: 64 hex characters, stored upper case.
pub fn parse_fingerprint(value: &str) -> Result<String, PncError> {
    let value = value.trim();
    if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PncError::invalid(format!(
            "V2G root fingerprint `{}` is not 64 hex characters (SHA-256)",
            value.chars().take(70).collect::<String>()
        )));
    }
    Ok(value.to_ascii_uppercase())
}

/// The shape of signed contract data sets under distinct V2G roots, all for `emaid`
/// (fingerprints normalised to upper case).
fn check_signed_data(
    signed_data: &mut [SignedContractData],
    emaid: &Emaid,
) -> Result<(), PncError> {
    if signed_data.is_empty() || signed_data.len() > MAX_SIGNED_DATA {
        return Err(PncError::invalid(format!(
            "a contract needs signed contract data under 1 to {MAX_SIGNED_DATA} V2G roots"
        )));
    }
    let mut roots_seen = Vec::new();
    for signed in signed_data.iter_mut() {
        signed.v2g_root_fingerprint = parse_fingerprint(&signed.v2g_root_fingerprint)?;
        if roots_seen.contains(&signed.v2g_root_fingerprint) {
            return Err(PncError::invalid(format!(
                "two signed contract data under the V2G root {}",
                signed.v2g_root_fingerprint
            )));
        }
        roots_seen.push(signed.v2g_root_fingerprint.clone());
        let signed_emaid = Emaid::parse(&signed.emaid)?;
        if !signed_emaid.same_account(emaid) {
            return Err(PncError::invalid(format!(
                "signed contract data names eMAID {signed_emaid}, the contract {emaid}"
            )));
        }
        let parts = [
            (&signed.encrypted_private_key, "encrypted private key"),
            (&signed.dh_public_key, "DH public key"),
            (&signed.signature_value, "signature value"),
        ];
        for (part, name) in parts {
            if part.is_empty() || part.len() > MAX_SIGNED_PART {
                return Err(PncError::invalid(format!(
                    "signed contract data: the {name} is missing or too large"
                )));
            }
        }
        if signed.cps_chain.is_empty() || signed.references.is_empty() {
            return Err(PncError::invalid(
                "signed contract data needs the CPS chain and the signed references",
            ));
        }
    }
    Ok(())
}

/// The stored form: everything but the columns kept beside it, the signed data and the
/// Sub-CAs of the chain (stored once in `ca_certificates`).
fn stored_contract_bytes(contract: &Contract) -> Vec<u8> {
    Contract {
        signed_data: Vec::new(),
        contract_chain: contract.contract_chain.iter().take(1).cloned().collect(),
        is_default: false,
        cancelled: false,
        certificate_not_before: 0,
        certificate_not_after: 0,
        ..contract.clone()
    }
    .encode_to_vec()
}

/// The V2G root's subject: the issuer of the last CPS Sub-CA.
fn v2g_root_dn(cps_chain: &[CertificateMessage]) -> String {
    cps_chain
        .last()
        .and_then(|sub_ca1| pnc_pki::Certificate::from_der(&sub_ca1.der).ok())
        .map(|sub_ca1| sub_ca1.issuer().to_string())
        .unwrap_or_default()
}

/// One stored signed contract data, as read from its columns.
struct StoredSigned {
    bytes: Vec<u8>,
    format: i64,
    cps_chain_fingerprints: String,
    contract_chain_fingerprints: String,
    v2g_root_dn: String,
}

/// The signed-data columns of a `contracts LEFT JOIN signed_contract_data` row: its V2G
/// root and what is stored under it, `None` for a contract without signed data.
const JOINED_SIGNED_COLUMNS: &str = "s.v2g_root_fingerprint, s.signed_data_pb, \
     s.format AS signed_format, s.cps_chain_fingerprints, s.contract_chain_fingerprints, \
     s.v2g_root_dn";

impl StoredSigned {
    fn from_joined_row(row: &impl Columns) -> Result<Option<(String, StoredSigned)>, PncError> {
        let Some(fingerprint) = row.optional_text("v2g_root_fingerprint")? else {
            return Ok(None);
        };
        Ok(Some((
            fingerprint,
            StoredSigned::from_columns(row, "signed_format")?,
        )))
    }

    fn from_row(row: &impl Columns) -> Result<StoredSigned, PncError> {
        StoredSigned::from_columns(row, "format")
    }

    /// `format_column`: `format` in `signed_contract_data`'s own rows, an alias in joins.
    fn from_columns(row: &impl Columns, format_column: &str) -> Result<StoredSigned, PncError> {
        Ok(StoredSigned {
            bytes: row.blob("signed_data_pb")?,
            format: row.int(format_column)?,
            cps_chain_fingerprints: row.text("cps_chain_fingerprints")?,
            contract_chain_fingerprints: row.text("contract_chain_fingerprints")?,
            v2g_root_dn: row.text("v2g_root_dn")?,
        })
    }
}

impl RegistryCore {
    /// A contract from its columns (without signed data). Compact rows need no parsing;
    /// their Sub-CAs come from `ca_certificates` (cached).
    async fn contract_from_row(
        &self,
        connection: &mut impl Reader,
        row: &impl Columns,
    ) -> Result<Contract, PncError> {
        let bytes = row.blob("contract_pb")?;
        let mut contract = Contract::decode(bytes.as_slice()).map_err(|error| {
            PncError::internal(format!("stored contract does not decode: {error}"))
        })?;
        contract.pcid = row.text("pcid")?;
        contract.emaid = row.text("emaid")?;
        contract.is_default = row.int("is_default")? != 0;
        contract.cancelled = row.int("cancelled")? != 0;
        if row.int("format")? >= FORMAT_COMPACT {
            let fingerprints = row.text("chain_fingerprints")?;
            self.cas
                .extend_chain(connection, &mut contract.contract_chain, &fingerprints)
                .await?;
            contract.certificate_not_before = row.int("certificate_not_before")?;
            contract.certificate_not_after = row.int("certificate_not_after")?;
        } else if let Some(leaf) = contract
            .contract_chain
            .first()
            .and_then(|leaf| pnc_pki::Certificate::from_der(&leaf.der).ok())
        {
            contract.certificate_not_before = leaf.not_before().unix_timestamp();
            contract.certificate_not_after = leaf.not_after().unix_timestamp();
        }
        Ok(contract)
    }

    async fn contracts_from_rows(
        &self,
        connection: &mut impl Reader,
        rows: &[impl Columns],
    ) -> Result<Vec<Contract>, PncError> {
        let mut contracts = Vec::with_capacity(rows.len());
        for row in rows {
            contracts.push(self.contract_from_row(connection, row).await?);
        }
        Ok(contracts)
    }

    /// A signed contract data from its columns.
    async fn signed_from_stored(
        &self,
        connection: &mut impl Reader,
        stored: StoredSigned,
    ) -> Result<SignedContractData, PncError> {
        let mut data = SignedContractData::decode(stored.bytes.as_slice()).map_err(|error| {
            PncError::internal(format!("stored signed data does not decode: {error}"))
        })?;
        if stored.format >= FORMAT_COMPACT {
            self.cas
                .extend_chain(
                    connection,
                    &mut data.cps_chain,
                    &stored.cps_chain_fingerprints,
                )
                .await?;
            self.cas
                .extend_chain(
                    connection,
                    &mut data.contract_chain,
                    &stored.contract_chain_fingerprints,
                )
                .await?;
            data.v2g_root_distinguished_name = stored.v2g_root_dn;
        } else {
            data.v2g_root_distinguished_name = v2g_root_dn(&data.cps_chain);
        }
        Ok(data)
    }

    /// Contracts of a PCID, without signed data.
    pub async fn contracts_of_pcid(
        &self,
        connection: &mut sqlx::AnyConnection,
        pcid_key: &str,
        include_cancelled: bool,
    ) -> Result<Vec<Contract>, PncError> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE pcid_key = $1 ORDER BY created_at, emaid_key"
        ))
        .bind(pcid_key)
        .fetch_all(&mut *connection)
        .await
        .map_err(map_sqlx_error)?;
        let contracts = self.contracts_from_rows(connection, &rows).await?;
        Ok(contracts
            .into_iter()
            .filter(|contract| include_cancelled || !contract.cancelled)
            .collect())
    }

    pub(crate) async fn signed_data_of(
        &self,
        connection: &mut sqlx::AnyConnection,
        pcid_key: &str,
        emaid_key: &str,
        only_root: Option<&str>,
    ) -> Result<Vec<SignedContractData>, PncError> {
        let rows = sqlx::query(&format!(
            "SELECT {SIGNED_COLUMNS} FROM signed_contract_data \
             WHERE pcid_key = $1 AND emaid_key = $2 ORDER BY v2g_root_fingerprint"
        ))
        .bind(pcid_key)
        .bind(emaid_key)
        .fetch_all(&mut *connection)
        .await
        .map_err(map_sqlx_error)?;
        let mut signed = Vec::new();
        for row in rows {
            let fingerprint: String = row
                .try_get("v2g_root_fingerprint")
                .map_err(map_sqlx_error)?;
            if only_root.is_some_and(|wanted| wanted != fingerprint) {
                continue;
            }
            let stored = StoredSigned::from_row(&row)?;
            signed.push(self.signed_from_stored(connection, stored).await?);
        }
        Ok(signed)
    }

    /// Revokes the contract certificate if pnc issued it; `false` when it did not.
    pub async fn revoke_contract_certificate(
        &self,
        contract: &Contract,
        reason: i32,
    ) -> Result<bool, PncError> {
        if contract.mode != ContractMode::Generated as i32 {
            return Ok(false);
        }
        let Some(leaf) = contract.contract_chain.first() else {
            return Ok(false);
        };
        let leaf = pnc_pki::Certificate::from_der(&leaf.der)
            .map_err(|error| PncError::internal(format!("stored contract leaf: {error}")))?;
        let issuer_key_id = match leaf.authority_key_identifier() {
            Some(key_id) => key_id.to_vec(),
            None => match contract.contract_chain.get(1) {
                Some(issuer) => pnc_pki::Certificate::from_der(&issuer.der)
                    .ok()
                    .and_then(|issuer| issuer.subject_key_identifier().map(<[u8]>::to_vec))
                    .unwrap_or_default(),
                None => return Ok(false),
            },
        };
        match self
            .issued
            .revoke(&issuer_key_id, leaf.serial(), reason)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.kind == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(PncError::new(
                error.kind,
                format!(
                    "revoking the contract certificate failed: {}",
                    error.message
                ),
            )),
        }
    }

    /// Validates and stores a contract with its signed data, issued-certificate record,
    /// audit entry and events, in one transaction.
    pub async fn put_contract(
        &self,
        caller: &Caller,
        request: PutContractRequest,
    ) -> Result<Contract, PncError> {
        caller.require_role(&[Role::Emsp])?;
        if !request.renews_certificate_fingerprint.trim().is_empty() {
            return self.put_contract_renewal(caller, request).await;
        }
        let mut contract = request
            .contract
            .ok_or_else(|| PncError::invalid("contract is missing"))?;
        let emaid = Emaid::parse_checked(&contract.emaid, self.config.enforce_emaid_check_digit)?;
        let pcid = Pcid::parse(&contract.pcid)?;
        caller.require_provider_of(&emaid)?;
        let mode = ContractMode::try_from(contract.mode).unwrap_or(ContractMode::Unspecified);
        if mode == ContractMode::Unspecified {
            return Err(PncError::invalid("contract mode is missing"));
        }
        let leaf = contract_leaf(&contract.contract_chain, &emaid, "contract certificate")?;
        if contract.contract_ends != 0 && contract.contract_ends <= contract.contract_begins {
            return Err(PncError::invalid("the contract ends before it begins"));
        }
        check_signed_data(&mut contract.signed_data, &emaid)?;
        let issued = match &request.issued {
            Some(record) => Some(NewIssued::from_certificates(
                leaf.der(),
                &record
                    .issuer
                    .as_ref()
                    .map(|issuer| issuer.der.clone())
                    .unwrap_or_default(),
                &record.profile,
            )?),
            None => None,
        };
        contract.emaid = emaid.as_str().to_string();
        contract.pcid = pcid.as_str().to_string();
        contract.cancelled = false;
        let pcid_key = pcid.lookup_key();
        let emaid_key = emaid.lookup_key();
        let now = unix_now();

        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let vehicle = sqlx::query("SELECT pcid FROM provisioning_certificates WHERE pcid_key = $1")
            .bind(&pcid_key)
            .fetch_optional(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        if vehicle.is_none() {
            return Err(PncError::not_found(format!(
                "PCID {pcid} has no provisioning certificate in the pool"
            )));
        }
        let existing = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE pcid_key = $1 AND emaid_key = $2"
        ))
        .bind(&pcid_key)
        .bind(emaid_key)
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let existing = match existing {
            Some(row) => Some(
                self.contract_from_row(transaction.connection(), &row)
                    .await?,
            ),
            None => None,
        };
        // The first contract of a PCID becomes its default, and so does a new contract
        // when the default was cancelled (a cancelled default is never promoted away).
        let live_default = sqlx::query(
            "SELECT emaid_key FROM contracts WHERE pcid_key = $1 AND is_default = 1 AND cancelled = 0",
        )
        .bind(&pcid_key)
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?
        .map(|row| row.try_get::<String, _>("emaid_key"))
        .transpose()
        .map_err(map_sqlx_error)?;
        let is_default = match &live_default {
            Some(default_key) => default_key == emaid_key,
            None => true,
        };
        if is_default && live_default.is_none() {
            sqlx::query("UPDATE contracts SET is_default = 0 WHERE pcid_key = $1")
                .bind(&pcid_key)
                .execute(transaction.connection())
                .await
                .map_err(map_sqlx_error)?;
        }
        contract.is_default = is_default;
        let stored_bytes = stored_contract_bytes(&contract);
        let chain_fingerprints = self
            .cas
            .store_all(transaction.connection(), &contract.contract_chain[1..], now)
            .await?;
        sqlx::query(
            "INSERT INTO contracts (pcid_key, emaid_key, pcid, emaid, provider_id, is_default, \
             cancelled, contract_pb, created_by, created_at, updated_at, format, \
             chain_fingerprints, certificate_not_before, certificate_not_after) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (pcid_key, emaid_key) DO UPDATE SET pcid = excluded.pcid, \
             emaid = excluded.emaid, is_default = excluded.is_default, cancelled = 0, \
             contract_pb = excluded.contract_pb, updated_at = excluded.updated_at, \
             format = excluded.format, chain_fingerprints = excluded.chain_fingerprints, \
             certificate_not_before = excluded.certificate_not_before, \
             certificate_not_after = excluded.certificate_not_after",
        )
        .bind(&pcid_key)
        .bind(emaid_key)
        .bind(pcid.as_str())
        .bind(emaid.as_str())
        .bind(emaid.provider_id().as_str())
        .bind(i64::from(is_default))
        .bind(&stored_bytes)
        .bind(caller.actor().0)
        .bind(now)
        .bind(now)
        .bind(FORMAT_COMPACT)
        .bind(&chain_fingerprints)
        .bind(leaf.not_before().unix_timestamp())
        .bind(leaf.not_after().unix_timestamp())
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        sqlx::query("DELETE FROM signed_contract_data WHERE pcid_key = $1 AND emaid_key = $2")
            .bind(&pcid_key)
            .bind(emaid_key)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        for signed in &contract.signed_data {
            let cps_chain_fingerprints = self
                .cas
                .store_all(transaction.connection(), &signed.cps_chain, now)
                .await?;
            let contract_chain_fingerprints = self
                .cas
                .store_all(
                    transaction.connection(),
                    signed.contract_chain.get(1..).unwrap_or_default(),
                    now,
                )
                .await?;
            let stored = SignedContractData {
                cps_chain: Vec::new(),
                contract_chain: signed.contract_chain.iter().take(1).cloned().collect(),
                v2g_root_distinguished_name: String::new(),
                ..signed.clone()
            };
            sqlx::query(
                "INSERT INTO signed_contract_data (pcid_key, emaid_key, v2g_root_fingerprint, \
                 signed_data_pb, created_at, format, cps_chain_fingerprints, \
                 contract_chain_fingerprints, v2g_root_dn) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&pcid_key)
            .bind(emaid_key)
            .bind(&signed.v2g_root_fingerprint)
            .bind(stored.encode_to_vec())
            .bind(now)
            .bind(FORMAT_COMPACT)
            .bind(&cps_chain_fingerprints)
            .bind(&contract_chain_fingerprints)
            .bind(v2g_root_dn(&signed.cps_chain))
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        }
        if let Some(issued) = &issued {
            crate::issued::record_in(transaction.connection(), issued).await?;
        }
        let before = existing.as_ref().map(Message::encode_to_vec);
        let after = contract.encode_to_vec();
        let subject = format!("{pcid}/{emaid}");
        let (action, oem_event, emsp_event) = if existing.is_some() {
            (
                "contract.update",
                "oem.contract.updated",
                "mo.contract.updated.sent.to.oem",
            )
        } else {
            (
                "contract.create",
                "oem.contract.created",
                "mo.contract.created.sent.to.oem",
            )
        };
        transaction
            .record(action, &subject, before.as_deref(), Some(&after))
            .await?;
        let events = [
            Event::contract(
                oem_event,
                Audience::Oem(pcid.wmi()),
                &emaid,
                &pcid,
                Some(leaf.der()),
            ),
            Event::contract(
                emsp_event,
                Audience::Emsp(emaid.provider_id()),
                &emaid,
                &pcid,
                Some(leaf.der()),
            ),
        ];
        let mut events = events;
        if let Some(signed) = contract.signed_data.first() {
            for event in &mut events {
                event.add_cps_signer_root(signed);
            }
        }
        crate::events::emit(transaction.connection(), &events).await?;
        transaction.commit().await?;
        tracing::info!(pcid = %pcid, emaid = %emaid, is_default, "contract stored");
        Ok(contract)
    }

    pub async fn get_signed_contract_data(
        &self,
        caller: &Caller,
        request: GetSignedContractDataRequest,
    ) -> Result<GetSignedContractDataResponse, PncError> {
        let mut connection = self.database.connection().await?;
        self.signed_contract_data_on(&mut connection, caller, request)
            .await
    }

    /// [`RegistryCore::get_signed_contract_data`] on a connection the caller holds (the
    /// installation context reads everything on one).
    pub(crate) async fn signed_contract_data_on(
        &self,
        connection: &mut impl Reader,
        caller: &Caller,
        request: GetSignedContractDataRequest,
    ) -> Result<GetSignedContractDataResponse, PncError> {
        let pcid = Pcid::parse(&request.pcid)?;
        let wanted_roots = request
            .v2g_root_fingerprints
            .iter()
            .map(|fingerprint| parse_fingerprint(fingerprint))
            .collect::<Result<Vec<_>, _>>()?;
        let pcid_key = pcid.lookup_key();
        // One statement: the contract, its signed data under every V2G root (joined) and the
        // vehicle's other usable contracts (counted).
        static SELECT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT contracts.pcid, contracts.emaid, contracts.is_default, \
                 contracts.cancelled, contracts.contract_pb, contracts.format, \
                 contracts.chain_fingerprints, contracts.certificate_not_before, \
                 contracts.certificate_not_after, {OTHERS_COLUMN}, {JOINED_SIGNED_COLUMNS} \
                 FROM contracts LEFT JOIN signed_contract_data s \
                 ON s.pcid_key = contracts.pcid_key AND s.emaid_key = contracts.emaid_key"
            )
        });
        static BY_DEFAULT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} WHERE contracts.pcid_key = $1 AND contracts.is_default = 1 \
                 ORDER BY s.v2g_root_fingerprint",
                *SELECT
            )
        });
        static BY_EMAID: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} WHERE contracts.pcid_key = $1 AND contracts.emaid_key = $2 \
                 ORDER BY s.v2g_root_fingerprint",
                *SELECT
            )
        });
        let rows = if request.emaid.trim().is_empty() {
            connection
                .select(&BY_DEFAULT, &[Param::Text(&pcid_key)])
                .await?
        } else {
            let emaid = Emaid::parse(&request.emaid)?;
            let params = [Param::Text(&pcid_key), Param::Text(emaid.lookup_key())];
            connection.select(&BY_EMAID, &params).await?
        };
        let Some(row) = rows.first() else {
            return Err(PncError::not_found(format!("no contract for PCID {pcid}")));
        };
        let others = row.int("others")?;
        let mut contract = self.contract_from_row(connection, row).await?;
        let emaid = Emaid::parse(&contract.emaid)?;
        if !caller.may_see_contract(&pcid, &emaid) || caller.role() == Some(Role::Charger) {
            return Err(PncError::permission_denied(
                "not allowed to read this contract",
            ));
        }
        if contract.cancelled {
            return Err(PncError::new(
                ErrorKind::ContractCanceled,
                format!("the contract {emaid} on PCID {pcid} was cancelled by its eMSP"),
            ));
        }
        let mut signed = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some((_, stored)) = StoredSigned::from_joined_row(row)? {
                signed.push(self.signed_from_stored(connection, stored).await?);
            }
        }
        let chosen = if wanted_roots.is_empty() {
            signed.first().cloned()
        } else {
            wanted_roots.iter().find_map(|wanted| {
                signed
                    .iter()
                    .find(|data| &data.v2g_root_fingerprint == wanted)
                    .cloned()
            })
        };
        let Some(chosen) = chosen else {
            return Err(PncError::not_found(format!(
                "no signed contract data for PCID {pcid} under a V2G root the EV trusts"
            )));
        };
        contract.signed_data = signed;
        Ok(GetSignedContractDataResponse {
            contract: Some(contract),
            signed_data: Some(chosen),
            remaining_contracts: u32::try_from(others).unwrap_or(u32::MAX),
        })
    }

    pub async fn list_contracts(
        &self,
        caller: &Caller,
        request: ListContractsRequest,
    ) -> Result<Vec<Contract>, PncError> {
        let only_root = match request.v2g_root_fingerprint.trim() {
            "" => None,
            fingerprint => Some(parse_fingerprint(fingerprint)?),
        };
        let mut connection = self.database.connection().await?;
        let mut contracts = match request.selector {
            Some(list_contracts_request::Selector::Emaid(emaid)) => {
                let emaid = Emaid::parse(&emaid)?;
                caller.require_role(&[Role::Emsp])?;
                caller.require_provider_of(&emaid)?;
                // One query: the contracts and their signed data, joined.
                let rows = sqlx::query(&format!(
                    "SELECT c.pcid, c.emaid, c.is_default, c.cancelled, c.contract_pb, c.format, \
                     c.chain_fingerprints, c.certificate_not_before, c.certificate_not_after, \
                     c.pcid_key, {JOINED_SIGNED_COLUMNS} \
                     FROM contracts c LEFT JOIN signed_contract_data s \
                     ON s.pcid_key = c.pcid_key AND s.emaid_key = c.emaid_key \
                     WHERE c.emaid_key = $1 AND c.cancelled = 0 \
                     ORDER BY c.pcid_key, s.v2g_root_fingerprint",
                ))
                .bind(emaid.lookup_key())
                .fetch_all(&mut *connection)
                .await
                .map_err(map_sqlx_error)?;
                let mut contracts: Vec<Contract> = Vec::new();
                let mut last_pcid_key: Option<String> = None;
                for row in &rows {
                    let pcid_key: String = row.try_get("pcid_key").map_err(map_sqlx_error)?;
                    if last_pcid_key.as_deref() != Some(pcid_key.as_str()) {
                        contracts.push(self.contract_from_row(&mut connection, row).await?);
                        last_pcid_key = Some(pcid_key);
                    }
                    let Some((fingerprint, stored)) = StoredSigned::from_joined_row(row)? else {
                        continue;
                    };
                    if only_root
                        .as_ref()
                        .is_some_and(|wanted| *wanted != fingerprint)
                    {
                        continue;
                    }
                    let data = self.signed_from_stored(&mut connection, stored).await?;
                    if let Some(contract) = contracts.last_mut() {
                        contract.signed_data.push(data);
                    }
                }
                return Ok(contracts);
            }
            Some(list_contracts_request::Selector::Pcid(pcid)) => {
                let pcid = Pcid::parse(&pcid)?;
                caller.require_role(&[Role::Oem])?;
                caller.require_wmi_of(&pcid)?;
                self.contracts_of_pcid(&mut connection, &pcid.lookup_key(), false)
                    .await?
            }
            None => return Err(PncError::invalid("give an eMAID or a PCID")),
        };
        for contract in &mut contracts {
            let pcid_key = contract.pcid.to_ascii_uppercase();
            let emaid_key = Emaid::parse(&contract.emaid)?.lookup_key().to_string();
            contract.signed_data = self
                .signed_data_of(&mut connection, &pcid_key, &emaid_key, only_root.as_deref())
                .await?;
        }
        Ok(contracts)
    }

    /// Every contract of an eMAID, cancelled ones included, without signed data.
    pub async fn find_contracts(
        &self,
        caller: &Caller,
        request: FindContractsRequest,
    ) -> Result<Vec<Contract>, PncError> {
        let emaid = Emaid::parse(&request.emaid)?;
        caller.require_role(&[Role::Emsp])?;
        caller.require_provider_of(&emaid)?;
        let mut connection = self.database.connection().await?;
        let rows = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE emaid_key = $1 ORDER BY created_at, pcid_key"
        ))
        .bind(emaid.lookup_key())
        .fetch_all(&mut *connection)
        .await
        .map_err(map_sqlx_error)?;
        self.contracts_from_rows(&mut connection, &rows).await
    }

    pub async fn set_default_contract(
        &self,
        caller: &Caller,
        request: SetDefaultContractRequest,
    ) -> Result<Contract, PncError> {
        let pcid = Pcid::parse(&request.pcid)?;
        let emaid = Emaid::parse(&request.emaid)?;
        caller.require_role(&[Role::Oem, Role::Emsp])?;
        // The OEM of the vehicle or the eMSP of the contract (OPCP CCP default).
        if !(caller.has_wmi(&pcid.wmi()) || caller.has_provider(&emaid.provider_id())) {
            return Err(PncError::permission_denied(format!(
                "not allowed for PCID {pcid} and eMAID {emaid}"
            )));
        }
        let pcid_key = pcid.lookup_key();
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let row = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE pcid_key = $1 AND emaid_key = $2"
        ))
        .bind(&pcid_key)
        .bind(emaid.lookup_key())
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(|| PncError::not_found(format!("no contract {emaid} on PCID {pcid}")))?;
        let mut contract = self
            .contract_from_row(transaction.connection(), &row)
            .await?;
        if contract.cancelled {
            return Err(PncError::new(
                ErrorKind::ContractCanceled,
                format!("the contract {emaid} on PCID {pcid} was cancelled"),
            ));
        }
        if !contract.is_default {
            sqlx::query("UPDATE contracts SET is_default = 0 WHERE pcid_key = $1")
                .bind(&pcid_key)
                .execute(transaction.connection())
                .await
                .map_err(map_sqlx_error)?;
            sqlx::query(
                "UPDATE contracts SET is_default = 1, updated_at = $1 \
                 WHERE pcid_key = $2 AND emaid_key = $3",
            )
            .bind(unix_now())
            .bind(&pcid_key)
            .bind(emaid.lookup_key())
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
            transaction
                .record(
                    "contract.set_default",
                    &format!("{pcid}/{}", contract.emaid),
                    None,
                    Some(contract.emaid.as_bytes()),
                )
                .await?;
            let events = [
                Event::contract(
                    "oem.contract.updated",
                    Audience::Oem(pcid.wmi()),
                    &emaid,
                    &pcid,
                    None,
                ),
                Event::contract(
                    "mo.contract.updated.sent.to.oem",
                    Audience::Emsp(emaid.provider_id()),
                    &emaid,
                    &pcid,
                    None,
                ),
            ];
            crate::events::emit(transaction.connection(), &events).await?;
            contract.is_default = true;
        }
        transaction.commit().await?;
        Ok(contract)
    }

    pub async fn cancel_contract(
        &self,
        caller: &Caller,
        request: CancelContractRequest,
    ) -> Result<CancelContractResponse, PncError> {
        let emaid = Emaid::parse(&request.emaid)?;
        caller.require_role(&[Role::Emsp])?;
        caller.require_provider_of(&emaid)?;
        let only_pcid = match request.pcid.trim() {
            "" => None,
            pcid => Some(Pcid::parse(pcid)?),
        };
        let rows = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE emaid_key = $1 AND cancelled = 0"
        ))
        .bind(emaid.lookup_key())
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let mut connection = self.database.connection().await?;
        let contracts: Vec<Contract> = self.contracts_from_rows(&mut connection, &rows).await?;
        drop(connection);
        let contracts: Vec<Contract> = contracts
            .into_iter()
            .filter(|contract| {
                only_pcid
                    .as_ref()
                    .is_none_or(|pcid| Pcid::parse(&contract.pcid).is_ok_and(|c| &c == pcid))
            })
            .collect();
        if contracts.is_empty() {
            return Err(PncError::not_found(format!(
                "no live contract for eMAID {emaid}"
            )));
        }
        // OPCP: operator-issued certificates are revoked first, and the contract stays if
        // revocation fails.
        let mut revoked = 0;
        if request.skip_revocation {
            tracing::warn!(emaid = %emaid, "contract cancelled without revocation (X-Skip-Revocation)");
        } else {
            for contract in &contracts {
                if self
                    .revoke_contract_certificate(contract, REASON_CESSATION)
                    .await?
                {
                    revoked += 1;
                }
            }
        }
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let mut events = Vec::new();
        let mut cancelled = Vec::new();
        for mut contract in contracts {
            let pcid = Pcid::parse(&contract.pcid)?;
            let pcid_key = pcid.lookup_key();
            sqlx::query(
                "UPDATE contracts SET cancelled = 1, updated_at = $1 \
                 WHERE pcid_key = $2 AND emaid_key = $3",
            )
            .bind(unix_now())
            .bind(&pcid_key)
            .bind(emaid.lookup_key())
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
            // The pre-signed data (and any pending renewal) can no longer be handed out;
            // keep none of it.
            for table in ["signed_contract_data", "contract_renewals"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE pcid_key = $1 AND emaid_key = $2"
                ))
                .bind(&pcid_key)
                .bind(emaid.lookup_key())
                .execute(transaction.connection())
                .await
                .map_err(map_sqlx_error)?;
            }
            let before = contract.encode_to_vec();
            contract.cancelled = true;
            transaction
                .record(
                    "contract.cancel",
                    &format!("{pcid}/{}", contract.emaid),
                    Some(&before),
                    Some(&contract.encode_to_vec()),
                )
                .await?;
            events.push(Event::contract(
                "oem.contract.deleted",
                Audience::Oem(pcid.wmi()),
                &emaid,
                &pcid,
                None,
            ));
            events.push(Event::contract(
                "mo.contract.deleted.sent.to.oem",
                Audience::Emsp(emaid.provider_id()),
                &emaid,
                &pcid,
                None,
            ));
            cancelled.push(contract);
        }
        crate::events::emit(transaction.connection(), &events).await?;
        transaction.commit().await?;
        Ok(CancelContractResponse {
            cancelled,
            revoked_certificates: revoked,
        })
    }
}

/// The gRPC face.
#[derive(Debug, Clone)]
pub struct ContractsService {
    core: RegistryCore,
}

impl ContractsService {
    pub fn new(core: RegistryCore) -> ContractsService {
        ContractsService { core }
    }
}

#[tonic::async_trait]
impl Contracts for ContractsService {
    async fn get_provisioning_certificate(
        &self,
        request: Request<GetProvisioningCertificateRequest>,
    ) -> Result<Response<ProvisioningCertificate>, Status> {
        let caller = Caller::of(&request);
        let record = self
            .core
            .get_provisioning_certificate(&caller, &request.get_ref().pcid)
            .await?;
        Ok(Response::new(record))
    }

    async fn put_contract(
        &self,
        request: Request<PutContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = Caller::of(&request);
        let contract = self
            .core
            .put_contract(&caller, request.into_inner())
            .await?;
        Ok(Response::new(contract))
    }

    async fn get_signed_contract_data(
        &self,
        request: Request<GetSignedContractDataRequest>,
    ) -> Result<Response<GetSignedContractDataResponse>, Status> {
        let caller = Caller::of(&request);
        let response = self
            .core
            .get_signed_contract_data(&caller, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn list_contracts(
        &self,
        request: Request<ListContractsRequest>,
    ) -> Result<Response<ListContractsResponse>, Status> {
        let caller = Caller::of(&request);
        let contracts = self
            .core
            .list_contracts(&caller, request.into_inner())
            .await?;
        Ok(Response::new(ListContractsResponse { contracts }))
    }

    async fn find_contracts(
        &self,
        request: Request<FindContractsRequest>,
    ) -> Result<Response<ListContractsResponse>, Status> {
        let caller = Caller::of(&request);
        let contracts = self
            .core
            .find_contracts(&caller, request.into_inner())
            .await?;
        Ok(Response::new(ListContractsResponse { contracts }))
    }

    async fn set_default_contract(
        &self,
        request: Request<SetDefaultContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = Caller::of(&request);
        let contract = self
            .core
            .set_default_contract(&caller, request.into_inner())
            .await?;
        Ok(Response::new(contract))
    }

    async fn apply_contract_renewal(
        &self,
        request: Request<ApplyContractRenewalRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = Caller::of(&request);
        let contract = self
            .core
            .apply_contract_renewal(&caller, request.into_inner())
            .await?;
        Ok(Response::new(contract))
    }

    async fn cancel_contract(
        &self,
        request: Request<CancelContractRequest>,
    ) -> Result<Response<CancelContractResponse>, Status> {
        let caller = Caller::of(&request);
        let response = self
            .core
            .cancel_contract(&caller, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn get_installation_context(
        &self,
        request: Request<pnc_proto::registry::v1::GetInstallationContextRequest>,
    ) -> Result<Response<pnc_proto::registry::v1::GetInstallationContextResponse>, Status> {
        let caller = Caller::of(&request);
        let response = self
            .core
            .get_installation_context(&caller, request.into_inner())
            .await?;
        Ok(Response::new(response))
    }
}

/// The leaf of a contract chain of 1 to 3 parseable certificates whose CN is `emaid`
/// (separators allowed, [V2G2-108]); `what` names the leaf in the error.
pub(crate) fn contract_leaf(
    chain: &[CertificateMessage],
    emaid: &Emaid,
    what: &str,
) -> Result<pnc_pki::Certificate, PncError> {
    if chain.is_empty() || chain.len() > 3 {
        return Err(PncError::invalid(
            "the contract chain must hold the leaf and its Sub-CAs (1 to 3 certificates)",
        ));
    }
    let leaf = parse_certificate("the contract certificate", &chain[0].der)?;
    for (index, certificate) in chain.iter().enumerate().skip(1) {
        parse_certificate(&format!("contract Sub-CA #{index}"), &certificate.der)?;
    }
    let leaf_emaid = leaf.common_name().and_then(|cn| Emaid::parse(cn).ok());
    if !leaf_emaid.is_some_and(|leaf_emaid| leaf_emaid.same_account(emaid)) {
        return Err(PncError::invalid(format!(
            "the {what}'s CN `{}` is not the eMAID {emaid}",
            leaf.common_name().unwrap_or_default()
        )));
    }
    Ok(leaf)
}
