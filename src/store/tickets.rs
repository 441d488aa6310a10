//! Tickets in PostgreSQL.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use super::{pg, sqlx_err};
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
    /// Older tickets of this batch's persons whose validity had ended but which no seal had
    /// expired yet: now `expired`, so the new ticket could take their place.
    pub expired: Vec<String>,
}

/// The batch insert, `status` for every row; with `only`, just the listed ticket ids (the
/// second pass), as a hashed semi-join (`t = ANY(array)` would compare every row with every id).
/// The columns go as typed arrays, so nothing is formatted or parsed as text on the way.
fn insert_sql(status: &str, only: bool) -> String {
    format!(
        "INSERT INTO tickets (ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible, \
         status, accepted_at, valid_until) \
         SELECT t, p, ph, m, pharm, prod, f, '{status}', a, v \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::bool[], $8::timestamptz[], $9::timestamptz[]) \
         AS u(t, p, ph, m, pharm, prod, f, a, v) \
         {} \
         ON CONFLICT DO NOTHING RETURNING ticket_id",
        if only {
            "WHERE t IN (SELECT unnest($10::text[]))"
        } else {
            ""
        }
    )
}

/// Binds the batch's columns to an [`insert_sql`] statement.
fn bind_columns<'q>(
    sql: &'q str,
    events: &'q [ReservationEvent],
) -> sea_orm::sqlx::query::QueryScalar<
    'q,
    sea_orm::sqlx::Postgres,
    String,
    sea_orm::sqlx::postgres::PgArguments,
> {
    let text = |f: fn(&ReservationEvent) -> &str| events.iter().map(f).collect::<Vec<&str>>();
    sea_orm::sqlx::query_scalar(sql)
        .bind(text(|e| &e.ticket_id))
        .bind(text(|e| &e.person_tag))
        .bind(text(|e| &e.phone_tag))
        .bind(text(|e| &e.masked_id))
        .bind(text(|e| &e.pharmacy_id))
        .bind(text(|e| &e.product_id))
        .bind(events.iter().map(|e| e.flexible).collect::<Vec<bool>>())
        .bind(events.iter().map(|e| e.accepted_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.valid_until).collect::<Vec<_>>())
}

/// Claims the slot "one registered ticket per person" (`active_persons`) for the listed tickets
/// of the batch; returns the tickets whose claim was taken. `ON CONFLICT DO NOTHING` skips a
/// person who holds a claim (and the second of two tickets of one person in the batch); a
/// concurrent claim for the same person waits for the other transaction and is then skipped.
async fn claim(
    tx: &mut sea_orm::sqlx::PgConnection,
    events: &[ReservationEvent],
    only: &[&str],
) -> Result<Vec<String>, DbErr> {
    let only: std::collections::HashSet<&str> = only.iter().copied().collect();
    let (tickets, persons): (Vec<&str>, Vec<&str>) = events
        .iter()
        .filter(|e| only.contains(e.ticket_id.as_str()))
        .map(|e| (e.ticket_id.as_str(), e.person_tag.as_str()))
        .unzip();
    sea_orm::sqlx::query_scalar(
        "INSERT INTO active_persons (person_tag, ticket_id) \
         SELECT p, t FROM unnest($1::text[], $2::text[]) AS u(t, p) \
         ON CONFLICT DO NOTHING RETURNING ticket_id",
    )
    .bind(&tickets)
    .bind(&persons)
    .fetch_all(&mut *tx)
    .await
    .map_err(sqlx_err)
}

/// Stores as `registered` the tickets whose claim was just taken; a claim whose ticket is
/// already stored (a redelivery of a ticket that has left `registered` since) is given back.
async fn store_claimed(
    tx: &mut sea_orm::sqlx::PgConnection,
    events: &[ReservationEvent],
    claimed: &[String],
) -> Result<Vec<String>, DbErr> {
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<String> = bind_columns(&insert_sql("registered", true), events)
        .bind(claimed)
        .fetch_all(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    if inserted.len() < claimed.len() {
        let stored: std::collections::HashSet<&str> = inserted.iter().map(String::as_str).collect();
        let stale: Vec<&str> = claimed
            .iter()
            .map(String::as_str)
            .filter(|t| !stored.contains(t))
            .collect();
        sea_orm::sqlx::query("DELETE FROM active_persons WHERE ticket_id = ANY($1::bpchar[])")
            .bind(&stale)
            .execute(&mut *tx)
            .await
            .map_err(sqlx_err)?;
    }
    Ok(inserted)
}

/// Inserts a batch of reservations in one transaction, idempotent on the ticket:
/// each ticket first claims its person's slot in `active_persons` (the table that keeps "one
/// registered ticket per person" in PostgreSQL since `tickets` is partitioned; a trigger on
/// `tickets` refuses a registered row without its claim), then the claimed tickets are stored
/// as `registered` with `ON CONFLICT DO NOTHING` on the primary key, which skips redeliveries.
/// A person's older ticket whose validity has ended (the next seal would expire it; the Redis
/// lock ended with it, so intake let the person in again) is expired here, which gives its
/// claim back, and the new ticket stored; the rest are stored as `rejected`.
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
    let mut tx = pg(db).begin().await.map_err(sqlx_err)?;
    let all: Vec<&str> = events.iter().map(|e| e.ticket_id.as_str()).collect();
    let claimed = claim(&mut tx, events, &all).await?;
    let inserted = store_claimed(&mut tx, events, &claimed).await?;
    let mut outcome = InsertOutcome {
        inserted,
        ..InsertOutcome::default()
    };
    if outcome.inserted.len() < events.len() {
        let inserted: std::collections::HashSet<&str> =
            outcome.inserted.iter().map(String::as_str).collect();
        let rest: Vec<&str> = events
            .iter()
            .map(|e| e.ticket_id.as_str())
            .filter(|t| !inserted.contains(t))
            .collect();
        let present: std::collections::HashSet<String> = sea_orm::sqlx::query_scalar(
            "SELECT ticket_id FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
        )
        .bind(&rest)
        .fetch_all(&mut *tx)
        .await
        .map_err(sqlx_err)?
        .into_iter()
        .collect();
        let mut missing: Vec<&str> = rest.into_iter().filter(|t| !present.contains(*t)).collect();
        outcome.duplicates = present.len();
        if !missing.is_empty() {
            let missing_set: std::collections::HashSet<&str> = missing.iter().copied().collect();
            let persons: Vec<&str> = events
                .iter()
                .filter(|e| missing_set.contains(e.ticket_id.as_str()))
                .map(|e| e.person_tag.as_str())
                .collect();
            // The trigger on `tickets` gives back the claims of the tickets expired here.
            outcome.expired = sea_orm::sqlx::query_scalar(
                "UPDATE tickets SET status = 'expired' WHERE status = 'registered' \
                 AND valid_until <= now() AND person_tag = ANY($1::bpchar[]) RETURNING ticket_id",
            )
            .bind(&persons)
            .fetch_all(&mut *tx)
            .await
            .map_err(sqlx_err)?;
            if !outcome.expired.is_empty() {
                let claimed = claim(&mut tx, events, &missing).await?;
                let now_in = store_claimed(&mut tx, events, &claimed).await?;
                let now_in_set: std::collections::HashSet<&str> =
                    now_in.iter().map(String::as_str).collect();
                missing.retain(|t| !now_in_set.contains(t));
                outcome.inserted.extend(now_in);
            }
        }
        if !missing.is_empty() {
            let rejected = insert_sql("rejected", true);
            outcome.rejected = bind_columns(&rejected, events)
                .bind(&missing)
                .fetch_all(&mut *tx)
                .await
                .map_err(sqlx_err)?;
        }
    }
    tx.commit().await.map_err(sqlx_err)?;
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

pub(crate) const TICKET_COLUMNS: &str =
    "ticket_id, person_tag, pharmacy_id, product_id, flexible, status, accepted_at, valid_until";

pub(crate) fn row_to_ticket(r: &sea_orm::QueryResult) -> Result<TicketRow, DbErr> {
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
            format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = $1::bpchar"),
            vec![ticket_id.into()],
        ))
        .await?;
    row.as_ref().map(row_to_ticket).transpose()
}

/// The statuses of these tickets, for those PostgreSQL holds.
///
/// # Errors
/// When the database fails.
pub async fn statuses(
    db: &DatabaseConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, String>, DbErr> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String, String)> = sea_orm::sqlx::query_as(
        "SELECT ticket_id::text, status FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
    )
    .bind(ids)
    .fetch_all(pg(db))
    .await
    .map_err(sqlx_err)?;
    Ok(rows.into_iter().collect())
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

/// Where a person stands in PostgreSQL: the intake asks when Redis may have lost its locks and
/// cooldowns (before `cache warm` has rebuilt them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A registered ticket still valid at `now`.
    Active(String),
    /// A win on this draw date, published from this instant.
    Won(chrono::NaiveDate, chrono::DateTime<chrono::Utc>),
}

/// The person's active ticket and their wins on or after `won_since`.
///
/// # Errors
/// When the database fails.
pub async fn standing(
    db: &DatabaseConnection,
    person_tag: &str,
    now: chrono::DateTime<chrono::Utc>,
    won_since: chrono::NaiveDate,
) -> Result<Vec<Standing>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT t.ticket_id, NULL::date AS draw_date, NULL::timestamptz AS publish_at FROM tickets t \
             WHERE t.person_tag = $1::bpchar AND t.status = 'registered' AND t.valid_until > $2 \
             UNION ALL \
             SELECT t.ticket_id, w.draw_date, d.publish_at FROM tickets t \
             JOIN draw_winners w ON w.ticket_id = t.ticket_id AND w.draw_date >= $3 \
             JOIN draws d ON d.draw_date = w.draw_date WHERE t.person_tag = $1::bpchar",
            vec![person_tag.into(), now.into(), won_since.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let date: Option<chrono::NaiveDate> = r.try_get("", "draw_date")?;
            Ok(match date {
                Some(d) => Standing::Won(d, r.try_get("", "publish_at")?),
                None => Standing::Active(r.try_get("", "ticket_id")?),
            })
        })
        .collect()
}
