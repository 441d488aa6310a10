//! Expiry finds its tickets through an index instead of reading the whole table.
//!
//! The seal first marks registered tickets whose validity has ended as `expired`. On a
//! 2,000,000-ticket day that UPDATE read every row (about a second, a third of the seal's
//! budget) to find the few that expire. A partial index over the registered tickets' end of
//! validity turns it into a range scan over just those rows.
//!
//! Each seal also records the SHA-256 of the `entrants.csv` it wrote, so the draw can check
//! that it reads those very bytes without recomputing the tree (`seal.txt` already commits to
//! the tree head the seal computed over the same bytes). Seals made before this column existed
//! have none, and the draw checks their tree head instead.
//!
//! `draw_entries` is, from this version on, written by the draw (with each entered ticket's
//! outcome known), not by the seal: the comment on it in the previous migration is outdated.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX tickets_registered_until ON tickets (valid_until) \
                 WHERE status = 'registered'; \
                 ALTER TABLE seals ADD COLUMN entrants_sha256 CHAR(64)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE seals DROP COLUMN entrants_sha256; DROP INDEX tickets_registered_until",
            )
            .await?;
        Ok(())
    }
}
