//! The maskdraw schema. Migrations are never edited once landed: fix forward with a new one.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_tickets;
mod m20261123_000002_create_officials_day;
mod m20261124_000003_expiry_index_and_entrants_sha256;
mod m20261202_000004_draw_entries_point_lookup;
mod m20261203_000001_pharmacy_tokens;
mod m20261204_000005_seal_and_draw_progress;
mod m20261205_000006_partition_tickets_and_entries;
mod m20261206_000007_claims_planned_per_statement;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_tickets::Migration),
            Box::new(m20261123_000002_create_officials_day::Migration),
            Box::new(m20261124_000003_expiry_index_and_entrants_sha256::Migration),
            Box::new(m20261202_000004_draw_entries_point_lookup::Migration),
            Box::new(m20261203_000001_pharmacy_tokens::Migration),
            Box::new(m20261204_000005_seal_and_draw_progress::Migration),
            Box::new(m20261205_000006_partition_tickets_and_entries::Migration),
            Box::new(m20261206_000007_claims_planned_per_statement::Migration),
        ]
    }
}
