//! Migration 2: users own identities. Creates `identities` (primary key provider + subject, the
//! owning user, the provider's email and whether it vouched for it), turns every existing user
//! row into that user's one identity (email not verified: nothing recorded that it was), then
//! drops `provider` and `subject` from `users`. Each step is safe to run again, so a run cut short
//! on SQLite (where the migration is not one transaction) finishes on the next start.

use sea_orm_migration::prelude::*;

/// The migration; see the module docs.
pub struct UsersOwnIdentities;

impl MigrationName for UsersOwnIdentities {
    fn name(&self) -> &str {
        "m20261203_000002_users_own_identities"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Provider,
    Subject,
    Email,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Provider,
    Subject,
    Email,
    EmailVerified,
    UserId,
    CreatedAt,
    UpdatedAt,
}

const OLD_UNIQUE_INDEX: &str = "users_provider_subject";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for UsersOwnIdentities {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_identities(manager).await?;
        if manager.has_column("users", "provider").await?
            && manager.has_column("users", "subject").await?
        {
            copy_users_into_identities(manager).await?;
        }
        drop_user_identity_columns(manager).await
    }

    /// Puts `provider`/`subject` back on `users` from each user's first identity. Lossy: a user's
    /// other identities are dropped with the table.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Users::Provider, Users::Subject] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(
                            ColumnDef::new(column)
                                .string_len(255)
                                .not_null()
                                .default(""),
                        )
                        .to_owned(),
                )
                .await?;
        }
        let first = |column: Identities| {
            Query::select()
                .column(column)
                .from(Identities::Table)
                .and_where(
                    Expr::col((Identities::Table, Identities::UserId))
                        .equals((Users::Table, Users::Id)),
                )
                .order_by(Identities::CreatedAt, Order::Asc)
                .limit(1)
                .to_owned()
        };
        manager
            .exec_stmt(
                Query::update()
                    .table(Users::Table)
                    .value(Users::Provider, first(Identities::Provider))
                    .value(Users::Subject, first(Identities::Subject))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Identities::Table).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_UNIQUE_INDEX)
                    .table(Users::Table)
                    .col(Users::Provider)
                    .col(Users::Subject)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}

async fn create_identities(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Identities::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Identities::Provider)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Identities::Subject)
                        .string_len(255)
                        .not_null(),
                )
                .col(ColumnDef::new(Identities::Email).string_len(320).not_null())
                .col(
                    ColumnDef::new(Identities::EmailVerified)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(ColumnDef::new(Identities::UserId).string_len(36).not_null())
                .col(
                    ColumnDef::new(Identities::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Identities::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(Identities::Provider)
                        .col(Identities::Subject),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("identities_user_id_fkey")
                        .from(Identities::Table, Identities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    for (name, column) in [
        ("identities_user_id", Identities::UserId),
        ("identities_email", Identities::Email),
    ] {
        manager
            .create_index(
                Index::create()
                    .name(name)
                    .table(Identities::Table)
                    .col(column)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// One identity per existing user: its provider, subject and email, not verified. An identity
/// already copied by an earlier, interrupted run is left as it is.
async fn copy_users_into_identities(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let rows = Query::select()
        .columns([Users::Provider, Users::Subject, Users::Email])
        .expr(Expr::val(false))
        .columns([Users::Id, Users::CreatedAt, Users::UpdatedAt])
        .from(Users::Table)
        // SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT to parse it.
        .and_where(Expr::val(true).eq(true))
        .to_owned();
    let insert = Query::insert()
        .into_table(Identities::Table)
        .columns([
            Identities::Provider,
            Identities::Subject,
            Identities::Email,
            Identities::EmailVerified,
            Identities::UserId,
            Identities::CreatedAt,
            Identities::UpdatedAt,
        ])
        .select_from(rows)
        .map_err(|error| DbErr::Migration(error.to_string()))?
        .on_conflict(
            OnConflict::columns([Identities::Provider, Identities::Subject])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    manager.exec_stmt(insert).await
}

async fn drop_user_identity_columns(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop()
                .name(OLD_UNIQUE_INDEX)
                .table(Users::Table)
                .if_exists()
                .to_owned(),
        )
        .await?;
    // One column per statement: SQLite's ALTER TABLE takes one change at a time.
    for (name, column) in [("provider", Users::Provider), ("subject", Users::Subject)] {
        if !manager.has_column("users", name).await? {
            continue;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}
