//! Master key operations over the store: rows and encryptions per key (`keys status`), the
//! start-up check that every stored key id is configured, and online re-encryption under the
//! active key (`keys rotate-encryption`) — batched, resumable, idempotent, and compare-and-swap on
//! the old ciphertext so a concurrent edit is never overwritten.

use crate::config::MasterKeys;
use crate::crypto;
use crate::store::{key_usage, values};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::BTreeMap;

/// Random 96-bit nonces keep AES-GCM's collision risk under 2^-32 for at most 2^32
/// encryptions under one key (NIST SP 800-38D §8.3).
pub const NONCE_BUDGET: i64 = 1 << 32;
/// `keys status` warns from here on: rotate to a new key well before the budget.
pub const NONCE_WARNING: i64 = 1 << 31;
/// Rows re-encrypted per batch by default.
pub const DEFAULT_BATCH: u64 = 100;

/// One master key id as the database and the configuration see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub key_id: String,
    /// Rows sealed with this key.
    pub rows: i64,
    /// Values this key has sealed so far (every write and re-encryption).
    pub encryptions: i64,
    pub configured: bool,
    pub active: bool,
}

impl KeyStatus {
    /// True when this key has sealed enough values to warrant a rotation.
    pub fn nonce_warning(&self) -> bool {
        self.encryptions >= NONCE_WARNING
    }

    /// A configured, inactive key guarding no rows may be removed from the configuration.
    pub fn removable(&self) -> bool {
        !self.active && self.rows == 0
    }
}

/// Rows and encryptions per key id: every configured key, plus any stored id not configured.
pub async fn status<C: ConnectionTrait>(
    db: &C,
    keys: &MasterKeys,
) -> Result<Vec<KeyStatus>, DbErr> {
    let rows = rows_per_key(db).await?;
    let usage: BTreeMap<String, i64> = key_usage::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.key_id, u.encryptions))
        .collect();
    let active = keys.active().id.clone();
    let mut ids: Vec<String> = keys.ids().map(str::to_owned).collect();
    for id in rows.keys().chain(usage.keys()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| KeyStatus {
            rows: rows.get(&id).copied().unwrap_or(0),
            encryptions: usage.get(&id).copied().unwrap_or(0),
            configured: keys.get(&id).is_some(),
            active: id == active,
            key_id: id,
        })
        .collect())
}

/// Stored rows per key id.
pub async fn rows_per_key<C: ConnectionTrait>(db: &C) -> Result<BTreeMap<String, i64>, DbErr> {
    let counts: Vec<(String, i64)> = values::Entity::find()
        .select_only()
        .column(values::Column::KeyId)
        .column_as(values::Column::Name.count(), "rows")
        .group_by(values::Column::KeyId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(counts.into_iter().collect())
}

/// Why the service refuses to start: stored rows sealed with keys that are not configured.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "{}; add each missing key back to {} (after the active one) — a key may be removed only once `latchkey keys status` shows it guards 0 rows",
        describe(.0),
        latchkey_common::config::ENCRYPTION_KEYS.env()
    )]
    Unconfigured(Vec<(String, i64)>),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn describe(missing: &[(String, i64)]) -> String {
    missing
        .iter()
        .map(|(id, rows)| {
            format!("master key {id} is not configured but guards {rows} stored setting(s)")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Publishes rows per key id as the `latchkey_settings_rows_per_key` gauge.
pub async fn publish_key_metrics<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let gauge = &latchkey_common::metrics::global().rows_per_key;
    gauge.reset();
    for (key_id, rows) in rows_per_key(db).await? {
        gauge.with_label_values(&[key_id.as_str()]).set(rows);
    }
    Ok(())
}

/// Refuses when any stored row names a key id that is not configured.
pub async fn check_keys_configured<C: ConnectionTrait>(
    db: &C,
    keys: &MasterKeys,
) -> Result<(), KeyCheckError> {
    let missing: Vec<(String, i64)> = rows_per_key(db)
        .await?
        .into_iter()
        .filter(|(id, _)| keys.get(id).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(KeyCheckError::Unconfigured(missing))
    }
}

/// What a rotation run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Rows now sealed with the active key.
    pub rotated: u64,
    /// Rows changed (or deleted) by a concurrent write between read and swap; left as written.
    pub conflicts: u64,
    /// Rows that failed to open (tampered, or key not configured); left untouched, named in logs.
    pub failed: u64,
    pub batches: u64,
}

/// Re-encrypts every row not under the active key, `batch` rows at a time, while the service
/// keeps serving. Each row is swapped only if its ciphertext is still the one read
/// (`UPDATE … WHERE user_id = ? AND name = ? AND ciphertext = old`). Safe to interrupt and
/// re-run: it resumes with whatever is still under an old key.
pub async fn rotate_encryption(
    db: &DatabaseConnection,
    keys: &MasterKeys,
    batch: u64,
    mut progress: impl FnMut(&RotationReport),
) -> Result<RotationReport, DbErr> {
    let active = keys.active();
    let mut report = RotationReport::default();
    let mut cursor: Option<(String, String)> = None;
    loop {
        let mut query = values::Entity::find().filter(values::Column::KeyId.ne(active.id.as_str()));
        if let Some((user_id, name)) = &cursor {
            query = query.filter(
                Condition::any()
                    .add(values::Column::UserId.gt(user_id.as_str()))
                    .add(
                        Condition::all()
                            .add(values::Column::UserId.eq(user_id.as_str()))
                            .add(values::Column::Name.gt(name.as_str())),
                    ),
            );
        }
        let rows = query
            .order_by_asc(values::Column::UserId)
            .order_by_asc(values::Column::Name)
            .limit(batch.max(1))
            .all(db)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        cursor = Some((last.user_id.clone(), last.name.clone()));
        let mut sealed = Vec::with_capacity(rows.len());
        for row in &rows {
            let opened = keys
                .get(&row.key_id)
                .ok_or(latchkey_common::seal::SealError::Tampered)
                .and_then(|old| crypto::open(old, &row.user_id, &row.name, &row.ciphertext));
            match opened {
                Ok(plain) => {
                    sealed.push((row, crypto::seal(active, &row.user_id, &row.name, &plain)))
                }
                Err(error) => {
                    report.failed += 1;
                    tracing::error!(user_id = %row.user_id, name = %row.name, key_id = %row.key_id, %error, "cannot re-encrypt: the stored value does not open; left as is");
                }
            }
        }
        crate::store::queries::record_encryptions(db, &active.id, sealed.len() as i64)
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        for (row, ciphertext) in sealed {
            if swap(db, row, &active.id, ciphertext).await? {
                report.rotated += 1;
            } else {
                report.conflicts += 1;
            }
        }
        report.batches += 1;
        progress(&report);
    }
    tracing::info!(
        rotated = report.rotated,
        conflicts = report.conflicts,
        failed = report.failed,
        active = %active.id,
        "encryption rotation finished"
    );
    Ok(report)
}

/// Replaces one row's ciphertext and key id only if the row still holds `row.ciphertext`.
/// Answers whether it did.
pub async fn swap<C: ConnectionTrait>(
    db: &C,
    row: &values::Model,
    new_key_id: &str,
    new_ciphertext: Vec<u8>,
) -> Result<bool, DbErr> {
    let result = values::Entity::update_many()
        .col_expr(values::Column::Ciphertext, Expr::value(new_ciphertext))
        .col_expr(values::Column::KeyId, Expr::value(new_key_id))
        .filter(values::Column::UserId.eq(row.user_id.as_str()))
        .filter(values::Column::Name.eq(row.name.as_str()))
        .filter(values::Column::KeyId.eq(row.key_id.as_str()))
        .filter(values::Column::Ciphertext.eq(row.ciphertext.clone()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
