//! The truststore's tables: the root pool (`roots`, `root_roles`), its outbox
//! (`root_events`) and the index of known CAs (`known_cas`).
//!
//! Every write runs in one transaction that also appends its event, so a change and its
//! event are committed together or not at all. Writes are serialised: within the process by
//! a mutex, across replicas on PostgreSQL by a transaction-scoped advisory lock. Pool writes
//! are rare (an operator adds a root, the expiry watch marks one), and serialising them
//! keeps event sequence numbers committing in order, so a reader that pages with
//! `after_sequence` never skips an event that commits late.

use std::collections::BTreeMap;
use std::sync::Arc;

use pnc_common::PncError;
use pnc_common::db::{Backend, Database, map_sqlx_error};
use sqlx::{Any, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::inspect::InspectedCa;

/// The advisory lock key of truststore writes ("pnct" in ASCII); unique among pnc's services
/// sharing one PostgreSQL database.
const WRITE_LOCK_KEY: i64 = 0x706e_6374;

/// At most this many CAs answer one lookup; a CertID or name matching more is an anomaly.
const MAX_ISSUER_MATCHES: i64 = 50;
/// At most this many known CAs are listed at once.
pub const MAX_KNOWN_CAS_LISTED: i64 = 10_000;

pub const EVENT_ROOT_ADDED: &str = "root.cert.added";
pub const EVENT_ROOT_EXPIRED: &str = "root.cert.expired";
pub const EVENT_ROOT_REVOKED: &str = "root.cert.revoked";

/// How pnc came to know a CA, as stored. The order is precedence: a CA registered again
/// under a stronger source is upgraded, never downgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaSource {
    SeenInValidatedChain,
    RegisteredIntermediate,
    PncCa,
    RootPool,
}

impl CaSource {
    pub fn name(self) -> &'static str {
        match self {
            CaSource::SeenInValidatedChain => "SEEN_IN_VALIDATED_CHAIN",
            CaSource::RegisteredIntermediate => "REGISTERED_INTERMEDIATE",
            CaSource::PncCa => "PNC_CA",
            CaSource::RootPool => "ROOT_POOL",
        }
    }

    pub fn from_name(name: &str) -> Option<CaSource> {
        [
            CaSource::SeenInValidatedChain,
            CaSource::RegisteredIntermediate,
            CaSource::PncCa,
            CaSource::RootPool,
        ]
        .into_iter()
        .find(|source| source.name() == name)
    }
}

/// One root of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoot {
    pub id: String,
    pub sha256_fingerprint: String,
    /// The first role, e.g. `V2G`.
    pub root_type: String,
    /// Every role, the first one first.
    pub root_types: Vec<String>,
    pub der: Vec<u8>,
    pub ctl_tags: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked: bool,
    pub expired: bool,
    pub added_at: i64,
}

/// One event of the pool's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub sequence: i64,
    pub event_type: String,
    pub root: StoredRoot,
    pub occurred_at: i64,
}

/// One known CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKnownCa {
    pub sha256_fingerprint: String,
    pub der: Vec<u8>,
    pub source: CaSource,
    /// For pool roots, the root's first role.
    pub root_type: Option<String>,
}

/// What a root write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootChange {
    /// New, re-added after revocation, or given a new role: `root.cert.added` was written.
    Added,
    /// Already in the pool as asked; nothing changed.
    Unchanged,
}

/// A CertID's issuer hashes, upper-case hex.
#[derive(Debug, Clone, Copy)]
pub enum CertIdHashes<'a> {
    Sha1 { name: &'a str, key: &'a str },
    Sha256 { name: &'a str, key: &'a str },
}

#[derive(Debug, Clone)]
pub struct RootStore {
    database: Database,
    write_lock: Arc<Mutex<()>>,
}

const ROOT_COLUMNS: &str = "id, sha256_fingerprint, root_type, der, ctl_tags, not_before, \
     not_after, revoked, expired, added_at";

const KNOWN_CA_COLUMNS: &str = "k.sha256_fingerprint, k.der, k.source, r.root_type";

fn root_from_row(row: &sqlx::any::AnyRow) -> Result<StoredRoot, PncError> {
    let ctl_tags: String = row.try_get(4).map_err(map_sqlx_error)?;
    let root_type: String = row.try_get(2).map_err(map_sqlx_error)?;
    Ok(StoredRoot {
        id: row.try_get(0).map_err(map_sqlx_error)?,
        sha256_fingerprint: row.try_get(1).map_err(map_sqlx_error)?,
        root_types: vec![root_type.clone()],
        root_type,
        der: row.try_get(3).map_err(map_sqlx_error)?,
        ctl_tags: serde_json::from_str(&ctl_tags).unwrap_or_default(),
        not_before: row.try_get(5).map_err(map_sqlx_error)?,
        not_after: row.try_get(6).map_err(map_sqlx_error)?,
        revoked: row.try_get::<i64, _>(7).map_err(map_sqlx_error)? != 0,
        expired: row.try_get::<i64, _>(8).map_err(map_sqlx_error)? != 0,
        added_at: row.try_get(9).map_err(map_sqlx_error)?,
    })
}

fn known_ca_from_row(row: &sqlx::any::AnyRow) -> Result<StoredKnownCa, PncError> {
    let source: String = row.try_get(2).map_err(map_sqlx_error)?;
    Ok(StoredKnownCa {
        sha256_fingerprint: row.try_get(0).map_err(map_sqlx_error)?,
        der: row.try_get(1).map_err(map_sqlx_error)?,
        source: CaSource::from_name(&source)
            .ok_or_else(|| PncError::internal(format!("unknown CA source `{source}`")))?,
        root_type: row.try_get(3).map_err(map_sqlx_error)?,
    })
}

/// The first role stays first; the others follow in a stable order.
fn order_roles(first: &str, mut roles: Vec<String>) -> Vec<String> {
    roles.sort();
    roles.dedup();
    roles.retain(|role| role != first);
    roles.insert(0, first.to_string());
    roles
}

impl RootStore {
    pub fn new(database: Database) -> RootStore {
        RootStore {
            database,
            write_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Starts a write transaction holding both write locks.
    async fn begin_write(&self) -> Result<(MutexGuard<'_, ()>, Transaction<'_, Any>), PncError> {
        let guard = self.write_lock.lock().await;
        let mut transaction = self.database.pool().begin().await.map_err(map_sqlx_error)?;
        if self.database.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK_KEY)
                .execute(&mut *transaction)
                .await
                .map_err(map_sqlx_error)?;
        }
        Ok((guard, transaction))
    }

    async fn roles_of(
        executor: &mut sqlx::AnyConnection,
        fingerprint: &str,
    ) -> Result<Vec<String>, PncError> {
        let rows = sqlx::query(
            "SELECT root_type FROM root_roles WHERE sha256_fingerprint = $1 ORDER BY root_type",
        )
        .bind(fingerprint)
        .fetch_all(&mut *executor)
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0).map_err(map_sqlx_error))
            .collect()
    }

    async fn root_by_fingerprint_in(
        executor: &mut sqlx::AnyConnection,
        fingerprint: &str,
    ) -> Result<Option<StoredRoot>, PncError> {
        let row = sqlx::query(&format!(
            "SELECT {ROOT_COLUMNS} FROM roots WHERE sha256_fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(&mut *executor)
        .await
        .map_err(map_sqlx_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut root = root_from_row(&row)?;
        let roles = Self::roles_of(executor, fingerprint).await?;
        root.root_types = order_roles(&root.root_type, roles);
        Ok(Some(root))
    }

    /// A root by its ID (UUID) or its upper-case hex SHA-256 fingerprint.
    pub async fn root(&self, id_or_fingerprint: &str) -> Result<Option<StoredRoot>, PncError> {
        let mut connection = self.database.connection().await?;
        let fingerprint = sqlx::query(
            "SELECT sha256_fingerprint FROM roots WHERE id = $1 OR sha256_fingerprint = $2",
        )
        .bind(id_or_fingerprint)
        .bind(id_or_fingerprint)
        .fetch_optional(&mut *connection)
        .await
        .map_err(map_sqlx_error)?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()
        .map_err(map_sqlx_error)?;
        match fingerprint {
            Some(fingerprint) => Self::root_by_fingerprint_in(&mut connection, &fingerprint).await,
            None => Ok(None),
        }
    }

    /// Roots serving `role` (`V2G`, `MO`, …), or all; revoked and expired ones only when
    /// `include_inactive`. Oldest first.
    pub async fn list_roots(
        &self,
        role: Option<&str>,
        include_inactive: bool,
    ) -> Result<Vec<StoredRoot>, PncError> {
        let active = if include_inactive {
            ""
        } else {
            " AND revoked = 0 AND expired = 0"
        };
        let rows = match role {
            Some(role) => {
                sqlx::query(&format!(
                    "SELECT {ROOT_COLUMNS} FROM roots WHERE sha256_fingerprint IN \
                     (SELECT sha256_fingerprint FROM root_roles WHERE root_type = $1){active} \
                     ORDER BY added_at, sha256_fingerprint"
                ))
                .bind(role)
                .fetch_all(self.database.pool())
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ROOT_COLUMNS} FROM roots WHERE 1 = 1{active} \
                     ORDER BY added_at, sha256_fingerprint"
                ))
                .fetch_all(self.database.pool())
                .await
            }
        }
        .map_err(map_sqlx_error)?;
        let mut roots: Vec<StoredRoot> =
            rows.iter().map(root_from_row).collect::<Result<_, _>>()?;
        let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in sqlx::query("SELECT sha256_fingerprint, root_type FROM root_roles")
            .fetch_all(self.database.pool())
            .await
            .map_err(map_sqlx_error)?
        {
            let fingerprint: String = row.try_get(0).map_err(map_sqlx_error)?;
            let role: String = row.try_get(1).map_err(map_sqlx_error)?;
            roles.entry(fingerprint).or_default().push(role);
        }
        for root in &mut roots {
            let of_root = roles.remove(&root.sha256_fingerprint).unwrap_or_default();
            root.root_types = order_roles(&root.root_type, of_root);
        }
        Ok(roots)
    }

    async fn append_event(
        transaction: &mut Transaction<'_, Any>,
        event_type: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<(), PncError> {
        sqlx::query(
            "INSERT INTO root_events (event_type, sha256_fingerprint, occurred_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(event_type)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut **transaction)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    async fn insert_known_ca_in(
        transaction: &mut Transaction<'_, Any>,
        ca: &InspectedCa,
        source: CaSource,
        now: i64,
    ) -> Result<(), PncError> {
        sqlx::query(
            "INSERT INTO known_cas (sha256_fingerprint, der, source, name_sha1, name_sha256, \
             key_sha1, key_sha256, subject_key_identifier, not_after, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (sha256_fingerprint) DO NOTHING",
        )
        .bind(&ca.sha256_fingerprint)
        .bind(ca.der())
        .bind(source.name())
        .bind(&ca.name_sha1)
        .bind(&ca.name_sha256)
        .bind(&ca.key_sha1)
        .bind(&ca.key_sha256)
        .bind(&ca.subject_key_identifier)
        .bind(ca.not_after)
        .bind(now)
        .execute(&mut **transaction)
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// Adds a checked root with `roles` (the first is its primary type) and `ctl_tags`, or
    /// brings an existing one up to date: a revoked root comes back, new roles and tags are
    /// added. Writes `root.cert.added` when the pool changed for its readers.
    pub async fn put_root(
        &self,
        root: &InspectedCa,
        roles: &[&str],
        ctl_tags: &[String],
        now: i64,
    ) -> Result<(StoredRoot, RootChange), PncError> {
        let Some(first_role) = roles.first() else {
            return Err(PncError::invalid("a root needs a root type"));
        };
        let (_guard, mut transaction) = self.begin_write().await?;
        let fingerprint = root.sha256_fingerprint.as_str();
        let existing = Self::root_by_fingerprint_in(&mut transaction, fingerprint).await?;
        let mut change = RootChange::Unchanged;
        match &existing {
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let mut tags = ctl_tags.to_vec();
                tags.sort();
                tags.dedup();
                sqlx::query(
                    "INSERT INTO roots (sha256_fingerprint, root_type, der, subject, serial_hex, \
                     not_before, not_after, ctl_tags, added_at, id, revoked, expired, changed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11)",
                )
                .bind(fingerprint)
                .bind(*first_role)
                .bind(root.der())
                .bind(&root.distinguished_name)
                .bind(root.certificate.serial_hex())
                .bind(root.not_before)
                .bind(root.not_after)
                .bind(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".to_string()))
                .bind(now)
                .bind(&id)
                .bind(now)
                .execute(&mut *transaction)
                .await
                .map_err(map_sqlx_error)?;
                change = RootChange::Added;
            }
            Some(stored) => {
                let mut tags = stored.ctl_tags.clone();
                tags.extend(ctl_tags.iter().cloned());
                tags.sort();
                tags.dedup();
                if stored.revoked || stored.expired || tags != stored.ctl_tags {
                    sqlx::query(
                        "UPDATE roots SET revoked = 0, expired = 0, ctl_tags = $1, changed_at = $2 \
                         WHERE sha256_fingerprint = $3",
                    )
                    .bind(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".to_string()))
                    .bind(now)
                    .bind(fingerprint)
                    .execute(&mut *transaction)
                    .await
                    .map_err(map_sqlx_error)?;
                }
                if stored.revoked || stored.expired {
                    change = RootChange::Added;
                }
            }
        }
        let held: Vec<String> = existing
            .as_ref()
            .map(|stored| stored.root_types.clone())
            .unwrap_or_default();
        for role in roles {
            if held.iter().any(|held| held == role) {
                continue;
            }
            sqlx::query(
                "INSERT INTO root_roles (sha256_fingerprint, root_type) VALUES ($1, $2) \
                 ON CONFLICT (sha256_fingerprint, root_type) DO NOTHING",
            )
            .bind(fingerprint)
            .bind(*role)
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
            change = RootChange::Added;
        }
        Self::insert_known_ca_in(&mut transaction, root, CaSource::RootPool, now).await?;
        // A CA known before as an intermediate of another chain is now a pool root.
        sqlx::query("UPDATE known_cas SET source = $1 WHERE sha256_fingerprint = $2")
            .bind(CaSource::RootPool.name())
            .bind(fingerprint)
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
        if change == RootChange::Added {
            Self::append_event(&mut transaction, EVENT_ROOT_ADDED, fingerprint, now).await?;
        }
        let stored = Self::root_by_fingerprint_in(&mut transaction, fingerprint)
            .await?
            .ok_or_else(|| PncError::internal("a root just written is missing"))?;
        transaction.commit().await.map_err(map_sqlx_error)?;
        Ok((stored, change))
    }

    /// Retires an active root: it leaves the pool's listings and the known-CA index, and
    /// `root.cert.revoked` is written. `None` when no active root has this ID.
    pub async fn revoke_root(
        &self,
        id_or_fingerprint: &str,
        now: i64,
    ) -> Result<Option<StoredRoot>, PncError> {
        let (_guard, mut transaction) = self.begin_write().await?;
        let fingerprint = sqlx::query(
            "SELECT sha256_fingerprint FROM roots WHERE (id = $1 OR sha256_fingerprint = $2) \
             AND revoked = 0",
        )
        .bind(id_or_fingerprint)
        .bind(id_or_fingerprint)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()
        .map_err(map_sqlx_error)?;
        let Some(fingerprint) = fingerprint else {
            return Ok(None);
        };
        let updated = sqlx::query(
            "UPDATE roots SET revoked = 1, changed_at = $1 \
             WHERE sha256_fingerprint = $2 AND revoked = 0",
        )
        .bind(now)
        .bind(&fingerprint)
        .execute(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?;
        if updated.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM known_cas WHERE sha256_fingerprint = $1 AND source = $2")
            .bind(&fingerprint)
            .bind(CaSource::RootPool.name())
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
        Self::append_event(&mut transaction, EVENT_ROOT_REVOKED, &fingerprint, now).await?;
        let stored = Self::root_by_fingerprint_in(&mut transaction, &fingerprint).await?;
        transaction.commit().await.map_err(map_sqlx_error)?;
        Ok(stored)
    }

    /// Marks every active root whose notAfter is before `now` as expired and writes one
    /// `root.cert.expired` per root. The conditional UPDATE makes this safe with several
    /// replicas: whichever replica flips the flag writes the event, the others update no
    /// row. Returns the fingerprints this call expired.
    pub async fn expire_due(&self, now: i64) -> Result<Vec<String>, PncError> {
        let due = sqlx::query(
            "SELECT sha256_fingerprint FROM roots \
             WHERE expired = 0 AND revoked = 0 AND not_after < $1 \
             ORDER BY not_after LIMIT 100",
        )
        .bind(now)
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let mut expired = Vec::new();
        for row in due {
            let fingerprint: String = row.try_get(0).map_err(map_sqlx_error)?;
            let (_guard, mut transaction) = self.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE roots SET expired = 1, changed_at = $1 \
                 WHERE sha256_fingerprint = $2 AND expired = 0 AND revoked = 0 \
                 AND not_after < $3",
            )
            .bind(now)
            .bind(&fingerprint)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
            if updated.rows_affected() == 1 {
                Self::append_event(&mut transaction, EVENT_ROOT_EXPIRED, &fingerprint, now).await?;
                expired.push(fingerprint);
            }
            transaction.commit().await.map_err(map_sqlx_error)?;
        }
        Ok(expired)
    }

    /// Events with a sequence above `after_sequence`, oldest first, at most `limit`.
    pub async fn list_events(
        &self,
        after_sequence: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, PncError> {
        let mut connection = self.database.connection().await?;
        let rows = sqlx::query(
            "SELECT sequence, event_type, sha256_fingerprint, occurred_at FROM root_events \
             WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(after_sequence)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await
        .map_err(map_sqlx_error)?;
        let mut roots: BTreeMap<String, StoredRoot> = BTreeMap::new();
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let fingerprint: String = row.try_get(2).map_err(map_sqlx_error)?;
            let root = match roots.get(&fingerprint) {
                Some(root) => root.clone(),
                None => {
                    let root = Self::root_by_fingerprint_in(&mut connection, &fingerprint)
                        .await?
                        .ok_or_else(|| PncError::internal("an event names a missing root"))?;
                    roots.insert(fingerprint, root.clone());
                    root
                }
            };
            events.push(StoredEvent {
                sequence: row.try_get(0).map_err(map_sqlx_error)?,
                event_type: row.try_get(1).map_err(map_sqlx_error)?,
                root,
                occurred_at: row.try_get(3).map_err(map_sqlx_error)?,
            });
        }
        Ok(events)
    }

    /// Adds a CA to the index (or upgrades its source, never downgrading it).
    pub async fn put_known_ca(
        &self,
        ca: &InspectedCa,
        source: CaSource,
        now: i64,
    ) -> Result<StoredKnownCa, PncError> {
        let (_guard, mut transaction) = self.begin_write().await?;
        Self::insert_known_ca_in(&mut transaction, ca, source, now).await?;
        let row = sqlx::query(&format!(
            "SELECT {KNOWN_CA_COLUMNS} FROM known_cas k LEFT JOIN roots r \
             ON r.sha256_fingerprint = k.sha256_fingerprint WHERE k.sha256_fingerprint = $1"
        ))
        .bind(&ca.sha256_fingerprint)
        .fetch_one(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?;
        let mut stored = known_ca_from_row(&row)?;
        if source > stored.source {
            sqlx::query("UPDATE known_cas SET source = $1 WHERE sha256_fingerprint = $2")
                .bind(source.name())
                .bind(&ca.sha256_fingerprint)
                .execute(&mut *transaction)
                .await
                .map_err(map_sqlx_error)?;
            stored.source = source;
        }
        transaction.commit().await.map_err(map_sqlx_error)?;
        Ok(stored)
    }

    async fn find_known_cas(
        &self,
        condition: &str,
        first: &str,
        second: Option<&str>,
    ) -> Result<Vec<StoredKnownCa>, PncError> {
        let sql = format!(
            "SELECT {KNOWN_CA_COLUMNS} FROM known_cas k LEFT JOIN roots r \
             ON r.sha256_fingerprint = k.sha256_fingerprint WHERE {condition} \
             ORDER BY k.added_at, k.sha256_fingerprint LIMIT {MAX_ISSUER_MATCHES}"
        );
        let mut query = sqlx::query(&sql).bind(first);
        if let Some(second) = second {
            query = query.bind(second);
        }
        let rows = query
            .fetch_all(self.database.pool())
            .await
            .map_err(map_sqlx_error)?;
        rows.iter().map(known_ca_from_row).collect()
    }

    /// CAs matching an OCSP CertID's issuer hashes.
    pub async fn find_by_cert_id(
        &self,
        hashes: CertIdHashes<'_>,
    ) -> Result<Vec<StoredKnownCa>, PncError> {
        match hashes {
            CertIdHashes::Sha1 { name, key } => {
                self.find_known_cas("k.key_sha1 = $1 AND k.name_sha1 = $2", key, Some(name))
                    .await
            }
            CertIdHashes::Sha256 { name, key } => {
                self.find_known_cas("k.key_sha256 = $1 AND k.name_sha256 = $2", key, Some(name))
                    .await
            }
        }
    }

    /// CAs with this subjectKeyIdentifier (upper-case hex).
    pub async fn find_by_subject_key_identifier(
        &self,
        ski_hex: &str,
    ) -> Result<Vec<StoredKnownCa>, PncError> {
        self.find_known_cas("k.subject_key_identifier = $1", ski_hex, None)
            .await
    }

    /// CAs whose subject Name DER has this SHA-256 (upper-case hex).
    pub async fn find_by_subject_name_sha256(
        &self,
        name_sha256: &str,
    ) -> Result<Vec<StoredKnownCa>, PncError> {
        self.find_known_cas("k.name_sha256 = $1", name_sha256, None)
            .await
    }

    /// Every known CA, oldest first, at most [`MAX_KNOWN_CAS_LISTED`].
    pub async fn list_known_cas(&self) -> Result<Vec<StoredKnownCa>, PncError> {
        let rows = sqlx::query(&format!(
            "SELECT {KNOWN_CA_COLUMNS} FROM known_cas k LEFT JOIN roots r \
             ON r.sha256_fingerprint = k.sha256_fingerprint \
             ORDER BY k.added_at, k.sha256_fingerprint LIMIT {MAX_KNOWN_CAS_LISTED}"
        ))
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        rows.iter().map(known_ca_from_row).collect()
    }
}
