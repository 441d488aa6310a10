//! The HTTP API (actix-web): routes, shared state, request metrics.

pub mod error;
mod health;
mod openapi;
pub mod pickups;
mod reservations;
pub mod snapshots;

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::web;
use sea_orm::DatabaseConnection;

use crate::admission::{Admission, Shed};
use crate::cache::ReadCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::queue::{Broker, Publisher};
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

/// Registers every route on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/api/openapi.json", web::get().to(openapi::openapi))
        .service(
            web::scope("/api/v1")
                .route("/reservations", web::post().to(reservations::create))
                .route("/reservations/lookup", web::post().to(reservations::lookup))
                .route(
                    "/reservations/{ticket_id}",
                    web::get().to(reservations::status),
                )
                .route(
                    "/reservations/{ticket_id}/proof",
                    web::get().to(reservations::proof),
                )
                .route("/pickups", web::post().to(pickups::collect))
                .route("/draws", web::get().to(snapshots::draws)),
        )
        .route(
            "/snapshots/authority.pub",
            web::get().to(snapshots::authority_key),
        )
        .route("/snapshots/{date}/{file}", web::get().to(snapshots::file));
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
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        if let Some(m) = metrics {
            m.http_requests
                .with_label_values(&[&route, res.status().as_str()])
                .inc();
        }
        Ok(res)
    }
}
