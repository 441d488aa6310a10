//! `POST /api/v1/reservations`, `GET /api/v1/reservations/{ticket_id}`,
//! `POST /api/v1/reservations/lookup`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::{client, db, AppState, WorkerRedis};
use crate::admission::Call;
use crate::domain::{holder_secret, is_holder, person_tag, phone_tag, IdNumber, Phone, TicketId};
use crate::queue::ReservationEvent;
use crate::store::draws::{self, Entry};
use crate::store::redis::{RedisStore, Reserve, TicketStatus};
use crate::store::tickets::{self, Standing, TicketRow};

pub use maskdraw_wire::body::NewReservation;
pub(super) use maskdraw_wire::body::{object, parse_with};

pub(super) fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
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

/// Reads at most `MAX_BODY` bytes of the body, within `body_timeout_ms`; more is `413
/// payload_too_large` with our JSON (actix's own limit answers in plain text), slower is `408
/// request_timeout` (a client trickling its body must not hold a worker's slot).
pub(super) async fn read_body(
    mut payload: web::Payload,
    state: &AppState,
) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let read = async {
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
    };
    let limit = std::time::Duration::from_millis(state.settings.body_timeout_ms);
    tokio::time::timeout(limit, read).await.map_err(|_| {
        ApiError::new(
            Code::RequestTimeout,
            format!("the body did not arrive within {} ms", limit.as_millis()),
        )
    })?
}

const MAX_BODY: usize = 4096;

/// Turns the body into domain types before any IO (STYLE.md "Parse, don't validate"); the
/// parser is maskdraw-wire's, which the fuzz targets exercise.
///
/// # Errors
/// `validation_failed` naming the first bad field, or `malformed_json`.
pub fn parse_reservation(body: &[u8], state: &AppState) -> Result<NewReservation, ApiError> {
    Ok(maskdraw_wire::body::parse_reservation(
        body,
        &state.catalog,
    )?)
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
struct Accepted<'a> {
    ticket_id: String,
    status: String,
    valid_until: String,
    /// Shown with the ticket id, it opens the pickup code (`X-Holder-Secret`): the ticket id
    /// alone becomes public when the day's entrants are published.
    holder_secret: String,
    /// The intake's signed receipt file (`maskdraw-receipt-v1`, lottery/SPEC.md §16), as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<&'a str>,
}

fn accepted(
    state: &AppState,
    ticket: String,
    status: String,
    valid_until: String,
    receipt: Option<&[u8]>,
) -> HttpResponse {
    let holder_secret = holder_secret(state.settings.hmac_secret.expose().as_bytes(), &ticket);
    HttpResponse::Accepted().json(Accepted {
        ticket_id: ticket,
        status,
        valid_until,
        holder_secret,
        // The receipt is ASCII by its grammar (a file that is not is not shown: a bug,
        // logged where it is signed).
        receipt: receipt.and_then(|r| std::str::from_utf8(r).ok()),
    })
}

/// The receipt this reservation's 202 carries, when receipts are on.
fn state_receipt(
    state: &AppState,
    event: &ReservationEvent,
) -> Result<Option<lottery::receipt::Receipt>, ApiError> {
    if !state.settings.receipts {
        return Ok(None);
    }
    crate::receipts::receipt_for(&state.settings, &state.intake.first_draws, event)
        .map(Some)
        .map_err(|e| ApiError::internal(&e))
}

/// The person's standing in PostgreSQL, asked only while Redis may have lost its locks and
/// cooldowns (it has not been warmed since it last lost its data): the same refusals the
/// reserve script would give.
async fn refuse_from_database(
    state: &AppState,
    tag: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let tz = state.settings.tz().map_err(|e| ApiError::internal(&e))?;
    let today = now.with_timezone(&tz).date_naive();
    let won_since = today - chrono::Duration::days(i64::from(state.settings.cooldown_days));
    let standing = db(state, tickets::standing(&state.db, tag, now, won_since)).await?;
    // The cooldown first, as the reserve script decides.
    if let Some(date) = standing.iter().find_map(|s| match s {
        Standing::Won(date, publish_at) if *publish_at <= now => Some(*date),
        _ => None,
    }) {
        let until = crate::day::cooldown_until(&state.settings, date);
        return Err(ApiError::new(
            Code::CoolingDown,
            format!("you won recently; you may reserve again from {until}"),
        ));
    }
    // Before publication a winner is told only that they hold a reservation.
    if !standing.is_empty() {
        return Err(ApiError::new(
            Code::AlreadyReserved,
            "you already hold an active reservation",
        ));
    }
    Ok(())
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    redis: web::Data<WorkerRedis>,
) -> Result<HttpResponse, ApiError> {
    let redis = &redis.0;
    require_json(&req)?;
    let body = read_body(payload, &state).await?;
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
    state.admission.check(Call::Reserve, client(&req, &state))?;
    let input = parse_reservation(&body, &state)?;
    let idem = idempotency_key(&req)?;
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let tag = person_tag(secret, &input.id_number);
    state.admission.check_person(&tag)?;
    let spent = super::phone_codes::spend(
        &state,
        &input.phone,
        input.phone_code.as_deref(),
        &tag,
        idem.as_deref(),
    )
    .await?;
    let result = admit(&state, redis, input, tag, idem).await;
    if let (Err(e), Some(spent)) = (&result, &spent) {
        // Our failure, not the person's: the code is theirs to use on the retry.
        if matches!(
            e.code,
            Code::Unavailable | Code::Overloaded | Code::Internal
        ) {
            super::phone_codes::give_back(&state, spent).await;
        }
    }
    result
}

/// Whether Redis holds every live ticket, so that its locks and cooldowns alone decide. When
/// the monitor does not know (at start, or since a Redis command failed), one `EXISTS` of the
/// warm marker on this worker's connection settles it for every later request, instead of a
/// PostgreSQL lookup per reservation until the monitor's next look (which, under load, queued
/// thousands of requests on the database pool after each Redis blip).
async fn redis_known_warm(state: &AppState, redis: &RedisStore) -> Result<bool, ApiError> {
    if let Some(known) = state.cache.warmth.known() {
        return Ok(known);
    }
    let warm = redis.is_warm().await?;
    state.cache.warmth.set(warm);
    Ok(warm)
}

/// The reservation after its code: the person's lock, then the durable publish.
async fn admit(
    state: &AppState,
    redis: &RedisStore,
    input: NewReservation,
    tag: String,
    idem: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let now = state.intake_now();
    if !redis_known_warm(state, redis).await? {
        // A retry whose key Redis still remembers is answered by the reserve script as the
        // first time; the database would only see the person's (same) ticket and refuse it.
        let known = match idem.as_deref() {
            Some(key) => redis.idempotent_ticket(&tag, key).await.inspect_err(|_| {
                state.cache.warmth.lost_sight();
            })?,
            None => None,
        };
        if known.is_none() {
            let patience = state.settings.db_timeout();
            let Some(_slot) = state.intake_checks.enter(patience).await else {
                state
                    .metrics
                    .shed
                    .with_label_values(&["database_checks"])
                    .inc();
                return Err(crate::admission::Shed::Overloaded("database_checks").into());
            };
            state.metrics.intake_database_checks.inc();
            refuse_from_database(state, &tag, now).await?;
        }
    }
    let valid_until = now + chrono::Duration::days(i64::from(state.settings.validity_days));
    let ticket = TicketId::generate(now.timestamp_millis().max(0) as u64).to_string();
    let event = input.into_event(secret, ticket.clone(), tag.clone(), now, valid_until);
    // The lock lives exactly as long as the ticket is valid: from then on the person may
    // reserve again (the persister expires the old ticket if no seal has yet).
    let lock_ttl = (valid_until - now).num_seconds().max(1) as u64;
    let event = match redis
        .reserve(&tag, &ticket, &event.to_bytes(), lock_ttl, idem.as_deref())
        .await
        // The connection broke: Redis may come back empty, so its warmth is looked at again.
        .inspect_err(|_| state.cache.warmth.lost_sight())?
    {
        Reserve::Granted => event,
        Reserve::Resend { ticket, event } => ReservationEvent::from_bytes(&event).map_err(|e| {
            tracing::error!(error = %e, ticket, "a kept reservation does not parse");
            ApiError::new(Code::Internal, "something went wrong on our side")
        })?,
        Reserve::Replay { ticket } => return replay(state, redis, &ticket).await,
        Reserve::InProgress => {
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
    };
    let (ticket, valid_until) = (event.ticket_id.clone(), event.valid_until);
    let receipt = match state_receipt(state, &event) {
        Ok(r) => r,
        Err(e) => {
            // Nothing published: the lock is in doubt, as after a failed publish.
            let _ = redis.fail(&tag, &ticket).await;
            return Err(e);
        }
    };
    let published = match state.publisher.publish(event, receipt).await {
        Ok(p) => p,
        Err(e) => {
            // The message may have reached the broker even so (a lost confirm): the lock
            // stays, in doubt, and the person's next request publishes this same ticket again.
            if let Err(re) = redis.fail(&tag, &ticket).await {
                tracing::warn!(error = ?re, "could not mark a reservation in doubt; its lock goes stale instead");
            }
            return Err(ApiError::unavailable(&e));
        }
    };
    state.metrics.accepted.inc();
    Ok(accepted(
        state,
        ticket,
        "accepted".into(),
        valid_until.to_rfc3339(),
        published.receipt.as_deref(),
    ))
}

/// The receipt of a ticket made earlier: the one its 202 carried, as Redis keeps it; or, when
/// Redis lost it, the same statement signed again from the ticket's row (a batch of one).
async fn receipt_again(
    state: &AppState,
    redis: &RedisStore,
    ticket: &str,
    row: Option<&TicketRow>,
) -> Option<Vec<u8>> {
    if !state.settings.receipts {
        return None;
    }
    match redis.receipt(ticket).await {
        Ok(Some(r)) => return Some(r),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = ?e, "reading a kept receipt"),
    }
    let row = match row {
        Some(r) => r.clone(),
        None => db(state, tickets::find(&state.db, ticket))
            .await
            .ok()
            .flatten()?,
    };
    let event = ReservationEvent {
        ticket_id: row.ticket_id,
        person_tag: row.person_tag,
        phone_tag: String::new(),
        masked_id: String::new(),
        pharmacy_id: row.pharmacy_id,
        product_id: row.product_id,
        flexible: row.flexible,
        accepted_at: row.accepted_at,
        valid_until: row.valid_until,
    };
    let receipt = crate::receipts::receipt_for(&state.settings, &state.intake.first_draws, &event)
        .inspect_err(|e| tracing::error!(error = %e, ticket, "stating a receipt again"))
        .ok()?;
    lottery::receipt::sign_batch(&state.intake.key, &[receipt])
        .ok()
        .and_then(|mut v| v.pop())
        .map(|s| s.to_bytes())
}

/// The answer to a retry with an idempotency key that already made `ticket`: the same 202,
/// with the status as anybody may see it now (a win stays hidden until its publication).
async fn replay(
    state: &AppState,
    redis: &RedisStore,
    ticket: &str,
) -> Result<HttpResponse, ApiError> {
    let mut row_read = None;
    let (status, valid_until) = match redis.ticket_status(ticket).await? {
        Some(st) if !st.status.is_empty() => {
            let entries = redis_entries(&st);
            let shown = published_entries(state, entries).await;
            (public_status(&st.status, &shown), st.valid_until)
        }
        _ => match db(state, draws::ticket_with_entries(&state.db, ticket)).await? {
            Some((row, entries)) => {
                let shown = published_entries(state, entries).await;
                let answer = (
                    public_status(&row.status, &shown),
                    row.valid_until.to_rfc3339(),
                );
                row_read = Some(row);
                answer
            }
            None => ("accepted".to_string(), String::new()),
        },
    };
    let receipt = receipt_again(state, redis, ticket, row_read.as_ref()).await;
    Ok(accepted(
        state,
        ticket.to_string(),
        status,
        valid_until,
        receipt.as_deref(),
    ))
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

fn redis_entries(st: &TicketStatus) -> Vec<Entry> {
    st.draws
        .iter()
        .filter_map(|(d, v)| Entry::from_redis(d, v))
        .collect()
}

/// The entries whose draws are published now, oldest first.
async fn published_entries(state: &AppState, mut entries: Vec<Entry>) -> Vec<Entry> {
    if entries.is_empty() {
        return entries;
    }
    let dates: Vec<_> = entries.iter().map(|e| e.date).collect();
    let pubs = &state.cache.publications;
    // What is not known in time stays hidden (never shown early).
    let _ = tokio::time::timeout(state.settings.db_timeout(), pubs.ensure(&state.db, &dates)).await;
    let now = Utc::now();
    entries.retain(|e| pubs.is_published(e.date, now));
    entries.sort_by_key(|e| e.date);
    entries
}

/// A ticket that won a draw whose results are not yet published still reads `registered`.
fn public_status(status: &str, published: &[Entry]) -> String {
    if status == "won" && !published.iter().any(|e| e.win.is_some()) {
        "registered".into()
    } else {
        status.to_string()
    }
}

async fn view_from_row(
    state: &AppState,
    row: TicketRow,
    entries: Vec<Entry>,
    holder: bool,
) -> TicketView {
    let shown = published_entries(state, entries).await;
    TicketView {
        status: public_status(&row.status, &shown),
        ticket_id: row.ticket_id,
        pharmacy_id: row.pharmacy_id,
        product_id: row.product_id,
        flexible: row.flexible,
        accepted_at: row.accepted_at.to_rfc3339(),
        valid_until: row.valid_until.to_rfc3339(),
        draws: shown.iter().map(|e| e.view(holder)).collect(),
    }
}

fn parse_ticket(raw: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(raw)
        .map_err(|e| ApiError::field(Code::ValidationFailed, "ticket_id", e.to_string()))
}

fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such ticket")
}

/// `GET /api/v1/reservations/{ticket_id}`: Redis first; PostgreSQL only when Redis may not
/// hold the ticket (it has not been warmed since it lost its data, or the ticket is older than
/// its status hash lives), through one point lookup, with unknown ids remembered briefly.
/// The pickup code shows only with the ticket's holder secret in `X-Holder-Secret`.
pub async fn status(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    redis: web::Data<WorkerRedis>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Status, client(&req, &state))?;
    let id = parse_ticket(&path)?;
    let ticket = id.to_string();
    let holder = req
        .headers()
        .get("x-holder-secret")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| is_holder(state.settings.hmac_secret.expose().as_bytes(), &ticket, h));
    let redis_answered = match redis.0.ticket_status(&ticket).await {
        Ok(Some(st)) if !st.status.is_empty() => {
            let shown = published_entries(&state, redis_entries(&st)).await;
            let view = TicketView {
                status: public_status(&st.status, &shown),
                ticket_id: ticket,
                pharmacy_id: st.pharmacy_id,
                product_id: st.product_id,
                flexible: st.flexible,
                accepted_at: st.accepted_at,
                valid_until: st.valid_until,
                draws: shown.iter().map(|e| e.view(holder)).collect(),
            };
            return Ok(no_store(HttpResponse::Ok()).json(view));
        }
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = ?e, "redis unavailable for status; using postgres");
            state.cache.warmth.lost_sight();
            false
        }
    };
    // Redis holds every ticket for `validity_days` + 30 days after acceptance once warmed.
    let age_days = (Utc::now().timestamp_millis().max(0) as u64).saturating_sub(id.timestamp_ms())
        / 86_400_000;
    let young = age_days < u64::from(state.settings.validity_days) + 29;
    if redis_answered && young && state.cache.warmth.is_complete() {
        return Err(not_found());
    }
    if state.cache.unknown.is_unknown(id.value()) {
        return Err(not_found());
    }
    state.metrics.status_fallbacks.inc();
    match db(&state, state.ticket_reads.read(&ticket)).await? {
        Some((row, entries)) => {
            let view = view_from_row(&state, row, entries, holder).await;
            Ok(no_store(HttpResponse::Ok()).json(view))
        }
        None => {
            state.cache.unknown.remember_unknown(id.value());
            Err(not_found())
        }
    }
}

/// Responses that carry a person's data are never stored by a cache on the way.
fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header(("Cache-Control", "no-store"));
    b
}

#[derive(serde::Deserialize)]
pub struct ProofQuery {
    date: Option<String>,
}

/// `GET /api/v1/reservations/{ticket_id}/proof?date=D`: the same fields as `notary proof`,
/// once the draw of D is published.
pub async fn proof(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ProofQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admission.check(Call::Proof, client(&req, &state))?;
    let ticket = parse_ticket(&path)?.to_string();
    let date = query
        .date
        .as_deref()
        .and_then(super::parse_date)
        .ok_or_else(|| ApiError::field(Code::ValidationFailed, "date", "date is YYYY-MM-DD"))?;
    let day = super::snapshots::published_day(&state, date).await?;
    let t = ticket.clone();
    let st = state.clone();
    let proof = web::block(move || st.cache.proofs.get(&day)?.proof(&t))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| match e {
            lottery::proof::ProofError::UnknownTicket(_) => {
                ApiError::new(Code::NotFound, "this ticket was not in that draw")
            }
            other => ApiError::internal(&other),
        })?;
    Ok(HttpResponse::Ok().json(proof))
}

/// `POST /api/v1/reservations/lookup`: the person's tickets, pickup codes included (the id
/// number and the phone together prove the holder).
pub async fn lookup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let body = read_body(payload, &state).await?;
    state.admission.check(Call::Lookup, client(&req, &state))?;
    let m = object(&body)?;
    let id = parse_with(&m, "id_number", IdNumber::parse)?;
    let phone = parse_with(&m, "phone", Phone::parse)?;
    let secret = state.settings.hmac_secret.expose().as_bytes();
    let rows = db(
        &state,
        draws::person_with_entries(
            &state.db,
            &person_tag(secret, &id),
            &phone_tag(secret, &phone),
        ),
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (row, entries) in rows {
        out.push(view_from_row(&state, row, entries, true).await);
    }
    Ok(no_store(HttpResponse::Ok()).json(serde_json::json!({ "tickets": out })))
}
