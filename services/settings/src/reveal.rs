//! Plaintext for internal services, always audited first: [`SettingsCore::reveal`] (one value,
//! `settings:reveal`), [`SettingsCore::export`] (every value as a `.env`, `settings:reveal`) and
//! [`SettingsCore::audit`] (the reveal log, `settings:audit`). A reveal that cannot be audited is
//! refused.

use crate::caller::{AUDIT_SCOPE, Caller, REVEAL_SCOPE, require_scope};
use crate::error::SettingsError;
use crate::service::SettingsCore;
use crate::store::queries::{self, audit_row};
use crate::store::{reveal_audit, values};
use crate::validate::limits;
use latchkey_proto::Violation;
use zeroize::Zeroizing;

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

impl SettingsCore {
    /// Returns one plaintext value to a service holding `settings:reveal`, after writing the
    /// audit row; a reveal that cannot be audited is refused.
    pub async fn reveal(
        &self,
        caller: &Caller,
        user_id: &str,
        name: &str,
        request_id: &str,
    ) -> Result<Revealed, SettingsError> {
        self.reveal_checked(caller, user_id, name, request_id, false)
            .await
    }

    /// [`Self::reveal`], and with `require_valid` a value that breaks the declared schema is
    /// refused (SETTING_INVALID, naming the rule) before anything is audited or opened for the
    /// caller. A generated setting not stored yet is made first (its first read).
    pub async fn reveal_checked(
        &self,
        caller: &Caller,
        user_id: &str,
        name: &str,
        request_id: &str,
        require_valid: bool,
    ) -> Result<Revealed, SettingsError> {
        let client_id = require_scope(caller, REVEAL_SCOPE)?;
        let mut violations = Vec::new();
        if user_id.trim().is_empty() {
            violations.push(Violation::new("user_id", "must not be empty"));
        }
        if name.is_empty() {
            violations.push(Violation::new("name", "must not be empty"));
        }
        if !violations.is_empty() {
            return Err(SettingsError::Invalid(
                "Name the user and the setting to reveal.".into(),
                violations,
            ));
        }
        let schema = self.schema();
        if schema.declared(name).is_some_and(|d| d.generate.is_some()) {
            match self.ensure_generated(user_id, &schema).await {
                Ok(()) | Err(SettingsError::UserPurged(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let row = queries::find(&self.db, user_id, name)
            .await?
            .ok_or_else(|| SettingsError::NotFound(name.to_owned()))?;
        if require_valid && let Err(misfit) = self.fits(&schema, &row) {
            tracing::info!(%user_id, name, caller = %client_id, "reveal refused: the value does not fit the schema");
            return Err(SettingsError::SettingInvalid {
                name: row.name,
                rule: misfit.to_string(),
            });
        }
        let audit = audit_row(client_id, user_id, name, self.clock.now(), request_id);
        queries::insert_audit(&self.db, vec![audit])
            .await
            .inspect_err(|error| {
                tracing::error!(%error, %user_id, name, "reveal refused: the audit row could not be written");
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
                vec![Violation::new("user_id", "must not be empty")],
            ));
        }
        let rows = queries::rows_of(&self.db, user_id).await?;
        let opened = rows
            .iter()
            .map(|row| self.open_row(row).map(|value| (row.name.as_str(), value)))
            .collect::<Result<Vec<_>, _>>()?;
        let now = self.clock.now();
        let audit = rows
            .iter()
            .map(|row| audit_row(client_id, user_id, &row.name, now, request_id))
            .collect();
        queries::insert_audit(&self.db, audit).await?;
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
        let before = match page_token {
            "" => None,
            token => Some(token.parse::<i64>().map_err(|_| {
                SettingsError::Invalid(
                    "The page token is not one this service issued.".into(),
                    vec![Violation::new("page_token", "is not a valid page token")],
                )
            })?),
        };
        let mut entries = queries::audit_entries(&self.db, user_id, before, size + 1).await?;
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

    /// Opens a stored row with the key it names; a failure is DATA_INTEGRITY, logged (names only).
    pub(crate) fn open_row(&self, row: &values::Model) -> Result<Zeroizing<String>, SettingsError> {
        crate::stored::open_row(&self.keys.current_with(&row.key_id), row)
    }
}
