//! The settings domain: list, merge, replace, import, delete, purge, reveal and the reveal audit,
//! over the store and the master keys. Knows nothing of gRPC: the adapter in [`crate::grpc`]
//! verifies the token, decodes, calls and maps errors.

use crate::budget::Budget;
use crate::config::MasterKeys;
use crate::crypto;
use crate::error::{SettingsError, shown, violation};
use crate::keyring::KeyRing;
use crate::store::{key_usage, purged_users, reveal_audit, values};
use latchkey_common::clock::{SharedClock, rfc3339};
use latchkey_proto::{Violation, fit_violations};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Limits from DESIGN.md §4a.
pub mod limits {
    /// Longest setting name, in characters.
    pub const MAX_NAME_CHARS: usize = 128;
    /// Largest value, in bytes (UTF-8).
    pub const MAX_VALUE_BYTES: usize = 16 * 1024;
    /// Most settings one user may hold (checked on the resulting set).
    pub const MAX_SETTINGS: usize = 200;
    /// Largest pasted `.env`, in bytes.
    pub const MAX_IMPORT_BYTES: usize = 256 * 1024;
    /// Largest audit page.
    pub const MAX_AUDIT_PAGE: u64 = 500;
    /// Audit page when none is asked for.
    pub const DEFAULT_AUDIT_PAGE: u64 = 50;
}

/// Who is calling, from a verified token (the one definition, in latchkey-client).
pub use latchkey_client::Caller;
/// Scopes a service token needs: to read plaintext, to delete a user's data (auth holds it), to
/// read the reveal audit log. Defined once, in the contract crate.
pub use latchkey_proto::scopes::{
    SETTINGS_AUDIT as AUDIT_SCOPE, SETTINGS_PURGE as PURGE_SCOPE, SETTINGS_REVEAL as REVEAL_SCOPE,
};

/// One entry of a batch: a value to set, or `None` to delete. Debug never shows the value.
pub struct Change {
    pub name: String,
    pub value: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("name", &self.name)
            .field("deletes", &self.value.is_none())
            .finish()
    }
}

/// A setting as the browser may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub name: String,
    pub masked: String,
    pub length: i64,
    pub updated_at: i64,
}

impl Masked {
    fn of(row: &values::Model) -> Self {
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

/// How an import combines with what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Add and change; keep settings the file does not name.
    #[default]
    Merge,
    /// The file becomes the whole set.
    Replace,
}

/// A non-fatal remark about one imported line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    pub line: i64,
    pub name: String,
    pub message: String,
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    pub applied: bool,
    pub added: Vec<String>,
    /// Names the file sets that were stored with another value. A dry run compares no values:
    /// it lists every name the file sets that is stored ("would be replaced"), so a preview never
    /// answers whether a guessed value is the stored one.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Names whose stored value already equals the file's (left as they are). Always empty for a
    /// dry run.
    pub unchanged: Vec<String>,
    pub warnings: Vec<ImportWarning>,
    /// The resulting list (for a dry run: what it would be).
    pub settings: Vec<Masked>,
}

/// One plaintext value handed to an authorised service; zeroed on drop, Debug shows no value.
pub struct Revealed {
    pub name: String,
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One page of the reveal audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<reveal_audit::Model>,
    /// Empty when this is the last page.
    pub next_page_token: String,
}

/// The settings domain's state.
pub struct SettingsCore {
    db: DatabaseConnection,
    keys: Arc<KeyRing>,
    clock: SharedClock,
}

impl SettingsCore {
    /// Builds the core over a migrated database, with master keys that never change.
    pub fn new(db: DatabaseConnection, keys: MasterKeys, clock: SharedClock) -> Self {
        Self::with_keyring(db, Arc::new(KeyRing::fixed(keys)), clock)
    }

    /// Builds the core over a migrated database, with master keys that may be reloaded.
    pub fn with_keyring(db: DatabaseConnection, keys: Arc<KeyRing>, clock: SharedClock) -> Self {
        SettingsCore { db, keys, clock }
    }

    /// The database, for readiness checks and tools.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The caller's masked settings, by name.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        list_rows(&self.db, user_id).await
    }

    /// Merges a batch: values set, `None` deletes. Atomic: one bad entry changes nothing.
    pub async fn patch(
        &self,
        caller: &Caller,
        changes: Vec<Change>,
    ) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        check_batch(&changes)?;
        let mut sets = BTreeMap::new();
        let mut deletes = BTreeSet::new();
        for change in changes {
            match change.value {
                Some(value) => {
                    sets.insert(change.name, value);
                }
                None => {
                    deletes.insert(change.name);
                }
            }
        }
        self.write(user_id, sets, Deletes::Names(deletes)).await
    }

    /// Replaces the caller's whole set with the batch (entries without a value are left out).
    pub async fn replace(
        &self,
        caller: &Caller,
        changes: Vec<Change>,
    ) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        check_batch(&changes)?;
        let sets: BTreeMap<String, Zeroizing<String>> = changes
            .into_iter()
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .collect();
        self.write(user_id, sets, Deletes::AllOthers).await
    }

    /// Deletes one setting; NOT_FOUND when it does not exist.
    pub async fn delete(&self, caller: &Caller, name: &str) -> Result<(), SettingsError> {
        let user_id = user_of(caller)?;
        if let Some(problem) = name_problem(name) {
            return Err(SettingsError::Invalid(
                "The setting name is not valid, so no such setting exists.".into(),
                vec![violation("name", problem)],
            ));
        }
        let result = values::Entity::delete_many()
            .filter(values::Column::UserId.eq(user_id))
            .filter(values::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(SettingsError::NotFound(name.to_owned()));
        }
        tracing::info!(%user_id, name, "setting deleted");
        Ok(())
    }

    /// Deletes every setting of `user_id` (auth calls this when it deletes the user) and records
    /// the user as purged, in one transaction under the user's write lock: every later write for
    /// them is refused (USER_NOT_SYNCED), even through a token some cache still holds as valid.
    /// The reveal audit log is kept: it records what callers did and holds no values.
    pub async fn purge(&self, caller: &Caller, user_id: &str) -> Result<i64, SettingsError> {
        let client_id = require_scope(caller, PURGE_SCOPE)?;
        if user_id.trim().is_empty() {
            return Err(SettingsError::Invalid(
                "Name the user to purge.".into(),
                vec![violation("user_id", "must not be empty")],
            ));
        }
        let txn = begin_user_write(&self.db, user_id).await?;
        let tombstone = purged_users::ActiveModel {
            user_id: Set(user_id.to_owned()),
            purged_at: Set(self.clock.now()),
        };
        purged_users::Entity::insert(tombstone)
            .on_conflict(
                OnConflict::column(purged_users::Column::UserId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let result = values::Entity::delete_many()
            .filter(values::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(%user_id, caller = %client_id, settings_deleted = result.rows_affected, "user's settings purged");
        Ok(result.rows_affected as i64)
    }

    /// Returns one plaintext value to a service holding `settings:reveal`, after writing the
    /// audit row; a reveal that cannot be audited is refused.
    pub async fn reveal(
        &self,
        caller: &Caller,
        user_id: &str,
        name: &str,
        request_id: &str,
    ) -> Result<Revealed, SettingsError> {
        let client_id = require_scope(caller, REVEAL_SCOPE)?;
        let mut violations = Vec::new();
        if user_id.trim().is_empty() {
            violations.push(violation("user_id", "must not be empty"));
        }
        if name.is_empty() {
            violations.push(violation("name", "must not be empty"));
        }
        if !violations.is_empty() {
            return Err(SettingsError::Invalid(
                "Name the user and the setting to reveal.".into(),
                violations,
            ));
        }
        let row = values::Entity::find_by_id((user_id.to_owned(), name.to_owned()))
            .one(&self.db)
            .await?
            .ok_or_else(|| SettingsError::NotFound(name.to_owned()))?;
        let audit = audit_row(client_id, user_id, name, self.clock.now(), request_id);
        reveal_audit::Entity::insert(audit)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| {
                tracing::error!(%error, %user_id, name, "reveal refused: the audit row could not be written");
                SettingsError::from(error)
            })?;
        let value = self.open_row(&row)?;
        tracing::info!(%user_id, name, caller = %client_id, %request_id, "setting revealed");
        Ok(Revealed {
            name: row.name,
            value,
        })
    }

    /// Every setting of one user as a `.env` text that parses back to the same values, for a
    /// service holding `settings:reveal`. One audit row per setting is written first, all in one
    /// transaction; if they cannot be written nothing is revealed.
    pub async fn export(
        &self,
        caller: &Caller,
        user_id: &str,
        request_id: &str,
    ) -> Result<Zeroizing<String>, SettingsError> {
        let client_id = require_scope(caller, REVEAL_SCOPE)?;
        if user_id.trim().is_empty() {
            return Err(SettingsError::Invalid(
                "Name the user whose settings to export.".into(),
                vec![violation("user_id", "must not be empty")],
            ));
        }
        let mut rows = values::Entity::find()
            .filter(values::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?;
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let opened = rows
            .iter()
            .map(|row| self.open_row(row).map(|value| (row.name.as_str(), value)))
            .collect::<Result<Vec<_>, _>>()?;
        let now = self.clock.now();
        let audit = rows
            .iter()
            .map(|row| audit_row(client_id, user_id, &row.name, now, request_id));
        if !rows.is_empty() {
            let txn = self.db.begin().await?;
            reveal_audit::Entity::insert_many(audit)
                .exec_without_returning(&txn)
                .await?;
            txn.commit().await?;
        }
        tracing::info!(%user_id, settings = rows.len(), caller = %client_id, %request_id, "settings exported");
        Ok(Zeroizing::new(crate::dotenv::write(
            opened.iter().map(|(name, value)| (*name, value.as_str())),
        )))
    }

    /// The reveal audit log, newest first, optionally for one user.
    pub async fn audit(
        &self,
        caller: &Caller,
        user_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<AuditPage, SettingsError> {
        require_scope(caller, AUDIT_SCOPE)?;
        let size = match page_size {
            n if n <= 0 => limits::DEFAULT_AUDIT_PAGE,
            n => std::cmp::min(n as u64, limits::MAX_AUDIT_PAGE),
        };
        let mut query = reveal_audit::Entity::find();
        if !user_id.is_empty() {
            query = query.filter(reveal_audit::Column::UserId.eq(user_id));
        }
        if !page_token.is_empty() {
            let before: i64 = page_token.parse().map_err(|_| {
                SettingsError::Invalid(
                    "The page token is not one this service issued.".into(),
                    vec![violation("page_token", "is not a valid page token")],
                )
            })?;
            query = query.filter(reveal_audit::Column::Id.lt(before));
        }
        let mut entries = query
            .order_by_desc(reveal_audit::Column::Id)
            .limit(size + 1)
            .all(&self.db)
            .await?;
        let next_page_token = if entries.len() as u64 > size {
            entries.truncate(size as usize);
            entries.last().map(|e| e.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(AuditPage {
            entries,
            next_page_token,
        })
    }

    /// Parses a pasted `.env` and applies it (merge or replace), or previews it (`dry_run`), with
    /// no deadline (operator tools). See [`SettingsCore::import_within`].
    pub async fn import(
        &self,
        caller: &Caller,
        text: &str,
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportOutcome, SettingsError> {
        let text = Zeroizing::new(text.to_owned());
        self.import_within(caller, text, mode, dry_run, Budget::unlimited())
            .await
    }

    /// Parses a pasted `.env` and applies it (merge or replace), or previews it (`dry_run`).
    /// Any bad line fails the whole import with one violation per line; nothing is written.
    /// Parsing and planning run on the blocking pool within `budget`: past its deadline the
    /// answer is DEADLINE_EXCEEDED and nothing is written.
    pub async fn import_within(
        &self,
        caller: &Caller,
        text: Zeroizing<String>,
        mode: ImportMode,
        dry_run: bool,
        budget: Budget,
    ) -> Result<ImportOutcome, SettingsError> {
        let user_id = user_of(caller)?;
        if text.len() > limits::MAX_IMPORT_BYTES {
            return Err(SettingsError::Invalid(
                format!(
                    "The .env text is {} bytes; at most {} are accepted.",
                    text.len(),
                    limits::MAX_IMPORT_BYTES
                ),
                vec![violation(
                    "dotenv",
                    format!("must be at most {} bytes", limits::MAX_IMPORT_BYTES),
                )],
            ));
        }
        budget.check()?;
        let crate::import::Checked { entries, warnings } = budget
            .run_blocking(move |stop| crate::import::parse_checked(&text, stop))
            .await?;
        // Merged or replacing, the result holds at least every name of the file.
        if entries.len() > limits::MAX_SETTINGS {
            return Err(too_many(entries.len()));
        }
        budget.check()?;
        let stored = values::Entity::find()
            .filter(values::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?;
        let keys = self.keys.current();
        let crate::import::Plan {
            mut outcome,
            sets,
            stored,
        } = budget
            .run_blocking(move |_| Ok(crate::import::plan(&keys, stored, entries, mode, dry_run)))
            .await?;
        outcome.warnings = warnings;
        let resulting = stored.len() + outcome.added.len() - outcome.removed.len();
        if resulting > limits::MAX_SETTINGS {
            return Err(too_many(resulting));
        }
        if dry_run {
            outcome.settings = preview(&stored, &outcome.removed, &sets, self.clock.now());
            return Ok(outcome);
        }
        budget.check()?;
        let deletes = Deletes::Names(outcome.removed.iter().cloned().collect());
        outcome.settings = self.write(user_id, sets, deletes).await?;
        outcome.applied = true;
        tracing::info!(
            %user_id,
            added = outcome.added.len(),
            changed = outcome.changed.len(),
            removed = outcome.removed.len(),
            unchanged = outcome.unchanged.len(),
            "dotenv imported"
        );
        Ok(outcome)
    }

    /// Opens a stored row with the key it names; a failure is DATA_INTEGRITY, logged (names only).
    fn open_row(&self, row: &values::Model) -> Result<Zeroizing<String>, SettingsError> {
        open_row(&self.keys.current_with(&row.key_id), row)
    }

    /// Seals and writes `sets`, deletes `deletes`, in one transaction; checks the resulting count.
    async fn write(
        &self,
        user_id: &str,
        sets: BTreeMap<String, Zeroizing<String>>,
        deletes: Deletes,
    ) -> Result<Vec<Masked>, SettingsError> {
        let keys = self.keys.current();
        let key = keys.active();
        let now = self.clock.now();
        let rows: Vec<values::ActiveModel> = sets
            .iter()
            .map(|(name, value)| {
                let (length, last4) = crypto::mask_parts(value);
                values::ActiveModel {
                    user_id: Set(user_id.to_owned()),
                    name: Set(name.clone()),
                    ciphertext: Set(crypto::seal(key, user_id, name, value)),
                    key_id: Set(key.id.clone()),
                    length: Set(length),
                    last4: Set(last4),
                    updated_at: Set(now),
                }
            })
            .collect();
        drop(sets);
        // Counted before the write: a nonce drawn for a write that then fails still counts.
        record_encryptions(&self.db, &key.id, rows.len() as i64).await?;
        let txn = begin_user_write(&self.db, user_id).await?;
        refuse_if_purged(&txn, user_id).await?;
        let existing: BTreeSet<String> = values::Entity::find()
            .select_only()
            .column(values::Column::Name)
            .filter(values::Column::UserId.eq(user_id))
            .into_tuple::<String>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let set_names: BTreeSet<String> = rows.iter().map(|r| r.name.clone().unwrap()).collect();
        let removed: Vec<String> = match &deletes {
            Deletes::Names(names) => names
                .iter()
                .filter(|n| existing.contains(*n) && !set_names.contains(*n))
                .cloned()
                .collect(),
            Deletes::AllOthers => existing.difference(&set_names).cloned().collect(),
        };
        let resulting = existing.union(&set_names).count() - removed.len();
        if resulting > limits::MAX_SETTINGS {
            return Err(too_many(resulting));
        }
        for chunk in removed.chunks(100) {
            values::Entity::delete_many()
                .filter(values::Column::UserId.eq(user_id))
                .filter(values::Column::Name.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        if !rows.is_empty() {
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
                .exec_without_returning(&txn)
                .await?;
        }
        let list = list_rows(&txn, user_id).await?;
        txn.commit().await?;
        tracing::info!(%user_id, written = set_names.len(), deleted = removed.len(), key_id = %key.id, "settings written");
        Ok(list)
    }
}

/// Starts a write transaction that serialises writers of one user, so the count limit holds
/// under concurrent batches: `BEGIN IMMEDIATE` on SQLite (also avoids SQLITE_BUSY on lock
/// upgrade), a transaction-scoped advisory lock per user on PostgreSQL.
async fn begin_user_write(
    db: &DatabaseConnection,
    user_id: &str,
) -> Result<sea_orm::DatabaseTransaction, SettingsError> {
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
async fn refuse_if_purged<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), SettingsError> {
    let purged = purged_users::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?;
    if purged.is_some() {
        tracing::info!(%user_id, "write refused: the user was purged");
        return Err(SettingsError::UserPurged(user_id.to_owned()));
    }
    Ok(())
}

/// Opens a stored row with the key it names; a failure is DATA_INTEGRITY, logged (names only).
pub(crate) fn open_row(
    keys: &MasterKeys,
    row: &values::Model,
) -> Result<Zeroizing<String>, SettingsError> {
    let integrity = || SettingsError::DataIntegrity {
        user_id: row.user_id.clone(),
        name: row.name.clone(),
    };
    let Some(key) = keys.get(&row.key_id) else {
        tracing::error!(user_id = %row.user_id, name = %row.name, key_id = %row.key_id, "stored value names a master key that is not configured");
        return Err(integrity());
    };
    let value = crypto::open(key, &row.user_id, &row.name, &row.ciphertext).map_err(|error| {
        tracing::error!(user_id = %row.user_id, name = %row.name, key_id = %row.key_id, %error, "stored value failed its integrity check");
        integrity()
    })?;
    // The masking columns sit outside the AEAD; a mismatch means someone edited the row.
    if crypto::mask_parts(&value) != (row.length, row.last4.clone()) {
        tracing::error!(user_id = %row.user_id, name = %row.name, "stored length or last characters do not match the sealed value; the row was edited");
        return Err(integrity());
    }
    Ok(value)
}

/// The list a dry run would leave: stored rows not removed, with the file's values masked.
fn preview(
    stored: &[values::Model],
    removed: &[String],
    sets: &BTreeMap<String, Zeroizing<String>>,
    now: i64,
) -> Vec<Masked> {
    let mut preview: BTreeMap<String, Masked> = stored
        .iter()
        .filter(|row| !removed.contains(&row.name))
        .map(|row| (row.name.clone(), Masked::of(row)))
        .collect();
    for (name, value) in sets {
        let (length, last4) = crypto::mask_parts(value);
        preview.insert(
            name.clone(),
            Masked {
                name: name.clone(),
                masked: crypto::masked(length, &last4),
                length,
                updated_at: now,
            },
        );
    }
    preview.into_values().collect()
}

enum Deletes {
    /// Delete these names (absent ones are ignored).
    Names(BTreeSet<String>),
    /// Delete every stored name not being set (replace).
    AllOthers,
}

/// One reveal-audit row: who read which of whose values, when, in which request. Never the value.
fn audit_row(
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

async fn list_rows<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<Vec<Masked>, SettingsError> {
    let mut list: Vec<Masked> = values::Entity::find()
        .filter(values::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .iter()
        .map(Masked::of)
        .collect();
    // Sorted here, byte-wise, so SQLite and PostgreSQL (locale collation) answer the same order.
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// Adds `count` to a key's encryption counter.
pub(crate) async fn record_encryptions<C: ConnectionTrait>(
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

fn too_many(resulting: usize) -> SettingsError {
    SettingsError::Invalid(
        format!(
            "This would leave {resulting} settings; at most {} are allowed per user.",
            limits::MAX_SETTINGS
        ),
        vec![violation(
            "settings",
            format!(
                "would hold {resulting} settings; at most {} are allowed",
                limits::MAX_SETTINGS
            ),
        )],
    )
}

/// The user a user-facing call acts on: the token's `sub`. A service token is refused.
fn user_of(caller: &Caller) -> Result<&str, SettingsError> {
    match caller {
        Caller::User(id) => Ok(id),
        Caller::Service { client_id, .. } => Err(SettingsError::ScopeMissing {
            scope: "user".into(),
            detail: format!(
                "This call acts on the signed-in user's own settings and needs a user's access token; service client {client_id} should use RevealSetting with scope `{REVEAL_SCOPE}`."
            ),
        }),
    }
}

/// The client id of a service token carrying `scope`. User tokens never carry service scopes.
fn require_scope<'a>(caller: &'a Caller, scope: &str) -> Result<&'a str, SettingsError> {
    match caller {
        Caller::Service { client_id, scopes } if scopes.iter().any(|s| s == scope) => Ok(client_id),
        Caller::Service { client_id, .. } => Err(SettingsError::ScopeMissing {
            scope: scope.to_owned(),
            detail: format!(
                "This call needs a service token with scope `{scope}`; add it to client {client_id} in LATCHKEY_SERVICE_CLIENTS on auth and request a new token."
            ),
        }),
        Caller::User(_) => Err(SettingsError::ScopeMissing {
            scope: scope.to_owned(),
            detail: format!(
                "This call is for internal services: it needs a service token with scope `{scope}`, not a user's access token."
            ),
        }),
    }
}

/// Checks every name and value of a batch, reporting each bad entry as `settings.NAME`.
fn check_batch(changes: &[Change]) -> Result<(), SettingsError> {
    let mut violations: Vec<Violation> = Vec::new();
    let mut seen = BTreeSet::new();
    for change in changes {
        let field = format!("settings.{}", shown(&change.name));
        if let Some(problem) = name_problem(&change.name) {
            violations.push(violation(&field, problem));
        }
        if !seen.insert(change.name.as_str()) {
            violations.push(violation(&field, "appears more than once in the batch"));
        }
        if let Some(value) = &change.value
            && let Some(problem) = value_problem(value)
        {
            violations.push(violation(&field, problem));
        }
    }
    if changes.len() > limits::MAX_SETTINGS {
        violations.push(violation(
            "settings",
            format!(
                "has {} entries; at most {} are allowed",
                changes.len(),
                limits::MAX_SETTINGS
            ),
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(
            format!(
                "{} problem(s) in the batch; nothing was changed.",
                violations.len()
            ),
            fit_violations(violations, 0, "settings", "problems"),
        ))
    }
}

/// Why a setting name is refused, if it is.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name must not be empty".into());
    }
    if name.chars().count() > limits::MAX_NAME_CHARS {
        return Some(format!(
            "the name is longer than {} characters",
            limits::MAX_NAME_CHARS
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(
            "the name must match ^[A-Za-z_][A-Za-z0-9_]*$ (letters, digits, underscore; not starting with a digit)"
                .into(),
        );
    }
    None
}

/// Why a value is refused, if it is.
pub fn value_problem(value: &str) -> Option<String> {
    (value.len() > limits::MAX_VALUE_BYTES).then(|| {
        format!(
            "the value is {} bytes; at most {} are allowed",
            value.len(),
            limits::MAX_VALUE_BYTES
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar_and_length() {
        for good in ["A", "_x", "FLY_API_TOKEN", "a1"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", &"A".repeat(129)] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(name_problem(&"A".repeat(128)), None);
    }

    #[test]
    fn values_up_to_16_kib() {
        assert_eq!(value_problem(&"x".repeat(16 * 1024)), None);
        assert!(value_problem(&"x".repeat(16 * 1024 + 1)).is_some());
    }

    #[test]
    fn scopes_are_checked_by_kind_and_name() {
        let user = Caller::User("u".into());
        let reveal = Caller::Service {
            client_id: "deployer".into(),
            scopes: vec![REVEAL_SCOPE.into()],
        };
        assert!(user_of(&user).is_ok());
        assert!(matches!(
            user_of(&reveal),
            Err(SettingsError::ScopeMissing { .. })
        ));
        assert_eq!(require_scope(&reveal, REVEAL_SCOPE).unwrap(), "deployer");
        assert!(require_scope(&reveal, PURGE_SCOPE).is_err());
        assert!(require_scope(&user, REVEAL_SCOPE).is_err());
    }

    #[test]
    fn change_debug_hides_the_value() {
        let change = Change {
            name: "A".into(),
            value: Some(Zeroizing::new("hunter2-secret".into())),
        };
        assert!(!format!("{change:?}").contains("hunter2"));
    }
}
