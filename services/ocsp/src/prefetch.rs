//! Keeps the cache warm: refreshes stored responses whose refresh point passed, fetches the
//! status of every CA certificate the truststore knows (SECC and CPO Sub-CAs among them),
//! and pre-signs answers for every unexpired certificate pnc's own CAs issued.

use std::sync::Arc;
use std::time::Duration;

use pnc_common::db::unix_now;
use pnc_pki::Certificate;
use pnc_proto::registry::v1::ListIssuedRequest;
use tokio_util::sync::CancellationToken;

use crate::cert_id::{CertId, HashAlgorithm, issuer_hashes};
use crate::engine::Engine;

/// Bounds on one round, so a large installation spreads the work over rounds.
const MAX_DUE_PER_ROUND: u32 = 500;
const MAX_OWN_PER_ROUND: usize = 20_000;
const PAGE: u32 = 500;

pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let interval = engine.config().prefetch_interval_seconds;
    if interval == 0 {
        return;
    }
    // Give the other services a moment to start before the first round.
    let mut delay = Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = Duration::from_secs(interval);
        round(&engine).await;
    }
}

async fn round(engine: &Arc<Engine>) {
    let started = std::time::Instant::now();
    let mut refreshed = 0usize;
    match engine
        .store()
        .due_for_refresh(unix_now(), MAX_DUE_PER_ROUND)
        .await
    {
        Ok(due) => {
            for response in due {
                match engine.refresh(&response.cert_id).await {
                    Ok(_) => refreshed += 1,
                    Err(error) => {
                        tracing::debug!(cert_id = ?response.cert_id, error = %error, "refresh failed")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(error = %error, "cannot list ocsp responses due"),
    }

    let mut known_checked = 0usize;
    if let Ok(known) = engine.known_cas().await {
        let certificates: Vec<Certificate> = known
            .iter()
            .filter_map(|ca| ca.certificate.as_ref())
            .filter_map(|certificate| Certificate::from_der(&certificate.der).ok())
            .collect();
        for certificate in certificates.iter().filter(|c| !c.is_self_issued()) {
            let Some(issuer) = certificates
                .iter()
                .find(|issuer| issuer.subject().matches(certificate.issuer()))
            else {
                continue;
            };
            let Ok(cert_id) = CertId::for_certificate(HashAlgorithm::Sha256, certificate, issuer)
            else {
                continue;
            };
            if engine
                .status(&cert_id, None, Some(certificate))
                .await
                .is_ok()
            {
                known_checked += 1;
            }
        }
    }

    let mut presigned = 0usize;
    if let Some(pki) = engine.own.get().await {
        'cas: for ca in &pki.cas {
            let mut after_serial = Vec::new();
            loop {
                let request = ListIssuedRequest {
                    issuer_key_id: ca.key_id.clone(),
                    after_serial: after_serial.clone(),
                    limit: PAGE,
                };
                let Ok(page) = engine
                    .downstream()
                    .issued
                    .clone()
                    .list_issued(request)
                    .await
                else {
                    break 'cas;
                };
                let records = page.into_inner().issued;
                let Some(last) = records.last() else {
                    break;
                };
                after_serial = last.serial.clone();
                let full_page = records.len() as u32 >= PAGE;
                for record in records {
                    // SHA-1 is what openssl and TLS stacks ask with, SHA-256 what OCPP uses.
                    for algorithm in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
                        let Ok((name_hash, key_hash)) = issuer_hashes(algorithm, &ca.certificate)
                        else {
                            continue;
                        };
                        let Ok(cert_id) =
                            CertId::new(algorithm, name_hash, key_hash, &record.serial)
                        else {
                            continue;
                        };
                        if engine.status(&cert_id, None, None).await.is_ok() {
                            presigned += 1;
                        }
                    }
                    if presigned >= MAX_OWN_PER_ROUND {
                        break 'cas;
                    }
                }
                if !full_page {
                    break;
                }
            }
        }
    }
    tracing::debug!(
        refreshed,
        known_checked,
        presigned,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ocsp prefetch round"
    );
}
