//! HTTP hardening (issue 9 item 12): the pages' security headers, `no-store` on everything that
//! carries a person's data (and not on the published, immutable files), and the operator's
//! endpoints on their own listener.

use std::time::Duration;

use serde_json::{json, Value};

use crate::day::{backdate, days, district_pharmacies, reserve, today, Day};
use crate::helpers::{reservation, spawn_app};

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The headers every page must carry, checked on one response.
fn assert_page_headers(resp: &reqwest::Response, what: &str) {
    let csp = header(resp, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(resp, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(resp, "x-frame-options"), "DENY", "{what}");
}

#[tokio::test]
async fn the_pages_carry_a_content_security_policy_nosniff_no_framing_and_no_referrer() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 302);
    assert_page_headers(&root, "/");
    for path in ["/static/index.html", "/static/js/app.js", "/static/app.css"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_page_headers(&resp, path);
        // Static files are cached briefly by design; they hold nobody's data.
        assert!(header(&resp, "cache-control").contains("max-age"), "{path}");
    }
    // The API's answers carry them too: a JSON error rendered as a page stays inert.
    let resp = app.get("/api/v1/reservations/not-a-ticket").await;
    assert_page_headers(&resp, "an API error");
    app.teardown().await;
}

#[tokio::test]
async fn answers_with_a_persons_data_are_no_store_and_published_files_stay_long_lived() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);

    // The 202 (ticket and holder secret), a refusal that tells about the person, the status,
    // the lookup.
    let body = reservation();
    let accepted = app.reserve_with_key(&body, "tap-no-store").await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(header(&accepted, "cache-control"), "no-store", "the 202");
    let ticket = accepted.json::<Value>().await.unwrap()["ticket_id"]
        .as_str()
        .unwrap()
        .to_string();
    let replay = app.reserve_with_key(&body, "tap-no-store").await;
    assert_eq!(
        header(&replay, "cache-control"),
        "no-store",
        "the replayed 202"
    );
    let refused = app.reserve(&body).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(header(&refused, "cache-control"), "no-store", "a 409");
    let status = app.get(&format!("/api/v1/reservations/{ticket}")).await;
    assert_eq!(header(&status, "cache-control"), "no-store", "the status");
    let lookup = app
        .client
        .post(format!("{}/api/v1/reservations/lookup", app.address))
        .json(&json!({"id_number": body["id_number"], "phone": body["phone"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), 200);
    assert_eq!(header(&lookup, "cache-control"), "no-store", "the lookup");
    let pickup = app
        .client
        .post(format!("{}/api/v1/pickups", app.address))
        .json(&json!({"pickup_code": "ZZZZZZZZZZ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&pickup, "cache-control"), "no-store", "a pickup");

    // A published day's files: immutable, cached for a year, never no-store.
    let (winner, _) = reserve(&app, &ph[0], "KN95", false).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    backdate(&app, &winner, 3).await;
    backdate(&app, &ticket, 3).await;
    let date = today() - days(1);
    d.stock(date, &[(&ph[0], "KN95", 1)]).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    for path in [
        format!("/snapshots/{date}/seal.txt"),
        format!("/snapshots/{date}/entrants.csv"),
    ] {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let cache = header(&resp, "cache-control");
        assert!(
            cache.contains("max-age=31536000") && cache.contains("immutable"),
            "{path}: {cache}"
        );
        assert!(!cache.contains("no-store"), "{path}: {cache}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{path}");
    }
    app.teardown().await;
}

#[tokio::test]
async fn metrics_and_readiness_details_are_served_only_on_the_operator_listener() {
    let app = spawn_app().await;
    assert_ne!(app.address, app.admin_address);
    assert_eq!(app.reserve(&reservation()).await.status(), 202);

    // Public: no metrics, and readiness as a bare status for load balancers.
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 404);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready"}));

    // The operator listener: the metrics and the details.
    let text = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("maskdraw_reservations_accepted_total 1"),
        "{text}"
    );
    let details: Value = app.admin_get("/readyz").await.json().await.unwrap();
    assert_eq!(details["postgres"], true, "{details}");
    assert_eq!(details["rabbitmq"], true, "{details}");
    assert!(details.get("redis_cache_complete").is_some(), "{details}");
    // And nothing of the public API there.
    assert_eq!(app.admin_get("/static/index.html").await.status(), 404);
    assert_eq!(app.admin_get("/api/v1/draws").await.status(), 404);
    app.teardown().await;
}
