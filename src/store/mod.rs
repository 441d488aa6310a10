//! Where state lives: Redis (locks, ticket status, the fallback stream) and PostgreSQL
//! (tickets and the officials' day). Handlers call these functions; they never build SQL or
//! Redis commands themselves.

pub mod day;
pub mod draws;
pub mod redis;
pub mod tickets;
pub mod warm;

use sea_orm::{sqlx, DatabaseConnection, DbErr};

/// The sqlx pool under sea-orm's connection: bulk work (COPY, typed arrays) goes straight to it.
pub(crate) fn pg(db: &DatabaseConnection) -> &sqlx::PgPool {
    db.get_postgres_connection_pool()
}

pub(crate) fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Custom(e.to_string())
}
