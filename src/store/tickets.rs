//! Tickets in PostgreSQL.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};

use crate::queue::ReservationEvent;

/// What one batch insert did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Newly stored as `registered`.
    pub inserted: Vec<String>,
    /// Stored as `rejected`: the person already had an active ticket in the database.
    pub rejected: Vec<String>,
    /// Already stored by an earlier delivery of the same message.
    pub duplicates: usize,
}

fn text_array(items: impl Iterator<Item = String>) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(
            items.map(|s| Value::String(Some(Box::new(s)))).collect(),
        )),
    )
}

/// Inserts a batch of reservations in one transaction, idempotent on `ticket_id`:
/// `ON CONFLICT DO NOTHING` skips both redeliveries and persons who already hold an active
/// ticket (the partial unique index); the latter are then stored as `rejected`.
///
/// # Errors
/// When the database fails; nothing is committed then.
pub async fn insert_batch(
    db: &DatabaseConnection,
    events: &[ReservationEvent],
) -> Result<InsertOutcome, DbErr> {
    if events.is_empty() {
        return Ok(InsertOutcome::default());
    }
    let col = |f: fn(&ReservationEvent) -> String| text_array(events.iter().map(f));
    // Built again for the (rare) second pass rather than cloned for every batch.
    let values = || {
        vec![
            col(|e| e.ticket_id.clone()),
            col(|e| e.person_tag.clone()),
            col(|e| e.phone_tag.clone()),
            col(|e| e.masked_id.clone()),
            col(|e| e.pharmacy_id.clone()),
            col(|e| e.product_id.clone()),
            col(|e| e.flexible.to_string()),
            col(|e| e.accepted_at.to_rfc3339()),
            col(|e| e.valid_until.to_rfc3339()),
        ]
    };
    let insert = |status: &str, only: bool| {
        format!(
            "INSERT INTO tickets (ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible, \
             status, accepted_at, valid_until) \
             SELECT t, p, ph, m, pharm, prod, f::boolean, '{status}', a::timestamptz, v::timestamptz \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) \
             AS u(t, p, ph, m, pharm, prod, f, a, v) \
             {} \
             ON CONFLICT DO NOTHING RETURNING ticket_id",
            if only { "WHERE t IN (SELECT unnest($10::text[]))" } else { "" }
        )
    };
    let txn = db.begin().await?;
    let rows = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            insert("registered", false),
            values(),
        ))
        .await?;
    let inserted: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "ticket_id").ok())
        .collect();
    let mut outcome = InsertOutcome {
        inserted,
        ..InsertOutcome::default()
    };
    if outcome.inserted.len() < events.len() {
        let inserted: std::collections::HashSet<&str> =
            outcome.inserted.iter().map(String::as_str).collect();
        let rest: Vec<String> = events
            .iter()
            .map(|e| e.ticket_id.clone())
            .filter(|t| !inserted.contains(t.as_str()))
            .collect();
        let present = txn
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT ticket_id FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
                vec![text_array(rest.iter().cloned())],
            ))
            .await?;
        let present: std::collections::HashSet<String> = present
            .iter()
            .filter_map(|r| r.try_get::<String>("", "ticket_id").ok())
            .collect();
        let missing: Vec<String> = rest.into_iter().filter(|t| !present.contains(t)).collect();
        outcome.duplicates = present.len();
        if !missing.is_empty() {
            let mut with_filter = values();
            with_filter.push(text_array(missing.iter().cloned()));
            let rows = txn
                .query_all(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    insert("rejected", true),
                    with_filter,
                ))
                .await?;
            outcome.rejected = rows
                .iter()
                .filter_map(|r| r.try_get::<String>("", "ticket_id").ok())
                .collect();
        }
    }
    txn.commit().await?;
    Ok(outcome)
}

/// A ticket as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub ticket_id: String,
    pub person_tag: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
    pub status: String,
    pub accepted_at: chrono::DateTime<chrono::Utc>,
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

const TICKET_COLUMNS: &str =
    "ticket_id, person_tag, pharmacy_id, product_id, flexible, status, accepted_at, valid_until";

fn row_to_ticket(r: &sea_orm::QueryResult) -> Result<TicketRow, DbErr> {
    Ok(TicketRow {
        ticket_id: r.try_get("", "ticket_id")?,
        person_tag: r.try_get("", "person_tag")?,
        pharmacy_id: r.try_get("", "pharmacy_id")?,
        product_id: r.try_get("", "product_id")?,
        flexible: r.try_get("", "flexible")?,
        status: r.try_get("", "status")?,
        accepted_at: r.try_get("", "accepted_at")?,
        valid_until: r.try_get("", "valid_until")?,
    })
}

/// # Errors
/// When the database fails.
pub async fn find(db: &DatabaseConnection, ticket_id: &str) -> Result<Option<TicketRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = $1"),
            vec![ticket_id.into()],
        ))
        .await?;
    row.as_ref().map(row_to_ticket).transpose()
}

/// The person's tickets, newest first, matched on both the id and the phone tag.
///
/// # Errors
/// When the database fails.
pub async fn find_by_person(
    db: &DatabaseConnection,
    person_tag: &str,
    phone_tag: &str,
) -> Result<Vec<TicketRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {TICKET_COLUMNS} FROM tickets WHERE person_tag = $1 AND phone_tag = $2 ORDER BY ticket_id DESC LIMIT 50"
            ),
            vec![person_tag.into(), phone_tag.into()],
        ))
        .await?;
    rows.iter().map(row_to_ticket).collect()
}

/// # Errors
/// When the database fails.
pub async fn count(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM tickets",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}
