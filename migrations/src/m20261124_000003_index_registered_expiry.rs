//! Expiry finds its tickets through an index instead of reading the whole table.
//!
//! The seal first marks registered tickets whose validity has ended as `expired`. On a
//! 2,000,000-ticket day that UPDATE read every row (about a second, a third of the seal's
//! budget) to find the few that expire. A partial index over the registered tickets' end of
//! validity turns it into a range scan over just those rows.
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
                 WHERE status = 'registered'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX tickets_registered_until")
            .await?;
        Ok(())
    }
}
