//! The queries the settings domain runs, in one place: a user's rows and their masked list, the
//! per-user write lock, writes and deletes, the purge tombstone, the encryption counter and the
//! reveal audit log. The domain ([`crate::service`], [`crate::reveal`]) decides; these only read
//! and write.

use super::{key_usage, purged_users, reveal_audit, values};
use crate::crypto;
use crate::error::SettingsError;
use latchkey_common::clock::rfc3339;
use latchkey_common::hot_reads::{CoalescedRead, HotReads};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::BTreeSet;

/// A setting as the browser may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub name: String,
    pub masked: String,
    pub length: i64,
    pub updated_at: i64,
}

impl Masked {
    /// The masked view of a stored row (never opens the value).
    pub fn of(row: &values::Model) -> Self {
        Masked {
            name: row.name.clone(),
            masked: crypto::masked(row.length, &row.last4),
            length: row.length,
            updated_at: row.updated_at,
        }
    }

    /// RFC 3339 of `updated_at`.
    pub fn updated_at_rfc3339(&self) -> String {
        rfc3339(self.updated_at)
    }
}

/// Every stored row of `user_id`, sorted by name byte-wise.
pub async fn rows_of<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<Vec<values::Model>, SettingsError> {
    let mut rows = values::Entity::find()
        .filter(values::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The masked list of `user_id`'s settings. Sorted here, byte-wise, so SQLite and PostgreSQL
/// (locale collation) answer the same order. Selects only what the mask needs: the ciphertext
/// (up to 16 KiB a value) is never read for a list.
pub async fn masked_list<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<Vec<Masked>, SettingsError> {
    let mut rows: Vec<(String, i64, String, i64)> = values::Entity::find()
        .select_only()
        .columns([
            values::Column::Name,
            values::Column::Length,
            values::Column::Last4,
            values::Column::UpdatedAt,
        ])
        .filter(values::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(rows.into_iter().map(masked_row).collect())
}

/// A user's masked rows (`user_id, name, length, last4, updated_at`) through the hot-read
/// connections, one user (`$1`) or many (`= ANY($1)`); concurrent reads share one query on
/// PostgreSQL.
pub type HotMaskedRows = CoalescedRead<(String, String, i64, String, i64)>;

/// [`HotMaskedRows`] over `hot`.
pub fn hot_masked_rows(hot: HotReads) -> HotMaskedRows {
    CoalescedRead::new(
        hot,
        "SELECT user_id, name, length, last4, updated_at FROM setting_values WHERE user_id = $1",
        "SELECT user_id, name, length, last4, updated_at FROM setting_values \
         WHERE user_id = ANY($1)",
        |row| &row.0,
    )
}

/// `user_id`'s masked list through [`HotMaskedRows`], sorted by name.
pub async fn masked_list_hot(
    hot: &HotMaskedRows,
    user_id: &str,
) -> Result<Vec<Masked>, SettingsError> {
    let mut rows = hot.fetch(user_id).await?;
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(rows
        .into_iter()
        .map(|(_, name, length, last4, updated_at)| masked_row((name, length, last4, updated_at)))
        .collect())
}

fn masked_row((name, length, last4, updated_at): (String, i64, String, i64)) -> Masked {
    Masked {
        masked: crypto::masked(length, &last4),
        name,
        length,
        updated_at,
    }
}

/// One stored row, if it exists.
pub async fn find(
    db: &DatabaseConnection,
    user_id: &str,
    name: &str,
) -> Result<Option<values::Model>, SettingsError> {
    Ok(
        values::Entity::find_by_id((user_id.to_owned(), name.to_owned()))
            .one(db)
            .await?,
    )
}

/// Starts a write transaction that serialises writers of one user, so the count limit holds
/// under concurrent batches: `BEGIN IMMEDIATE` on SQLite (also avoids SQLITE_BUSY on lock
/// upgrade), a transaction-scoped advisory lock per user on PostgreSQL.
pub async fn begin_user_write(
    db: &DatabaseConnection,
    user_id: &str,
) -> Result<DatabaseTransaction, SettingsError> {
    use sea_orm::{DbBackend, SqliteTransactionMode, Statement, TransactionOptions};
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [user_id.into()],
        ))
        .await?;
    }
    Ok(txn)
}

/// USER_NOT_SYNCED when `user_id` was purged. Called inside the write transaction, after its
/// per-user lock is taken: the purge writes its row under the same lock, so either the write
/// commits first (and the purge then deletes what it wrote) or it sees the row here.
pub async fn refuse_if_purged<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<(), SettingsError> {
    let purged = purged_users::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?;
    if purged.is_some() {
        tracing::info!(%user_id, "write refused: the user was purged");
        return Err(SettingsError::UserPurged(user_id.to_owned()));
    }
    Ok(())
}

/// The names `user_id` holds.
pub async fn names_of<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<BTreeSet<String>, SettingsError> {
    Ok(values::Entity::find()
        .select_only()
        .column(values::Column::Name)
        .filter(values::Column::UserId.eq(user_id))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Deletes `names` of `user_id` (in chunks, to stay under the backends' parameter limits).
pub async fn delete_names<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    names: &[String],
) -> Result<(), SettingsError> {
    for chunk in names.chunks(100) {
        values::Entity::delete_many()
            .filter(values::Column::UserId.eq(user_id))
            .filter(values::Column::Name.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Inserts `rows`, replacing the sealed value and its masking columns of names already stored.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    rows: Vec<values::ActiveModel>,
) -> Result<(), SettingsError> {
    if rows.is_empty() {
        return Ok(());
    }
    values::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([values::Column::UserId, values::Column::Name])
                .update_columns([
                    values::Column::Ciphertext,
                    values::Column::KeyId,
                    values::Column::Length,
                    values::Column::Last4,
                    values::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Deletes one setting; how many rows went (0 or 1).
pub async fn delete_one(
    db: &DatabaseConnection,
    user_id: &str,
    name: &str,
) -> Result<u64, SettingsError> {
    let result = values::Entity::delete_many()
        .filter(values::Column::UserId.eq(user_id))
        .filter(values::Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Records `user_id` as purged at `now` (once) and deletes all their values, inside `txn`; how
/// many values went.
pub async fn purge_user(
    txn: &DatabaseTransaction,
    user_id: &str,
    now: i64,
) -> Result<u64, SettingsError> {
    let tombstone = purged_users::ActiveModel {
        user_id: Set(user_id.to_owned()),
        purged_at: Set(now),
    };
    purged_users::Entity::insert(tombstone)
        .on_conflict(
            OnConflict::column(purged_users::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    let result = values::Entity::delete_many()
        .filter(values::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(result.rows_affected)
}

/// Adds `count` to a key's encryption counter.
pub async fn record_encryptions<C: ConnectionTrait>(
    db: &C,
    key_id: &str,
    count: i64,
) -> Result<(), SettingsError> {
    if count == 0 {
        return Ok(());
    }
    let row = key_usage::ActiveModel {
        key_id: Set(key_id.to_owned()),
        encryptions: Set(count),
    };
    key_usage::Entity::insert(row)
        .on_conflict(
            OnConflict::column(key_usage::Column::KeyId)
                .value(
                    key_usage::Column::Encryptions,
                    Expr::col((key_usage::Entity, key_usage::Column::Encryptions)).add(count),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One reveal-audit row: who read which of whose values, when, in which request. Never the value.
pub fn audit_row(
    caller: &str,
    user_id: &str,
    name: &str,
    at: i64,
    request_id: &str,
) -> reveal_audit::ActiveModel {
    reveal_audit::ActiveModel {
        caller: Set(caller.to_owned()),
        user_id: Set(user_id.to_owned()),
        name: Set(name.to_owned()),
        revealed_at: Set(at),
        request_id: Set(request_id.to_owned()),
        ..Default::default()
    }
}

/// Writes audit rows, all or none.
pub async fn insert_audit(
    db: &DatabaseConnection,
    rows: Vec<reveal_audit::ActiveModel>,
) -> Result<(), SettingsError> {
    match rows.len() {
        0 => Ok(()),
        1 => {
            let row = rows.into_iter().next().expect("one row");
            reveal_audit::Entity::insert(row)
                .exec_without_returning(db)
                .await?;
            Ok(())
        }
        _ => {
            let txn = db.begin().await?;
            reveal_audit::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            txn.commit().await?;
            Ok(())
        }
    }
}

/// Up to `limit` audit entries, newest first, optionally of one user and older than `before`.
pub async fn audit_entries(
    db: &DatabaseConnection,
    user_id: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<reveal_audit::Model>, SettingsError> {
    let mut query = reveal_audit::Entity::find();
    if !user_id.is_empty() {
        query = query.filter(reveal_audit::Column::UserId.eq(user_id));
    }
    if let Some(before) = before {
        query = query.filter(reveal_audit::Column::Id.lt(before));
    }
    Ok(query
        .order_by_desc(reveal_audit::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
