//! Pharmacy tokens that can be revoked.
//!
//! A token was `<pharmacy>.<HMAC(hmac_secret, "pharmacy:" ‖ id)>`: stateless, one per pharmacy
//! for ever, and derived from the key of the person tags. Now each issued token has a serial
//! recorded here (`<pharmacy>.<serial>.<HMAC(token_secret, …)>`), and the pickup call accepts
//! it only while its row is not revoked. Serials come from one sequence, so a serial names one
//! token whichever the pharmacy.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE pharmacy_tokens ( \
                   serial BIGSERIAL PRIMARY KEY, \
                   pharmacy_id TEXT NOT NULL, \
                   issued_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                   revoked_at TIMESTAMPTZ \
                 ); \
                 CREATE INDEX pharmacy_tokens_pharmacy ON pharmacy_tokens (pharmacy_id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE pharmacy_tokens")
            .await?;
        Ok(())
    }
}
