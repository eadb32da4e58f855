//! Settings' schema migrations, recorded in `settings_migrations` so auth and settings can share
//! one database (as `latchkey dev` does) without seeing each other's history.

use sea_orm_migration::prelude::*;

/// Settings' migrator.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new("settings_migrations").into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSettingsTables), Box::new(CreatePurgedUsers)]
    }
}

struct CreateSettingsTables;

impl MigrationName for CreateSettingsTables {
    fn name(&self) -> &str {
        "m20261125_000001_create_setting_values_reveals_key_usage"
    }
}

#[derive(DeriveIden)]
enum SettingValues {
    Table,
    UserId,
    Name,
    Ciphertext,
    KeyId,
    Length,
    Last4,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SettingReveals {
    Table,
    Id,
    Caller,
    UserId,
    Name,
    RevealedAt,
    RequestId,
}

#[derive(DeriveIden)]
enum SettingsKeyUsage {
    Table,
    KeyId,
    Encryptions,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateSettingsTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SettingValues::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SettingValues::UserId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingValues::Name)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SettingValues::Ciphertext).blob().not_null())
                    .col(
                        ColumnDef::new(SettingValues::KeyId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingValues::Length)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingValues::Last4)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingValues::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(SettingValues::UserId)
                            .col(SettingValues::Name),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setting_values_key_id")
                    .table(SettingValues::Table)
                    .col(SettingValues::KeyId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SettingReveals::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SettingReveals::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SettingReveals::Caller)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingReveals::UserId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingReveals::Name)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingReveals::RevealedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SettingReveals::RequestId)
                            .string_len(128)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setting_reveals_user_id")
                    .table(SettingReveals::Table)
                    .col(SettingReveals::UserId)
                    .col(SettingReveals::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SettingsKeyUsage::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SettingsKeyUsage::KeyId)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SettingsKeyUsage::Encryptions)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SettingsKeyUsage::Table.into_iden(),
            SettingReveals::Table.into_iden(),
            SettingValues::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Users whose settings were purged, so a write racing the purge cannot leave values behind.
struct CreatePurgedUsers;

impl MigrationName for CreatePurgedUsers {
    fn name(&self) -> &str {
        "m20261210_000002_create_settings_purged_users"
    }
}

#[derive(DeriveIden)]
enum SettingsPurgedUsers {
    Table,
    UserId,
    PurgedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreatePurgedUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SettingsPurgedUsers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(SettingsPurgedUsers::UserId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SettingsPurgedUsers::PurgedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SettingsPurgedUsers::Table).to_owned())
            .await
    }
}
