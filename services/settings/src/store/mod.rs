//! Settings' tables as sea-orm entities, their queries and their migrations. Settings owns these tables; no
//! other service reads them.
//!
//! - [`values`]: one sealed value per (user, name).
//! - [`reveal_audit`]: who revealed whose value, when (never the value).
//! - [`key_usage`]: encryptions performed per master key, for the AES-GCM nonce budget.
//! - [`purged_users`]: users whose settings were purged; nothing is written for them again.
//! - [`queries`]: every query the domain runs over these tables.

pub mod key_usage;
pub mod migration;
pub mod purged_users;
pub mod queries;
pub mod reveal_audit;
pub mod values;

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

/// Connects to the configured database and applies pending migrations (for operator tools).
pub async fn connect_migrated(
    config: &crate::SettingsConfig,
) -> anyhow::Result<DatabaseConnection> {
    use anyhow::Context;
    use secrecy::ExposeSecret;
    let db = latchkey_common::db::connect(config.database_url.expose_secret()).await?;
    migrate(&db).await.context("applying settings migrations")?;
    Ok(db)
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    migration::Migrator::up(db, None).await
}

/// Migrations not yet applied (for `doctor` and `migrate`).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, sea_orm::DbErr> {
    Ok(migration::Migrator::get_pending_migrations(db).await?.len())
}
