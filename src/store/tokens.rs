//! Issued pharmacy tokens (`pharmacy_tokens`): a serial per token, revocable.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// Records a new token of `pharmacy` and returns its serial.
///
/// # Errors
/// When the database fails.
pub async fn issue(db: &DatabaseConnection, pharmacy: &str) -> Result<i64, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO pharmacy_tokens (pharmacy_id) VALUES ($1) RETURNING serial",
            vec![pharmacy.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    row.try_get("", "serial")
}

/// Revokes the token `serial` of `pharmacy`, or every live token of `pharmacy` when `serial` is
/// `None`; returns how many were live and are revoked now (a serial of another pharmacy is
/// not touched).
///
/// # Errors
/// When the database fails.
pub async fn revoke(
    db: &DatabaseConnection,
    pharmacy: &str,
    serial: Option<i64>,
) -> Result<u64, DbErr> {
    let done = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE pharmacy_tokens SET revoked_at = now() \
             WHERE pharmacy_id = $1 AND revoked_at IS NULL AND ($2::bigint IS NULL OR serial = $2)",
            vec![pharmacy.into(), serial.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Whether `serial` was issued to `pharmacy` and is not revoked.
///
/// # Errors
/// When the database fails.
pub async fn is_live(db: &DatabaseConnection, pharmacy: &str, serial: i64) -> Result<bool, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS live FROM pharmacy_tokens \
             WHERE serial = $1 AND pharmacy_id = $2 AND revoked_at IS NULL",
            vec![serial.into(), pharmacy.into()],
        ))
        .await?;
    Ok(row.is_some())
}
