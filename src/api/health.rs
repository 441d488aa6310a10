use actix_web::{web, HttpResponse};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Checks all three services and reports each. Only Redis is required to take reservations:
/// without the broker the fallback stream takes them (`degraded`), and without PostgreSQL the
/// broker holds them until the persister can write; so only a Redis outage makes us unready.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.execute_unprepared("SELECT 1").await.is_ok();
    let redis = state.redis.ping().await.is_ok();
    let broker = state.broker.current().is_some();
    let body = json!({
        "postgres": db, "redis": redis, "rabbitmq": broker,
        "degraded": !broker, "in_flight": state.admission.in_flight(),
        "redis_cache_complete": state.cache.warmth.is_complete(),
    });
    if redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
