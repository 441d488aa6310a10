//! A day's worth of data for the benches, loaded the fast way: `n` registered tickets by one
//! `INSERT ... SELECT FROM generate_series` (ULID-shaped ids ascending in byte order, unique
//! `md5` person and phone tags, the catalog's pharmacies with a skewed (u²) popularity, four
//! products, about half flexible), then stock for a draw date at about 5% of the tickets.

use chrono::{DateTime, NaiveDate, Utc};
use maskdraw::day::{self, DayContext};
use sea_orm::sqlx::{self, Row};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sha2::{Digest, Sha256};

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// SQL for the `n` low 5-bit groups of `expr` as Crockford base32 characters.
pub fn sql_base32(expr: &str, n: usize) -> String {
    (0..n)
        .rev()
        .map(|k| {
            format!(
                "substr('{CROCKFORD}', ((({expr}) >> {}) & 31)::int + 1, 1)",
                5 * k
            )
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// A string for a single-quoted SQL literal.
pub fn sh(s: &str) -> String {
    s.replace('\'', "''")
}

/// Runs one statement; the number of rows it touched.
pub async fn exec(db: &DatabaseConnection, sql: &str) -> Result<u64, String> {
    db.execute(Statement::from_string(DbBackend::Postgres, sql.to_string()))
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| format!("{e}: {sql}"))
}

/// Loads `n` registered tickets accepted over the three hours from `accepted_from` (ids carry
/// that time), then `VACUUM (ANALYZE)`s them so no measured step pays for hint bits. Returns
/// (rows, seconds of the insert, seconds of the vacuum).
pub async fn load_tickets(
    ctx: &DayContext,
    n: u64,
    accepted_from: DateTime<Utc>,
) -> Result<(u64, f64, f64), String> {
    // Pharmacies in a fixed pseudo-random order, so the popular ones fall in every district.
    let mut pharmacies: Vec<String> = ctx.catalog.pharmacies.keys().cloned().collect();
    pharmacies.sort_by_key(|p| Sha256::digest(p.as_bytes()));
    let ph_array = format!(
        "ARRAY[{}]",
        pharmacies
            .iter()
            .map(|p| format!("'{}'", sh(p)))
            .collect::<Vec<_>>()
            .join(",")
    );
    // A ULID time prefix at `accepted_from`; the 16 random characters carry the series number
    // in their first 6 (so ids are unique and ascend with i) and 50 pseudo-random bits after.
    let prefix_ms = accepted_from.timestamp_millis().max(0) as u64;
    let time_prefix = ulid::Ulid::from_parts(prefix_ms, 0).to_string()[..10].to_string();
    let rnd = "(('x' || substr(r, 1, 13))::bit(52)::bigint)";
    let ticket_expr = format!(
        "'{time_prefix}' || {} || {}",
        sql_base32("i", 6),
        sql_base32(rnd, 10)
    );
    let from = accepted_from.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    // Each registered ticket holds its person's claim in `active_persons` (the trigger on
    // `tickets` refuses one without it); both come from the same rows in one statement.
    let load_sql = format!(
        "WITH rows AS ( \
           SELECT {ticket_expr} AS ticket_id, h AS person_tag, md5('phone' || i) AS phone_tag, \
                '4401**********' || lpad((i % 1000)::text, 3, '0') || 'X' AS masked_id, \
                ({ph_array})[1 + floor({np} * power((('x' || substr(r, 14, 8))::bit(32)::bigint) / 4294967296.0, 2))::int] AS pharmacy_id, \
                (ARRAY['PLAIN','PLAIN','PLAIN','PLAIN','KN95','KN95','KN95','MED-CARE','MED-CARE','MED-SURG'])\
                    [1 + (('x' || substr(r, 22, 4))::bit(16)::int % 10)] AS product_id, \
                substr(r, 26, 1) < '8' AS flexible, \
                TIMESTAMPTZ '{from}' + i * (interval '3 hours' / {n}) AS accepted_at, \
                TIMESTAMPTZ '{from}' + i * (interval '3 hours' / {n}) + interval '{validity} days' AS valid_until \
           FROM (SELECT i, md5(i::text) AS h, md5('rnd' || i) AS r FROM generate_series(0, {last}) AS i) s), \
         claims AS (INSERT INTO active_persons (person_tag, ticket_id) SELECT person_tag, ticket_id FROM rows) \
         INSERT INTO tickets (ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, \
                              flexible, status, accepted_at, valid_until) \
         SELECT ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible, \
                'registered', accepted_at, valid_until FROM rows",
        np = pharmacies.len(),
        last = n - 1,
        validity = ctx.settings.validity_days,
    );
    let t = std::time::Instant::now();
    let inserted = exec(&ctx.db, &load_sql).await?;
    let insert_secs = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    exec(&ctx.db, "VACUUM (ANALYZE) tickets").await?;
    Ok((inserted, insert_secs, t.elapsed().as_secs_f64()))
}

/// Stock for `date`: about 5% of `n` tickets in packs; a tenth of the pools at 0 packs, the
/// small ones "generous" (more packs than entrants, so roll two has work), the rest at one
/// share of their entrants. Returns a line describing it.
pub async fn import_stock(ctx: &DayContext, date: NaiveDate, n: u64) -> Result<String, String> {
    let pools = sqlx::query(
        "SELECT pharmacy_id, product_id, count(*)::bigint FROM tickets GROUP BY 1, 2 \
         ORDER BY pharmacy_id COLLATE \"C\", product_id COLLATE \"C\"",
    )
    .fetch_all(ctx.db.get_postgres_connection_pool())
    .await
    .map_err(|e| e.to_string())?;
    let mut pools: Vec<(String, String, i64, u8)> = pools
        .iter()
        .map(|r| {
            let ph: String = r.get(0);
            let pr: String = r.get(1);
            let h = Sha256::digest(format!("{ph},{pr}").as_bytes())[0] % 10;
            (ph, pr, r.get::<i64, _>(2), h)
        })
        .collect();
    let mut counts: Vec<i64> = pools.iter().map(|p| p.2).collect();
    counts.sort_unstable();
    let small = counts[counts.len() / 4];
    let target = (n as f64 * 0.05) as i64;
    // kind: 0 = no packs, 1 = generous (more packs than entrants: leftover for roll two),
    // 2 = oversubscribed with a share of what is left of the target.
    let kind = |p: &(String, String, i64, u8)| match p.3 {
        0 => 0,
        1 | 2 if p.2 <= small => 1,
        _ => 2,
    };
    let generous_packs = |c: i64| c + c / 3 + 1;
    let spent: i64 = pools
        .iter()
        .filter(|p| kind(p) == 1)
        .map(|p| generous_packs(p.2))
        .sum();
    let normal: i64 = pools.iter().filter(|p| kind(p) == 2).map(|p| p.2).sum();
    let share = (target - spent).max(0) as f64 / normal.max(1) as f64;
    let mut stock_csv = String::from("pharmacy_id,product_id,packs\n");
    let (mut packs_total, mut zero, mut generous) = (0i64, 0, 0);
    for p in &mut pools {
        let packs = match kind(p) {
            0 => {
                zero += 1;
                0
            }
            1 => {
                generous += 1;
                generous_packs(p.2)
            }
            _ => ((p.2 as f64 * share) as i64).max(1),
        };
        packs_total += packs;
        stock_csv.push_str(&format!("{},{},{packs}\n", p.0, p.1));
    }
    let stock_rows = day::stock::import(ctx, date, &stock_csv)
        .await
        .map_err(|e| format!("stock import: {e}"))?;
    Ok(format!(
        "{} pools, {packs_total} packs ({:.2}% of tickets); {zero} at 0 packs, {generous} generous \
         (entrants + a third), the rest at {:.1}% of their entrants; largest pool {} entrants, smallest {}",
        stock_rows.len(),
        100.0 * packs_total as f64 / n as f64,
        100.0 * share,
        counts.last().copied().unwrap_or(0),
        counts.first().copied().unwrap_or(0)
    ))
}
