//! pnc extension (eMSP PKI): renewals an eMSP supplies for CertificateUpdate.
//!
//! pnc never holds an eMSP-PKI contract key, and the data registered for installation is
//! sealed to the vehicle's OEM provisioning certificate, which an EV in CertificateUpdate
//! cannot use. So the eMSP registers the renewed chain with its key sealed to the OLD
//! contract certificate [V2G2-821]; pnc keeps it (pre-signed, one set per V2G root) keyed
//! by the old certificate's fingerprint until the EV asks.

use pnc_common::PncError;
use pnc_common::db::{map_sqlx_error, unix_now};
use pnc_common::ids::{Emaid, Pcid};
use pnc_proto::error::ErrorKind;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::{
    ApplyContractRenewalRequest, Contract, ContractMode, PutContractRequest,
};
use prost::Message;
use sqlx::Row;

use super::{CONTRACT_COLUMNS, check_signed_data, parse_fingerprint, stored_contract_bytes};
use crate::RegistryCore;
use crate::access::Caller;
use crate::audit::AuditedTransaction;
use crate::events::{Audience, Event};
use crate::pcp::{parse_certificate, sha256_hex_upper};

/// The stored renewal is the whole contract with its signed data: a few kilobytes.
const MAX_RENEWAL_BYTES: usize = 64 * 1024;

fn leaf_fingerprint(contract: &Contract) -> Option<String> {
    contract
        .contract_chain
        .first()
        .map(|leaf| sha256_hex_upper(&leaf.der))
}

impl RegistryCore {
    /// Stores `request.contract` as the pending renewal of the eMSP-PKI contract whose
    /// current certificate has the fingerprint `request.renews_certificate_fingerprint`
    /// (same eMAID, same eMSP, a later certificate), with an audit entry and a contract
    /// event, in one transaction. A pending renewal of the same certificate is replaced.
    pub(super) async fn put_contract_renewal(
        &self,
        caller: &Caller,
        request: PutContractRequest,
    ) -> Result<Contract, PncError> {
        caller.require_role(&[Role::Emsp])?;
        let old_fingerprint = parse_fingerprint(&request.renews_certificate_fingerprint)
            .map_err(|_| {
                PncError::invalid("the renewed contract certificate's fingerprint is not 64 hex characters (SHA-256)")
            })?;
        let mut renewal = request
            .contract
            .ok_or_else(|| PncError::invalid("contract is missing"))?;
        let emaid = Emaid::parse_checked(&renewal.emaid, self.config.enforce_emaid_check_digit)?;
        caller.require_provider_of(&emaid)?;
        if renewal.mode != ContractMode::EmspPki as i32 {
            return Err(PncError::invalid(
                "only contracts from an eMSP's own PKI are renewed by their eMSP",
            ));
        }
        if renewal.contract_chain.is_empty() || renewal.contract_chain.len() > 3 {
            return Err(PncError::invalid(
                "the contract chain must hold the leaf and its Sub-CAs (1 to 3 certificates)",
            ));
        }
        let leaf = parse_certificate("the contract certificate", &renewal.contract_chain[0].der)?;
        for (index, certificate) in renewal.contract_chain.iter().enumerate().skip(1) {
            parse_certificate(&format!("contract Sub-CA #{index}"), &certificate.der)?;
        }
        if !leaf
            .common_name()
            .and_then(|cn| Emaid::parse(cn).ok())
            .is_some_and(|leaf_emaid| leaf_emaid.same_account(&emaid))
        {
            return Err(PncError::invalid(format!(
                "the renewed contract certificate's CN `{}` is not the eMAID {emaid}",
                leaf.common_name().unwrap_or_default()
            )));
        }
        check_signed_data(&mut renewal.signed_data, &emaid)?;
        if renewal
            .signed_data
            .iter()
            .any(|signed| signed.contract_chain.first() != renewal.contract_chain.first())
        {
            return Err(PncError::invalid(
                "the renewal's signed data carries another contract certificate",
            ));
        }
        let renewed_fingerprint = sha256_hex_upper(leaf.der());
        if renewed_fingerprint == old_fingerprint {
            return Err(PncError::invalid(
                "a contract certificate cannot renew itself",
            ));
        }

        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        // The certificate renewed must be the current one of a live contract of this
        // eMAID (and so of this eMSP).
        let rows = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE emaid_key = $1 AND cancelled = 0"
        ))
        .bind(emaid.lookup_key())
        .fetch_all(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let mut renewed = None;
        for row in &rows {
            let contract = self
                .contract_from_row(transaction.connection(), row)
                .await?;
            if leaf_fingerprint(&contract).as_deref() == Some(old_fingerprint.as_str()) {
                renewed = Some(contract);
                break;
            }
        }
        let Some(old) = renewed else {
            return Err(PncError::invalid(format!(
                "no live contract of eMAID {emaid} holds the contract certificate {old_fingerprint}"
            )));
        };
        if old.mode != ContractMode::EmspPki as i32 {
            return Err(PncError::invalid(
                "this contract was generated by pnc, which renews it itself",
            ));
        }
        let requested_pcid = renewal.pcid.trim();
        if !requested_pcid.is_empty() && Pcid::parse(requested_pcid)? != Pcid::parse(&old.pcid)? {
            return Err(PncError::invalid(format!(
                "the renewed contract is on PCID {}, not {requested_pcid}",
                old.pcid
            )));
        }
        let old_leaf = parse_certificate(
            "the stored contract certificate",
            &old.contract_chain[0].der,
        )?;
        // Newer: it ends later and does not begin earlier.
        if leaf.not_after() <= old_leaf.not_after() || leaf.not_before() < old_leaf.not_before() {
            return Err(PncError::invalid(format!(
                "the renewal (valid {} to {}) is not newer than the certificate it renews (valid {} to {})",
                leaf.not_before(),
                leaf.not_after(),
                old_leaf.not_before(),
                old_leaf.not_after()
            )));
        }
        let pcid = Pcid::parse(&old.pcid)?;
        renewal.emaid = old.emaid.clone();
        renewal.pcid = pcid.as_str().to_string();
        renewal.is_default = false;
        renewal.cancelled = false;
        renewal.certificate_not_before = leaf.not_before().unix_timestamp();
        renewal.certificate_not_after = leaf.not_after().unix_timestamp();
        let renewal_bytes = renewal.encode_to_vec();
        if renewal_bytes.len() > MAX_RENEWAL_BYTES {
            return Err(PncError::invalid("the renewal is too large"));
        }
        let previous: Option<Vec<u8>> =
            sqlx::query("SELECT renewal_pb FROM contract_renewals WHERE old_fingerprint = $1")
                .bind(&old_fingerprint)
                .fetch_optional(transaction.connection())
                .await
                .map_err(map_sqlx_error)?
                .map(|row| row.try_get("renewal_pb"))
                .transpose()
                .map_err(map_sqlx_error)?;
        let now = unix_now();
        sqlx::query(
            "INSERT INTO contract_renewals (old_fingerprint, pcid_key, emaid_key, \
             renewed_fingerprint, renewal_pb, created_by, created_at, applied_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
             ON CONFLICT (old_fingerprint) DO UPDATE SET pcid_key = excluded.pcid_key, \
             emaid_key = excluded.emaid_key, renewed_fingerprint = excluded.renewed_fingerprint, \
             renewal_pb = excluded.renewal_pb, created_by = excluded.created_by, \
             created_at = excluded.created_at, applied_at = NULL",
        )
        .bind(&old_fingerprint)
        .bind(pcid.lookup_key())
        .bind(emaid.lookup_key())
        .bind(&renewed_fingerprint)
        .bind(&renewal_bytes)
        .bind(caller.actor().0)
        .bind(now)
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        transaction
            .record(
                "contract.renewal.put",
                &format!("{pcid}/{}", old.emaid),
                previous.as_deref(),
                Some(&renewal_bytes),
            )
            .await?;
        // For the eMSP: the renewal waits for the vehicle.
        let mut event = Event::contract(
            "mo.contract.queued.to.oem",
            Audience::Emsp(emaid.provider_id()),
            &emaid,
            &pcid,
            Some(leaf.der()),
        );
        if let Some(signed) = renewal.signed_data.first() {
            event.add_cps_signer_root(signed);
        }
        crate::events::emit(transaction.connection(), &[event]).await?;
        transaction.commit().await?;
        tracing::info!(pcid = %pcid, emaid = %emaid, renews = %old_fingerprint, "contract renewal stored");
        Ok(renewal)
    }

    /// Makes the pending renewal of `old_certificate_fingerprint` its contract's current
    /// certificate and returns it with its signed data (see the proto). Only pnc's
    /// services call this (the EV's CertificateUpdate).
    pub async fn apply_contract_renewal(
        &self,
        caller: &Caller,
        request: ApplyContractRenewalRequest,
    ) -> Result<Contract, PncError> {
        if !matches!(caller, Caller::Service) {
            return Err(PncError::permission_denied(
                "only pnc's provisioning service applies contract renewals",
            ));
        }
        let old_fingerprint = parse_fingerprint(&request.old_certificate_fingerprint)?;
        let wanted_roots = request
            .v2g_root_fingerprints
            .iter()
            .map(|fingerprint| parse_fingerprint(fingerprint))
            .collect::<Result<Vec<_>, _>>()?;
        // Most updates reaching here have no renewal (or come from a generate-mode contract
        // already renewed): answer those without taking the audit head.
        let exists =
            sqlx::query("SELECT 1 AS found FROM contract_renewals WHERE old_fingerprint = $1")
                .bind(&old_fingerprint)
                .fetch_optional(self.database.pool())
                .await
                .map_err(map_sqlx_error)?;
        if exists.is_none() {
            return Err(PncError::not_found(
                "no renewal was supplied for this contract certificate",
            ));
        }
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let row = sqlx::query(
            "SELECT pcid_key, emaid_key, renewed_fingerprint, renewal_pb, applied_at \
             FROM contract_renewals WHERE old_fingerprint = $1",
        )
        .bind(&old_fingerprint)
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(|| {
            PncError::not_found("no renewal was supplied for this contract certificate")
        })?;
        let pcid_key: String = row.try_get("pcid_key").map_err(map_sqlx_error)?;
        let emaid_key: String = row.try_get("emaid_key").map_err(map_sqlx_error)?;
        let renewed_fingerprint: String =
            row.try_get("renewed_fingerprint").map_err(map_sqlx_error)?;
        let renewal_bytes: Vec<u8> = row.try_get("renewal_pb").map_err(map_sqlx_error)?;
        let renewal = Contract::decode(renewal_bytes.as_slice()).map_err(|error| {
            PncError::internal(format!("stored contract renewal does not decode: {error}"))
        })?;
        if !renewal
            .signed_data
            .iter()
            .any(|signed| wanted_roots.contains(&signed.v2g_root_fingerprint))
        {
            return Err(PncError::not_found(
                "the supplied renewal is signed under none of the V2G roots the EV trusts",
            ));
        }
        let current = sqlx::query(&format!(
            "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE pcid_key = $1 AND emaid_key = $2"
        ))
        .bind(&pcid_key)
        .bind(&emaid_key)
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(|| PncError::not_found("the renewed contract no longer exists"))?;
        let current = self
            .contract_from_row(transaction.connection(), &current)
            .await?;
        if current.cancelled {
            return Err(PncError::new(
                ErrorKind::ContractCanceled,
                format!("the contract {} was cancelled by its eMSP", current.emaid),
            ));
        }
        let current_fingerprint = leaf_fingerprint(&current).unwrap_or_default();
        let answer = Contract {
            contract_chain: renewal.contract_chain.clone(),
            contract_begins: renewal.contract_begins,
            contract_ends: renewal.contract_ends,
            certificate_not_before: renewal.certificate_not_before,
            certificate_not_after: renewal.certificate_not_after,
            signed_data: Vec::new(),
            ..current.clone()
        };
        if current_fingerprint == renewed_fingerprint {
            // Already applied (the EV retries after a lost answer, or the eMSP has since
            // registered installation data for the renewed certificate).
            transaction.commit().await?;
            return Ok(Contract {
                signed_data: renewal.signed_data,
                ..answer
            });
        }
        if current_fingerprint != old_fingerprint {
            return Err(PncError::not_found(
                "the contract has moved on to another certificate than the renewed one",
            ));
        }
        let now = unix_now();
        let chain_fingerprints = self
            .cas
            .store_all(
                transaction.connection(),
                answer.contract_chain.get(1..).unwrap_or_default(),
                now,
            )
            .await?;
        sqlx::query(
            "UPDATE contracts SET contract_pb = $1, chain_fingerprints = $2, \
             certificate_not_before = $3, certificate_not_after = $4, updated_at = $5, \
             format = $6 WHERE pcid_key = $7 AND emaid_key = $8",
        )
        .bind(stored_contract_bytes(&answer))
        .bind(&chain_fingerprints)
        .bind(answer.certificate_not_before)
        .bind(answer.certificate_not_after)
        .bind(now)
        .bind(crate::pcp::FORMAT_COMPACT)
        .bind(&pcid_key)
        .bind(&emaid_key)
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        // The installation data sealed the old key to the vehicle; it would now hand out
        // a superseded certificate. The eMSP registers data for the renewed one.
        sqlx::query("DELETE FROM signed_contract_data WHERE pcid_key = $1 AND emaid_key = $2")
            .bind(&pcid_key)
            .bind(&emaid_key)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        sqlx::query("UPDATE contract_renewals SET applied_at = $1 WHERE old_fingerprint = $2")
            .bind(now)
            .bind(&old_fingerprint)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        let pcid = Pcid::parse(&current.pcid)?;
        let emaid = Emaid::parse(&current.emaid)?;
        transaction
            .record(
                "contract.renew",
                &format!("{pcid}/{emaid}"),
                Some(&current.encode_to_vec()),
                Some(&answer.encode_to_vec()),
            )
            .await?;
        let leaf_der = answer
            .contract_chain
            .first()
            .map(|leaf| leaf.der.as_slice());
        let events = [
            Event::contract(
                "oem.contract.updated",
                Audience::Oem(pcid.wmi()),
                &emaid,
                &pcid,
                leaf_der,
            ),
            Event::contract(
                "mo.contract.updated.sent.to.oem",
                Audience::Emsp(emaid.provider_id()),
                &emaid,
                &pcid,
                leaf_der,
            ),
        ];
        crate::events::emit(transaction.connection(), &events).await?;
        transaction.commit().await?;
        tracing::info!(pcid = %pcid, emaid = %emaid, "contract renewed by its eMSP's renewal");
        Ok(Contract {
            signed_data: renewal.signed_data,
            ..answer
        })
    }
}
