//! What the read path keeps in the process so that a status read needs no PostgreSQL round
//! trip in the normal case (DESIGN.md "Publication: the 18:00 peak"):
//!
//! - [`Publications`]: every recorded draw with its `publish_at` and snapshot directory,
//!   refreshed every second by the monitor and at once (at most every 100 ms) when a ticket
//!   names a draw the process has not seen. A draw the process does not know is treated as
//!   unpublished, so staleness can only delay a result, never show it early.
//! - [`NegativeCache`]: well-formed ticket ids PostgreSQL did not know, remembered briefly
//!   (cache penetration: a script asking for made-up ids would otherwise cost a query each).
//! - [`Warmth`]: whether Redis holds every live ticket (`cache warm` finished since Redis last
//!   lost its data). While it does, a ticket Redis does not know is unknown, and no query is
//!   needed at all.

pub mod warm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{DatabaseConnection, DbErr};

use crate::store::draws;

/// A recorded draw as the read path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnDay {
    pub date: NaiveDate,
    pub publish_at: DateTime<Utc>,
    pub entrants: i64,
    pub winners: i64,
    /// The sealed (and drawn) snapshot directory, as the seal recorded it.
    pub dir: PathBuf,
}

impl DrawnDay {
    pub fn is_published(&self, now: DateTime<Utc>) -> bool {
        self.publish_at <= now
    }
}

/// Refreshes triggered by an unknown draw date come at most this often.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// The recorded draws, held in the process.
pub struct Publications {
    days: RwLock<Arc<BTreeMap<NaiveDate, DrawnDay>>>,
    /// Single flight for refreshes, with the time the last one started.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
}

impl Default for Publications {
    fn default() -> Self {
        Self {
            days: RwLock::new(Arc::default()),
            refreshing: tokio::sync::Mutex::new(None),
        }
    }
}

impl Publications {
    fn snapshot(&self) -> Arc<BTreeMap<NaiveDate, DrawnDay>> {
        match self.days.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The drawn day `date`, published or not.
    pub fn day(&self, date: NaiveDate) -> Option<DrawnDay> {
        self.snapshot().get(&date).cloned()
    }

    /// Whether `date` was drawn and its results are public at `now`.
    pub fn is_published(&self, date: NaiveDate, now: DateTime<Utc>) -> bool {
        self.snapshot()
            .get(&date)
            .is_some_and(|d| d.is_published(now))
    }

    /// Every published day, newest first.
    pub fn published(&self, now: DateTime<Utc>) -> Vec<DrawnDay> {
        self.snapshot()
            .values()
            .rev()
            .filter(|d| d.is_published(now))
            .cloned()
            .collect()
    }

    /// Reads every recorded draw from PostgreSQL.
    ///
    /// # Errors
    /// When the database fails; what the process knew stays.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let mut last = self.refreshing.lock().await;
        *last = Some(Instant::now());
        self.load(db).await
    }

    async fn load(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let rows = draws::drawn_days(db).await?;
        let map: BTreeMap<NaiveDate, DrawnDay> = rows.into_iter().map(|d| (d.date, d)).collect();
        match self.days.write() {
            Ok(mut g) => *g = Arc::new(map),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(map),
        }
        Ok(())
    }

    /// Makes sure every draw of `dates` recorded before this call is known: when one is not,
    /// reads PostgreSQL again, unless a read that started after this call did (it saw all the
    /// caller could). Reads come at most every 100 ms: a caller waits for its turn rather than
    /// go without (a draw whose row is not committed yet stays unknown, and so hidden).
    pub async fn ensure(&self, db: &DatabaseConnection, dates: &[NaiveDate]) {
        let all_known = |me: &Self| {
            let known = me.snapshot();
            dates.iter().all(|d| known.contains_key(d))
        };
        if all_known(self) {
            return;
        }
        let asked = Instant::now();
        let mut last = self.refreshing.lock().await;
        if all_known(self) {
            return;
        }
        if let Some(started) = *last {
            if started >= asked {
                return;
            }
            let wait = MIN_REFRESH.saturating_sub(started.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        *last = Some(Instant::now());
        if let Err(e) = self.load(db).await {
            tracing::warn!(error = ?e, "refreshing the recorded draws");
        }
    }
}

/// Ticket ids PostgreSQL did not know, for `ttl`.
pub struct NegativeCache(moka::sync::Cache<u128, ()>);

impl NegativeCache {
    pub fn new(ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub fn is_unknown(&self, ticket: u128) -> bool {
        self.0.contains_key(&ticket)
    }

    pub fn remember_unknown(&self, ticket: u128) {
        self.0.insert(ticket, ());
    }
}

/// Whether Redis holds every live ticket: `Warm` (its warm marker was seen), `Cold` (Redis
/// answered without the marker: it lost its data since the last warm) or `Unknown` (at start,
/// and since a Redis command failed: Redis may have restarted empty, or only the connection
/// broke). An unknown warmth is settled by the next reservation with one `EXISTS` on its own
/// connection ([`crate::store::redis::RedisStore::is_warm`]) rather than by asking PostgreSQL
/// for every reservation until the monitor's next look.
#[derive(Default)]
pub struct Warmth(AtomicU8);

const UNKNOWN: u8 = 0;
const WARM: u8 = 1;
const COLD: u8 = 2;

impl Warmth {
    /// Redis is known to hold every live ticket.
    pub fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire) == WARM
    }

    /// `Some(complete)` when known, `None` when it has to be looked at.
    pub fn known(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            WARM => Some(true),
            COLD => Some(false),
            _ => None,
        }
    }

    /// What Redis answered: its marker is there (`true`) or not.
    pub fn set(&self, complete: bool) {
        self.0
            .store(if complete { WARM } else { COLD }, Ordering::Release);
    }

    /// A Redis command failed: until Redis answers again, what it holds is not known.
    pub fn lost_sight(&self) {
        self.0.store(UNKNOWN, Ordering::Release);
    }
}

/// Each published day's proof reader, opened once: it holds the day's small files and the
/// proof tiles' index, so a proof costs O(log n) positioned reads (`lottery::proof::DayProofs`).
/// Only drawn days are opened here (a `DayProofs` reflects the directory as it was opened).
pub struct DayProofCache(moka::sync::Cache<NaiveDate, Arc<lottery::proof::DayProofs>>);

impl Default for DayProofCache {
    fn default() -> Self {
        // A month of days; each is a few kilobytes plus its tiles' index.
        Self(moka::sync::Cache::builder().max_capacity(31).build())
    }
}

impl DayProofCache {
    /// The open reader of `day`, opening it (blocking IO) if need be.
    ///
    /// # Errors
    /// When the day's files cannot be opened.
    pub fn get(
        &self,
        day: &DrawnDay,
    ) -> Result<Arc<lottery::proof::DayProofs>, lottery::proof::ProofError> {
        if let Some(p) = self.0.get(&day.date) {
            return Ok(p);
        }
        let opened = Arc::new(lottery::proof::DayProofs::open(&day.dir)?);
        if let lottery::proof::ProofSource::FullRead(why) = opened.source() {
            tracing::warn!(date = %day.date, ?why, "proofs of this day read the whole entrants.csv");
        }
        self.0.insert(day.date, opened.clone());
        Ok(opened)
    }
}

/// Everything above, shared by the handlers and the monitor.
pub struct ReadCache {
    pub publications: Publications,
    pub unknown: NegativeCache,
    pub warmth: Warmth,
    pub proofs: DayProofCache,
}

impl ReadCache {
    pub fn new(negative_ttl: Duration) -> Self {
        Self {
            publications: Publications::default(),
            unknown: NegativeCache::new(negative_ttl),
            warmth: Warmth::default(),
            proofs: DayProofCache::default(),
        }
    }
}
