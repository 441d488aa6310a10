//! Draw outcomes as citizens see them.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::Serialize;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickup_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<i16>,
}

/// The published draws `ticket` entered, oldest first. Draws whose `publish_at` is still ahead
/// of `now` are left out entirely.
///
/// # Errors
/// When the database fails.
pub async fn for_ticket(
    db: &DatabaseConnection,
    ticket: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DrawView>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT e.draw_date, w.pharmacy_id, w.product_id, w.pickup_code, w.roll \
             FROM draw_entries e JOIN draws d ON d.draw_date = e.draw_date \
             LEFT JOIN draw_winners w ON w.draw_date = e.draw_date AND w.ticket_id = e.ticket_id \
             WHERE e.ticket_id = $1 AND d.publish_at <= $2 ORDER BY e.draw_date",
            vec![ticket.into(), now.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let date: NaiveDate = r.try_get("", "draw_date")?;
            let pickup: Option<String> = r.try_get("", "pickup_code")?;
            Ok(DrawView {
                date: date.to_string(),
                outcome: if pickup.is_some() { "won" } else { "lost" }.into(),
                pharmacy_id: r.try_get("", "pharmacy_id")?,
                product_id: r.try_get("", "product_id")?,
                pickup_code: pickup,
                roll: r.try_get("", "roll")?,
            })
        })
        .collect()
}
