//! Partitioned tables and `maskdraw retention` (issue 11 item 4), against the real PostgreSQL:
//! each test has a database of its own and no server (nothing here goes through HTTP).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use maskdraw::config::Settings;
use maskdraw::queue::ReservationEvent;
use maskdraw::retention::{self, RetentionOptions, RetentionReport};
use maskdraw::store::day::{broken_constraint, DayLock, Step};
use maskdraw::store::partitions::{self, Table};
use maskdraw::store::tickets;
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::helpers::{isolated_settings, remove_isolated};

/// A database of its own (not migrated) and settings whose directories are its own.
struct Scratch {
    settings: Settings,
    db: DatabaseConnection,
    db_name: String,
}

impl Scratch {
    async fn new() -> Self {
        let (settings, db_name) = isolated_settings(0).await;
        let db = Database::connect(&settings.database_url).await.unwrap();
        Self {
            settings,
            db,
            db_name,
        }
    }

    async fn exec(&self, sql: &str) {
        self.db
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn try_exec(&self, sql: &str) -> Result<(), sea_orm::DbErr> {
        self.db
            .execute(Statement::from_string(DbBackend::Postgres, sql.to_string()))
            .await
            .map(|_| ())
    }

    async fn text(&self, sql: &str) -> Option<String> {
        sea_orm::sqlx::query_scalar::<_, Option<String>>(sql)
            .fetch_optional(self.db.get_postgres_connection_pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .flatten()
    }

    async fn count(&self, sql: &str) -> i64 {
        sea_orm::sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.db.get_postgres_connection_pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn exists(&self, relation: &str) -> bool {
        self.text(&format!("SELECT to_regclass('{relation}')::text"))
            .await
            .is_some()
    }

    async fn teardown(self) {
        self.db.close().await.ok();
        remove_isolated(&self.settings, &self.db_name).await;
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A 26-character ticket id (ids here need only be unique and of the column's form).
fn tid(n: u32) -> String {
    format!("01TEST{n:020}")
}

fn tag(s: &str) -> String {
    format!("{:0>32}", s)
}

fn event(ticket: &str, person: &str, accepted_at: DateTime<Utc>) -> ReservationEvent {
    ReservationEvent {
        ticket_id: ticket.into(),
        person_tag: tag(person),
        phone_tag: tag(&format!("ph{person}")),
        masked_id: "4401**********123X".into(),
        pharmacy_id: "GZ-TH-0001".into(),
        product_id: "KN95".into(),
        flexible: false,
        accepted_at,
        valid_until: accepted_at + Duration::days(10),
    }
}

/// A ticket row as SQL values (for the tables before and after the migration).
fn ticket_values(n: u32, person: &str, status: &str, accepted: &str) -> String {
    format!(
        "('{}', '{}', '{}', '4401**********{:03}X', 'GZ-TH-0001', 'KN95', {}, '{status}', \
         TIMESTAMPTZ '{accepted}', TIMESTAMPTZ '{accepted}' + interval '10 days')",
        tid(n),
        tag(person),
        tag(&format!("ph{person}")),
        n % 1000,
        n % 2 == 0
    )
}

const TICKET_COLUMNS: &str = "ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, \
     product_id, flexible, status, accepted_at, valid_until";

/// Every row of the converted tables, as one digest per table.
async fn digests(s: &Scratch) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT md5(string_agg(t::text, '|' ORDER BY ticket_id)) FROM \
         (SELECT ticket_id, person_tag, phone_tag, masked_id, pharmacy_id, product_id, flexible, \
                 status, accepted_at, valid_until, persisted_at FROM tickets) t",
        "SELECT md5(string_agg(e::text, '|' ORDER BY draw_date, ticket_id)) FROM \
         (SELECT ticket_id, draw_date, leaf_index FROM draw_entries) e",
        "SELECT md5(string_agg(w::text, '|' ORDER BY draw_date, ticket_id)) FROM draw_winners w",
        "SELECT md5(string_agg(p::text, '|' ORDER BY pickup_code)) FROM pickups p",
    ] {
        out.push(s.text(sql).await);
    }
    out
}

#[tokio::test]
async fn the_migration_converts_a_populated_database_keeping_every_row_and_constraint() {
    let s = Scratch::new().await;
    // The schema as it was before partitioning, populated over four months and two years.
    migration::Migrator::up(&s.db, Some(6)).await.unwrap();
    let mut rows = Vec::new();
    let months = [
        "2025-12-31T23:59:59.999999Z",
        "2026-01-01T00:00:00Z",
        "2026-08-15T10:00:00Z",
        "2026-09-30T16:30:00Z",
        "2026-10-02T01:00:00Z",
    ];
    for n in 0..60u32 {
        let status = match n % 4 {
            0 => "registered",
            1 => "expired",
            2 => "won",
            _ => "rejected",
        };
        // Registered tickets belong to distinct persons; the others share persons with them.
        let person = format!("p{}", n / 4);
        rows.push(ticket_values(
            n,
            &person,
            status,
            months[n as usize % months.len()],
        ));
    }
    s.exec(&format!(
        "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
        rows.join(",")
    ))
    .await;
    s.exec(
        "INSERT INTO seals (draw_date, seal_id, previous, cutoff, entrants, entrants_root, stock_sha256, seal_txt, dir) \
         VALUES ('2026-08-20', repeat('a', 64), NULL, '2026-08-19T14:00:00Z', 3, '', '', '', ''), \
                ('2026-10-03', repeat('b', 64), repeat('a', 64), '2026-10-02T14:00:00Z', 3, '', '', '', ''); \
         INSERT INTO draws (draw_date, seed, winners, draw_txt, publish_at) \
         VALUES ('2026-08-20', repeat('c', 64), 1, '', '2026-08-20T10:00:00Z'), \
                ('2026-10-03', repeat('d', 64), 1, '', '2026-10-03T10:00:00Z');",
    )
    .await;
    s.exec(&format!(
        "INSERT INTO draw_entries (ticket_id, draw_date, leaf_index) VALUES \
         ('{}', '2026-08-20', 0), ('{}', '2026-08-20', 1), ('{}', '2026-10-03', 0), ('{}', '2026-10-03', 1); \
         INSERT INTO draw_winners (draw_date, ticket_id, pharmacy_id, product_id, roll, pickup_code, masked_id) \
         VALUES ('2026-08-20', '{}', 'GZ-TH-0001', 'KN95', 1, 'ABCDEFGHJK', '4401**********002X'); \
         INSERT INTO pickups (pickup_code, pharmacy_id) VALUES ('ABCDEFGHJK', 'GZ-TH-0001');",
        tid(2),
        tid(7),
        tid(4),
        tid(9),
        tid(2)
    ))
    .await;
    let before = digests(&s).await;
    let registered = s
        .text("SELECT string_agg(person_tag || ticket_id, ',' ORDER BY person_tag) FROM tickets WHERE status = 'registered'")
        .await;

    maskdraw::startup::migrate(&s.db).await.unwrap();

    // Every row, unchanged.
    assert_eq!(digests(&s).await, before);
    assert_eq!(s.count("SELECT count(*) FROM tickets").await, 60);
    assert_eq!(s.count("SELECT count(*) FROM draw_entries").await, 4);
    // Partitioned, each row in the partition of its month, none in the defaults.
    for t in ["tickets", "draw_entries"] {
        assert_eq!(
            s.text(&format!(
                "SELECT relkind::text FROM pg_class WHERE relname = '{t}'"
            ))
            .await
            .as_deref(),
            Some("p"),
            "{t} is partitioned"
        );
        assert_eq!(
            s.count(&format!("SELECT count(*) FROM {t}_default")).await,
            0
        );
    }
    assert_eq!(
        s.count(
            "SELECT count(*) FROM tickets WHERE tableoid::regclass::text \
             <> 'tickets_p' || to_char(accepted_at AT TIME ZONE 'UTC', 'YYYYMM')"
        )
        .await,
        0
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM draw_entries WHERE tableoid::regclass::text \
             <> 'draw_entries_p' || to_char(draw_date, 'YYYYMM')"
        )
        .await,
        0
    );
    assert!(s.exists("tickets_p202512").await && s.exists("tickets_p202601").await);
    // The claims are exactly the registered tickets.
    assert_eq!(
        s.text("SELECT string_agg(person_tag || ticket_id, ',' ORDER BY person_tag) FROM active_persons")
            .await,
        registered
    );
    // The indexes, on the parents.
    for index in [
        "tickets_pkey",
        "tickets_person",
        "tickets_registered_until",
        "draw_entries_ticket_id",
    ] {
        assert!(s.exists(index).await, "{index}");
    }
    // The constraints hold: the primary key, the status check, one registered ticket per person.
    let dup = s
        .try_exec(&format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
            ticket_values(1, "p0", "expired", months[1])
        ))
        .await
        .unwrap_err();
    assert_eq!(
        broken_constraint(&dup).as_deref(),
        Some("tickets_p202601_pkey")
    );
    let bad = s
        .try_exec(&format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
            ticket_values(100, "p100", "lost", months[2])
        ))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("tickets_status_check"), "{bad}");
    let second = s
        .try_exec(&format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
            ticket_values(101, "p0", "registered", "2026-11-20T00:00:00Z")
        ))
        .await
        .unwrap_err();
    assert_eq!(
        broken_constraint(&second).as_deref(),
        Some("tickets_one_active_per_person")
    );
    // The pickups' key to the winners is still there.
    let orphan = s
        .try_exec(
            "INSERT INTO pickups (pickup_code, pharmacy_id) VALUES ('ZZZZZZZZZZ', 'GZ-TH-0001')",
        )
        .await
        .unwrap_err();
    assert!(
        orphan.to_string().contains("pickups_pickup_code_fkey"),
        "{orphan}"
    );
    s.teardown().await;
}

#[tokio::test]
async fn postgresql_keeps_one_registered_ticket_per_person_across_partitions() {
    let s = Scratch::new().await;
    maskdraw::startup::migrate(&s.db).await.unwrap();
    let now = Utc::now();
    for m in [now - Duration::days(40), now - Duration::days(80)] {
        partitions::ensure(&s.db, Table::Tickets, m.date_naive())
            .await
            .unwrap();
    }
    let registered = |p: &'static str| {
        let s = &s;
        async move {
            s.count(&format!(
                "SELECT count(*) FROM tickets WHERE status = 'registered' AND person_tag = '{}'",
                tag(p)
            ))
            .await
        }
    };

    // A ticket of this month, then one of a month whose partition is another table.
    let a = event(&tid(1), "alice", now);
    let out = tickets::insert_batch(&s.db, std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(out.inserted, [tid(1)]);
    let b = event(
        &tid(2),
        "alice",
        now - Duration::days(40) + Duration::hours(1),
    );
    let out = tickets::insert_batch(&s.db, std::slice::from_ref(&b))
        .await
        .unwrap();
    assert_eq!(out.rejected, [tid(2)]);
    // A redelivery is a duplicate and leaves one claim.
    let out = tickets::insert_batch(&s.db, &[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!((out.duplicates, out.inserted.len()), (2, 0));
    assert_eq!(registered("alice").await, 1);
    assert_eq!(s.count("SELECT count(*) FROM active_persons").await, 1);

    // Eight persisters at once, eight tickets of one person: one is registered.
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let db = s.db.clone();
        let e = event(&tid(10 + i), "bob", now - Duration::minutes(i64::from(i)));
        tasks.push(tokio::spawn(async move {
            tickets::insert_batch(&db, std::slice::from_ref(&e))
                .await
                .unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        let out = t.await.unwrap();
        inserted += out.inserted.len();
        assert_eq!(out.inserted.len() + out.rejected.len(), 1);
    }
    assert_eq!(inserted, 1);
    assert_eq!(registered("bob").await, 1);

    // Moving a registered ticket to another month (a backdating test does so) keeps its claim.
    s.exec(&format!(
        "UPDATE tickets SET accepted_at = accepted_at - interval '80 days' WHERE ticket_id = '{}'",
        tid(1)
    ))
    .await;
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM active_persons WHERE ticket_id = '{}'",
            tid(1)
        ))
        .await,
        1
    );
    let c = event(&tid(3), "alice", now);
    let out = tickets::insert_batch(&s.db, std::slice::from_ref(&c))
        .await
        .unwrap();
    assert_eq!(out.rejected, [tid(3)]);

    // Once the ticket's validity has ended, the next one takes its place and its claim.
    s.exec(&format!(
        "UPDATE tickets SET valid_until = now() - interval '1 hour' WHERE ticket_id = '{}'",
        tid(1)
    ))
    .await;
    let d = event(&tid(4), "alice", now);
    let out = tickets::insert_batch(&s.db, std::slice::from_ref(&d))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.expired), (vec![tid(4)], vec![tid(1)]));
    assert_eq!(
        s.text(&format!(
            "SELECT ticket_id::text FROM active_persons WHERE person_tag = '{}'",
            tag("alice")
        ))
        .await,
        Some(tid(4))
    );

    // A writer that skips the claim is refused by PostgreSQL itself.
    let raw = s
        .try_exec(&format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
            ticket_values(
                5,
                "alice",
                "registered",
                &(now - Duration::days(80)).to_rfc3339()
            )
        ))
        .await
        .unwrap_err();
    assert_eq!(
        broken_constraint(&raw).as_deref(),
        Some("tickets_one_active_per_person")
    );
    // Expiry by the seal and a win by the draw give the claims back.
    s.exec("UPDATE tickets SET status = 'won' WHERE status = 'registered'")
        .await;
    assert_eq!(s.count("SELECT count(*) FROM active_persons").await, 0);
    let e = event(&tid(6), "bob", now);
    let out = tickets::insert_batch(&s.db, std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(out.inserted, [tid(6)]);
    s.teardown().await;
}

/// The retention test's world (today is 2026-07-15, 40 days kept: due is what is dated before
/// 2026-06-05, whose midnight in Shanghai is 2026-06-04T16:00Z).
struct World {
    s: Scratch,
    opts: RetentionOptions,
}

const D1: &str = "2026-04-10"; // drawn
const D2: &str = "2026-05-20"; // drawn; its draw lock is held during the first run
const D3: &str = "2026-06-02"; // sealed, drawn only before the second run
const D4: &str = "2026-06-10"; // drawn, newer than the cutoff

impl World {
    async fn new() -> Self {
        let s = Scratch::new().await;
        maskdraw::startup::migrate(&s.db).await.unwrap();
        // A server running since March made these partitions as the months came.
        for m in [
            "2026-03-01",
            "2026-04-01",
            "2026-05-01",
            "2026-06-01",
            "2026-07-01",
        ] {
            for t in [Table::Tickets, Table::DrawEntries] {
                partitions::ensure(&s.db, t, date(m)).await.unwrap();
            }
        }
        let tickets = [
            ticket_values(1, "t1", "expired", "2026-04-05T10:00:00Z"),
            ticket_values(2, "t2", "won", "2026-05-15T10:00:00Z"),
            ticket_values(3, "t3", "expired", "2026-06-01T10:00:00Z"),
            ticket_values(4, "t4", "expired", "2026-06-04T17:00:00Z"),
            ticket_values(6, "t6", "registered", "2026-03-10T10:00:00Z"),
            ticket_values(7, "t7", "expired", "2026-05-02T10:00:00Z"),
        ];
        s.exec(&format!(
            "INSERT INTO active_persons VALUES ('{}', '{}'); INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}",
            tag("t6"),
            tid(6),
            tickets.join(",")
        ))
        .await;
        let mut previous = "NULL".to_string();
        for (i, d) in [D1, D2, D3, D4].iter().enumerate() {
            let id = format!("'{}'", char::from(b'a' + i as u8).to_string().repeat(64));
            let dir = s.settings.snapshots_dir.join(d);
            s.exec(&format!(
                "INSERT INTO seals (draw_date, seal_id, previous, cutoff, entrants, entrants_root, \
                 stock_sha256, seal_txt, dir, completed_at) \
                 VALUES ('{d}', {id}, {previous}, TIMESTAMPTZ '{d}' - interval '10 hours', 1, '', '', \
                 'seal of {d}', '{}', now())",
                dir.display()
            ))
            .await;
            previous = id;
            if *d != D3 {
                World::draw(&s, d).await;
            }
            for (root, files) in [(&s.settings.snapshots_dir, 3), (&s.settings.exports_dir, 2)] {
                if *d == D3 && root == &s.settings.exports_dir {
                    continue; // not drawn: no exports yet
                }
                let dir = root.join(d);
                std::fs::create_dir_all(&dir).unwrap();
                for f in 0..files {
                    std::fs::write(dir.join(format!("f{f}.csv")), vec![b'x'; 1000]).unwrap();
                }
            }
        }
        s.exec(&format!(
            "INSERT INTO draw_entries (ticket_id, draw_date, leaf_index) VALUES \
             ('{}', '{D1}', 0), ('{}', '{D2}', 0), ('{}', '{D2}', 1), ('{}', '{D3}', 0), ('{}', '{D4}', 0), \
             ('{}', '{D4}', 1); \
             INSERT INTO draw_winners (draw_date, ticket_id, pharmacy_id, product_id, roll, pickup_code, masked_id) \
             VALUES ('{D2}', '{}', 'GZ-TH-0001', 'KN95', 1, 'ABCDEFGHJK', '4401**********002X'), \
                    ('{D4}', '{}', 'GZ-TH-0001', 'KN95', 1, 'BCDEFGHJKM', '4401**********004X')",
            tid(1),
            tid(2),
            tid(7),
            tid(3),
            tid(3),
            tid(4),
            tid(2),
            tid(4)
        ))
        .await;
        let opts = RetentionOptions {
            keep_days: 40,
            today: date("2026-07-15"),
            progress: false,
        };
        Self { s, opts }
    }

    async fn draw(s: &Scratch, d: &str) {
        s.exec(&format!(
            "INSERT INTO draws (draw_date, seed, winners, draw_txt, publish_at, completed_at) \
             VALUES ('{d}', repeat('e', 64), 1, 'draw of {d}', TIMESTAMPTZ '{d}' + interval '10 hours', now())"
        ))
        .await;
    }

    async fn run(&self) -> RetentionReport {
        retention::run(&self.s.settings, &self.s.db, &self.opts)
            .await
            .unwrap()
    }

    fn dir(&self, root: &str, d: &str) -> bool {
        let root = match root {
            "snapshots" => &self.s.settings.snapshots_dir,
            _ => &self.s.settings.exports_dir,
        };
        root.join(d).exists()
    }

    async fn personal(&self, n: u32) -> String {
        self.s
            .text(&format!(
                "SELECT trim(person_tag) || '|' || trim(phone_tag) || '|' || masked_id FROM tickets WHERE ticket_id = '{}'",
                tid(n)
            ))
            .await
            .unwrap_or_else(|| "gone".into())
    }
}

fn names(r: &RetentionReport) -> Vec<&str> {
    r.partitions.iter().map(|p| p.name.as_str()).collect()
}

#[tokio::test]
async fn retention_removes_exactly_the_old_partitions_directories_and_personal_data_and_nothing_newer(
) {
    let w = World::new().await;
    let kept_t4 = w.personal(4).await;
    assert!(!kept_t4.starts_with("||"));

    // Too short a retention for a ticket's draws and its cooldown is refused.
    let short = RetentionOptions {
        keep_days: retention::min_keep_days(&w.s.settings) - 1,
        ..w.opts.clone()
    };
    let err = retention::run(&w.s.settings, &w.s.db, &short)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");

    // First run: D2's draw is running (its lock is held), D3 is sealed but not drawn.
    let lock = DayLock::try_acquire(&w.s.db, Step::Draw, date(D2))
        .await
        .unwrap()
        .unwrap();
    let first = w.run().await;
    lock.release().await;
    let text = first.to_string();
    assert_eq!(first.cutoff, date("2026-06-05"));
    // March's draw_entries partition was made but never used: it goes too, empty.
    assert_eq!(
        names(&first),
        [
            "draw_entries_p202603",
            "draw_entries_p202604",
            "tickets_p202604"
        ],
        "{text}"
    );
    assert_eq!(
        first.partitions.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [0, 1, 1]
    );
    assert!(!w.s.exists("tickets_p202604").await && !w.s.exists("draw_entries_p202604").await);
    assert_eq!(w.personal(1).await, "gone");
    let removed: Vec<(String, u64, u64)> = first
        .dirs
        .iter()
        .map(|d| (d.date.to_string(), d.files, d.bytes))
        .collect();
    assert_eq!(
        removed,
        [(D1.to_string(), 3, 3000), (D1.to_string(), 2, 2000)],
        "{text}"
    );
    assert!(!w.dir("snapshots", D1) && !w.dir("exports", D1));
    for d in [D2, D3, D4] {
        assert!(w.dir("snapshots", d), "{d} kept");
    }
    // t7 (accepted 2026-05-02) is erased; t2 and t3 may have entered the days that stay (a
    // draw reads its winners' masked ids from their tickets): they are kept for now.
    assert_eq!(first.tickets_erased, 1, "{text}");
    assert_eq!(w.personal(7).await, "||");
    assert!(!w.personal(2).await.starts_with("||"));
    assert!(!w.personal(3).await.starts_with("||"));
    assert_eq!(first.winners_erased, 0);
    for reason in [
        format!("{D2}: a seal or draw of it is running"),
        format!("{D3}: sealed but not drawn"),
        format!("draw_entries_p202605: it holds data of {D2}, which stays"),
        format!("tickets_p202605: it holds data of {D2}, which stays"),
        "tickets_p202603: 1 ticket(s) in it are still registered".to_string(),
    ] {
        assert!(first.kept.contains(&reason), "{reason} in {text}");
    }
    assert!(
        text.contains("partitions dropped:      3 (2 rows"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "directories removed:     2 for 1 day(s) (5 files, 4.9 KiB): {D1}"
        )),
        "{text}"
    );

    // Second run, D2 free and D3 drawn: the rest of what is due goes.
    World::draw(&w.s, D3).await;
    let second = w.run().await;
    let text = second.to_string();
    assert_eq!(
        names(&second),
        ["draw_entries_p202605", "tickets_p202605"],
        "{text}"
    );
    assert_eq!(
        second.partitions.iter().map(|p| p.rows).collect::<Vec<_>>(),
        [2, 2]
    );
    let dates: Vec<String> = second.dirs.iter().map(|d| d.date.to_string()).collect();
    assert_eq!(dates, [D2, D2, D3], "{text}");
    assert_eq!(
        (second.tickets_erased, second.winners_erased),
        (1, 1),
        "{text}"
    );
    assert_eq!(w.personal(3).await, "||");
    assert_eq!(
        w.s.count(&format!(
            "SELECT count(*) FROM draw_winners WHERE draw_date = '{D2}' AND masked_id = ''"
        ))
        .await,
        1
    );
    assert_eq!(
        second.kept,
        ["tickets_p202603: 1 ticket(s) in it are still registered"]
    );

    // Nothing newer than the cutoff was touched, nor anything registered.
    assert_eq!(w.personal(4).await, kept_t4);
    assert!(!w.personal(6).await.starts_with("||"));
    assert!(w.dir("snapshots", D4) && w.dir("exports", D4));
    assert_eq!(
        w.s.count(&format!(
            "SELECT count(*) FROM draw_entries WHERE draw_date >= '{D3}'"
        ))
        .await,
        3
    );
    assert_eq!(
        w.s.count("SELECT count(*) FROM draw_winners WHERE masked_id <> ''")
            .await,
        1
    );
    // The public record stays: every seal and draw, the chain intact.
    assert_eq!(w.s.count("SELECT count(*) FROM seals").await, 4);
    assert_eq!(w.s.count("SELECT count(*) FROM draws").await, 4);
    // A kept ticket still shows the draws it entered, each in its own partition's day.
    let (t3, entries) = maskdraw::store::draws::ticket_with_entries(&w.s.db, &tid(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t3.status, "expired");
    assert_eq!(
        entries
            .iter()
            .map(|e| e.date.to_string())
            .collect::<Vec<_>>(),
        [D3, D4]
    );

    // Third run: nothing left to remove, and it says so.
    let third = w.run().await;
    assert!(!third.removed_anything(), "{third}");
    assert!(third.to_string().contains("nothing to remove"), "{third}");
    w.s.teardown().await;
}

/// Sequential and index scans of a table so far, as the statistics collector has them.
async fn scans(s: &Scratch, table: &str) -> i64 {
    s.count(&format!(
        "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = '{table}'"
    ))
    .await
}

#[tokio::test]
async fn a_ticket_lookup_reads_only_the_months_its_draw_dates_can_be_in() {
    let s = Scratch::new().await;
    // Everything on one connection, so that it can be asked to hand its statistics over.
    let mut opts = sea_orm::ConnectOptions::new(s.settings.database_url.clone());
    opts.max_connections(1).sqlx_logging(false);
    let one = Database::connect(opts).await.unwrap();
    let flush = || async {
        one.execute_unprepared("SELECT pg_stat_force_next_flush()")
            .await
            .unwrap();
    };
    maskdraw::startup::migrate(&one).await.unwrap();
    for m in [
        "2026-05-01",
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
        "2026-09-01",
    ] {
        for t in [Table::Tickets, Table::DrawEntries] {
            partitions::ensure(&one, t, date(m)).await.unwrap();
        }
    }
    // The ticket, accepted on 20 June and valid ten days, entered three draws across two
    // months; other tickets' entries fill every month (enough of them that PostgreSQL looks
    // a ticket up by index rather than reading small tables whole, as it would in production).
    one.execute_unprepared(&format!(
        "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES {}, {}; \
         INSERT INTO draw_entries (ticket_id, draw_date, leaf_index) VALUES \
         ('{t}', '2026-06-21', 0), ('{t}', '2026-06-29', 0), ('{t}', '2026-07-01', 0); \
         INSERT INTO draw_entries (ticket_id, draw_date, leaf_index) \
         SELECT '{o}', d, 0 FROM generate_series(DATE '2026-05-01', DATE '2026-09-30', interval '1 day') d; \
         INSERT INTO draw_entries (ticket_id, draw_date, leaf_index) \
         SELECT '01OTHER' || lpad(i::text, 19, '0'), DATE '2026-05-01' + i % 153, i \
         FROM generate_series(1, 100000) i; \
         ANALYZE tickets, draw_entries",
        ticket_values(1, "p1", "expired", "2026-06-20T03:00:00Z"),
        ticket_values(2, "p2", "expired", "2026-05-01T03:00:00Z"),
        t = tid(1),
        o = tid(2),
    ))
    .await
    .unwrap();
    flush().await;
    let months = ["202605", "202606", "202607", "202608", "202609"];
    let read = || async {
        let mut out = Vec::new();
        for m in months {
            out.push(scans(&s, &format!("draw_entries_p{m}")).await);
        }
        out
    };
    // The set-up's statistics are in once September's inserted rows show.
    let start = std::time::Instant::now();
    while s
        .count("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'draw_entries_p202609'")
        .await
        < 30
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before = read().await;
    let (_, entries) = maskdraw::store::draws::ticket_with_entries(&one, &tid(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.date.to_string())
            .collect::<Vec<_>>(),
        ["2026-06-21", "2026-06-29", "2026-07-01"]
    );
    flush().await;
    let after = loop {
        let now = read().await;
        if now[1] > before[1] {
            break now;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the lookup's scans never showed: {before:?} → {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // June and July were read; May, August and September were not even opened.
    assert!(after[2] > before[2], "{before:?} → {after:?}");
    assert_eq!(
        (after[0], after[3], after[4]),
        (before[0], before[3], before[4]),
        "{before:?} → {after:?}"
    );
    one.close().await.ok();
    s.teardown().await;
}
