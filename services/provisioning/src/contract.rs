//! Contract production, the CPU-bound part: issue the contract key and certificate (generate
//! mode), seal the key to the vehicle, sign the contract data with each CPS chain; or check an
//! eMSP's own contract material and sign it (eMSP PKI mode). Blocking: run in
//! `spawn_blocking`.

use pnc_common::PncError;
use pnc_common::ids::Emaid;
use pnc_pki::dev::contract_template;
use pnc_pki::key_transport::{self as iso2_key, iso2};
use pnc_pki::{Certificate, issue};
use pnc_proto::registry::v1::SignedContractData;
use time::OffsetDateTime;

use crate::pki::{ContractIssuer, CpsSigner};
use crate::signed_data::{self, ContractElements};

/// A contract ready to store: its chain (leaf, Sub-CA 2, Sub-CA 1) and the signed data
/// per CPS chain.
pub struct ProducedContract {
    pub contract_chain: Vec<Certificate>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub signed: Vec<SignedContractData>,
}

/// The certificate's validity: the requested contract period clamped to the issuer's own
/// validity (a certificate must not outlive its CA).
pub fn contract_validity(
    issuer: &Certificate,
    contract_begins: OffsetDateTime,
    contract_ends: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), PncError> {
    if contract_ends <= now {
        return Err(PncError::invalid(
            "The given contractEnds date is in the past.",
        ));
    }
    if contract_ends <= contract_begins {
        return Err(PncError::invalid(
            "contractEnds must be later than contractBegins",
        ));
    }
    let not_before = contract_begins.max(issuer.not_before());
    let not_after = contract_ends.min(issuer.not_after());
    if not_after <= not_before {
        return Err(PncError::invalid(
            "the contract period lies outside the validity of pnc's MO Sub-CA",
        ));
    }
    Ok((not_before, not_after))
}

fn internal(what: &str, error: impl std::fmt::Display) -> PncError {
    tracing::error!(%error, "{what}");
    PncError::internal(what.to_string())
}

/// A fresh P-256 contract key and its certificate (CN = eMAID, Annex F contract profile)
/// under the MO Sub-CA 2; the chain is leaf, Sub-CA 2, Sub-CA 1.
pub fn issue_contract(
    issuer: &ContractIssuer,
    emaid: &Emaid,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(iso2_key::ContractKey, Vec<Certificate>), PncError> {
    let contract_key = iso2::generate_contract_key()
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
    Ok((
        contract_key,
        vec![leaf, issuer.sub_ca_2.clone(), issuer.sub_ca_1.clone()],
    ))
}

/// Seals the contract key to `recipient` (the OEM provisioning certificate for Install
/// [V2G2-820], the old contract certificate for Update [V2G2-821]) and signs the four
/// elements with every CPS chain in `cps_signers`.
pub fn seal_and_sign(
    cps_signers: &[&CpsSigner],
    emaid: &Emaid,
    contract_chain: &[Certificate],
    contract_key: &iso2_key::ContractKey,
    recipient: &Certificate,
) -> Result<Vec<SignedContractData>, PncError> {
    let sealed = iso2::seal(recipient.public_key_spki_der(), contract_key.private_key()).map_err(
        |error| {
            PncError::invalid(format!(
                "cannot seal the contract key to the vehicle: {error}"
            ))
        },
    )?;
    sign_all(
        cps_signers,
        &ContractElements {
            emaid: emaid.as_str(),
            contract_chain,
            encrypted_private_key: &sealed.encrypted_private_key,
            dh_public_key: &sealed.dh_public_key,
        },
    )
}

/// Generate mode: issue the contract, seal its key to the OEM provisioning certificate,
/// sign with every CPS chain in `cps_signers`.
pub fn generate(
    issuer: &ContractIssuer,
    cps_signers: &[&CpsSigner],
    emaid: &Emaid,
    oem_provisioning_certificate: &Certificate,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<ProducedContract, PncError> {
    let (contract_key, contract_chain) = issue_contract(issuer, emaid, not_before, not_after)?;
    let signed = seal_and_sign(
        cps_signers,
        emaid,
        &contract_chain,
        &contract_key,
        oem_provisioning_certificate,
    )?;
    drop(contract_key);
    Ok(ProducedContract {
        not_before: contract_chain[0].not_before(),
        not_after: contract_chain[0].not_after(),
        contract_chain,
        signed,
    })
}

/// Signs the same elements with each CPS chain.
pub fn sign_all(
    cps_signers: &[&CpsSigner],
    elements: &ContractElements<'_>,
) -> Result<Vec<SignedContractData>, PncError> {
    cps_signers
        .iter()
        .map(|cps| signed_data::sign(cps, elements))
        .collect()
}

/// eMSP PKI mode: the eMSP's key material must have the shapes the EV expects
/// ([V2G2-819], notes §7.1): 48 bytes IV ‖ ciphertext and an uncompressed P-256 point.
pub fn check_emsp_key_material(
    encrypted_private_key: &[u8],
    dh_public_key: &[u8],
) -> Result<(), PncError> {
    iso2::SealedContractKey::from_slices(encrypted_private_key, dh_public_key)
        .map_err(|error| PncError::invalid(format!("contract key material: {error}")))?;
    pnc_exi::signature::public_key_from_sec1(pnc_exi::signature::Profile::Iso2, dh_public_key)
        .map_err(|_| PncError::invalid("dHpublickey is not a point on secp256r1"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn issuer_valid(from: OffsetDateTime, to: OffsetDateTime) -> Certificate {
        let signer = pnc_pki::SoftwareSigner::generate(
            "test-root",
            pnc_pki::SignatureAlgorithm::EcdsaP256Sha256,
        )
        .expect("key");
        let template = pnc_pki::CertificateTemplate::new(
            pnc_pki::Profile::MoRoot,
            pnc_pki::SubjectName::new("test MO root"),
            pnc_pki::Signer::public_key_spki_der(&signer).to_vec(),
            from,
            to,
        );
        issue(&template, None, &signer).expect("root")
    }

    #[test]
    fn ok_validity_is_clamped_to_the_issuer() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
        let issuer = issuer_valid(now - Duration::days(10), now + Duration::days(100));
        let (from, to) = contract_validity(
            &issuer,
            now - Duration::days(400),
            now + Duration::days(4000),
            now,
        )
        .expect("valid");
        assert_eq!(from, issuer.not_before());
        assert_eq!(to, issuer.not_after());
        let (from, to) = contract_validity(
            &issuer,
            now - Duration::days(1),
            now + Duration::days(30),
            now,
        )
        .expect("valid");
        assert_eq!(from, now - Duration::days(1));
        assert_eq!(to, now + Duration::days(30));
    }

    #[test]
    fn fail_contract_ending_in_the_past() {
        let now = OffsetDateTime::now_utc();
        let issuer = issuer_valid(now - Duration::days(10), now + Duration::days(100));
        let error = contract_validity(
            &issuer,
            now - Duration::days(5),
            now - Duration::days(1),
            now,
        )
        .expect_err("past");
        assert!(error.message.contains("past"), "{error}");
        let error = contract_validity(
            &issuer,
            now + Duration::days(5),
            now + Duration::days(1),
            now,
        )
        .expect_err("reversed");
        assert!(error.message.contains("later"), "{error}");
    }

    #[test]
    fn fail_malformed_emsp_key_material() {
        assert!(check_emsp_key_material(&[0; 47], &[4; 65]).is_err());
        assert!(
            check_emsp_key_material(&[0; 48], &[4; 65]).is_err(),
            "not on the curve"
        );
    }
}
