//! The audit log: who wrote what and when, with digests of the record before and after,
//! hash-chained so that a changed, removed or reordered entry is detectable
//! (`pnc audit verify`).
//!
//! Every registry write runs in an [`AuditedTransaction`]. Its first statement updates the
//! single `audit_head` row, which (a) takes the row lock on PostgreSQL, so appends from
//! several replicas are serialised and the chain order is the commit order, and (b) makes
//! the SQLite transaction a writer from the start, so two writers wait on each other
//! (busy_timeout) instead of failing to upgrade a read lock.

use pnc_common::PncError;
use pnc_common::db::{Database, map_sqlx_error, unix_now};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use crate::access::Caller;

/// The `previous_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 of a record's bytes, for the before/after columns.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub sequence: i64,
    pub occurred_at: i64,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub subject: String,
    pub before_sha256: String,
    pub after_sha256: String,
    pub previous_hash: String,
    pub entry_hash: String,
}

impl AuditEntry {
    /// SHA-256 over every field but `entry_hash`, each length-prefixed so that no two
    /// different entries share an encoding.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"pnc-audit-v1");
        hasher.update(self.sequence.to_be_bytes());
        hasher.update(self.occurred_at.to_be_bytes());
        for field in [
            &self.actor,
            &self.actor_role,
            &self.action,
            &self.subject,
            &self.before_sha256,
            &self.after_sha256,
            &self.previous_hash,
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// A write transaction that appends audit entries as it goes.
pub struct AuditedTransaction<'c> {
    pub transaction: Transaction<'c, Any>,
    last_sequence: i64,
    last_hash: String,
    actor: String,
    actor_role: String,
    appended: bool,
}

impl AuditedTransaction<'static> {
    /// Begins a transaction and takes the audit head (the lock row).
    pub async fn begin(
        database: &Database,
        caller: &Caller,
    ) -> Result<AuditedTransaction<'static>, PncError> {
        let mut transaction = database.pool().begin().await.map_err(map_sqlx_error)?;
        let head = sqlx::query(
            "UPDATE audit_head SET sequence = sequence WHERE id = 1 RETURNING sequence, entry_hash",
        )
        .fetch_one(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?;
        let (actor, actor_role) = caller.actor();
        Ok(AuditedTransaction {
            last_sequence: head.try_get("sequence").map_err(map_sqlx_error)?,
            last_hash: head.try_get("entry_hash").map_err(map_sqlx_error)?,
            transaction,
            actor: actor.to_string(),
            actor_role: actor_role.to_string(),
            appended: false,
        })
    }
}

impl AuditedTransaction<'_> {
    pub fn connection(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.transaction
    }

    /// Appends one entry: `action` on `subject`, with the record's bytes before and after
    /// (`None` when it did not exist / no longer exists).
    pub async fn record(
        &mut self,
        action: &str,
        subject: &str,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
    ) -> Result<(), PncError> {
        let mut entry = AuditEntry {
            sequence: self.last_sequence + 1,
            occurred_at: unix_now(),
            actor: self.actor.clone(),
            actor_role: self.actor_role.clone(),
            action: action.to_string(),
            subject: subject.to_string(),
            before_sha256: before.map(digest).unwrap_or_default(),
            after_sha256: after.map(digest).unwrap_or_default(),
            previous_hash: self.last_hash.clone(),
            entry_hash: String::new(),
        };
        entry.entry_hash = entry.compute_hash();
        sqlx::query(
            "INSERT INTO audit_log (sequence, occurred_at, actor, actor_role, action, subject, \
             before_sha256, after_sha256, previous_hash, entry_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.sequence)
        .bind(entry.occurred_at)
        .bind(&entry.actor)
        .bind(&entry.actor_role)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.before_sha256)
        .bind(&entry.after_sha256)
        .bind(&entry.previous_hash)
        .bind(&entry.entry_hash)
        .execute(&mut *self.transaction)
        .await
        .map_err(map_sqlx_error)?;
        self.last_sequence = entry.sequence;
        self.last_hash = entry.entry_hash;
        self.appended = true;
        Ok(())
    }

    /// Moves the head to the last entry and commits everything at once.
    pub async fn commit(mut self) -> Result<(), PncError> {
        if self.appended {
            sqlx::query("UPDATE audit_head SET sequence = $1, entry_hash = $2 WHERE id = 1")
                .bind(self.last_sequence)
                .bind(&self.last_hash)
                .execute(&mut *self.transaction)
                .await
                .map_err(map_sqlx_error)?;
        }
        self.transaction.commit().await.map_err(map_sqlx_error)
    }
}

/// What `pnc audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry chains to the previous one and the head names the last.
    Intact { entries: u64 },
    /// The first entry that does not check out (0: the head), and why.
    Broken { sequence: i64, reason: String },
}

const VERIFY_PAGE: i64 = 1000;

/// Walks the whole chain in pages (bounded memory) and names the first broken entry.
pub async fn verify(database: &Database) -> Result<Verdict, PncError> {
    let mut expected_sequence = 1i64;
    let mut previous_hash = GENESIS_HASH.to_string();
    let mut entries = 0u64;
    loop {
        let rows = sqlx::query(
            "SELECT sequence, occurred_at, actor, actor_role, action, subject, before_sha256, \
             after_sha256, previous_hash, entry_hash FROM audit_log \
             WHERE sequence >= $1 ORDER BY sequence LIMIT $2",
        )
        .bind(expected_sequence)
        .bind(VERIFY_PAGE)
        .fetch_all(database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let page_len = rows.len();
        for row in rows {
            let entry = AuditEntry {
                sequence: row.try_get("sequence").map_err(map_sqlx_error)?,
                occurred_at: row.try_get("occurred_at").map_err(map_sqlx_error)?,
                actor: row.try_get("actor").map_err(map_sqlx_error)?,
                actor_role: row.try_get("actor_role").map_err(map_sqlx_error)?,
                action: row.try_get("action").map_err(map_sqlx_error)?,
                subject: row.try_get("subject").map_err(map_sqlx_error)?,
                before_sha256: row.try_get("before_sha256").map_err(map_sqlx_error)?,
                after_sha256: row.try_get("after_sha256").map_err(map_sqlx_error)?,
                previous_hash: row.try_get("previous_hash").map_err(map_sqlx_error)?,
                entry_hash: row.try_get("entry_hash").map_err(map_sqlx_error)?,
            };
            if entry.sequence != expected_sequence {
                return Ok(Verdict::Broken {
                    sequence: expected_sequence,
                    reason: format!(
                        "entry {expected_sequence} is missing (next stored entry is {})",
                        entry.sequence
                    ),
                });
            }
            if entry.previous_hash != previous_hash {
                return Ok(Verdict::Broken {
                    sequence: entry.sequence,
                    reason: "its previous_hash is not the hash of the entry before it".into(),
                });
            }
            if entry.compute_hash() != entry.entry_hash {
                return Ok(Verdict::Broken {
                    sequence: entry.sequence,
                    reason: "its contents do not match its entry_hash (the row was changed)".into(),
                });
            }
            previous_hash = entry.entry_hash;
            expected_sequence += 1;
            entries += 1;
        }
        if page_len < VERIFY_PAGE as usize {
            break;
        }
    }
    let head = sqlx::query("SELECT sequence, entry_hash FROM audit_head WHERE id = 1")
        .fetch_one(database.pool())
        .await
        .map_err(map_sqlx_error)?;
    let head_sequence: i64 = head.try_get("sequence").map_err(map_sqlx_error)?;
    let head_hash: String = head.try_get("entry_hash").map_err(map_sqlx_error)?;
    if head_sequence != expected_sequence - 1 || head_hash != previous_hash {
        return Ok(Verdict::Broken {
            sequence: expected_sequence,
            reason: format!(
                "the head names entry {head_sequence}, but the chain ends at entry {} \
                 (entries were removed from the end, or the head was changed)",
                expected_sequence - 1
            ),
        });
    }
    Ok(Verdict::Intact { entries })
}
