//! Out of the box pnc trusts its own dev roots and knows its own CAs: at start, the
//! provisioning service puts the dev V2G, MO and OEM roots (-2 and -20) into the root pool, registers its
//! Sub-CAs as known CAs (source PNC_CA), and records the certificates it issued so OCSP and
//! CRLs answer for them, strictly in that order (the issuance record of the example vehicle
//! is written last). Every call is idempotent; the task retries with a bounded backoff
//! until all of them went through (truststore and registry may still be starting, or a
//! replica may run an older version), then ends.

use std::sync::Arc;
use std::time::Duration;

use pnc_common::grpc::GrpcChannel;
use pnc_common::{ErrorKind, PncError};
use pnc_pki::{Certificate, DevCert};
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::registry::v1::RecordIssuedRequest;
use pnc_proto::registry::v1::issued_certificates_client::IssuedCertificatesClient;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;
use pnc_proto::truststore::v1::{AddIntermediateRequest, KnownCaSource, PutRootRequest, RootType};
use tokio_util::sync::CancellationToken;

use crate::pki::Holdings;

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(30);

fn proto(certificate: &Certificate) -> ProtoCertificate {
    ProtoCertificate {
        der: certificate.der().to_vec(),
    }
}

/// One idempotent call of the seeding.
#[derive(Debug, Clone)]
enum Step {
    Root(Certificate, RootType),
    Intermediate(Certificate),
    Issued {
        certificate: Certificate,
        issuer: Certificate,
        profile: &'static str,
    },
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Root(certificate, _) => format!("root {}", certificate.subject()),
            Step::Intermediate(certificate) => format!("intermediate {}", certificate.subject()),
            Step::Issued { certificate, .. } => format!("issued {}", certificate.subject()),
        }
    }
}

fn steps(holdings: &Holdings) -> Vec<Step> {
    let dev = &holdings.dev;
    let mut steps = vec![
        Step::Root(dev.certificate(DevCert::V2gRoot).clone(), RootType::V2g),
        Step::Root(dev.certificate(DevCert::MoRoot).clone(), RootType::Mo),
        Step::Root(dev.certificate(DevCert::OemRoot).clone(), RootType::Oem),
    ];
    // The ISO 15118-20 (P-521) hierarchy rides along; its records go before the -2 ones so
    // the example vehicle's record still comes last.
    let iso20: &[DevCert] = if dev.has_iso20() {
        &DevCert::ISO20
    } else {
        &[]
    };
    for (which, root_type) in [
        (DevCert::Iso20V2gRoot, RootType::V2g),
        (DevCert::Iso20MoRoot, RootType::Mo),
        (DevCert::Iso20OemRoot, RootType::Oem),
    ] {
        if iso20.contains(&which) {
            steps.push(Step::Root(dev.certificate(which).clone(), root_type));
        }
    }
    // Parents first, so each intermediate chains to something the truststore knows.
    for which in DevCert::ALL.iter().chain(iso20).copied() {
        if which.is_ca() && which.issuer().is_some() {
            steps.push(Step::Intermediate(dev.certificate(which).clone()));
        }
    }
    for (sub_ca_1, sub_ca_2) in &holdings.extra_sub_cas {
        steps.push(Step::Intermediate(sub_ca_1.clone()));
        steps.push(Step::Intermediate(sub_ca_2.clone()));
    }
    for which in iso20.iter().chain(DevCert::ALL.iter()).copied() {
        if let Some(issuer) = which.issuer() {
            steps.push(Step::Issued {
                certificate: dev.certificate(which).clone(),
                issuer: dev.certificate(issuer).clone(),
                profile: which.profile().name(),
            });
        }
    }
    steps
}

async fn run_step(
    step: &Step,
    truststore: &mut TrustStoreClient<GrpcChannel>,
    issued: &mut IssuedCertificatesClient<GrpcChannel>,
) -> Result<(), PncError> {
    let result = match step {
        Step::Root(certificate, root_type) => truststore
            .put_root(PutRootRequest {
                certificate: Some(proto(certificate)),
                root_type: *root_type as i32,
                ..PutRootRequest::default()
            })
            .await
            .map(|_| ()),
        Step::Intermediate(certificate) => truststore
            .add_intermediate(AddIntermediateRequest {
                certificate: Some(proto(certificate)),
                source: KnownCaSource::PncCa as i32,
            })
            .await
            .map(|_| ()),
        Step::Issued {
            certificate,
            issuer,
            profile,
        } => issued
            .record_issued(RecordIssuedRequest {
                certificate: Some(proto(certificate)),
                issuer: Some(proto(issuer)),
                profile: profile.to_string(),
            })
            .await
            .map(|_| ()),
    };
    match result.map_err(PncError::from) {
        Ok(()) => Ok(()),
        Err(error) if error.kind == ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Runs the seeding until every step succeeded or `shutdown` fires.
pub async fn seed_until_done(
    holdings: Arc<Holdings>,
    truststore: TrustStoreClient<GrpcChannel>,
    issued: IssuedCertificatesClient<GrpcChannel>,
    shutdown: CancellationToken,
) {
    let mut truststore = truststore;
    let mut issued = issued;
    let mut pending = steps(&holdings);
    let mut delay = FIRST_RETRY;
    loop {
        // Strictly in order: an intermediate needs its parent known, and the last record
        // written means everything before it is in place.
        while let Some(step) = pending.first() {
            if let Err(error) = run_step(step, &mut truststore, &mut issued).await {
                tracing::debug!(step = %step.describe(), %error, "seeding step failed; will retry");
                break;
            }
            pending.remove(0);
        }
        if pending.is_empty() {
            tracing::info!("pnc's dev roots and CAs are registered");
            return;
        }
        tracing::info!(
            remaining = pending.len(),
            retry_in_ms = delay.as_millis() as u64,
            "seeding pnc's roots and CAs is not complete yet"
        );
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}
