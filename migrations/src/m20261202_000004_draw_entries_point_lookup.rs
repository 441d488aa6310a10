//! A ticket's draw entries by a point lookup.
//!
//! `draw_entries` had only a BRIN index on `ticket_id`: cheap to write for the draw, but a
//! status read that missed Redis paid about 10 ms to find a ticket's entries (one block range
//! per sealed day). At the 18:00 peak, after a Redis restart, that is the whole read path. A
//! B-tree makes it a point lookup; the draw writes each day's entries in ticket order, so the
//! inserts land in order within the day.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX draw_entries_ticket_id ON draw_entries (ticket_id); \
                 DROP INDEX draw_entries_ticket",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX draw_entries_ticket ON draw_entries USING brin (ticket_id) \
                 WITH (pages_per_range = 16); DROP INDEX draw_entries_ticket_id",
            )
            .await?;
        Ok(())
    }
}
