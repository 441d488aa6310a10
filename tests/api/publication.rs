//! Publication at 18:00: published days as files, the read path without PostgreSQL, Redis
//! rebuilt after it lost its data, and a limit on every public call.

use std::time::{Duration, Instant};

use maskdraw::store::redis::RedisStore;
use serde_json::{json, Value};

use crate::day::{backdate, days, district_pharmacies, reserve, today, Day};
use crate::helpers::{spawn_app, spawn_app_with, Options, TestApp};

/// Two registered tickets drawn yesterday (so published): the first wins, the second loses.
async fn drawn_yesterday(
    app: &TestApp,
) -> (Day, chrono::NaiveDate, (String, Value), (String, Value)) {
    let d = Day::new(app).await;
    let ph = district_pharmacies(app, 2);
    let winner = reserve(app, &ph[0], "KN95", false).await;
    let loser = reserve(app, &ph[1], "MED-SURG", false).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    backdate(app, &winner.0, 3).await;
    backdate(app, &loser.0, 3).await;
    let date = today() - days(1);
    d.stock(date, &[(&ph[0], "KN95", 1), (&ph[1], "MED-SURG", 0)])
        .await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    (d, date, winner, loser)
}

async fn database_reads(app: &TestApp) -> u64 {
    let m = app.admin_get("/metrics").await.text().await.unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix("maskdraw_status_database_reads_total "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn status(app: &TestApp, ticket: &str) -> (u16, Value) {
    let r = app.get(&format!("/api/v1/reservations/{ticket}")).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn unknown_ticket() -> String {
    maskdraw::domain::TicketId::generate(chrono::Utc::now().timestamp_millis() as u64).to_string()
}

#[tokio::test]
async fn a_published_day_is_downloadable_and_verifies_with_the_served_key() {
    let app = spawn_app().await;
    let (d, date, winner, _) = drawn_yesterday(&app).await;

    // The listing follows the recorded draws within about a second.
    let start = Instant::now();
    let list = loop {
        let list: Value = app.get("/api/v1/draws").await.json().await.unwrap();
        if list["draws"][0].is_object() || start.elapsed() > Duration::from_secs(10) {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(list["draws"][0]["date"], date.to_string(), "{list}");
    assert_eq!(list["draws"][0]["entrants"], 2);
    assert_eq!(list["draws"][0]["winners"], 1);

    let key = app.get("/snapshots/authority.pub").await;
    assert_eq!(key.status(), 200);
    let key_text = key.text().await.unwrap();
    let key = lottery::sign::parse_public_key_file(key_text.as_bytes()).unwrap();
    assert_eq!(key, d.key.verifying_key());

    // Every file of the day, downloaded, is the sealed and drawn directory: the notary's
    // verification passes on the copy, with the key the server published.
    let copy = d.root.join("downloaded");
    std::fs::create_dir_all(&copy).unwrap();
    let dir = d.snapshots().join(date.to_string());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for name in &names {
        let resp = app.get(&format!("/snapshots/{date}/{name}")).await;
        assert_eq!(resp.status(), 200, "{name}");
        let etag = resp.headers().get("etag").expect("an ETag").clone();
        let cache = resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cache.contains("immutable") && cache.contains("max-age=31536000"),
            "{cache}"
        );
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(
            bytes.as_ref(),
            std::fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
        std::fs::write(copy.join(name), &bytes).unwrap();
        let again = app
            .client
            .get(format!("{}/snapshots/{date}/{name}", app.address))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
    }
    let report = lottery::verify::verify_dir(&copy, &key, None);
    assert!(report.all_passed(), "{report}");

    // Nothing but the day's own files: no hidden names, no way out of the directory.
    for bad in ["authority.key", ".hidden", "Seal.txt", "..", "nothing.csv"] {
        let r = app.get(&format!("/snapshots/{date}/{bad}")).await;
        assert_eq!(r.status(), 404, "{bad}");
    }
    let r = app.get("/snapshots/yesterday/seal.txt").await;
    assert_eq!(r.status(), 400);
    let proof = app
        .get(&format!(
            "/api/v1/reservations/{}/proof?date={date}",
            winner.0
        ))
        .await;
    assert_eq!(proof.status(), 200);
    app.teardown().await;
}

#[tokio::test]
async fn before_publication_a_day_has_no_files_no_proofs_no_listing_and_no_visible_win() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let (ticket, _) = reserve(&app, &ph[0], "KN95", false).await;
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    // Drawn now for the day after tomorrow: published at 18:00 that day.
    let date = today() + days(2);
    d.stock(date, &[(&ph[0], "KN95", 1)]).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    for file in ["entrants.csv", "seal.txt", "result.csv"] {
        let r = app.get(&format!("/snapshots/{date}/{file}")).await;
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_published");
    }
    let r = app
        .get(&format!("/api/v1/reservations/{ticket}/proof?date={date}"))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_published");
    let list: Value = app.get("/api/v1/draws").await.json().await.unwrap();
    assert_eq!(list, json!({"draws": []}));
    let (code, st) = status(&app, &ticket).await;
    assert_eq!(code, 200);
    assert_eq!(st["status"], "registered", "{st}");
    assert_eq!(st["draws"], json!([]), "{st}");
    app.teardown().await;
}

#[tokio::test]
async fn after_redis_loses_its_data_reads_and_refusals_come_from_postgres_until_a_warm_restores_them(
) {
    let app = spawn_app_with(Options::default(), |s| s.auto_warm = false).await;
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    maskdraw::cache::warm::warm(&app.settings, &app.db, &redis)
        .await
        .unwrap();
    app.wait_for_cache(true).await;
    let (_d, date, (winner, winner_body), (loser, loser_body)) = drawn_yesterday(&app).await;

    // Warm: everything from Redis; an unknown id costs nothing either.
    let reads = database_reads(&app).await;
    assert_eq!(status(&app, &winner).await.1["status"], "won");
    assert_eq!(status(&app, &unknown_ticket()).await.0, 404);
    assert_eq!(database_reads(&app).await, reads);

    // Redis loses everything of this deployment.
    redis.delete_all().await.unwrap();
    app.wait_for_cache(false).await;
    let (code, st) = status(&app, &winner).await;
    assert_eq!(code, 200);
    assert_eq!(st["status"], "won", "{st}");
    assert_eq!(st["draws"][0]["outcome"], "won", "{st}");
    let (_, st) = status(&app, &loser).await;
    assert_eq!(
        st["draws"],
        json!([{"date": date.to_string(), "outcome": "lost"}])
    );
    assert_eq!(database_reads(&app).await, reads + 2);
    // A made-up id is asked of PostgreSQL once, then remembered as unknown.
    let made_up = unknown_ticket();
    assert_eq!(status(&app, &made_up).await.0, 404);
    assert_eq!(status(&app, &made_up).await.0, 404);
    assert_eq!(database_reads(&app).await, reads + 3);
    // Without Redis's locks and cooldowns, the database still refuses a second ticket and a
    // reservation during the cooldown.
    let r = app.reserve(&loser_body).await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "already_reserved");
    let r = app.reserve(&winner_body).await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "cooling_down");

    // The warm rebuilds statuses, outcomes, the loser's lock and the winner's cooldown.
    let report = maskdraw::cache::warm::warm(&app.settings, &app.db, &redis)
        .await
        .unwrap();
    assert_eq!(
        (
            report.tickets,
            report.outcomes,
            report.locks,
            report.cooldowns
        ),
        (2, 2, 1, 1),
        "{report}"
    );
    app.wait_for_cache(true).await;
    let reads = database_reads(&app).await;
    let holder =
        maskdraw::domain::holder_secret(app.settings.hmac_secret.expose().as_bytes(), &winner);
    let st: Value = app
        .client
        .get(format!("{}/api/v1/reservations/{winner}", app.address))
        .header("X-Holder-Secret", holder)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        st["draws"][0]["pickup_code"].as_str().unwrap().len(),
        10,
        "{st}"
    );
    assert_eq!(status(&app, &loser).await.1["status"], "registered");
    assert_eq!(database_reads(&app).await, reads);
    let r = app.reserve(&loser_body).await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "already_reserved");
    let r = app.reserve(&winner_body).await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "cooling_down");
    app.teardown().await;
}

#[tokio::test]
async fn a_server_warms_redis_by_itself_when_it_finds_it_has_lost_its_data() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let (ticket, _) = reserve(&app, &district_pharmacies(&app, 1)[0], "KN95", true).await;
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    redis.delete_all().await.unwrap();
    let start = Instant::now();
    while !redis.is_warm().await.unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never warmed again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        redis.ticket_status(&ticket).await.unwrap().unwrap().status,
        "registered"
    );
    app.teardown().await;
}

#[tokio::test]
async fn every_public_call_is_limited_per_client_and_only_a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(Options::default(), |s| {
        s.status_rate_per_sec = 2;
        s.proof_rate_per_sec = 1;
        s.lookup_rate_per_min = 1;
        s.pickup_rate_per_sec = 1;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let ticket = unknown_ticket();
    let get = |path: String, client: &'static str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("X-Forwarded-For", client)
            .send()
    };
    let limited = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
    };
    let status_path = format!("/api/v1/reservations/{ticket}");
    for _ in 0..2 {
        assert_eq!(
            get(status_path.clone(), "198.51.100.1")
                .await
                .unwrap()
                .status(),
            404
        );
    }
    limited(get(status_path.clone(), "198.51.100.1").await.unwrap()).await;
    // Another citizen behind the same balancer has a quota of their own.
    assert_eq!(
        get(status_path.clone(), "198.51.100.2")
            .await
            .unwrap()
            .status(),
        404
    );

    let proof_path = format!("/api/v1/reservations/{ticket}/proof?date=2026-01-01");
    assert_eq!(
        get(proof_path.clone(), "198.51.100.1")
            .await
            .unwrap()
            .status(),
        404
    );
    limited(
        get("/snapshots/2026-01-01/seal.txt".into(), "198.51.100.1")
            .await
            .unwrap(),
    )
    .await;

    let lookup = || {
        app.client
            .post(format!("{}/api/v1/reservations/lookup", app.address))
            .header("X-Forwarded-For", "198.51.100.1")
            .json(&json!({"id_number": crate::helpers::id_number(), "phone": "13800138000"}))
            .send()
    };
    assert_eq!(lookup().await.unwrap().status(), 200);
    limited(lookup().await.unwrap()).await;

    let pickup = || {
        app.client
            .post(format!("{}/api/v1/pickups", app.address))
            .header("X-Forwarded-For", "198.51.100.1")
            .json(&json!({"pickup_code": "ABCDEFGHJK"}))
            .send()
    };
    assert_eq!(pickup().await.unwrap().status(), 401);
    limited(pickup().await.unwrap()).await;
    app.teardown().await;
}

#[tokio::test]
async fn before_publication_no_path_tells_a_winner_from_a_loser() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 2);
    // Both reserve with the page's idempotency key, as the page does.
    let mut people = Vec::new();
    for (i, pharmacy) in ph.iter().enumerate() {
        let body = json!({"id_number": crate::helpers::id_number(), "name": "测试",
                          "phone": "13800138000", "pharmacy_id": pharmacy, "product_id": "KN95",
                          "flexible": false});
        let key = format!("page-key-{i}");
        let r: Value = app
            .reserve_with_key(&body, &key)
            .await
            .json()
            .await
            .unwrap();
        people.push((r["ticket_id"].as_str().unwrap().to_string(), body, key));
    }
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    // Drawn now for the day after tomorrow: one pack at the first pharmacy, none at the second.
    let date = today() + days(2);
    d.stock(date, &[(&ph[0], "KN95", 1), (&ph[1], "KN95", 0)])
        .await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    let mut seen = Vec::new();
    for (ticket, body, key) in &people {
        let replay: Value = app.reserve_with_key(body, key).await.json().await.unwrap();
        let again = app.reserve(body).await;
        let again_status = again.status();
        let again: Value = again.json().await.unwrap();
        let (_, st) = status(&app, ticket).await;
        let found = app.lookup(&body["id_number"], "13800138000").await;
        seen.push((
            replay["status"].clone(),
            again_status,
            again["code"].clone(),
            st["status"].clone(),
            st["draws"].clone(),
            found["tickets"][0]["status"].clone(),
            found["tickets"][0]["draws"].clone(),
        ));
    }
    // The winner (first) and the loser (second) see exactly the same things.
    assert_eq!(seen[0], seen[1], "{seen:?}");
    assert_eq!(seen[0].0, "registered");
    assert_eq!(seen[0].2, "already_reserved");
    app.teardown().await;
}

#[tokio::test]
async fn status_reads_that_miss_redis_together_share_one_statement_and_each_gets_its_own_answer() {
    let app = spawn_app().await;
    let ph = district_pharmacies(&app, 3);
    let mut known = Vec::new();
    for p in &ph {
        known.push(reserve(&app, p, "KN95", false).await.0);
    }
    app.wait_for_tickets("registered", 3, Duration::from_secs(30))
        .await;
    let unknown: Vec<String> = (0..20).map(|_| unknown_ticket()).collect();
    // 200 reads at once: each known ticket 60 times, 20 ids PostgreSQL does not know.
    let asked: Vec<String> = (0..200)
        .map(|i| {
            if i % 10 == 9 {
                unknown[i / 10].clone()
            } else {
                known[i % 3].clone()
            }
        })
        .collect();
    let statements = prometheus::IntCounter::new("statements", "statements").unwrap();
    // One statement at a time: while the first read's statement runs, the other 199 wait and
    // go together (at most 128 to a statement).
    let reads = maskdraw::store::draws::TicketReads::start(app.db.clone(), 1, statements.clone());
    let answers = futures_util::future::join_all(asked.iter().map(|t| reads.read(t))).await;
    for (ticket, answer) in asked.iter().zip(answers) {
        let answer = answer.unwrap();
        if unknown.contains(ticket) {
            assert!(answer.is_none(), "{ticket} is not in PostgreSQL");
        } else {
            let (row, entries) = answer.unwrap_or_else(|| panic!("{ticket} is in PostgreSQL"));
            assert_eq!(&row.ticket_id, ticket);
            assert_eq!(row.status, "registered");
            assert!(entries.is_empty());
        }
    }
    let ran = statements.get();
    assert!(
        (2..=4).contains(&ran),
        "200 reads at once took {ran} statements (one alone, then the rest in batches of ≤ 128)"
    );
    app.teardown().await;
}
