//! Automatic signing-key rotation (`LATCHKEY_SIGNING_ROTATE_EVERY`): every auth replica runs a
//! [`Rotator`], but only the one holding the `rotation` lease (a row in `signing_key_lease`,
//! taken with a conditional UPDATE) runs a [`life_cycle::step`]; the others pick the new keys up
//! on their next key refresh, as they do after `latchkey keys rotate-signing`.

use crate::key_policy::KeyPolicy;
use crate::keys::KeyError;
use crate::life_cycle::{self, Change, TokenLife};
use crate::store::signing_key_lease;
use latchkey_common::clock::SharedClock;
use latchkey_common::seal::SealKey;
use sea_orm::DatabaseConnection;

/// Seconds a replica holds the lease without renewing it: long enough to ride out a slow tick,
/// short enough that another replica takes over soon after this one stops.
pub const LEASE_SECS: i64 = 30;

/// One replica's share of automatic rotation.
pub struct Rotator {
    db: DatabaseConnection,
    seal: SealKey,
    policy: KeyPolicy,
    life: TokenLife,
    clock: SharedClock,
    /// This replica's id in the lease row.
    holder: String,
}

impl Rotator {
    /// A rotator for one auth process (a fresh holder id).
    pub fn new(
        db: DatabaseConnection,
        seal: SealKey,
        policy: KeyPolicy,
        life: TokenLife,
        clock: SharedClock,
    ) -> Self {
        Rotator {
            db,
            seal,
            policy,
            life,
            clock,
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// This replica's id, as the lease row names its holder.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes (or renews) the lease and, when this replica holds it, runs one rotation step.
    /// Answers the changes made (empty when another replica holds the lease or nothing is due).
    pub async fn tick(&self) -> Result<Vec<Change>, KeyError> {
        let now = self.clock.now();
        let held = signing_key_lease::take(
            &self.db,
            signing_key_lease::ROTATION,
            &self.holder,
            now,
            LEASE_SECS,
        )
        .await?;
        if !held {
            return Ok(Vec::new());
        }
        let changes = life_cycle::step(&self.db, &self.seal, now, &self.policy, self.life).await?;
        for change in &changes {
            log(change);
        }
        Ok(changes)
    }
}

fn log(change: &Change) {
    match change {
        Change::Standby { kid, activates_at } => tracing::info!(
            %kid,
            activates_at = %latchkey_common::clock::rfc3339(*activates_at),
            "automatic rotation: published a standby signing key"
        ),
        Change::Activated(activation) => tracing::info!(
            kid = %activation.kid,
            retired = ?activation.retired,
            publish_until = %latchkey_common::clock::rfc3339(activation.publish_until),
            "automatic rotation: a standby signing key now signs"
        ),
        Change::Removed(kids) => tracing::info!(
            removed = ?kids,
            "removed retired signing keys whose tokens have all expired"
        ),
    }
}
