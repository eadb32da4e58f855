//! Migration: signing keys get a life cycle. `signing_keys` gains `state` (`standby`, `active`,
//! `retired`), `activated_at` and `activates_at`; existing rows become `active` (no `retired_at`)
//! or `retired`, activated when created. `signing_key_lease` holds the one row automatic rotation
//! is leased under. Each step is safe to run again (SQLite runs it outside one transaction).

use sea_orm_migration::prelude::*;

/// The migration; see the module docs.
pub struct KeyLifeCycle;

impl MigrationName for KeyLifeCycle {
    fn name(&self) -> &str {
        "m20261203_000003_signing_key_life_cycle"
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    State,
    ActivatedAt,
    ActivatesAt,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum SigningKeyLease {
    Table,
    Name,
    Holder,
    ExpiresAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for KeyLifeCycle {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager).await?;
        mark_existing_rows(manager).await?;
        create_lease(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(SigningKeyLease::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        // Standby keys never signed: without a state they would read as active. Drop them.
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(SigningKeys::Table)
                    .and_where(Expr::col(SigningKeys::State).eq("standby"))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("activates_at", SigningKeys::ActivatesAt),
            ("activated_at", SigningKeys::ActivatedAt),
            ("state", SigningKeys::State),
        ] {
            if manager.has_column("signing_keys", name).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(SigningKeys::Table)
                            .drop_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// One column per statement: SQLite's ALTER TABLE takes one change at a time.
async fn add_columns(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let columns = [
        (
            "state",
            ColumnDef::new(SigningKeys::State)
                .string_len(16)
                .not_null()
                .default("active")
                .to_owned(),
        ),
        (
            "activated_at",
            ColumnDef::new(SigningKeys::ActivatedAt)
                .big_integer()
                .null()
                .to_owned(),
        ),
        (
            "activates_at",
            ColumnDef::new(SigningKeys::ActivatesAt)
                .big_integer()
                .null()
                .to_owned(),
        ),
    ];
    for (name, mut column) in columns {
        if manager.has_column("signing_keys", name).await? {
            continue;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Keys from before the life cycle: retired when they have `retired_at`, and activated when they
/// were created (they signed from then on).
async fn mark_existing_rows(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .exec_stmt(
            Query::update()
                .table(SigningKeys::Table)
                .value(SigningKeys::State, "retired")
                .and_where(Expr::col(SigningKeys::RetiredAt).is_not_null())
                .and_where(Expr::col(SigningKeys::State).eq("active"))
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::update()
                .table(SigningKeys::Table)
                .value(SigningKeys::ActivatedAt, Expr::col(SigningKeys::CreatedAt))
                .and_where(Expr::col(SigningKeys::ActivatedAt).is_null())
                .and_where(Expr::col(SigningKeys::State).ne("standby"))
                .to_owned(),
        )
        .await
}

async fn create_lease(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SigningKeyLease::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(SigningKeyLease::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SigningKeyLease::Holder)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SigningKeyLease::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::insert()
                .into_table(SigningKeyLease::Table)
                .columns([
                    SigningKeyLease::Name,
                    SigningKeyLease::Holder,
                    SigningKeyLease::ExpiresAt,
                ])
                .values_panic(["rotation".into(), "".into(), 0i64.into()])
                .on_conflict(
                    OnConflict::column(SigningKeyLease::Name)
                        .do_nothing()
                        .to_owned(),
                )
                .to_owned(),
        )
        .await
}
