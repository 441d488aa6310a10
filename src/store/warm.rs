//! What `cache warm` reads from PostgreSQL, streamed in primary-key order so that millions of
//! rows never sit in memory at once.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{Stream, TryStreamExt};
use sea_orm::sqlx::{self, Row};
use sea_orm::{DatabaseConnection, DbErr};

use super::draws::{Entry, Win};
use super::tickets::TicketRow;
use super::{pg, sqlx_err};

/// Every ticket accepted after `since`, as the status API shows it.
pub fn tickets_since(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
) -> impl Stream<Item = Result<TicketRow, DbErr>> + '_ {
    sqlx::query(
        "SELECT ticket_id, person_tag, pharmacy_id, product_id, flexible, status, accepted_at, valid_until \
         FROM tickets WHERE accepted_at > $1",
    )
    .bind(since)
    .fetch(pg(db))
    .map_err(sqlx_err)
    .and_then(|r| async move {
        Ok(TicketRow {
            ticket_id: r.try_get(0).map_err(sqlx_err)?,
            person_tag: r.try_get(1).map_err(sqlx_err)?,
            pharmacy_id: r.try_get(2).map_err(sqlx_err)?,
            product_id: r.try_get(3).map_err(sqlx_err)?,
            flexible: r.try_get(4).map_err(sqlx_err)?,
            status: r.try_get(5).map_err(sqlx_err)?,
            accepted_at: r.try_get(6).map_err(sqlx_err)?,
            valid_until: r.try_get(7).map_err(sqlx_err)?,
        })
    })
}

/// Every entry of the draws on or after `since`: (ticket, what it did in that draw).
pub fn entries_since(
    db: &DatabaseConnection,
    since: NaiveDate,
) -> impl Stream<Item = Result<(String, Entry), DbErr>> + '_ {
    sqlx::query(
        "SELECT e.ticket_id, e.draw_date, w.pharmacy_id, w.product_id, w.pickup_code, w.roll \
         FROM draw_entries e LEFT JOIN draw_winners w \
           ON w.draw_date = e.draw_date AND w.ticket_id = e.ticket_id \
         WHERE e.draw_date >= $1",
    )
    .bind(since)
    .fetch(pg(db))
    .map_err(sqlx_err)
    .and_then(|r| async move {
        let code: Option<String> = r.try_get(4).map_err(sqlx_err)?;
        let win = match code {
            Some(pickup_code) => Some(Win {
                pharmacy_id: r.try_get(2).map_err(sqlx_err)?,
                product_id: r.try_get(3).map_err(sqlx_err)?,
                pickup_code,
                roll: r.try_get(5).map_err(sqlx_err)?,
            }),
            None => None,
        };
        Ok((
            r.try_get::<String, _>(0).map_err(sqlx_err)?,
            Entry {
                date: r.try_get(1).map_err(sqlx_err)?,
                win,
            },
        ))
    })
}

/// A win that may still hold its person in cooldown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentWin {
    pub person_tag: String,
    pub draw_date: NaiveDate,
    pub publish_at: DateTime<Utc>,
}

/// Every win on a draw date on or after `since`.
///
/// # Errors
/// When the database fails.
pub async fn wins_since(
    db: &DatabaseConnection,
    since: NaiveDate,
) -> Result<Vec<RecentWin>, DbErr> {
    let rows = sqlx::query(
        "SELECT t.person_tag, w.draw_date, d.publish_at FROM draw_winners w \
         JOIN tickets t ON t.ticket_id = w.ticket_id JOIN draws d ON d.draw_date = w.draw_date \
         WHERE w.draw_date >= $1",
    )
    .bind(since)
    .fetch_all(pg(db))
    .await
    .map_err(sqlx_err)?;
    rows.iter()
        .map(|r| {
            Ok(RecentWin {
                person_tag: r.try_get(0).map_err(sqlx_err)?,
                draw_date: r.try_get(1).map_err(sqlx_err)?,
                publish_at: r.try_get(2).map_err(sqlx_err)?,
            })
        })
        .collect()
}
