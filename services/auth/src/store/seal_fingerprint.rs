//! Migration: `signing_keys.seal_fingerprint`, the fingerprint of the seal key that sealed each
//! private key. Rows from before it stay NULL ("not recorded") until auth next starts with a
//! seal key that opens them, and records it.

use sea_orm_migration::prelude::*;

/// Adds the nullable `seal_fingerprint` column.
pub struct AddSealFingerprint;

impl MigrationName for AddSealFingerprint {
    fn name(&self) -> &str {
        "m20261201_000001_signing_keys_seal_fingerprint"
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    SealFingerprint,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddSealFingerprint {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(
                        ColumnDef::new(SigningKeys::SealFingerprint)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .drop_column(SigningKeys::SealFingerprint)
                    .to_owned(),
            )
            .await
    }
}
