use actix_web::{web, HttpResponse};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Whether this server should take traffic, as the operator's `/readyz` decides.
async fn readiness(state: &AppState) -> (bool, serde_json::Value) {
    let db = state.db.execute_unprepared("SELECT 1").await.is_ok();
    let redis = state.redis.ping().await.is_ok();
    let broker = state.broker.current().is_some();
    let fallback = state.publisher.fallback();
    let body = json!({
        "postgres": db, "redis": redis, "rabbitmq": broker,
        "degraded": !broker, "in_flight": state.admission.in_flight(),
        "redis_cache_complete": state.cache.warmth.is_complete(),
        "redis_persistent": fallback.redis_persistent(), "fallback": fallback.state(),
    });
    (redis && (broker || fallback.state() != "refused"), body)
}

/// The public `/readyz`, for load balancers: 200 or 503 and nothing about why (the details
/// are on the operator listener).
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if readiness(&state).await.0 {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({"status": "unavailable"}))
    }
}

/// The operator's `/readyz`: checks all three services and reports each. Redis is required to take reservations, and so
/// is the broker unless the fallback stream may stand in for it (`degraded`): the fallback is
/// `refused` while Redis keeps nothing (`fallback_durability`). Without PostgreSQL the broker
/// holds reservations until the persister can write, so PostgreSQL does not make us unready.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (ready, body) = readiness(&state).await;
    if ready {
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
