//! Auth's schema migrations, recorded in `auth_migrations` so auth and settings can share one
//! database (as `latchkey dev` does) without seeing each other's history.

use sea_orm_migration::prelude::*;

/// Auth's migrator.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("auth_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsersAndKeys),
            Box::new(super::migration_identities::UsersOwnIdentities),
            Box::new(super::seal_fingerprint::AddSealFingerprint),
            Box::new(super::migration_refresh_tokens::CreateRefreshTokens),
            Box::new(super::key_life_cycle::KeyLifeCycle),
        ]
    }
}

struct CreateUsersAndKeys;

impl MigrationName for CreateUsersAndKeys {
    fn name(&self) -> &str {
        "m20261125_000001_create_users_and_signing_keys"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Provider,
    Subject,
    Email,
    Name,
    AvatarUrl,
    Disabled,
    TokensValidAfter,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PublicKey,
    PrivateSealed,
    CreatedAt,
    RetiredAt,
    PublishUntil,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateUsersAndKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Users::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Users::Provider).string_len(64).not_null())
                    .col(ColumnDef::new(Users::Subject).string_len(255).not_null())
                    .col(ColumnDef::new(Users::Email).string_len(320).not_null())
                    .col(ColumnDef::new(Users::Name).text().not_null())
                    .col(ColumnDef::new(Users::AvatarUrl).text().not_null())
                    .col(
                        ColumnDef::new(Users::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::TokensValidAfter)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Users::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_provider_subject")
                    .table(Users::Table)
                    .col(Users::Provider)
                    .col(Users::Subject)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_email")
                    .table(Users::Table)
                    .col(Users::Email)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SigningKeys::Algorithm)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SigningKeys::PublicKey).blob().not_null())
                    .col(ColumnDef::new(SigningKeys::PrivateSealed).blob().not_null())
                    .col(
                        ColumnDef::new(SigningKeys::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SigningKeys::RetiredAt).big_integer().null())
                    .col(
                        ColumnDef::new(SigningKeys::PublishUntil)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
