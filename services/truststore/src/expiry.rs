//! The expiry watch: at start and then periodically, roots past notAfter are marked
//! expired once and `root.cert.expired` is written (OPCP: expired roots leave the pool).
//! Several replicas may run it against one PostgreSQL database; the store's conditional
//! UPDATE lets exactly one of them emit each event.

use std::time::Duration;

use pnc_common::runtime::ValidityClock;
use tokio_util::sync::CancellationToken;

use crate::store::RootStore;

/// Roots expire by `validity_clock` (the system clock outside tests).
pub async fn watch(
    store: RootStore,
    interval: Duration,
    validity_clock: ValidityClock,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // The first tick completes at once: the watch runs at start.
            _ = ticker.tick() => {}
        }
        match store.expire_due(validity_clock.unix_now()).await {
            Ok(expired) => {
                for fingerprint in expired {
                    tracing::info!(%fingerprint, "root expired; root.cert.expired written");
                }
            }
            // The database may be briefly away; the next tick tries again.
            Err(error) => tracing::warn!(error = %error, "expiry watch failed"),
        }
    }
}
