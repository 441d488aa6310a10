//! The partitions of `tickets` (by month of acceptance, UTC) and `draw_entries` (by month of
//! draw date), and what retention removes from PostgreSQL.
//!
//! Partitions are made by the SQL functions `tickets_ensure_month` / `draw_entries_ensure_month`
//! (migration `m20261205_000006`), which take an advisory lock, create the month's table if it
//! is missing and move into it any rows the DEFAULT partition took meanwhile. The application
//! calls them ahead of the rows: at every start (`startup::migrate`, so `serve`, `persist` and
//! the officials' commands) and by each seal and draw for its own date.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sea_orm::{sqlx, DatabaseConnection, DbErr};
use sqlx::Row;

use super::{pg, sqlx_err};

/// The partitioned tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Tickets,
    DrawEntries,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Tickets => "tickets",
            Table::DrawEntries => "draw_entries",
        }
    }

    /// The partition holding `month` (any day of it).
    pub fn partition(self, month: NaiveDate) -> String {
        format!("{}_p{:04}{:02}", self.name(), month.year(), month.month())
    }

    fn ensure_fn(self) -> &'static str {
        match self {
            Table::Tickets => "SELECT tickets_ensure_month($1)",
            Table::DrawEntries => "SELECT draw_entries_ensure_month($1)",
        }
    }
}

/// The first day of `d`'s month.
pub fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// Makes the partition of `table` for the month of `day` unless it exists; true if it made it.
///
/// # Errors
/// When the database fails.
pub async fn ensure(db: &DatabaseConnection, table: Table, day: NaiveDate) -> Result<bool, DbErr> {
    sqlx::query_scalar(table.ensure_fn())
        .bind(month_of(day))
        .fetch_one(pg(db))
        .await
        .map_err(sqlx_err)
}

/// How far ahead partitions are made: this month and the next two (a server or persister that
/// runs for two months without a restart and without a seal still finds its month; past that
/// the DEFAULT partition takes the rows until the next call moves them out).
pub const MONTHS_AHEAD: u32 = 2;

/// Makes the partitions around `day`: `tickets` from the month before (a backdated or late
/// reservation) to [`MONTHS_AHEAD`] months after, `draw_entries` from `day`'s month on.
/// Returns how many it made.
///
/// # Errors
/// When the database fails.
pub async fn ensure_around(db: &DatabaseConnection, day: NaiveDate) -> Result<usize, DbErr> {
    let first = month_of(day);
    let mut made = 0;
    for i in 0..=MONTHS_AHEAD + 1 {
        let Some(m) = first
            .checked_sub_months(Months::new(1))
            .and_then(|p| p.checked_add_months(Months::new(i)))
        else {
            continue;
        };
        made += usize::from(ensure(db, Table::Tickets, m).await?);
        if m >= first {
            made += usize::from(ensure(db, Table::DrawEntries, m).await?);
        }
    }
    Ok(made)
}

/// One partition of a partitioned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub table: Table,
    pub name: String,
    /// The first day of its month.
    pub month: NaiveDate,
    /// Its size on disk with indexes and TOAST.
    pub bytes: u64,
    pub rows_estimate: i64,
}

/// The monthly partitions of `table`, oldest first (the DEFAULT partition is not one).
///
/// # Errors
/// When the database fails.
pub async fn list(db: &DatabaseConnection, table: Table) -> Result<Vec<Partition>, DbErr> {
    let rows = sqlx::query(
        "SELECT c.relname::text, pg_total_relation_size(c.oid), c.reltuples::bigint \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::regclass ORDER BY c.relname",
    )
    .bind(table.name())
    .fetch_all(pg(db))
    .await
    .map_err(sqlx_err)?;
    let prefix = format!("{}_p", table.name());
    let mut out = Vec::new();
    for r in rows {
        let name: String = r.try_get(0).map_err(sqlx_err)?;
        let Some(month) = name
            .strip_prefix(&prefix)
            .and_then(|s| NaiveDate::parse_from_str(&format!("{s}01"), "%Y%m%d").ok())
        else {
            continue;
        };
        out.push(Partition {
            table,
            month,
            bytes: r.try_get::<i64, _>(1).map_err(sqlx_err)?.max(0) as u64,
            rows_estimate: r.try_get::<i64, _>(2).map_err(sqlx_err)?.max(0),
            name,
        });
    }
    Ok(out)
}

/// Rows of `table`'s DEFAULT partition: a partition was missing when they came.
///
/// # Errors
/// When the database fails.
pub async fn default_rows(db: &DatabaseConnection, table: Table) -> Result<i64, DbErr> {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {}_default", table.name()))
        .fetch_one(pg(db))
        .await
        .map_err(sqlx_err)
}

/// Registered tickets in a `tickets` partition: a month holding one is not dropped.
///
/// # Errors
/// When the database fails.
pub async fn registered_in(db: &DatabaseConnection, partition: &Partition) -> Result<i64, DbErr> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {} WHERE status = 'registered'",
        quote(&partition.name)
    ))
    .fetch_one(pg(db))
    .await
    .map_err(sqlx_err)
}

/// Drops a partition; returns its exact row count, counted in the same transaction.
///
/// # Errors
/// When the database fails.
pub async fn drop_partition(db: &DatabaseConnection, partition: &Partition) -> Result<i64, DbErr> {
    let mut tx = pg(db).begin().await.map_err(sqlx_err)?;
    let name = quote(&partition.name);
    // ACCESS EXCLUSIVE first, so the count is the count of what goes.
    sqlx::query(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
        .fetch_one(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    sqlx::query(&format!("DROP TABLE {name}"))
        .execute(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    tx.commit().await.map_err(sqlx_err)?;
    Ok(rows)
}

/// A partition name as an SQL identifier. Names come from `pg_inherits` and match
/// `<table>_pYYYYMM`; quoting keeps it an identifier whatever it is.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Personal data still held by tickets accepted before `before` (not registered ones: a
/// registered ticket is still in use). The erased columns hold '' afterwards: no tag or masked
/// id is empty, so an erased row matches no person.
///
/// # Errors
/// When the database fails.
pub async fn tickets_with_personal_data(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
) -> Result<i64, DbErr> {
    sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE accepted_at < $1 AND status <> 'registered' \
         AND (person_tag <> '' OR phone_tag <> '' OR masked_id <> '')",
    )
    .bind(before)
    .fetch_one(pg(db))
    .await
    .map_err(sqlx_err)
}

/// Erases the person tag, phone tag and masked id of the tickets accepted before `before`
/// among the next `limit` tickets after `after` in ticket order (see
/// [`tickets_with_personal_data`]). Returns how many it erased and the last ticket id it
/// looked at (`None` when there was none left): the caller goes on from there, so that each
/// batch reads its own stretch of the primary keys and a month of tickets is neither one huge
/// transaction nor a scan repeated for every batch.
///
/// # Errors
/// When the database fails.
pub async fn erase_ticket_personal_data(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    after: &str,
    limit: i64,
) -> Result<(u64, Option<String>), DbErr> {
    let row = sqlx::query(
        "WITH chunk AS ( \
             SELECT ticket_id, accepted_at, status, person_tag, phone_tag, masked_id FROM tickets \
             WHERE accepted_at < $1 AND ticket_id > $2::bpchar ORDER BY ticket_id LIMIT $3), \
         erased AS ( \
             UPDATE tickets t SET person_tag = '', phone_tag = '', masked_id = '' FROM chunk c \
             WHERE t.ticket_id = c.ticket_id AND t.accepted_at = c.accepted_at \
             AND c.status <> 'registered' \
             AND (c.person_tag <> '' OR c.phone_tag <> '' OR c.masked_id <> '') RETURNING 1) \
         SELECT (SELECT count(*) FROM erased), (SELECT max(ticket_id)::text FROM chunk)",
    )
    .bind(before)
    .bind(after)
    .bind(limit)
    .fetch_one(pg(db))
    .await
    .map_err(sqlx_err)?;
    let erased: i64 = row.try_get(0).map_err(sqlx_err)?;
    let last: Option<String> = row.try_get(1).map_err(sqlx_err)?;
    Ok((erased.max(0) as u64, last))
}

/// Erases the masked ids that `draw_winners` keeps of the winners of `date` (the pickup desk's
/// check of a winner's id card); returns how many.
///
/// # Errors
/// When the database fails.
pub async fn erase_winner_personal_data(
    db: &DatabaseConnection,
    date: NaiveDate,
) -> Result<u64, DbErr> {
    let done = sqlx::query(
        "UPDATE draw_winners SET masked_id = '' WHERE draw_date = $1 AND masked_id <> ''",
    )
    .bind(date)
    .execute(pg(db))
    .await
    .map_err(sqlx_err)?;
    Ok(done.rows_affected())
}

/// What PostgreSQL knows of a date retention looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    pub date: NaiveDate,
    /// The seal's directory (`seals.dir`), when sealed.
    pub seal_dir: Option<String>,
    pub sealed: bool,
    /// A draw recorded and completed.
    pub drawn: bool,
    /// Winners whose masked id is still kept.
    pub winners_with_masked_id: i64,
}

/// Every sealed or drawn date before `before`, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn days_before(
    db: &DatabaseConnection,
    before: NaiveDate,
) -> Result<Vec<DayRecord>, DbErr> {
    let rows = sqlx::query(
        "SELECT s.draw_date, s.dir, d.completed_at IS NOT NULL, \
                (SELECT count(*) FROM draw_winners w WHERE w.draw_date = s.draw_date AND w.masked_id <> '') \
         FROM seals s LEFT JOIN draws d ON d.draw_date = s.draw_date \
         WHERE s.draw_date < $1 ORDER BY s.draw_date",
    )
    .bind(before)
    .fetch_all(pg(db))
    .await
    .map_err(sqlx_err)?;
    rows.iter()
        .map(|r| {
            let dir: String = r.try_get(1).map_err(sqlx_err)?;
            Ok(DayRecord {
                date: r.try_get(0).map_err(sqlx_err)?,
                seal_dir: (!dir.is_empty()).then_some(dir),
                sealed: true,
                drawn: r.try_get(2).map_err(sqlx_err)?,
                winners_with_masked_id: r.try_get(3).map_err(sqlx_err)?,
            })
        })
        .collect()
}
