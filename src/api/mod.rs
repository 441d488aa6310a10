//! The HTTP API (actix-web): routes, shared state, request metrics.

pub mod error;
mod health;
mod openapi;
pub mod phone_codes;
pub mod pickups;
mod reservations;
pub mod snapshots;

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use sea_orm::DatabaseConnection;

use crate::admission::{Admission, Shed};
use crate::cache::ReadCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::queue::{Broker, Publisher};
use crate::sms::Sender;
use crate::store::phone_codes::PhoneCodes;
use crate::store::redis::RedisStore;
pub use error::{ApiError, Code};

/// The Redis store of one HTTP worker: the same keys as [`AppState::redis`], with a
/// multiplexed connection of its own that is opened, and driven, on the worker's thread, so a
/// request's Redis round trip does not hop to another thread and back.
pub struct WorkerRedis(pub RedisStore);

/// Everything a handler may touch.
pub struct AppState {
    pub settings: Settings,
    pub catalog: Catalog,
    pub redis: RedisStore,
    pub db: DatabaseConnection,
    pub broker: Arc<Broker>,
    pub publisher: Publisher,
    pub metrics: Metrics,
    pub admission: Admission,
    pub cache: ReadCache,
    pub phone_codes: PhoneCodes,
    /// Where phone codes go; none when they cannot be sent here (then none are required).
    pub sms: Option<Sender>,
    /// The key that signs receipts, and its public file (`/snapshots/intake.pub`).
    pub intake: Arc<crate::receipts::IntakeKey>,
    /// Status reads that missed Redis, gathered into shared PostgreSQL statements.
    pub ticket_reads: crate::store::draws::TicketReads,
    /// Reservations checked in PostgreSQL at once while Redis is cold (see
    /// `reservations::refuse_from_database`), with a bounded queue; the rest are shed.
    pub intake_checks: crate::admission::Gate,
}

impl AppState {
    /// The intake's clock: real time, unless the demo simulates a day in the past.
    pub fn intake_now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.settings.simulated_clock_offset_secs)
    }
}

/// A dependency that did not answer within its bound.
#[derive(Debug, thiserror::Error)]
#[error("{0} did not answer in time")]
pub struct TimedOut(pub &'static str);

/// A database call made for a request, bounded on the client side as well: the server's
/// `statement_timeout` cannot help when the database (or the network to it) stops answering.
pub(crate) async fn db<T>(
    state: &AppState,
    call: impl std::future::Future<Output = Result<T, sea_orm::DbErr>>,
) -> Result<T, ApiError> {
    let bound = state.settings.db_timeout() + std::time::Duration::from_millis(500);
    match tokio::time::timeout(bound, call).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::unavailable(&TimedOut("PostgreSQL"))),
    }
}

/// The client a request comes from, for the per-client limits (see `admission`).
pub fn client(req: &actix_web::HttpRequest, state: &AppState) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    state.admission.client(peer, &forwarded)
}

impl From<Shed> for ApiError {
    fn from(s: Shed) -> Self {
        match s {
            Shed::RateLimited(secs) => {
                ApiError::new(Code::RateLimited, "too many requests; please slow down")
                    .retry_after(secs)
            }
            Shed::Overloaded(_) => ApiError::new(
                Code::Overloaded,
                "too many people are reserving right now; please retry shortly",
            )
            .retry_after(5),
        }
    }
}

/// The page's Content-Security-Policy: everything from this origin only, no inline script or
/// style, no plugins, no framing (the pages and their ES modules need nothing more).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers on every public response (added where a handler did not set its own): the CSP,
/// no MIME sniffing, no framing (also for browsers without `frame-ancestors`), no referrer.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
}

/// A date in a path or query: exactly `YYYY-MM-DD` (chrono alone would take `2026-1-2`).
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        .then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

/// The answer to a method a path does not take: 405 from the error table, with `Allow`.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        use actix_web::ResponseError;
        let mut resp = ApiError::new(
            Code::MethodNotAllowed,
            format!("this path takes {allow} only"),
        )
        .error_response();
        resp.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        resp
    })
}

/// A path with one method; any other method is 405 (with `Allow`), not 404.
fn resource(path: &str, method: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(not_allowed(method))
}

/// Requests that match no path: 404 from the error table, as JSON.
pub async fn no_such_path() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(Code::NotFound, "no such path"))
}

/// A query string or path segment actix could not read: 400 from the error table (actix's
/// own answer is plain text).
fn extractor_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::field(
            Code::ValidationFailed,
            "query",
            format!("the query string could not be read: {e}"),
        )
        .into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        ApiError::field(
            Code::ValidationFailed,
            "path",
            format!("the path could not be read: {e}"),
        )
        .into()
    }));
}

/// Registers every public route on an actix `App`.
///
/// Everything under `/api/v1` is `Cache-Control: no-store` unless the handler says otherwise
/// (only the public list of draws does): tickets, holder secrets, pickup codes and even
/// refusals (`cooling_down` says a person won) are a person's data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    extractor_errors(cfg);
    cfg.service(resource("/healthz", "GET", web::get().to(health::healthz)))
        .service(resource("/readyz", "GET", web::get().to(health::ready)))
        .service(resource(
            "/api/openapi.json",
            "GET",
            web::get().to(openapi::openapi),
        ))
        .service(
            web::scope("/api/v1")
                .wrap(DefaultHeaders::new().add(("Cache-Control", "no-store")))
                .service(resource(
                    "/reservations",
                    "POST",
                    web::post().to(reservations::create),
                ))
                .service(resource(
                    "/reservations/lookup",
                    "POST",
                    web::post().to(reservations::lookup),
                ))
                .service(resource(
                    "/reservations/{ticket_id}",
                    "GET",
                    web::get().to(reservations::status),
                ))
                .service(resource(
                    "/reservations/{ticket_id}/proof",
                    "GET",
                    web::get().to(reservations::proof),
                ))
                .service(resource(
                    "/phone-codes",
                    "POST",
                    web::post().to(phone_codes::create),
                ))
                .service(resource(
                    "/pickups",
                    "POST",
                    web::post().to(pickups::collect),
                ))
                .service(resource("/draws", "GET", web::get().to(snapshots::draws)))
                .default_service(web::to(no_such_path)),
        )
        .service(resource(
            "/snapshots/authority.pub",
            "GET",
            web::get().to(snapshots::authority_key),
        ))
        .service(resource(
            "/snapshots/intake.pub",
            "GET",
            web::get().to(snapshots::intake_key),
        ))
        .service(resource(
            "/snapshots/{date}/{file}",
            "GET",
            web::get().to(snapshots::file),
        ));
}

/// The operator listener's routes (`admin_bind`): metrics and the readiness details, which
/// say more about the deployment than the public should know.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
}

/// Counts every response by route pattern and status.
pub fn record<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    // One reference count, not a clone of every collector in `Metrics`.
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        if let Some(s) = state {
            s.metrics
                .http_requests
                .with_label_values(&[&route, res.status().as_str()])
                .inc();
        }
        Ok(res)
    }
}
