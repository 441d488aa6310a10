//! `POST /api/v1/reservations`, `GET /api/v1/reservations/{ticket_id}`,
//! `POST /api/v1/reservations/lookup`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ApiError, Code};
use super::{AppState, WorkerRedis};
use crate::domain::{person_tag, phone_tag, IdNumber, PersonName, Phone, TicketId};
use crate::queue::ReservationEvent;
use crate::store::redis::{RedisStore, Reserve};
use crate::store::{day, draws, tickets};

/// A reservation after parsing: only domain types from here on.
pub struct NewReservation {
    pub id_number: IdNumber,
    pub phone: Phone,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
}

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "send application/json",
        ));
    }
    Ok(())
}

/// Reads at most `MAX_BODY` bytes of the body; more is `413 payload_too_large` with our JSON
/// (actix's own limit answers in plain text).
async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                Code::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const MAX_BODY: usize = 4096;

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            Code::MalformedJson,
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            Code::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

fn string_field<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match m.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::field(
            Code::ValidationFailed,
            field,
            format!("{field} must be a string"),
        )),
        None => Err(ApiError::field(
            Code::ValidationFailed,
            field,
            format!("{field} is required"),
        )),
    }
}

fn parse_with<T>(
    m: &Map<String, Value>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, crate::domain::ParseError>,
) -> Result<T, ApiError> {
    parse(string_field(m, field)?)
        .map_err(|e| ApiError::field(Code::ValidationFailed, field, e.to_string()))
}

/// Turns the body into domain types before any IO (STYLE.md "Parse, don't validate").
///
/// # Errors
/// `validation_failed` naming the first bad field, or `malformed_json`.
pub fn parse_reservation(body: &[u8], state: &AppState) -> Result<NewReservation, ApiError> {
    let m = object(body)?;
    let id_number = parse_with(&m, "id_number", IdNumber::parse)?;
    // The name is checked and dropped: nothing but the id's tag and mask is kept.
    parse_with(&m, "name", PersonName::parse)?;
    let phone = parse_with(&m, "phone", Phone::parse)?;
    let pharmacy_id = string_field(&m, "pharmacy_id")?;
    if state.catalog.pharmacy(pharmacy_id).is_none() {
        return Err(ApiError::field(
            Code::ValidationFailed,
            "pharmacy_id",
            "no such pharmacy",
        ));
    }
    let product_id = string_field(&m, "product_id")?;
    if state.catalog.product(product_id).is_none() {
        return Err(ApiError::field(
            Code::ValidationFailed,
            "product_id",
            "no such product",
        ));
    }
    let flexible = match m.get("flexible") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::field(
                Code::ValidationFailed,
                "flexible",
                "flexible must be true or false",
            ))
        }
    };
    Ok(NewReservation {
        id_number,
        phone,
        pharmacy_id: pharmacy_id.to_string(),
        product_id: product_id.to_string(),
        flexible,
    })
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(ApiError::field(
            Code::ValidationFailed,
            "Idempotency-Key",
            "1 to 64 characters of A-Z, a-z, 0-9, - and _",
        ));
    }
    Ok(Some(s.to_string()))
}

#[derive(Serialize)]
struct Accepted {
    ticket_id: String,
    status: String,
    valid_until: String,
}

fn peer_ip(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    redis: web::Data<WorkerRedis>,
) -> Result<HttpResponse, ApiError> {
    let redis = &redis.0;
    require_json(&req)?;
    let body = read_body(payload).await?;
    let _slot = state.admission.enter().inspect_err(|s| {
        state
            .metrics
            .shed
            .with_label_values(&[match s {
                crate::admission::Shed::Overloaded(r) => r,
                crate::admission::Shed::RateLimited(_) => "rate",
            }])
            .inc()
    })?;
    state.admission.check_ip(peer_ip(&req))?;
    let input = parse_reservation(&body, &state)?;
    let idem = idempotency_key(&req)?;
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let tag = person_tag(secret, &input.id_number);
    state.admission.check_person(&tag)?;

    let now = Utc::now();
    let valid_until = now + chrono::Duration::days(i64::from(state.settings.validity_days));
    let ticket = TicketId::generate(now.timestamp_millis().max(0) as u64).to_string();
    let lock_ttl = (valid_until - now).num_seconds().max(1) as u64 + 3600;
    match redis
        .reserve(
            &tag,
            &ticket,
            lock_ttl,
            now.timestamp().max(0) as u64,
            idem.as_deref(),
        )
        .await?
    {
        Reserve::Granted => {}
        Reserve::Replay {
            ticket,
            durable: true,
        } => return replay(&state, redis, &ticket).await,
        Reserve::Replay { durable: false, .. } => {
            return Err(ApiError::new(
                Code::RequestInProgress,
                "this request is still being processed",
            )
            .retry_after(1))
        }
        Reserve::Active { .. } => {
            return Err(ApiError::new(
                Code::AlreadyReserved,
                "you already hold an active reservation",
            ))
        }
        Reserve::CoolingDown { until } => {
            return Err(ApiError::new(
                Code::CoolingDown,
                format!("you won recently; you may reserve again from {until}"),
            ))
        }
    }

    let event = ReservationEvent {
        ticket_id: ticket.clone(),
        person_tag: tag.clone(),
        phone_tag: phone_tag(secret, &input.phone),
        masked_id: input.id_number.masked(),
        pharmacy_id: input.pharmacy_id.clone(),
        product_id: input.product_id.clone(),
        flexible: input.flexible,
        accepted_at: now,
        valid_until,
    };
    drop(input);
    if let Err(e) = state.publisher.publish(event).await {
        if let Err(re) = redis.release(&tag, &ticket, idem.as_deref()).await {
            tracing::error!(error = ?re, "could not release the lock of a reservation that was not taken");
        }
        return Err(ApiError::unavailable(&e));
    }
    state.metrics.accepted.inc();
    Ok(HttpResponse::Accepted().json(Accepted {
        ticket_id: ticket,
        status: "accepted".into(),
        valid_until: valid_until.to_rfc3339(),
    }))
}

async fn replay(
    state: &AppState,
    redis: &RedisStore,
    ticket: &str,
) -> Result<HttpResponse, ApiError> {
    let (status, valid_until) = match redis.ticket_status(ticket).await? {
        Some(st) => (st.status, st.valid_until),
        None => match tickets::find(&state.db, ticket).await? {
            Some(row) => (row.status, row.valid_until.to_rfc3339()),
            None => ("accepted".to_string(), String::new()),
        },
    };
    Ok(HttpResponse::Accepted().json(Accepted {
        ticket_id: ticket.to_string(),
        status,
        valid_until,
    }))
}

#[derive(Serialize)]
pub struct TicketView {
    pub ticket_id: String,
    pub status: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
    pub accepted_at: String,
    pub valid_until: String,
    pub draws: Vec<draws::DrawView>,
}

fn view_from_row(row: tickets::TicketRow, draws: Vec<draws::DrawView>) -> TicketView {
    TicketView {
        ticket_id: row.ticket_id,
        status: row.status,
        pharmacy_id: row.pharmacy_id,
        product_id: row.product_id,
        flexible: row.flexible,
        accepted_at: row.accepted_at.to_rfc3339(),
        valid_until: row.valid_until.to_rfc3339(),
        draws,
    }
}

/// A draw outcome as Redis keeps it on the ticket: `lost`, or
/// `won|pharmacy|product|pickup code|roll`.
fn redis_draw(date: &str, value: &str) -> draws::DrawView {
    let parts: Vec<&str> = value.split('|').collect();
    match parts.as_slice() {
        ["won", ph, pr, code, roll] => draws::DrawView {
            date: date.to_string(),
            outcome: "won".into(),
            pharmacy_id: Some(ph.to_string()),
            product_id: Some(pr.to_string()),
            pickup_code: Some(code.to_string()),
            roll: roll.parse().ok(),
        },
        _ => draws::DrawView {
            date: date.to_string(),
            outcome: "lost".into(),
            pharmacy_id: None,
            product_id: None,
            pickup_code: None,
            roll: None,
        },
    }
}

/// Redis first (status and the draws recorded on the ticket, shown once published);
/// PostgreSQL when Redis has nothing.
pub async fn status(
    path: web::Path<String>,
    state: web::Data<AppState>,
    redis: web::Data<WorkerRedis>,
) -> Result<HttpResponse, ApiError> {
    let ticket = TicketId::parse(&path)
        .map_err(|e| ApiError::field(Code::ValidationFailed, "ticket_id", e.to_string()))?;
    let ticket = ticket.to_string();
    let now = Utc::now();
    let cached = redis.0.ticket_status(&ticket).await.unwrap_or_else(|e| {
        tracing::warn!(error = ?e, "redis unavailable for status; using postgres");
        None
    });
    if let Some(st) = cached.filter(|s| !s.status.is_empty()) {
        let published: std::collections::HashSet<String> = if st.draws.is_empty() {
            Default::default()
        } else {
            day::publish_times(&state.db)
                .await?
                .into_iter()
                .filter(|(_, at)| *at <= now)
                .map(|(d, _)| d.to_string())
                .collect()
        };
        let mut view = TicketView {
            ticket_id: ticket,
            status: st.status,
            pharmacy_id: st.pharmacy_id,
            product_id: st.product_id,
            flexible: st.flexible,
            accepted_at: st.accepted_at,
            valid_until: st.valid_until,
            draws: st
                .draws
                .iter()
                .filter(|(d, _)| published.contains(d))
                .map(|(d, v)| redis_draw(d, v))
                .collect(),
        };
        hide_unpublished_win(&mut view);
        return Ok(HttpResponse::Ok().json(view));
    }
    match tickets::find(&state.db, &ticket).await? {
        Some(row) => {
            let draws = draws::for_ticket(&state.db, &ticket, now).await?;
            let mut view = view_from_row(row, draws);
            hide_unpublished_win(&mut view);
            Ok(HttpResponse::Ok().json(view))
        }
        None => Err(ApiError::new(Code::NotFound, "no such ticket")),
    }
}

#[derive(serde::Deserialize)]
pub struct ProofQuery {
    date: Option<String>,
}

/// `GET /api/v1/reservations/{ticket_id}/proof?date=D`: the same fields as `notary proof`,
/// once the draw of D is published.
pub async fn proof(
    path: web::Path<String>,
    query: web::Query<ProofQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ticket = TicketId::parse(&path)
        .map_err(|e| ApiError::field(Code::ValidationFailed, "ticket_id", e.to_string()))?
        .to_string();
    let date = query
        .date
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| ApiError::field(Code::ValidationFailed, "date", "date is YYYY-MM-DD"))?;
    let drawn = day::draw(&state.db, date).await?;
    if drawn.is_none_or(|d| d.publish_at > Utc::now()) {
        return Err(ApiError::new(
            Code::NotPublished,
            format!("the results of {date} are not published yet"),
        ));
    }
    let sealed = day::seal(&state.db, date)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no seal for that date"))?;
    let dir = std::path::PathBuf::from(sealed.dir);
    let t = ticket.clone();
    let proof = web::block(move || lottery::proof::ticket_proof(&dir, &t))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| {
            tracing::info!(error = %e, ticket, "no proof");
            ApiError::new(Code::NotFound, "this ticket was not in that draw")
        })?;
    Ok(HttpResponse::Ok().json(proof))
}

/// A ticket that won a draw whose results are not yet published still reads `registered`.
fn hide_unpublished_win(view: &mut TicketView) {
    if view.status == "won" && !view.draws.iter().any(|d| d.outcome == "won") {
        view.status = "registered".into();
    }
}

pub async fn lookup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let body = read_body(payload).await?;
    state.admission.check_ip(peer_ip(&req))?;
    let m = object(&body)?;
    let id = parse_with(&m, "id_number", IdNumber::parse)?;
    let phone = parse_with(&m, "phone", Phone::parse)?;
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let rows = tickets::find_by_person(
        &state.db,
        &person_tag(secret, &id),
        &phone_tag(secret, &phone),
    )
    .await?;
    let now: DateTime<Utc> = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let draws = draws::for_ticket(&state.db, &row.ticket_id, now).await?;
        let mut view = view_from_row(row, draws);
        hide_unpublished_win(&mut view);
        out.push(view);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tickets": out })))
}
