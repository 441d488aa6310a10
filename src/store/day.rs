//! The officials' day in PostgreSQL: stock, seals, entries, draws, winners, pickups.
//!
//! The seal and the draw move millions of rows, so they use sqlx directly underneath sea-orm's
//! pool: a streaming SELECT for `entrants.csv` and `COPY` for the winners.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sea_orm::sqlx::{self, Row};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};

use super::{pg, sqlx_err};

/// One line of a day's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    pub pharmacy_id: String,
    pub district_id: String,
    pub product_id: String,
    pub packs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRow {
    pub draw_date: NaiveDate,
    pub seal_id: String,
    pub entrants: i64,
    pub seal_txt: String,
    pub dir: String,
    /// SHA-256 of the `entrants.csv` the seal wrote (hex); none for seals made before it was
    /// recorded.
    pub entrants_sha256: Option<String>,
    /// Its directory is in place (renamed and synced): the seal's last step is done.
    pub completed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawRow {
    pub draw_date: NaiveDate,
    pub seed: String,
    pub winners: i64,
    pub publish_at: DateTime<Utc>,
    /// The signed `draw.txt`, as written into the directory.
    pub draw_txt: String,
    /// Redis and the exports were told: the draw's last step is done.
    pub completed: bool,
}

/// The seed a draw of the date started with, recorded before any draw file was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRow {
    pub seed: String,
    /// The seed text (`lottery::text::SeedText`): seal id, reveals, material.
    pub seed_txt: String,
}

/// Replaces the stock of `date` (refused once the date is sealed: the caller checks).
///
/// # Errors
/// When the database fails.
pub async fn replace_stock(
    db: &DatabaseConnection,
    date: NaiveDate,
    rows: &[StockRow],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM daily_stock WHERE draw_date = $1",
        vec![date.into()],
    ))
    .await?;
    for chunk in rows.chunks(5_000) {
        let mut sql = String::from("INSERT INTO daily_stock (draw_date, pharmacy_id, district_id, product_id, packs) VALUES ");
        let mut values = Vec::with_capacity(chunk.len() * 5);
        for (i, r) in chunk.iter().enumerate() {
            let b = i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            values.extend([
                date.into(),
                r.pharmacy_id.clone().into(),
                r.district_id.clone().into(),
                r.product_id.clone().into(),
                r.packs.into(),
            ]);
        }
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    txn.commit().await
}

/// The day's stock, ascending by (pharmacy, product) in byte order.
///
/// # Errors
/// When the database fails.
pub async fn stock(db: &DatabaseConnection, date: NaiveDate) -> Result<Vec<StockRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pharmacy_id, district_id, product_id, packs FROM daily_stock WHERE draw_date = $1 \
             ORDER BY pharmacy_id COLLATE \"C\", product_id COLLATE \"C\"",
            vec![date.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StockRow {
                pharmacy_id: r.try_get("", "pharmacy_id")?,
                district_id: r.try_get("", "district_id")?,
                product_id: r.try_get("", "product_id")?,
                packs: r.try_get("", "packs")?,
            })
        })
        .collect()
}

fn seal_row(r: &sea_orm::QueryResult) -> Result<SealRow, DbErr> {
    Ok(SealRow {
        draw_date: r.try_get("", "draw_date")?,
        seal_id: r.try_get("", "seal_id")?,
        entrants: r.try_get("", "entrants")?,
        seal_txt: r.try_get("", "seal_txt")?,
        dir: r.try_get("", "dir")?,
        entrants_sha256: r.try_get("", "entrants_sha256")?,
        completed: r.try_get("", "completed")?,
    })
}

const SEAL_COLUMNS: &str =
    "draw_date, seal_id, entrants, seal_txt, dir, entrants_sha256, completed_at IS NOT NULL AS completed";

/// # Errors
/// When the database fails.
pub async fn seal(db: &DatabaseConnection, date: NaiveDate) -> Result<Option<SealRow>, DbErr> {
    db.query_one(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {SEAL_COLUMNS} FROM seals WHERE draw_date = $1"),
        vec![date.into()],
    ))
    .await?
    .as_ref()
    .map(seal_row)
    .transpose()
}

/// The newest seal: the one the next seal links to.
///
/// # Errors
/// When the database fails.
pub async fn latest_seal(db: &DatabaseConnection) -> Result<Option<SealRow>, DbErr> {
    db.query_one(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT {SEAL_COLUMNS} FROM seals ORDER BY draw_date DESC LIMIT 1"),
    ))
    .await?
    .as_ref()
    .map(seal_row)
    .transpose()
}

/// # Errors
/// When the database fails.
pub async fn draw(db: &DatabaseConnection, date: NaiveDate) -> Result<Option<DrawRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT draw_date, seed, winners, publish_at, draw_txt, completed_at IS NOT NULL AS completed \
             FROM draws WHERE draw_date = $1",
            vec![date.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(DrawRow {
            draw_date: r.try_get("", "draw_date")?,
            seed: r.try_get("", "seed")?,
            winners: r.try_get("", "winners")?,
            publish_at: r.try_get("", "publish_at")?,
            draw_txt: r.try_get("", "draw_txt")?,
            completed: r.try_get("", "completed")?,
        })
    })
    .transpose()
}

/// Marks the seal of `date` finished: its directory is in place.
///
/// # Errors
/// When the database fails.
pub async fn complete_seal(db: &DatabaseConnection, date: NaiveDate) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE seals SET completed_at = now() WHERE draw_date = $1 AND completed_at IS NULL",
        vec![date.into()],
    ))
    .await?;
    Ok(())
}

/// Removes the record of an unfinished seal of `date` whose files are lost, so that the date
/// can be sealed again. Only a seal nobody can have seen qualifies: not completed (so never
/// served), no draw started on it, no seal linked to it. Returns whether it was removed.
///
/// # Errors
/// When the database fails.
pub async fn forget_unfinished_seal(
    db: &DatabaseConnection,
    date: NaiveDate,
) -> Result<bool, DbErr> {
    let done = db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM seals s WHERE s.draw_date = $1 AND s.completed_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM draw_seeds p WHERE p.draw_date = s.draw_date) \
             AND NOT EXISTS (SELECT 1 FROM draws d WHERE d.draw_date = s.draw_date) \
             AND NOT EXISTS (SELECT 1 FROM seals n WHERE n.previous = s.seal_id)",
            vec![date.into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the draw of `date` finished: Redis and the exports were told.
///
/// # Errors
/// When the database fails.
pub async fn complete_draw(db: &DatabaseConnection, date: NaiveDate) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE draws SET completed_at = now() WHERE draw_date = $1 AND completed_at IS NULL",
        vec![date.into()],
    ))
    .await?;
    Ok(())
}

/// The seed a draw of `date` started with, if one did.
///
/// # Errors
/// When the database fails.
pub async fn draw_seed(db: &DatabaseConnection, date: NaiveDate) -> Result<Option<SeedRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT seed, seed_txt FROM draw_seeds WHERE draw_date = $1",
            vec![date.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(SeedRow {
            seed: r.try_get("", "seed")?,
            seed_txt: r.try_get("", "seed_txt")?,
        })
    })
    .transpose()
}

/// Pins the seed of the draw of `date` (committed before it returns). Returns the seed that is
/// pinned: this one, or the one pinned before (which the caller must compare).
///
/// # Errors
/// When the database fails.
pub async fn pin_draw_seed(
    db: &DatabaseConnection,
    date: NaiveDate,
    seed: &SeedRow,
) -> Result<SeedRow, DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO draw_seeds (draw_date, seed, seed_txt) VALUES ($1, $2, $3) ON CONFLICT (draw_date) DO NOTHING",
        vec![date.into(), seed.seed.clone().into(), seed.seed_txt.clone().into()],
    ))
    .await?;
    draw_seed(db, date)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("the seed of {date} vanished after it was pinned")))
}

/// The recorded winners of `date` with their person tags, in ticket order.
///
/// # Errors
/// When the database fails.
pub async fn recorded_winners(
    db: &DatabaseConnection,
    date: NaiveDate,
) -> Result<Vec<WinnerRow>, DbErr> {
    let rows = sqlx::query(
        "SELECT w.ticket_id, w.pharmacy_id, w.product_id, w.roll, w.pickup_code, w.masked_id, t.person_tag \
         FROM draw_winners w JOIN tickets t ON t.ticket_id = w.ticket_id \
         WHERE w.draw_date = $1 ORDER BY w.ticket_id",
    )
    .bind(date)
    .fetch_all(pg(db))
    .await
    .map_err(sqlx_err)?;
    rows.iter()
        .map(|r| {
            Ok(WinnerRow {
                ticket_id: r
                    .try_get::<String, _>(0)
                    .map_err(sqlx_err)?
                    .trim_end()
                    .to_string(),
                pharmacy_id: r.try_get(1).map_err(sqlx_err)?,
                product_id: r.try_get(2).map_err(sqlx_err)?,
                roll: r.try_get(3).map_err(sqlx_err)?,
                pickup_code: r
                    .try_get::<String, _>(4)
                    .map_err(sqlx_err)?
                    .trim_end()
                    .to_string(),
                masked_id: r.try_get(5).map_err(sqlx_err)?,
                person_tag: r
                    .try_get::<String, _>(6)
                    .map_err(sqlx_err)?
                    .trim_end()
                    .to_string(),
            })
        })
        .collect()
}

/// What a day's lock guards: one seal and one draw of a date at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Seal,
    Draw,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Seal => "seal",
            Step::Draw => "draw",
        })
    }
}

/// A PostgreSQL session advisory lock on (step, date), held on a connection of its own for the
/// whole seal or draw. It is the database's, so it holds across machines; it dies with its
/// session, so a crashed officer never leaves it behind.
pub struct DayLock {
    conn: Option<sqlx::PgConnection>,
    key: (i32, i32),
}

impl DayLock {
    /// The lock's two keys: maskdraw's ("md") with the step, and the date.
    fn key(step: Step, date: NaiveDate) -> (i32, i32) {
        let kind = match step {
            Step::Seal => 1,
            Step::Draw => 2,
        };
        (
            0x6d64_0000 | kind,
            chrono::Datelike::num_days_from_ce(&date),
        )
    }

    /// Takes the lock of (`step`, `date`) if nobody holds it; `None` at once if somebody does.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn try_acquire(
        db: &DatabaseConnection,
        step: Step,
        date: NaiveDate,
    ) -> Result<Option<Self>, DbErr> {
        let key = Self::key(step, date);
        // Out of the pool for good: a pooled connection would go back to the pool still
        // holding the session's lock.
        let mut conn = pg(db).acquire().await.map_err(sqlx_err)?.detach();
        if try_lock(&mut conn, key).await? {
            Ok(Some(Self {
                conn: Some(conn),
                key,
            }))
        } else {
            let _ = sqlx::Connection::close(conn).await;
            Ok(None)
        }
    }

    /// Releases the lock and closes its connection. (Dropping it closes the connection too,
    /// and the server then releases the lock.)
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(self.key.0)
                .bind(self.key.1)
                .execute(&mut conn)
                .await;
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// Takes the session advisory lock `key` on `conn` if nobody holds it.
async fn try_lock(conn: &mut sqlx::PgConnection, key: (i32, i32)) -> Result<bool, DbErr> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(key.0)
        .bind(key.1)
        .fetch_one(conn)
        .await
        .map_err(sqlx_err)
}

/// Several day locks at once on one connection of its own: all of them or none (retention
/// takes every seal and draw lock of the dates whose data it removes).
pub struct DayLocks {
    conn: Option<sqlx::PgConnection>,
}

impl DayLocks {
    /// Takes the locks of every (`step`, `date`) if nobody holds any; `None` at once if somebody
    /// holds one (those taken meanwhile are given back).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn try_acquire(
        db: &DatabaseConnection,
        locks: &[(Step, NaiveDate)],
    ) -> Result<Option<Self>, DbErr> {
        let mut conn = pg(db).acquire().await.map_err(sqlx_err)?.detach();
        for (step, date) in locks {
            if !try_lock(&mut conn, DayLock::key(*step, *date)).await? {
                // Closing the session releases every lock it took.
                let _ = sqlx::Connection::close(conn).await;
                return Ok(None);
            }
        }
        Ok(Some(Self { conn: Some(conn) }))
    }

    /// Releases every lock (by closing the session that holds them).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut conn)
                .await;
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// The constraint a database error broke, if it broke one.
pub fn broken_constraint(e: &DbErr) -> Option<String> {
    match e {
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(sqlx::Error::Database(d)))
        | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sqlx::Error::Database(d))) => {
            d.constraint().map(str::to_string)
        }
        _ => None,
    }
}

/// Marks registered tickets whose validity ended by `cutoff` as expired; returns
/// (ticket, person_tag) of each.
///
/// # Errors
/// When the database fails.
pub async fn expire(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(String, String)>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tickets SET status = 'expired' WHERE status = 'registered' AND valid_until <= $1 \
             RETURNING ticket_id, person_tag",
            vec![cutoff.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "ticket_id")?, r.try_get("", "person_tag")?)))
        .collect()
}

/// Which tickets enter a draw: registered, accepted by the cutoff, still valid at it, and
/// their person not cooling down from a win on or after `cooling_from`. Written with literals
/// (COPY takes no parameters); both are typed values formatted here, never text from outside.
/// Public so the day benchmark's COPY baseline reads exactly the seal's rows.
#[must_use]
pub fn eligible(cutoff: DateTime<Utc>, cooling_from: NaiveDate) -> String {
    let cutoff = cutoff.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!(
        "t.status = 'registered' AND t.accepted_at <= TIMESTAMPTZ '{cutoff}' \
         AND t.valid_until > TIMESTAMPTZ '{cutoff}' \
         AND NOT EXISTS (SELECT 1 FROM draw_winners w JOIN tickets o ON o.ticket_id = w.ticket_id \
                         WHERE o.person_tag = t.person_tag AND w.draw_date >= DATE '{cooling_from}')"
    )
}

/// The sealing transaction: fixes the day's entrants and records the seal.
///
/// In one REPEATABLE READ transaction it streams every eligible ticket (see [`eligible`]) in
/// byte order of `ticket_id` to `each`, as the lines of `entrants.csv`
/// (`ticket_id,pharmacy_id,product_id,flexible,person_tag` + LF, produced by PostgreSQL's COPY,
/// so no row is decoded on the way; `each` checks every line), then lets `finish` build the
/// seal from what was streamed and records it. The entrants are `entrants.csv`; which of them
/// won or lost is recorded by the draw (`record_draw`). Nothing is committed if any step fails;
/// a concurrent second seal for the date fails on the primary key.
///
/// # Errors
/// When the database fails, or `each`/`finish` return an error (passed through as `Custom`).
pub async fn seal_day<F, G>(
    db: &DatabaseConnection,
    date: NaiveDate,
    cutoff: DateTime<Utc>,
    cooling_from: NaiveDate,
    previous: Option<&str>,
    mut each: F,
    finish: G,
) -> Result<SealRecord, DbErr>
where
    F: FnMut(&[u8]) -> Result<(), String>,
    G: FnOnce() -> Result<SealRecord, String>,
{
    let mut tx = pg(db).begin().await.map_err(sqlx_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    // The seal row first, with placeholders: its primary key is what refuses a second seal for
    // the date, before any work is done.
    sqlx::query(
        "INSERT INTO seals (draw_date, seal_id, previous, cutoff, entrants, entrants_root, stock_sha256, seal_txt, dir) \
         VALUES ($1, $2, $3, $4, 0, '', '', '', '')",
    )
    .bind(date)
    .bind(format!("pending-{date}"))
    .bind(previous)
    .bind(cutoff)
    .execute(&mut *tx)
    .await
    .map_err(sqlx_err)?;
    // The entrants, in the primary key's order (byte order: the column is COLLATE "C"). In
    // COPY's text format with ',' as delimiter a row is the entrants.csv line itself: the
    // identifiers and tags hold no character COPY would escape, and `each` refuses any line
    // that breaks the grammar.
    {
        let mut rows = tx
            .copy_out_raw(&format!(
                "COPY (SELECT t.ticket_id, t.pharmacy_id, t.product_id, t.flexible::int, t.person_tag \
                 FROM tickets t WHERE {} ORDER BY t.ticket_id) TO STDOUT WITH (FORMAT text, DELIMITER ',')",
                eligible(cutoff, cooling_from)
            ))
            .await
            .map_err(sqlx_err)?;
        while let Some(chunk) = rows.try_next().await.map_err(sqlx_err)? {
            each(&chunk).map_err(DbErr::Custom)?;
        }
    }
    let record = finish().map_err(DbErr::Custom)?;
    sqlx::query(
        "UPDATE seals SET seal_id = $2, entrants = $3, entrants_root = $4, stock_sha256 = $5, \
         seal_txt = $6, dir = $7, entrants_sha256 = $8 WHERE draw_date = $1",
    )
    .bind(date)
    .bind(&record.seal_id)
    .bind(record.entrants as i64)
    .bind(&record.entrants_root)
    .bind(&record.stock_sha256)
    .bind(&record.seal_txt)
    .bind(&record.dir)
    .bind(&record.entrants_sha256)
    .execute(&mut *tx)
    .await
    .map_err(sqlx_err)?;
    tx.commit().await.map_err(sqlx_err)?;
    Ok(record)
}

/// What the seal row records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRecord {
    pub seal_id: String,
    pub entrants: u64,
    pub entrants_root: String,
    pub stock_sha256: String,
    pub entrants_sha256: String,
    pub seal_txt: String,
    pub dir: String,
}

/// Sends one line per row (written by `line`, given the row's position) through
/// `COPY ... FROM STDIN`, in chunks of about a MiB.
async fn copy_rows<T>(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    rows: &[T],
    line: impl Fn(&mut Vec<u8>, usize, &T),
) -> Result<(), DbErr> {
    let mut copy = conn.copy_in_raw(statement).await.map_err(sqlx_err)?;
    let mut buf = Vec::with_capacity(2 << 20);
    for (i, row) in rows.iter().enumerate() {
        line(&mut buf, i, row);
        if buf.len() > (1 << 20) {
            copy.send(std::mem::take(&mut buf))
                .await
                .map_err(sqlx_err)?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await.map_err(sqlx_err)?;
    }
    copy.finish().await.map_err(sqlx_err)?;
    Ok(())
}

/// A winner as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinnerRow {
    pub ticket_id: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub roll: i16,
    pub pickup_code: String,
    pub masked_id: String,
    pub person_tag: String,
}

/// Masked ids and person tags of the given tickets.
///
/// # Errors
/// When the database fails.
pub async fn ticket_identities(
    db: &DatabaseConnection,
    tickets: &[String],
) -> Result<std::collections::HashMap<String, (String, String)>, DbErr> {
    let mut out = std::collections::HashMap::with_capacity(tickets.len());
    for chunk in tickets.chunks(50_000) {
        let rows = sqlx::query(
            "SELECT ticket_id, masked_id, person_tag FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
        )
        .bind(chunk)
        .fetch_all(pg(db))
        .await
        .map_err(sqlx_err)?;
        for r in rows {
            let t: String = r.try_get(0).map_err(sqlx_err)?;
            out.insert(
                t,
                (
                    r.try_get(1).map_err(sqlx_err)?,
                    r.try_get(2).map_err(sqlx_err)?,
                ),
            );
        }
    }
    Ok(out)
}

/// Records a draw in one transaction: the draws row, every entrant (`entrants`, the day's
/// ticket ids in `entrants.csv`'s order, so the position is the leaf index) in `draw_entries`,
/// every winner, and the winners' tickets as `won`; the entrants without a winner row lost.
/// Both tables are written by COPY. A second draw for the date fails on the primary key and
/// nothing is written.
///
/// # Errors
/// When the database fails.
pub async fn record_draw(
    db: &DatabaseConnection,
    date: NaiveDate,
    seed: &str,
    draw_txt: &str,
    publish_at: DateTime<Utc>,
    entrants: &[u128],
    winners: &[WinnerRow],
) -> Result<(), DbErr> {
    // The month's partition of `draw_entries` before its rows (outside the transaction: the
    // maker's lock is not held through the COPY).
    super::partitions::ensure(db, super::partitions::Table::DrawEntries, date).await?;
    let mut tx = pg(db).begin().await.map_err(sqlx_err)?;
    sqlx::query("INSERT INTO draws (draw_date, seed, winners, draw_txt, publish_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(date)
        .bind(seed)
        .bind(winners.len() as i64)
        .bind(draw_txt)
        .bind(publish_at)
        .execute(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    let day = date.to_string();
    copy_rows(
        &mut tx,
        "COPY draw_entries (ticket_id, draw_date, leaf_index) FROM STDIN",
        entrants,
        |buf, leaf, t| {
            buf.extend_from_slice(lottery::snapshot::TicketId::from_u128(*t).as_bytes());
            buf.push(b'\t');
            buf.extend_from_slice(day.as_bytes());
            buf.push(b'\t');
            buf.extend_from_slice(itoa::Buffer::new().format(leaf).as_bytes());
            buf.push(b'\n');
        },
    )
    .await?;
    copy_rows(
        &mut tx,
        "COPY draw_winners (draw_date, ticket_id, pharmacy_id, product_id, roll, pickup_code, masked_id) FROM STDIN",
        winners,
        |buf, _, w| {
            buf.extend_from_slice(
                format!(
                    "{day}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    w.ticket_id, w.pharmacy_id, w.product_id, w.roll, w.pickup_code, w.masked_id
                )
                .as_bytes(),
            );
        },
    )
    .await?;
    sqlx::query("UPDATE tickets SET status = 'won' FROM draw_winners w WHERE w.draw_date = $1 AND w.ticket_id = tickets.ticket_id")
        .bind(date)
        .execute(&mut *tx)
        .await
        .map_err(sqlx_err)?;
    tx.commit().await.map_err(sqlx_err)?;
    // Millions of new rows at once: without fresh statistics the planner may not see that a
    // ticket has a handful of entries, and the status fallback's point lookup turns into a
    // scan. ANALYZE samples a fixed number of rows, so it costs the same on any day; only the
    // month's partition of `draw_entries` changed (ANALYZE of the parent would sample every
    // retained month).
    sqlx::query(&format!(
        "ANALYZE {}, draw_winners",
        super::partitions::Table::DrawEntries.partition(date)
    ))
    .execute(pg(db))
    .await
    .map_err(sqlx_err)?;
    Ok(())
}

/// A pickup code's winner and whether it was collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupInfo {
    pub ticket_id: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub masked_id: String,
    pub draw_date: NaiveDate,
    pub published: bool,
    pub picked_up_at: Option<DateTime<Utc>>,
}

/// # Errors
/// When the database fails.
pub async fn pickup_info(
    db: &DatabaseConnection,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<PickupInfo>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT w.ticket_id, w.pharmacy_id, w.product_id, w.masked_id, w.draw_date, d.publish_at <= $2 AS published, p.picked_up_at \
             FROM draw_winners w JOIN draws d ON d.draw_date = w.draw_date \
             LEFT JOIN pickups p ON p.pickup_code = w.pickup_code WHERE w.pickup_code = $1::bpchar",
            vec![code.into(), now.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(PickupInfo {
            ticket_id: r.try_get("", "ticket_id")?,
            pharmacy_id: r.try_get("", "pharmacy_id")?,
            product_id: r.try_get("", "product_id")?,
            masked_id: r.try_get("", "masked_id")?,
            draw_date: r.try_get("", "draw_date")?,
            published: r.try_get("", "published")?,
            picked_up_at: r.try_get("", "picked_up_at")?,
        })
    })
    .transpose()
}

/// Marks a code collected; `None` when it already was (the row decides, so two counters
/// scanning the same code at once cannot both succeed).
///
/// # Errors
/// When the database fails.
pub async fn mark_picked_up(
    db: &DatabaseConnection,
    code: &str,
    pharmacy: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO pickups (pickup_code, pharmacy_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING picked_up_at",
            vec![code.into(), pharmacy.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "picked_up_at")).transpose()
}

/// Publication times of every draw, for filtering what citizens see.
///
/// # Errors
/// When the database fails.
pub async fn publish_times(
    db: &DatabaseConnection,
) -> Result<Vec<(NaiveDate, DateTime<Utc>)>, DbErr> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT draw_date, publish_at FROM draws",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "draw_date")?, r.try_get("", "publish_at")?)))
        .collect()
}
