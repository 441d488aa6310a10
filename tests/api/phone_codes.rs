//! A reservation bound to its phone by a one-time code (issue 9 item 10): outside development
//! a reservation needs a code sent to its phone through the city's SMS gateway (a real local
//! HTTP receiver here), each code serves one reservation, wrong guesses and requests are
//! limited, and a gateway that fails or hangs gives 503 with Retry-After, never a hung request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use maskdraw::config::{Environment, Secret, Settings};
use serde_json::{json, Value};

use crate::helpers::{reservation, spawn_app_with, Options, TestApp};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gateway {
    Accept,
    Fail,
    Hang,
}

/// Each request the gateway got: its JSON body and its `Authorization` header.
type Received = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// A local HTTP receiver standing in for the city's SMS gateway: records each request's body
/// and `Authorization` header, and answers as its mode says.
pub struct SmsGateway {
    pub url: String,
    pub received: Received,
    mode: Arc<Mutex<Gateway>>,
    handle: actix_web::dev::ServerHandle,
}

impl SmsGateway {
    pub async fn start() -> Self {
        let received: Received = Arc::default();
        let mode = Arc::new(Mutex::new(Gateway::Accept));
        let (r, m) = (received.clone(), mode.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (r, m) = (r.clone(), m.clone());
            App::new().route(
                "/sms",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let (r, m) = (r.clone(), m.clone());
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        r.lock().unwrap().push((v, auth));
                        let mode = *m.lock().unwrap();
                        match mode {
                            Gateway::Accept => HttpResponse::Ok().json(json!({"queued": true})),
                            Gateway::Fail => HttpResponse::InternalServerError().finish(),
                            Gateway::Hang => {
                                std::future::pending::<()>().await;
                                HttpResponse::Ok().finish()
                            }
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/sms"),
            received,
            mode,
            handle,
        }
    }

    pub fn set(&self, mode: Gateway) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The code the gateway was last asked to send to `phone`.
    pub fn last_code(&self, phone: &str) -> String {
        self.received
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(v, _)| v["phone"] == phone)
            .and_then(|(v, _)| v["code"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no code was sent to {phone}"))
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A production server (its own secrets, phone codes on by default) whose SMS gateway is
/// `gateway`.
async fn production_app(gateway: &SmsGateway, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let url = gateway.url.clone();
    spawn_app_with(Options::default(), move |s| {
        s.environment = Environment::Production;
        // Production signs receipts with a key of its own.
        let key_file = s.keys_dir.with_file_name("intake.key");
        std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        std::fs::write(&key_file, lottery::sign::secret_key_file(&key)).unwrap();
        s.intake_key_file = Some(key_file);
        s.sms_webhook_url = url;
        s.sms_webhook_token = Secret::new("gateway-token-1");
        s.sms_webhook_timeout_ms = 500;
        tweak(s);
    })
    .await
}

/// A different 11-digit mobile number on every call.
fn phone() -> String {
    format!("139{:08}", rand::random::<u32>() % 100_000_000)
}

async fn ask_code(app: &TestApp, phone: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/phone-codes", app.address))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .unwrap()
}

fn with_code(mut body: Value, phone: &str, code: &str) -> Value {
    body["phone"] = json!(phone);
    body["phone_code"] = json!(code);
    body
}

async fn code_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["code"].as_str().unwrap_or_default().to_string(),
    )
}

/// A wrong code for `right`: the same length, another value.
fn wrong(right: &str) -> String {
    let n: u32 = right.parse().unwrap();
    format!("{:0width$}", (n + 1) % 1_000_000, width = right.len())
}

#[tokio::test]
async fn outside_development_a_reservation_needs_the_code_sent_to_its_phone_and_uses_it_once() {
    let gateway = SmsGateway::start().await;
    let app = production_app(&gateway, |_| {}).await;
    // Until the server has found Redis complete it asks PostgreSQL about the person first, and
    // that answers an idempotent retry `already_reserved` (reported; not this test's subject).
    app.wait_for_cache(true).await;
    let tel = phone();

    // Knowing an id number is not enough.
    let resp = app.reserve(&with_code(reservation(), &tel, "")).await;
    assert_eq!(code_of(resp).await, (400, "phone_code_required".into()));
    let mut no_code = reservation();
    no_code["phone"] = json!(tel);
    let resp = app.reserve(&no_code).await;
    assert_eq!(code_of(resp).await, (400, "phone_code_required".into()));

    let resp = ask_code(&app, &tel).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let answer: Value = resp.json().await.unwrap();
    assert!(
        answer.get("code").is_none(),
        "the answer shows no code: {answer}"
    );
    assert!(answer["expires_in_secs"].as_u64().unwrap() > 0, "{answer}");
    // The gateway got the phone and a 6-digit code, with its bearer token.
    let code = gateway.last_code(&tel);
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(
        gateway
            .received
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .1
            .as_deref(),
        Some("Bearer gateway-token-1")
    );

    // A wrong code, or the right one for another phone, is refused.
    let resp = app
        .reserve(&with_code(reservation(), &tel, &wrong(&code)))
        .await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    let resp = app
        .reserve(&with_code(reservation(), &phone(), &code))
        .await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));

    // The right one reserves, and a retry of that request (same Idempotency-Key) is the same.
    let body = with_code(reservation(), &tel, &code);
    let first = app.reserve_with_key(&body, "tap-1").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let retry = app.reserve_with_key(&body, "tap-1").await;
    let status = retry.status();
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(status, 202, "{retry}");
    assert_eq!(first["ticket_id"], retry["ticket_id"]);

    // One reservation per code: not for somebody else with the same phone, nor again.
    let resp = app.reserve(&with_code(reservation(), &tel, &code)).await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    let resp = app.reserve_with_key(&body, "tap-2").await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));

    // The error table names both codes.
    let api: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let codes = api["components"]["schemas"]["Error"]["properties"]["code"]["enum"].to_string();
    assert!(codes.contains("phone_code_required") && codes.contains("phone_code_invalid"));
    app.teardown().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_code_dies_after_the_allowed_wrong_attempts_and_only_its_hmac_is_kept_for_a_while() {
    let gateway = SmsGateway::start().await;
    let app = production_app(&gateway, |s| s.phone_code_max_attempts = 3).await;
    let redis = maskdraw::store::redis::RedisStore::connect(
        &app.settings.redis_endpoint(),
        &app.settings.key_prefix,
    )
    .unwrap();
    let mut conn = redis.connection().await.unwrap();
    let pattern = format!("{}:*", app.settings.key_prefix);
    let before: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    let tel = phone();
    assert_eq!(ask_code(&app, &tel).await.status(), 202);
    let code = gateway.last_code(&tel);

    // What Redis keeps of it: no code, no phone number, and nothing for longer than a day.
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    let keys: Vec<&String> = keys.iter().filter(|k| !before.contains(k)).collect();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(!key.contains(&tel), "{key}");
        assert!(key.contains(":{"), "{key} has no hash tag");
        let dump: Vec<u8> = deadpool_redis::redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&dump);
        assert!(!text.contains(&code) && !text.contains(&tel), "{key}");
        let ttl: i64 = deadpool_redis::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 86_400, "{key} lives {ttl} s");
    }

    for _ in 0..3 {
        let resp = app
            .reserve(&with_code(reservation(), &tel, &wrong(&code)))
            .await;
        assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    }
    // Three wrong guesses: even the right code is refused now; a new code is needed.
    let resp = app.reserve(&with_code(reservation(), &tel, &code)).await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    app.teardown().await;
    gateway.stop().await;
}

#[tokio::test]
async fn codes_are_limited_per_phone_and_per_client_address() {
    let gateway = SmsGateway::start().await;
    let app = production_app(&gateway, |s| s.phone_code_rate_per_min = 4).await;
    // Not a phone number: refused before anything is sent.
    let bad = app
        .client
        .post(format!("{}/api/v1/phone-codes", app.address))
        .json(&json!({"phone": "12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(bad).await, (400, "validation_failed".into()));
    let tel = phone();
    assert_eq!(ask_code(&app, &tel).await.status(), 202);
    // One code a minute per phone.
    let again = ask_code(&app, &tel).await;
    assert_eq!(again.status(), 429);
    let wait: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(code_of(again).await.1, "rate_limited");
    assert_eq!(gateway.received.lock().unwrap().len(), 1);
    // Four a minute per client address, whatever the phone (these four included).
    assert_eq!(ask_code(&app, &phone()).await.status(), 202);
    let limited = ask_code(&app, &phone()).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(gateway.received.lock().unwrap().len(), 2);
    app.teardown().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_failing_or_hanging_sms_gateway_answers_503_with_retry_after_in_bounded_time() {
    let gateway = SmsGateway::start().await;
    let app = production_app(&gateway, |_| {}).await;
    for mode in [Gateway::Fail, Gateway::Hang] {
        gateway.set(mode);
        let tel = phone();
        let start = Instant::now();
        let resp = ask_code(&app, &tel).await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{mode:?}: {:?}",
            start.elapsed()
        );
        assert_eq!(resp.status(), 503, "{mode:?}");
        assert!(resp.headers().contains_key("retry-after"), "{mode:?}");
        assert_eq!(code_of(resp).await.1, "unavailable");
        // The failure does not hold the phone back: once the gateway works, a code comes.
        gateway.set(Gateway::Accept);
        assert_eq!(ask_code(&app, &tel).await.status(), 202, "{mode:?}");
        let code = gateway.last_code(&tel);
        let resp = app.reserve(&with_code(reservation(), &tel, &code)).await;
        assert_eq!(resp.status(), 202, "{mode:?}");
    }
    app.teardown().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_reservation_that_fails_on_our_side_gives_its_code_back_for_the_retry() {
    let gateway = SmsGateway::start().await;
    // No fallback either while the broker is away: the replicas it waits for do not exist.
    let app = production_app(&gateway, |s| {
        s.fallback_durability = maskdraw::config::FallbackDurability::Replica;
        s.fallback_replicas = 5;
        s.fallback_wait_ms = 50;
    })
    .await;
    let tel = phone();
    assert_eq!(ask_code(&app, &tel).await.status(), 202);
    let code = gateway.last_code(&tel);
    let body = with_code(reservation(), &tel, &code);
    app.proxy.cut();
    let failed = app.reserve(&body).await;
    assert_eq!(code_of(failed).await, (503, "unavailable".into()));
    app.proxy.restore();
    // The same code (no Idempotency-Key) reserves once the broker is back.
    let start = Instant::now();
    let ticket = loop {
        let resp = app.reserve(&body).await;
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap();
        if status == 202 {
            break answer["ticket_id"].as_str().unwrap().to_string();
        }
        assert_eq!(answer["code"], "unavailable", "{answer}");
        assert!(start.elapsed() < Duration::from_secs(30), "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ticket.len(), 26);
    // And only once.
    let resp = app.reserve(&with_code(reservation(), &tel, &code)).await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    app.teardown().await;
    gateway.stop().await;
}

#[tokio::test]
async fn in_development_codes_are_optional_and_the_console_sender_answers() {
    let app = spawn_app_with(Options::default(), |_| {}).await;
    assert!(!app.settings.phone_code_required());
    assert_eq!(app.reserve(&reservation()).await.status(), 202);
    let resp = ask_code(&app, &phone()).await;
    assert_eq!(resp.status(), 202);
    // A code given is checked even where none is required.
    let resp = app
        .reserve(&with_code(reservation(), &phone(), "000000"))
        .await;
    assert_eq!(code_of(resp).await, (403, "phone_code_invalid".into()));
    app.teardown().await;
}

#[test]
fn outside_development_codes_need_a_gateway_unless_switched_off() {
    let prod = Settings {
        environment: Environment::Production,
        hmac_secret: Secret::new("an-hmac-secret-of-our-own-0001"),
        token_secret: Secret::new("a-token-secret-of-our-own-0001"),
        ..Settings::default()
    };
    assert!(prod.phone_code_required());
    let err = prod.check_phone_codes().unwrap_err().to_string();
    assert!(err.contains("sms_webhook_url"), "{err}");
    let with_gateway = Settings {
        sms_webhook_url: "http://127.0.0.1:1/sms".into(),
        ..prod.clone()
    };
    with_gateway.check_phone_codes().unwrap();
    let off = Settings {
        require_phone_code: Some(false),
        ..prod
    };
    assert!(!off.phone_code_required());
    off.check_phone_codes().unwrap();
}
