//! Auth's tables (users, their identities, signing keys) as sea-orm entities, its migrations, and
//! the queries the domain needs, one module per table. Auth owns these tables; no other service
//! reads them.

pub mod identities;
mod key_life_cycle;
pub mod migration;
mod migration_identities;
mod migration_refresh_tokens;
pub mod refresh_tokens;
mod seal_fingerprint;
pub mod signing_key_lease;
pub mod signing_keys;
pub mod users;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};
use sea_orm_migration::MigratorTrait;

/// The database server's clock, in unix seconds (`None` if it did not answer with a row).
pub async fn database_now(db: &DatabaseConnection) -> Result<Option<i64>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) AS now",
        _ => "SELECT CAST(strftime('%s', 'now') AS INTEGER) AS now",
    };
    match db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
    {
        Some(row) => Ok(Some(row.try_get::<i64>("", "now")?)),
        None => Ok(None),
    }
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    migration::Migrator::up(db, None).await
}

/// Migrations not yet applied (for `doctor` and readiness).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, sea_orm::DbErr> {
    Ok(migration::Migrator::get_pending_migrations(db).await?.len())
}
