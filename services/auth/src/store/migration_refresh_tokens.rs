//! Migration: the `refresh_tokens` table. One row per refresh token ever issued, keyed by the
//! SHA-256 digest of the token (the token itself is never stored), grouped into families: every
//! token a rotation issues joins the family of the token it replaced.

use sea_orm_migration::prelude::*;

/// Creates `refresh_tokens` with its family and user indexes.
pub struct CreateRefreshTokens;

impl MigrationName for CreateRefreshTokens {
    fn name(&self) -> &str {
        "m20261203_000010_create_refresh_tokens"
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Digest,
    FamilyId,
    UserId,
    State,
    CreatedAt,
    IdleExpiresAt,
    FamilyStartedAt,
    FamilyExpiresAt,
    RetiredAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateRefreshTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let big =
            |column: RefreshTokens| ColumnDef::new(column).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RefreshTokens::Digest)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::FamilyId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::UserId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RefreshTokens::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(big(RefreshTokens::CreatedAt))
                    .col(big(RefreshTokens::IdleExpiresAt))
                    .col(big(RefreshTokens::FamilyStartedAt))
                    .col(big(RefreshTokens::FamilyExpiresAt))
                    .col(
                        ColumnDef::new(RefreshTokens::RetiredAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("refresh_tokens_family", RefreshTokens::FamilyId),
            ("refresh_tokens_user", RefreshTokens::UserId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }
}
