//! Auth's tables (users, their identities, signing keys) as sea-orm entities, its migrations, and
//! the queries the domain needs, one module per table. Auth owns these tables; no other service
//! reads them.

pub mod identities;
pub mod migration;
mod migration_identities;
pub mod signing_keys;
pub mod users;

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    migration::Migrator::up(db, None).await
}

/// Migrations not yet applied (for `doctor` and readiness).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, sea_orm::DbErr> {
    Ok(migration::Migrator::get_pending_migrations(db).await?.len())
}
