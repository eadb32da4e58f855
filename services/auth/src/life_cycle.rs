//! A signing key's life: `standby` (published, not signing) → `active` (signing) → `retired`
//! (published until the last token it signed expires) → removed. The transitions, each one
//! transaction, and [`step`], the one place automatic rotation decides what is due.
//!
//! A standby key waits one JWKS cache lifetime (`KeyPolicy::standby_lead`) before it may sign,
//! so every verifier that cached the JWKS before it appeared has fetched it again by then.

use crate::key_policy::{KeyPolicy, SigningAlg};
use crate::keys::{KeyError, new_key_row};
use crate::store::signing_keys::{self, ACTIVE, RETIRED, STANDBY};
use latchkey_common::seal::SealKey;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

/// How long tokens live: a retired key stays published `ttl + leeway` seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenLife {
    pub ttl: i64,
    pub leeway: i64,
}

/// What an activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The key that signs from now on.
    pub kid: String,
    /// Keys that stopped signing; published until `publish_until`.
    pub retired: Vec<String>,
    /// Unix second until which the retired keys stay published.
    pub publish_until: i64,
}

/// A change [`step`] or a command made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new standby key, signing from `activates_at`.
    Standby { kid: String, activates_at: i64 },
    /// A standby key became active.
    Activated(Activation),
    /// Retired keys past their publish window, deleted.
    Removed(Vec<String>),
}

/// Publishes a new key of `algorithm` that may sign from `now + lead`.
pub async fn add_standby(
    db: &impl ConnectionTrait,
    seal: &SealKey,
    now: i64,
    algorithm: SigningAlg,
    lead: i64,
) -> Result<signing_keys::Model, KeyError> {
    Ok(new_key_row(seal, now, algorithm, STANDBY, Some(now + lead))
        .insert(db)
        .await?)
}

/// Makes standby key `kid` the active one and retires the active key (published for `life`
/// more). Refused before the key's `activates_at` unless `force`.
pub async fn activate(
    db: &DatabaseConnection,
    kid: &str,
    now: i64,
    life: TokenLife,
    force: bool,
) -> Result<Activation, KeyError> {
    let txn = db.begin().await?;
    let key = signing_keys::Entity::find_by_id(kid.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
    if key.state != STANDBY {
        return Err(KeyError::NotStandby {
            kid: key.kid,
            state: key.state,
        });
    }
    if let Some(activates_at) = key.activates_at.filter(|at| *at > now && !force) {
        return Err(KeyError::TooEarly {
            kid: key.kid,
            activates_at,
        });
    }
    let activation = activate_in(&txn, &key.kid, now, life).await?;
    txn.commit().await?;
    Ok(activation)
}

/// Retires every active key and activates `kid`, inside the caller's transaction.
async fn activate_in(
    txn: &impl ConnectionTrait,
    kid: &str,
    now: i64,
    life: TokenLife,
) -> Result<Activation, KeyError> {
    let publish_until = now + life.ttl + life.leeway;
    let retired: Vec<String> = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .all(txn)
        .await?
        .into_iter()
        .map(|key| key.kid)
        .collect();
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::State, Expr::value(RETIRED))
        .col_expr(signing_keys::Column::RetiredAt, Expr::value(now))
        .col_expr(
            signing_keys::Column::PublishUntil,
            Expr::value(publish_until),
        )
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .exec(txn)
        .await?;
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::State, Expr::value(ACTIVE))
        .col_expr(signing_keys::Column::ActivatedAt, Expr::value(now))
        .col_expr(signing_keys::Column::ActivatesAt, Expr::value(None::<i64>))
        .filter(signing_keys::Column::Kid.eq(kid))
        .exec(txn)
        .await?;
    Ok(Activation {
        kid: kid.to_owned(),
        retired,
        publish_until,
    })
}

/// Deletes retired keys whose last token has expired; answers their kids.
pub async fn remove_expired(db: &impl ConnectionTrait, now: i64) -> Result<Vec<String>, KeyError> {
    let expired = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(RETIRED))
        .filter(signing_keys::Column::PublishUntil.lt(now))
        .all(db)
        .await?;
    let removed: Vec<String> = expired.into_iter().map(|key| key.kid).collect();
    if !removed.is_empty() {
        signing_keys::Entity::delete_many()
            .filter(signing_keys::Column::Kid.is_in(removed.clone()))
            .exec(db)
            .await?;
    }
    Ok(removed)
}

/// What an immediate rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub new_kid: String,
    pub retired: Vec<String>,
    pub removed: Vec<String>,
    /// Unix second until which the retired keys stay published.
    pub publish_until: i64,
}

/// Makes a new key of `algorithm` active at once (no standby: verifiers holding a cached JWKS
/// fetch it again on the unknown `kid`); the active key keeps verifying for `ttl + leeway`
/// seconds, and keys past their window are deleted. One transaction.
pub async fn rotate_now(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    life: TokenLife,
    algorithm: SigningAlg,
) -> Result<Rotation, KeyError> {
    let txn = db.begin().await?;
    let removed = remove_expired(&txn, now).await?;
    let new_key = add_standby(&txn, seal, now, algorithm, 0).await?;
    let activation = activate_in(&txn, &new_key.kid, now, life).await?;
    txn.commit().await?;
    Ok(Rotation {
        new_kid: activation.kid,
        retired: activation.retired,
        removed,
        publish_until: activation.publish_until,
    })
}

/// The keys that decide what is due: the active one and the newest standby one.
struct Current {
    active: Option<signing_keys::Model>,
    standby: Option<signing_keys::Model>,
}

async fn current(db: &impl ConnectionTrait) -> Result<Current, KeyError> {
    let newest = |state: &'static str| {
        signing_keys::Entity::find()
            .filter(signing_keys::Column::State.eq(state))
            .order_by_desc(signing_keys::Column::CreatedAt)
            .one(db)
    };
    Ok(Current {
        active: newest(ACTIVE).await?,
        standby: newest(STANDBY).await?,
    })
}

/// When the active key is due to stop signing under `every`.
fn rotation_due(active: &signing_keys::Model, every: i64) -> i64 {
    active
        .activated_at
        .unwrap_or(active.created_at)
        .saturating_add(every)
}

/// One round of automatic rotation at `now`: removes expired keys; publishes a standby key one
/// lead before the active key's period ends; activates the standby key once its lead has passed
/// and the period has ended. Does nothing but removal when the policy has no period. Run under
/// the rotation lease, so one replica at a time decides.
pub async fn step(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    policy: &KeyPolicy,
    life: TokenLife,
) -> Result<Vec<Change>, KeyError> {
    let mut changes = Vec::new();
    let removed = remove_expired(db, now).await?;
    if !removed.is_empty() {
        changes.push(Change::Removed(removed));
    }
    let Some(every) = policy.rotate_every else {
        return Ok(changes);
    };
    let Current { active, standby } = current(db).await?;
    let due = active.as_ref().map(|key| rotation_due(key, every));
    match standby {
        None if due.is_none_or(|due| now >= due - policy.standby_lead) => {
            let key = add_standby(db, seal, now, policy.algorithm, policy.standby_lead).await?;
            changes.push(Change::Standby {
                kid: key.kid,
                activates_at: key.activates_at.unwrap_or(now),
            });
        }
        Some(key)
            if key.activates_at.is_none_or(|at| at <= now) && due.is_none_or(|due| now >= due) =>
        {
            let activation = activate(db, &key.kid, now, life, false).await?;
            changes.push(Change::Activated(activation));
        }
        _ => {}
    }
    Ok(changes)
}

/// One key as `keys status` and `doctor` show it.
#[derive(Debug, Clone)]
pub struct KeyLine {
    pub key: signing_keys::Model,
    /// Its state in words (`active since …`, `retired, published until …`).
    pub state: String,
    /// When its state changes next, in words; None when nothing changes it by itself.
    pub next: Option<String>,
}

/// Every key, newest first, with its state and next change at `now` under `policy`.
pub async fn describe(
    db: &impl ConnectionTrait,
    policy: &KeyPolicy,
    now: i64,
) -> Result<Vec<KeyLine>, KeyError> {
    let keys = crate::keys::status(db).await?;
    let standby_waiting = keys.iter().any(|key| key.state == STANDBY);
    Ok(keys
        .into_iter()
        .map(|key| KeyLine {
            state: state_words(&key, now),
            next: next_change(&key, policy, standby_waiting, now),
            key,
        })
        .collect())
}

fn state_words(key: &signing_keys::Model, now: i64) -> String {
    let at = latchkey_common::clock::rfc3339;
    match key.state.as_str() {
        STANDBY => "standby (published, not signing)".to_owned(),
        ACTIVE => format!(
            "active since {}",
            at(key.activated_at.unwrap_or(key.created_at))
        ),
        RETIRED => match key.publish_until {
            Some(until) if until < now => format!("retired, unpublished since {}", at(until)),
            Some(until) => format!("retired, published until {}", at(until)),
            None => "retired".to_owned(),
        },
        other => format!("unknown state `{other}`"),
    }
}

/// When and how a key's state changes next, in words; None when nothing will change it by
/// itself (an active key without automatic rotation).
fn next_change(
    key: &signing_keys::Model,
    policy: &KeyPolicy,
    standby_waiting: bool,
    now: i64,
) -> Option<String> {
    let at = |when: i64| {
        let when = when.max(now);
        format!(
            "{} (in {})",
            latchkey_common::clock::rfc3339(when),
            crate::key_policy::format_period((when - now).max(1))
        )
    };
    match key.state.as_str() {
        STANDBY => {
            let from = key.activates_at.unwrap_or(key.created_at);
            Some(match policy.rotate_every {
                Some(_) => format!(
                    "becomes active by automatic rotation, no earlier than {}",
                    at(from)
                ),
                None => format!(
                    "may be activated from {} with `latchkey keys rotate-signing --activate {}`",
                    at(from),
                    key.kid
                ),
            })
        }
        ACTIVE => {
            let due = rotation_due(key, policy.rotate_every?);
            Some(if standby_waiting {
                format!(
                    "retires when its standby successor activates, at {}",
                    at(due)
                )
            } else {
                format!(
                    "a standby successor is published at {}",
                    at(due - policy.standby_lead)
                )
            })
        }
        RETIRED => key.publish_until.map(|until| {
            format!(
                "removed once its last token has expired, after {}",
                at(until)
            )
        }),
        _ => None,
    }
}
