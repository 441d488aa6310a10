//! Draw outcomes as citizens see them: the recorded draws, and each ticket's entries.

use std::path::PathBuf;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::Serialize;

use super::tickets::{row_to_ticket, TicketRow, TICKET_COLUMNS};
use crate::cache::DrawnDay;

/// One draw a ticket entered, once its results are published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrawView {
    pub date: String,
    /// `won` or `lost`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pharmacy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Shown only to the ticket's holder (holder secret, or lookup by id number and phone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickup_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<i16>,
}

/// What a ticket won in one draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Win {
    pub pharmacy_id: String,
    pub product_id: String,
    pub pickup_code: String,
    pub roll: i16,
}

/// One draw a ticket entered: lost when `win` is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub date: NaiveDate,
    pub win: Option<Win>,
}

impl Entry {
    /// The outcome as Redis keeps it on the ticket (field `draw:<date>`): `lost`, or
    /// `won|pharmacy|product|pickup code|roll`. `None` when the date is not one.
    pub fn from_redis(date: &str, value: &str) -> Option<Self> {
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let parts: Vec<&str> = value.split('|').collect();
        let win = match parts.as_slice() {
            ["won", ph, pr, code, roll] => Some(Win {
                pharmacy_id: (*ph).to_string(),
                product_id: (*pr).to_string(),
                pickup_code: (*code).to_string(),
                roll: roll.parse().ok()?,
            }),
            _ => None,
        };
        Some(Self { date, win })
    }

    /// The ticket-hash field this outcome is kept under in Redis.
    pub fn redis_field(&self) -> String {
        format!("draw:{}", self.date)
    }

    /// The outcome as Redis keeps it (see [`Entry::from_redis`]).
    pub fn redis_value(&self) -> String {
        match &self.win {
            Some(w) => format!(
                "won|{}|{}|{}|{}",
                w.pharmacy_id, w.product_id, w.pickup_code, w.roll
            ),
            None => "lost".into(),
        }
    }

    /// The citizen's view; the pickup code only for the holder.
    pub fn view(&self, holder: bool) -> DrawView {
        DrawView {
            date: self.date.to_string(),
            outcome: if self.win.is_some() { "won" } else { "lost" }.into(),
            pharmacy_id: self.win.as_ref().map(|w| w.pharmacy_id.clone()),
            product_id: self.win.as_ref().map(|w| w.product_id.clone()),
            pickup_code: self
                .win
                .as_ref()
                .filter(|_| holder)
                .map(|w| w.pickup_code.clone()),
            roll: self.win.as_ref().map(|w| w.roll),
        }
    }
}

/// Every recorded draw with its seal's entrant count and directory, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn drawn_days(db: &DatabaseConnection) -> Result<Vec<DrawnDay>, DbErr> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT d.draw_date, d.publish_at, d.winners, s.entrants, s.dir \
             FROM draws d JOIN seals s ON s.draw_date = d.draw_date ORDER BY d.draw_date",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DrawnDay {
                date: r.try_get("", "draw_date")?,
                publish_at: r.try_get("", "publish_at")?,
                winners: r.try_get("", "winners")?,
                entrants: r.try_get("", "entrants")?,
                dir: PathBuf::from(r.try_get::<String>("", "dir")?),
            })
        })
        .collect()
}

/// Tickets with every draw each entered, in one statement (the status fallback and the lookup):
/// point lookups through the primary key, `draw_entries (ticket_id)` and `draw_winners`'
/// primary key. `filter` is a fixed condition on `t` with parameters `$1`, `$2`…
///
/// `draw_entries` is partitioned by month of draw date. A ticket can only have entered draws
/// whose cutoff (the evening before the draw date, local time) fell between its acceptance
/// and the end of its validity, so its draw dates lie between the UTC date of `accepted_at`
/// minus one and that of `valid_until` plus two (a zone is less than a day from UTC). Saying
/// so lets PostgreSQL skip, while it runs the join, every month's partition outside that span:
/// the lookup reads one or two partitions' indexes, not every retained month's.
/// At most `limit` tickets (the newest) match `filter`.
async fn with_entries(
    db: &DatabaseConnection,
    filter: &str,
    values: Vec<sea_orm::Value>,
    limit: usize,
) -> Result<Vec<(TicketRow, Vec<Entry>)>, DbErr> {
    let qualified: Vec<String> = TICKET_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect();
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {outer}, e.draw_date, w.pharmacy_id AS w_pharmacy, w.product_id AS w_product, \
                        w.pickup_code, w.roll \
                 FROM (SELECT {cols} FROM tickets t WHERE {filter} ORDER BY ticket_id DESC LIMIT {limit}) t \
                 LEFT JOIN draw_entries e ON e.ticket_id = t.ticket_id \
                      AND e.draw_date BETWEEN (t.accepted_at AT TIME ZONE 'UTC')::date - 1 \
                                          AND (t.valid_until AT TIME ZONE 'UTC')::date + 2 \
                 LEFT JOIN draw_winners w ON w.draw_date = e.draw_date AND w.ticket_id = e.ticket_id \
                 ORDER BY t.ticket_id DESC, e.draw_date",
                cols = TICKET_COLUMNS,
                outer = qualified.join(", ")
            ),
            values,
        ))
        .await?;
    let mut out: Vec<(TicketRow, Vec<Entry>)> = Vec::new();
    for r in &rows {
        let ticket = row_to_ticket(r)?;
        if out
            .last()
            .is_none_or(|(t, _)| t.ticket_id != ticket.ticket_id)
        {
            out.push((ticket, Vec::new()));
        }
        let date: Option<NaiveDate> = r.try_get("", "draw_date")?;
        let Some(date) = date else { continue };
        let code: Option<String> = r.try_get("", "pickup_code")?;
        let win = match code {
            Some(pickup_code) => Some(Win {
                pharmacy_id: r.try_get("", "w_pharmacy")?,
                product_id: r.try_get("", "w_product")?,
                pickup_code,
                roll: r.try_get("", "roll")?,
            }),
            None => None,
        };
        if let Some((_, entries)) = out.last_mut() {
            entries.push(Entry { date, win });
        }
    }
    Ok(out)
}

/// A ticket and the draws it entered, or `None` when PostgreSQL does not know it.
///
/// # Errors
/// When the database fails.
pub async fn ticket_with_entries(
    db: &DatabaseConnection,
    ticket: &str,
) -> Result<Option<(TicketRow, Vec<Entry>)>, DbErr> {
    Ok(
        with_entries(db, "t.ticket_id = $1::bpchar", vec![ticket.into()], 1)
            .await?
            .pop(),
    )
}

/// The person's tickets (matched on both the id and the phone tag), newest first, each with
/// the draws it entered.
///
/// # Errors
/// When the database fails.
pub async fn person_with_entries(
    db: &DatabaseConnection,
    person_tag: &str,
    phone_tag: &str,
) -> Result<Vec<(TicketRow, Vec<Entry>)>, DbErr> {
    with_entries(
        db,
        "t.person_tag = $1::bpchar AND t.phone_tag = $2::bpchar",
        vec![person_tag.into(), phone_tag.into()],
        50,
    )
    .await
}

/// Tickets and the draws they entered, for several ticket ids in one statement (the ids not
/// known to PostgreSQL are missing from the answer).
///
/// # Errors
/// When the database fails.
pub async fn tickets_with_entries(
    db: &DatabaseConnection,
    tickets: &[String],
) -> Result<Vec<(TicketRow, Vec<Entry>)>, DbErr> {
    let ids = tickets
        .iter()
        .map(|t| sea_orm::Value::from(t.as_str()))
        .collect();
    with_entries(
        db,
        "t.ticket_id = ANY($1::bpchar[])",
        vec![sea_orm::Value::Array(
            sea_orm::sea_query::ArrayType::String,
            Some(Box::new(ids)),
        )],
        tickets.len().max(1),
    )
    .await
}

/// What a gathered read answers one reader.
pub type Found = Result<Option<(TicketRow, Vec<Entry>)>, DbErr>;

/// Status reads that missed Redis, gathered (the read side of group commit): the reads that
/// wait while every statement slot is busy go to PostgreSQL together, as one statement
/// (`ticket_id = ANY(…)`), when a slot frees. A read that finds a slot free goes at once, alone,
/// so nothing waits for company; when Redis has lost its data and every read of the city
/// misses it, PostgreSQL runs a statement per batch instead of one per read.
#[derive(Clone)]
pub struct TicketReads {
    tx: tokio::sync::mpsc::Sender<(String, tokio::sync::oneshot::Sender<Found>)>,
}

/// The most ticket ids in one statement.
pub const GATHERED_MAX: usize = 128;

impl TicketReads {
    /// Starts the gatherer on the current runtime, with at most `slots` statements in flight;
    /// `statements` counts the statements it runs. It stops when every copy is dropped.
    #[must_use]
    pub fn start(db: DatabaseConnection, slots: usize, statements: prometheus::IntCounter) -> Self {
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<(String, tokio::sync::oneshot::Sender<Found>)>(8192);
        tokio::spawn(async move {
            let free = std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1)));
            while let Some(first) = rx.recv().await {
                let Ok(slot) = free.clone().acquire_owned().await else {
                    return;
                };
                // Everything that queued while the slots were busy goes with this statement.
                let mut readers = vec![first];
                while readers.len() < GATHERED_MAX {
                    match rx.try_recv() {
                        Ok(r) => readers.push(r),
                        Err(_) => break,
                    }
                }
                let (db, statements) = (db.clone(), statements.clone());
                tokio::spawn(async move {
                    let mut ids: Vec<String> = readers.iter().map(|(t, _)| t.clone()).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    statements.inc();
                    let found = tickets_with_entries(&db, &ids).await;
                    drop(slot);
                    match found {
                        Ok(rows) => {
                            let rows: std::collections::HashMap<String, _> = rows
                                .into_iter()
                                .map(|(row, entries)| (row.ticket_id.clone(), (row, entries)))
                                .collect();
                            // A ticket asked for twice in one batch is answered twice.
                            for (ticket, reply) in readers {
                                let _ = reply.send(Ok(rows.get(&ticket).cloned()));
                            }
                        }
                        Err(e) => {
                            let why = e.to_string();
                            for (_, reply) in readers {
                                let _ = reply.send(Err(DbErr::Custom(why.clone())));
                            }
                        }
                    }
                });
            }
        });
        Self { tx }
    }

    /// The ticket and its entries, read with whatever other reads are waiting.
    ///
    /// # Errors
    /// When the database fails, or the gatherer has stopped.
    pub async fn read(&self, ticket: &str) -> Found {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send((ticket.to_string(), reply))
            .await
            .map_err(|_| DbErr::Custom("the status reader has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the status reader has stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_outcome_reads_back_and_the_pickup_code_shows_only_to_the_holder() {
        let won = Entry::from_redis("2026-11-24", "won|GZ-TH-0001|KN95|ABCDEFGHJK|2").unwrap();
        assert_eq!(won.view(false).outcome, "won");
        assert_eq!(won.view(false).pickup_code, None);
        assert_eq!(won.view(false).roll, Some(2));
        assert_eq!(won.view(true).pickup_code.as_deref(), Some("ABCDEFGHJK"));
        let lost = Entry::from_redis("2026-11-24", "lost").unwrap();
        assert_eq!(
            serde_json::to_value(lost.view(true)).unwrap(),
            serde_json::json!({"date": "2026-11-24", "outcome": "lost"})
        );
        for e in [&won, &lost] {
            assert_eq!(
                Entry::from_redis("2026-11-24", &e.redis_value()).as_ref(),
                Some(e)
            );
            assert_eq!(e.redis_field(), "draw:2026-11-24");
        }
        assert_eq!(Entry::from_redis("yesterday", "lost"), None);
        assert_eq!(Entry::from_redis("2026-11-24", "won|a|b|c|x"), None);
    }
}
