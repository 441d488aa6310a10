//! Seals and draws that can be finished after a crash, and a chain that cannot fork.
//!
//! A seal is recorded (committed) before its directory is renamed into place, and a draw is
//! recorded before Redis and the exports are told. `completed_at` is set by the last step, so a
//! run that died in between is visible as such and `maskdraw seal --resume` / `maskdraw draw
//! --resume` know what is left. Rows from before this column existed were finished by the
//! version that wrote them: they count as completed when they were made.
//!
//! `draw_seeds` pins the seed of a draw before any draw file is written: an interrupted draw
//! can then only be finished with the seed it started with, whatever is (or is no longer) in
//! the directory.
//!
//! `seals_one_successor`: each seal is the previous of at most one seal. Two seals of different
//! dates running at once both read the same latest seal; without it both would link to it and
//! the chain would fork.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
ALTER TABLE seals ADD COLUMN completed_at TIMESTAMPTZ;
UPDATE seals SET completed_at = sealed_at;
ALTER TABLE draws ADD COLUMN completed_at TIMESTAMPTZ;
UPDATE draws SET completed_at = drawn_at;
CREATE TABLE draw_seeds (
    draw_date    DATE         PRIMARY KEY REFERENCES seals (draw_date),
    seed         CHAR(64)     NOT NULL,
    seed_txt     TEXT         NOT NULL,
    recorded_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX seals_one_successor ON seals (previous);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX seals_one_successor; DROP TABLE draw_seeds; \
                 ALTER TABLE draws DROP COLUMN completed_at; \
                 ALTER TABLE seals DROP COLUMN completed_at",
            )
            .await?;
        Ok(())
    }
}
