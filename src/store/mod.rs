//! Where state lives: Redis (locks, ticket status, the fallback stream) and PostgreSQL
//! (tickets and the officials' day). Handlers call these functions; they never build SQL or
//! Redis commands themselves.

pub mod day;
pub mod draws;
pub mod partitions;
pub mod phone_codes;
pub mod redis;
pub mod tickets;
pub mod tokens;
pub mod warm;

use sea_orm::{sqlx, DatabaseConnection, DbErr};

/// The sqlx pool under sea-orm's connection: bulk work (COPY, typed arrays) goes straight to it.
pub(crate) fn pg(db: &DatabaseConnection) -> &sqlx::PgPool {
    db.get_postgres_connection_pool()
}

pub(crate) fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))
}

/// Whether a database error would come back on the same input: a data exception (class 22,
/// e.g. a NUL byte in text), an integrity violation (23) or a statement the database refuses
/// (42). Anything else (the database away, busy, shutting down, a serialization failure) may
/// pass on a retry.
pub fn is_permanent(e: &DbErr) -> bool {
    let sqlx = match e {
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(s))
        | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(s))
        | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match sqlx {
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("42")),
        _ => false,
    }
}
