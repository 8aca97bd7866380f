//! ISO 15118-20 contracts at registration (generate mode): the vehicle's OEM provisioning
//! certificate decides the curve [V2G20-2487], [V2G20-2488]; pnc issues a contract key on that
//! curve and its certificate under its -20 MO Sub-CA 2, seals the key to the vehicle (AES-GCM,
//! AAD = PCID ‖ SKI, [`pnc_pki::key_transport::iso20`]) and signs one `SignedInstallationData`
//! per -20 CPS chain, so nothing is signed when the EV asks.
//!
//! - P-521 vehicle: a P-521 contract key, `SECP521_EncryptedPrivateKey`.
//! - Ed448 vehicle: ECDH on X448 with the key derived from the certificate's Ed448 key; an X448
//!   contract key (56 bytes, `X448_EncryptedPrivateKey` 84 bytes) whose X448 public key the
//!   contract certificate carries. The derivation, the contract key and the X448
//!   `DHPublicKey` length are unconfirmed: `pnc_pki::key_transport::iso20::unconfirmed`.

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use pnc_common::ids::{Emaid, Pcid};
use pnc_common::{ErrorKind, PncError};
use pnc_pki::Certificate;
use pnc_pki::dev::contract_template;
use pnc_pki::issue;
use pnc_pki::key_transport::iso20::{self, Curve};
use pnc_proto::principal::Principal;
use pnc_proto::provisioning::v1::{ContractResponse, GenerateContractRequest};
use pnc_proto::registry::v1::{Contract, ContractMode, IssuedRecord};
use pnc_proto::truststore::v1::GetRootRequest;
use time::OffsetDateTime;

use crate::contract::{ProducedContract, contract_validity};
use crate::pki::{ContractIssuer, CpsSigner};
use crate::service::{ProvisioningService, forward};

fn internal(what: &str, error: impl std::fmt::Display) -> PncError {
    tracing::error!(%error, "{what}");
    PncError::internal(what.to_string())
}

/// The -20 key-transport curve of a provisioning certificate's key, `None` for any other key
/// (a -2 vehicle, P-256).
pub fn vehicle_curve(certificate: &Certificate) -> Option<Curve> {
    let key = PKey::public_key_from_der(certificate.public_key_spki_der()).ok()?;
    match key.id() {
        Id::X448 | Id::ED448 => Some(Curve::X448),
        Id::EC => {
            let curve = key.ec_key().ok()?.group().curve_name();
            (curve == Some(Nid::SECP521R1)).then_some(Curve::Secp521)
        }
        _ => None,
    }
}

/// Issues the contract key (on the vehicle's curve) and certificate, seals the key to
/// `oem_certificate` and signs the installation data with every CPS chain in `cps_signers`.
/// CPU work.
pub fn generate(
    issuer: &ContractIssuer,
    cps_signers: &[&CpsSigner],
    emaid: &Emaid,
    pcid: &Pcid,
    oem_certificate: &Certificate,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<ProducedContract, PncError> {
    let curve = vehicle_curve(oem_certificate).ok_or_else(|| {
        PncError::invalid("the OEM provisioning certificate's key is not an ISO 15118-20 key")
    })?;
    // X448 vehicles: the contract certificate carries the X448 key that is transported.
    let iso20::unconfirmed::X448ContractKey::X448 = iso20::unconfirmed::X448_CONTRACT_KEY;
    let contract_key = iso20::generate_contract_key(curve)
        .map_err(|error| internal("generating the contract key failed", error))?;
    let organization = issuer.sub_ca_2.subject().values("2.5.4.10").next();
    let mut template = contract_template(
        emaid.as_str(),
        contract_key.public_key_spki_der(),
        not_before,
        not_after,
        organization,
        &issuer.ocsp_url,
    );
    template.crl_url = issuer.crl_url.clone();
    let leaf = issue(&template, Some(&issuer.sub_ca_2), issuer.signer.as_ref())
        .map_err(|error| internal("issuing the contract certificate failed", error))?;
    let ski = leaf
        .subject_key_identifier()
        .ok_or_else(|| PncError::internal("the contract certificate has no SKI"))?
        .to_vec();
    let sealed = iso20::seal(
        oem_certificate.public_key_spki_der(),
        contract_key.private_key(),
        pcid.as_str(),
        &ski,
    )
    .map_err(|error| {
        PncError::invalid(format!(
            "cannot seal the contract key to the vehicle: {error}"
        ))
    })?;
    drop(contract_key);
    let contract_chain = vec![leaf, issuer.sub_ca_2.clone(), issuer.sub_ca_1.clone()];
    let signed = cps_signers
        .iter()
        .map(|cps| crate::signed_data20::sign(cps, emaid.as_str(), &contract_chain, &sealed))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProducedContract {
        not_before: contract_chain[0].not_before(),
        not_after: contract_chain[0].not_after(),
        contract_chain,
        signed,
    })
}

impl ProvisioningService {
    /// The -20 CPS chains to sign with: the one under the requested V2G root (fingerprint or
    /// the pool's root ID), or all.
    async fn iso20_cps_signers(
        &self,
        principal: Option<&Principal>,
        requested_root: &str,
    ) -> Result<Vec<usize>, PncError> {
        let signers = &self.holdings.iso20.cps_signers;
        let requested_root = requested_root.trim();
        if requested_root.is_empty() {
            return Ok((0..signers.len()).collect());
        }
        let fingerprint = if requested_root.len() == 64
            && requested_root.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            requested_root.to_ascii_uppercase()
        } else {
            self.downstream
                .truststore
                .clone()
                .get_root(forward(
                    principal,
                    GetRootRequest {
                        id: requested_root.to_string(),
                    },
                ))
                .await
                .map_err(PncError::from)
                .map_err(|error| match error.kind {
                    ErrorKind::NotFound | ErrorKind::InvalidArgument => PncError::invalid(format!(
                        "cpsV2GRootCertificateFingerprint `{requested_root}` names no root of the pool"
                    )),
                    _ => error,
                })?
                .into_inner()
                .sha256_fingerprint
                .to_ascii_uppercase()
        };
        let chosen: Vec<usize> = signers
            .iter()
            .enumerate()
            .filter(|(_, cps)| cps.root_fingerprint == fingerprint)
            .map(|(index, _)| index)
            .collect();
        if chosen.is_empty() {
            return Err(PncError::invalid(format!(
                "pnc holds no ISO 15118-20 CPS certificate under the V2G root {fingerprint}"
            )));
        }
        Ok(chosen)
    }

    /// Generate mode for a vehicle whose provisioning certificate is an ISO 15118-20 one:
    /// called by `generate_contract` once it has the registered certificate.
    pub(crate) async fn generate_contract20(
        &self,
        principal: Option<&Principal>,
        request: &GenerateContractRequest,
        emaid: Emaid,
        pcid: Pcid,
        oem_certificate: Certificate,
    ) -> Result<ContractResponse, PncError> {
        let issuer = &self.holdings.iso20.contract_issuer;
        let timestamp = |seconds: i64, what: &str| {
            OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|_| PncError::invalid(format!("{what} is out of range")))
        };
        let (not_before, not_after) = contract_validity(
            &issuer.sub_ca_2,
            timestamp(request.contract_begins, "contractBegins")?,
            timestamp(request.contract_ends, "contractEnds")?,
            OffsetDateTime::now_utc(),
        )?;
        let wanted_mo_root = request.mo_root_fingerprint.trim();
        let issuer_root = crate::pki::fingerprint(&issuer.root);
        if !wanted_mo_root.is_empty() && !wanted_mo_root.eq_ignore_ascii_case(&issuer_root) {
            return Err(PncError::invalid(format!(
                "pnc issues ISO 15118-20 contracts under the root {issuer_root}, not under {wanted_mo_root}"
            )));
        }
        let cps_indices = self
            .iso20_cps_signers(principal, &request.cps_v2g_root_fingerprint)
            .await?;
        let holdings = self.holdings.clone();
        let (generated_emaid, generated_pcid) = (emaid.clone(), pcid.clone());
        let produced = tokio::task::spawn_blocking(move || {
            let signers: Vec<&CpsSigner> = cps_indices
                .iter()
                .map(|index| &holdings.iso20.cps_signers[*index])
                .collect();
            generate(
                &holdings.iso20.contract_issuer,
                &signers,
                &generated_emaid,
                &generated_pcid,
                &oem_certificate,
                not_before,
                not_after,
            )
        })
        .await
        .map_err(|error| internal("blocking task failed", error))??;

        let proto = |certificate: &Certificate| pnc_proto::common::v1::Certificate {
            der: certificate.der().to_vec(),
        };
        let contract = Contract {
            emaid: emaid.as_str().to_string(),
            pcid: pcid.as_str().to_string(),
            is_default: false,
            mode: ContractMode::Generated as i32,
            contract_chain: produced.contract_chain.iter().map(proto).collect(),
            contract_begins: produced.not_before.unix_timestamp(),
            contract_ends: produced.not_after.unix_timestamp(),
            cancelled: false,
            signed_data: produced.signed.clone(),
            certificate_not_before: produced.not_before.unix_timestamp(),
            certificate_not_after: produced.not_after.unix_timestamp(),
        };
        let issued = IssuedRecord {
            issuer: Some(proto(&issuer.sub_ca_2)),
            profile: pnc_pki::Profile::Contract.name().to_string(),
        };
        let stored = self.store(principal, contract, Some(issued)).await?;
        tracing::info!(
            emaid = %emaid,
            pcid = %pcid,
            serial = %produced.contract_chain[0].serial_hex(),
            "generated an iso 15118-20 contract"
        );
        self.respond(stored, produced.signed).await
    }
}
