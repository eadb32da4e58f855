//! The settings domain: list, merge, replace, import, delete and purge a user's settings, over
//! the store and the master keys. Knows nothing of gRPC: the adapter in [`crate::grpc`] verifies
//! the token, decodes, calls and maps errors. Who may call is [`crate::caller`], what a setting
//! may be is [`crate::validate`], an import's plan is [`crate::import`], plaintext for services
//! is [`crate::reveal`], and every query is in [`crate::store::queries`].

use crate::budget::Budget;
use crate::caller::{require_scope, user_of};
use crate::config::MasterKeys;
use crate::crypto;
use crate::error::SettingsError;
use crate::keyring::KeyRing;
use crate::schema::Schema;
use crate::schema::source::SchemaSource;
use crate::store::{queries, values};
use crate::validate::{check_batch, limits, name_problem, too_many};
use latchkey_common::clock::SharedClock;
use latchkey_common::hot_reads::HotReads;
use latchkey_proto::Violation;
use sea_orm::{DatabaseConnection, Set};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use zeroize::Zeroizing;

pub use crate::caller::{AUDIT_SCOPE, Caller, PURGE_SCOPE, REVEAL_SCOPE};
pub use crate::import::{ImportMode, ImportOutcome, ImportWarning};
pub use crate::store::queries::Masked;

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

/// The settings domain's state.
pub struct SettingsCore {
    pub(crate) db: DatabaseConnection,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) clock: SharedClock,
    /// The declared settings every write is checked against.
    pub(crate) schema: Arc<SchemaSource>,
    /// Connections for the masked list, the hottest read (none: it goes through `db`).
    pub(crate) hot: Option<queries::HotMaskedRows>,
}

/// What a write deletes besides the names it sets.
pub(crate) enum Deletes {
    /// Delete these names (absent ones are ignored).
    Names(BTreeSet<String>),
    /// Delete every stored name not being set (replace).
    AllOthers,
}

impl SettingsCore {
    /// Builds the core over a migrated database, with master keys that never change.
    pub fn new(db: DatabaseConnection, keys: MasterKeys, clock: SharedClock) -> Self {
        Self::with_keyring(db, Arc::new(KeyRing::fixed(keys)), clock)
    }

    /// Builds the core over a migrated database, with master keys that may be reloaded.
    pub fn with_keyring(db: DatabaseConnection, keys: Arc<KeyRing>, clock: SharedClock) -> Self {
        SettingsCore {
            db,
            keys,
            clock,
            schema: Arc::new(SchemaSource::fixed(Schema::default())),
            hot: None,
        }
    }

    /// The same core reading the masked list through `hot` (see [`HotReads`]).
    pub fn with_hot_reads(mut self, hot: Option<HotReads>) -> Self {
        self.hot = hot.map(queries::hot_masked_rows);
        self
    }

    /// The same core applying `schema` (declared settings) to writes, lists and reveals.
    pub fn with_schema(mut self, schema: Arc<SchemaSource>) -> Self {
        self.schema = schema;
        self
    }

    /// The database, for readiness checks and tools.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The caller's masked settings, by name.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        self.masked_list(user_id).await
    }

    /// `user_id`'s masked list, through the hot-read connections when there are any.
    pub(crate) async fn masked_list(&self, user_id: &str) -> Result<Vec<Masked>, SettingsError> {
        match &self.hot {
            Some(hot) => queries::masked_list_hot(hot, user_id).await,
            None => queries::masked_list(&self.db, user_id).await,
        }
    }

    /// Merges a batch: values set, `None` deletes. Atomic: one bad entry changes nothing.
    pub async fn patch(
        &self,
        caller: &Caller,
        mut changes: Vec<Change>,
    ) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        check(&changes)?;
        self.conform_changes(&mut changes)?;
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
        mut changes: Vec<Change>,
    ) -> Result<Vec<Masked>, SettingsError> {
        let user_id = user_of(caller)?;
        check(&changes)?;
        self.conform_changes(&mut changes)?;
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
                vec![Violation::new("name", problem)],
            ));
        }
        if queries::delete_one(&self.db, user_id, name).await? == 0 {
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
                vec![Violation::new("user_id", "must not be empty")],
            ));
        }
        let txn = queries::begin_user_write(&self.db, user_id).await?;
        let deleted = queries::purge_user(&txn, user_id, self.clock.now()).await?;
        txn.commit().await?;
        tracing::info!(%user_id, caller = %client_id, settings_deleted = deleted, "user's settings purged");
        Ok(deleted as i64)
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
                vec![Violation::new(
                    "dotenv",
                    format!("must be at most {} bytes", limits::MAX_IMPORT_BYTES),
                )],
            ));
        }
        budget.check()?;
        let schema = self.schema.current();
        let crate::import::Checked {
            entries, warnings, ..
        } = budget
            .run_blocking(move |stop| {
                let mut checked = crate::import::parse_checked(&text, stop)?;
                crate::declared::conform_entries(&schema, &mut checked)?;
                Ok(checked)
            })
            .await?;
        // Merged or replacing, the result holds at least every name of the file.
        if entries.len() > limits::MAX_SETTINGS {
            return Err(too_many(entries.len()));
        }
        budget.check()?;
        let stored = queries::rows_of(&self.db, user_id).await?;
        let keys = self.keys.current();
        let crate::import::Plan {
            mut outcome,
            sets,
            stored,
        } = budget
            .run_blocking(move |_| {
                let open = |row: &values::Model| crate::stored::open_row(&keys, row);
                Ok(crate::import::plan(open, stored, entries, mode, dry_run))
            })
            .await?;
        outcome.warnings = warnings;
        let resulting = stored.len() + outcome.added.len() - outcome.removed.len();
        if resulting > limits::MAX_SETTINGS {
            return Err(too_many(resulting));
        }
        if dry_run {
            outcome.settings =
                crate::import::preview(&stored, &outcome.removed, &sets, self.clock.now());
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

    /// Seals and writes `sets`, deletes `deletes`, in one transaction; checks the resulting count.
    pub(crate) async fn write(
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
        queries::record_encryptions(&self.db, &key.id, rows.len() as i64).await?;
        let txn = queries::begin_user_write(&self.db, user_id).await?;
        queries::refuse_if_purged(&txn, user_id).await?;
        let existing = queries::names_of(&txn, user_id).await?;
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
        queries::delete_names(&txn, user_id, &removed).await?;
        queries::upsert(&txn, rows).await?;
        let list = queries::masked_list(&txn, user_id).await?;
        txn.commit().await?;
        tracing::info!(%user_id, written = set_names.len(), deleted = removed.len(), key_id = %key.id, "settings written");
        Ok(list)
    }
}

/// Checks a batch of changes against the limits ([`check_batch`]).
fn check(changes: &[Change]) -> Result<(), SettingsError> {
    check_batch(
        changes
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_deref().map(String::as_str))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_debug_hides_the_value() {
        let change = Change {
            name: "A".into(),
            value: Some(Zeroizing::new("hunter2-secret".into())),
        };
        assert!(!format!("{change:?}").contains("hunter2"));
    }
}
