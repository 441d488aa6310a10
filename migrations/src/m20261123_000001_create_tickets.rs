//! Tickets: one row per accepted reservation, written by the persister.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Raw SQL: the partial unique index and the CHECKs are the point of this table and
        // read plainer than the builder's equivalent.
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE tickets (
    -- COLLATE "C": ticket ids are ASCII and the snapshot orders them by bytes, so the primary
    -- key's order is the seal's order and the seal reads it without a sort.
    ticket_id    CHAR(26)     COLLATE "C" PRIMARY KEY,
    person_tag   CHAR(32)     NOT NULL,
    phone_tag    CHAR(32)     NOT NULL,
    masked_id    VARCHAR(18)  NOT NULL,
    pharmacy_id  VARCHAR(16)  NOT NULL,
    product_id   VARCHAR(16)  NOT NULL,
    flexible     BOOLEAN      NOT NULL,
    status       VARCHAR(12)  NOT NULL
                 CHECK (status IN ('registered', 'won', 'expired', 'rejected')),
    accepted_at  TIMESTAMPTZ  NOT NULL,
    valid_until  TIMESTAMPTZ  NOT NULL,
    persisted_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- The last guard of "one active reservation per person" (DESIGN.md).
CREATE UNIQUE INDEX tickets_one_active_per_person ON tickets (person_tag)
    WHERE status = 'registered';
CREATE INDEX tickets_person ON tickets (person_tag);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE tickets")
            .await?;
        Ok(())
    }
}
