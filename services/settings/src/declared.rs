//! The declared settings applied: writes and imports checked against the schema (a violation
//! names the rule, never the value), empty values of generated settings filled in, the list
//! annotated with `missing`, `declared` and `valid`, generated values made on first read or on
//! request, and per-user completeness for operators and metrics.

use crate::caller::{Caller, user_of};
use crate::error::{SettingsError, shown};
use crate::schema::{Misfit, Schema};
use crate::service::{Change, Deletes, SettingsCore};
use crate::store::queries::{self, Masked};
use crate::store::values;
use crate::validate::limits;
use latchkey_proto::{Violation, fit_violations};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Most violations one refusal lists (the rest are counted).
const MAX_LISTED: usize = 20;

/// A masked setting as the list shows it, with what the schema says of it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub masked: Masked,
    /// The schema declares this name.
    pub declared: bool,
    /// The stored value fits the schema (always true for undeclared names the schema allows).
    pub valid: bool,
}

/// The caller's settings with the schema applied.
#[derive(Debug, Clone)]
pub struct Listing {
    pub settings: Vec<Listed>,
    /// Required names not set yet, in the schema's order.
    pub missing: Vec<String>,
}

/// One user's completeness against the schema: counts only, never names or values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completeness {
    pub user_id: String,
    /// Required names not set.
    pub missing: usize,
    /// Required names set to a value that breaks the schema.
    pub invalid: usize,
}

fn refusal(what: &str, violations: Vec<Violation>) -> SettingsError {
    let total = violations.len();
    let listed: Vec<Violation> = violations.into_iter().take(MAX_LISTED).collect();
    let unlisted = total - listed.len();
    SettingsError::Invalid(
        format!(
            "{total} {what} do not fit the declared settings (GET /api/settings/schema); nothing was written."
        ),
        fit_violations(listed, unlisted, "settings", "violations"),
    )
}

/// A generated value for `value` when it is empty and the schema generates `name`.
fn filled(schema: &Schema, name: &str, value: &mut Zeroizing<String>) -> Result<(), SettingsError> {
    if !value.is_empty() {
        return Ok(());
    }
    if let Some(generate) = schema.declared(name).and_then(|d| d.generate) {
        *value = generate
            .make()
            .ok_or_else(|| SettingsError::Internal("the system random source failed".into()))?;
    }
    Ok(())
}

/// Checks an import's entries against the schema (violations by `line N`), filling empty values
/// of generated settings first. Any misfit refuses the whole import.
pub fn conform_entries(
    schema: &Schema,
    checked: &mut crate::import::Checked,
) -> Result<(), SettingsError> {
    let mut violations = Vec::new();
    for ((name, value), line) in checked.entries.iter_mut().zip(&checked.lines) {
        filled(schema, name, value)?;
        if let Err(misfit) = schema.check(name, value) {
            violations.push(Violation::new(
                format!("line {line}"),
                format!("{}: {misfit}", shown(name)),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(refusal("line(s) of the .env", violations))
    }
}

impl SettingsCore {
    /// The schema in use now.
    pub fn schema(&self) -> Arc<Schema> {
        self.schema.current()
    }

    /// Checks a batch against the schema (violations by `settings.NAME`), filling empty values
    /// of generated settings first. Deletions are always allowed.
    pub(crate) fn conform_changes(&self, changes: &mut [Change]) -> Result<(), SettingsError> {
        let schema = self.schema.current();
        let mut violations = Vec::new();
        for change in changes.iter_mut() {
            let Some(value) = change.value.as_mut() else {
                continue;
            };
            filled(&schema, &change.name, value)?;
            if let Err(misfit) = schema.check(&change.name, value) {
                violations.push(Violation::new(
                    format!("settings.{}", shown(&change.name)),
                    misfit.to_string(),
                ));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(refusal("setting(s)", violations))
        }
    }

    /// The caller's settings, masked, with `declared`, `valid` and the required names `missing`.
    /// Generated settings not stored yet are made first (their first read).
    pub async fn listing(&self, caller: &Caller) -> Result<Listing, SettingsError> {
        let user_id = user_of(caller)?;
        let schema = self.schema.current();
        self.ensure_generated(user_id, &schema).await?;
        // The masking columns only; the values are read (and opened) only when the schema
        // constrains a listed name's format.
        let masked = self.masked_list(user_id).await?;
        let stored: BTreeSet<String> = masked.iter().map(|m| m.name.clone()).collect();
        let settings = self.annotate(caller, masked).await?;
        let missing = schema
            .missing(&stored)
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(Listing { settings, missing })
    }

    fn listed(&self, schema: &Schema, row: &values::Model) -> Listed {
        Listed {
            masked: Masked::of(row),
            declared: schema.declared(&row.name).is_some(),
            valid: self.fits(schema, row).is_ok(),
        }
    }

    /// A write's answer (the caller's masked list) with `declared` and `valid`, so it reads the
    /// same as the list. Reads the values only when the schema constrains a listed name's format.
    pub async fn annotate(
        &self,
        caller: &Caller,
        masked: Vec<Masked>,
    ) -> Result<Vec<Listed>, SettingsError> {
        let schema = self.schema.current();
        let needs_values = masked.iter().any(|m| {
            schema
                .declared(&m.name)
                .is_some_and(|d| !d.format.is_empty())
        });
        if !needs_values {
            // No listed name has a format: a declared name fits, an undeclared one as allowed.
            return Ok(masked
                .into_iter()
                .map(|m| {
                    let declared = schema.declared(&m.name).is_some();
                    Listed {
                        declared,
                        valid: declared || schema.allow_undeclared,
                        masked: m,
                    }
                })
                .collect());
        }
        let user_id = user_of(caller)?;
        let rows = queries::rows_of(&self.db, user_id).await?;
        Ok(rows.iter().map(|row| self.listed(&schema, row)).collect())
    }

    /// A preview's list (nothing stored yet) with `declared`; `valid` is true, as every value
    /// it sets has just been checked against the schema.
    pub fn annotate_preview(&self, masked: Vec<Masked>) -> Vec<Listed> {
        let schema = self.schema.current();
        masked
            .into_iter()
            .map(|m| Listed {
                declared: schema.declared(&m.name).is_some(),
                valid: true,
                masked: m,
            })
            .collect()
    }

    /// Whether a stored row fits the schema; opens it only when its format needs the value. A
    /// row that does not open is reported as not fitting (and logged by [`Self::open_row`]).
    pub(crate) fn fits(&self, schema: &Schema, row: &values::Model) -> Result<(), Misfit> {
        match schema.declared(&row.name) {
            None if schema.allow_undeclared => Ok(()),
            None => Err(Misfit::Undeclared),
            Some(declared) if declared.format.is_empty() => Ok(()),
            Some(_) => match self.open_row(row) {
                Ok(value) => schema.check(&row.name, &value),
                Err(_) => Err(Misfit::Broken(crate::schema::format::Broken {
                    rule: "integrity",
                    expects: "a stored value that opens".into(),
                })),
            },
        }
    }

    /// Makes and stores every generated setting `user_id` does not hold yet, under the user's
    /// write lock: a value already stored (by a concurrent first read) is never replaced.
    pub(crate) async fn ensure_generated(
        &self,
        user_id: &str,
        schema: &Schema,
    ) -> Result<(), SettingsError> {
        if schema.settings.values().all(|d| d.generate.is_none()) {
            return Ok(());
        }
        let stored = queries::names_of(&self.db, user_id).await?;
        let wanted = schema.to_generate(&stored);
        if wanted.is_empty() || stored.len() + wanted.len() > limits::MAX_SETTINGS {
            return Ok(());
        }
        let keys = self.keys.current();
        let key = keys.active();
        let now = self.clock.now();
        let mut rows = Vec::with_capacity(wanted.len());
        for (name, generate) in &wanted {
            let value = generate
                .make()
                .ok_or_else(|| SettingsError::Internal("the system random source failed".into()))?;
            let (length, last4) = crate::crypto::mask_parts(&value);
            rows.push(values::ActiveModel {
                user_id: Set(user_id.to_owned()),
                name: Set((*name).to_owned()),
                ciphertext: Set(crate::crypto::seal(key, user_id, name, &value)),
                key_id: Set(key.id.clone()),
                length: Set(length),
                last4: Set(last4),
                updated_at: Set(now),
            });
        }
        // Counted before the write (outside its transaction, as every write does).
        queries::record_encryptions(&self.db, &key.id, rows.len() as i64).await?;
        let txn = queries::begin_user_write(&self.db, user_id).await?;
        queries::refuse_if_purged(&txn, user_id).await?;
        // Another first read may have made some meanwhile: never replace a stored value.
        let stored = queries::names_of(&txn, user_id).await?;
        rows.retain(|row| !stored.contains(row.name.as_ref()));
        queries::upsert(&txn, rows).await?;
        txn.commit().await?;
        let names: Vec<&str> = wanted.iter().map(|(n, _)| *n).collect();
        tracing::info!(%user_id, generated = %names.join(","), key_id = %key.id, "generated settings made on first read");
        Ok(())
    }

    /// Makes a new value for a declared setting with a generator and stores it (replacing any
    /// stored value). INVALID_ARGUMENT when the schema does not generate this name.
    pub async fn generate(&self, caller: &Caller, name: &str) -> Result<Masked, SettingsError> {
        let user_id = user_of(caller)?;
        let schema = self.schema.current();
        let Some(generate) = schema.declared(name).and_then(|d| d.generate) else {
            return Err(SettingsError::Invalid(
                format!(
                    "{} has no `generate` in the declared settings, so settings cannot make its value; set it instead.",
                    shown(name)
                ),
                vec![Violation::new(
                    "name",
                    "is not a declared setting with `generate` (GET /api/settings/schema)",
                )],
            ));
        };
        let value = generate
            .make()
            .ok_or_else(|| SettingsError::Internal("the system random source failed".into()))?;
        let sets = BTreeMap::from([(name.to_owned(), value)]);
        let list = self
            .write(user_id, sets, Deletes::Names(BTreeSet::new()))
            .await?;
        tracing::info!(%user_id, name, "generated setting made on request");
        list.into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| SettingsError::Internal("the generated setting was not listed".into()))
    }

    /// Per user holding any setting: how many required settings are missing or invalid. Opens
    /// required values (on the blocking pool) to check them; answers counts only.
    pub async fn completeness(&self) -> Result<Vec<Completeness>, SettingsError> {
        let schema = self.schema.current();
        let required: Vec<String> = schema
            .settings
            .iter()
            .filter(|(_, d)| d.required)
            .map(|(n, _)| n.clone())
            .collect();
        let users = self.users_with_names().await?;
        let mut answer = Vec::with_capacity(users.len());
        for (user_id, names) in users {
            let missing = schema.missing(&names).len();
            let held: Vec<String> = required
                .iter()
                .filter(|n| names.contains(*n))
                .cloned()
                .collect();
            let rows = values::Entity::find()
                .filter(values::Column::UserId.eq(user_id.as_str()))
                .filter(values::Column::Name.is_in(held))
                .all(&self.db)
                .await?;
            let invalid = rows
                .iter()
                .filter(|row| self.fits(&schema, row).is_err())
                .count();
            answer.push(Completeness {
                user_id,
                missing,
                invalid,
            });
        }
        Ok(answer)
    }

    /// How many users (among those holding any setting) miss a required setting; for the
    /// metric. Reads names only, never values.
    pub async fn users_missing_required(&self) -> Result<i64, SettingsError> {
        let schema = self.schema.current();
        if !schema.settings.values().any(|d| d.required) {
            return Ok(0);
        }
        let users = self.users_with_names().await?;
        Ok(users
            .values()
            .filter(|names| !schema.missing(names).is_empty())
            .count() as i64)
    }

    /// Every user holding a setting, with the names they hold.
    async fn users_with_names(&self) -> Result<BTreeMap<String, BTreeSet<String>>, SettingsError> {
        let pairs: Vec<(String, String)> = values::Entity::find()
            .select_only()
            .column(values::Column::UserId)
            .column(values::Column::Name)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (user_id, name) in pairs {
            users.entry(user_id).or_default().insert(name);
        }
        Ok(users)
    }
}
