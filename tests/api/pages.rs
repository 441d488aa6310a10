use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_metrics_and_openapi_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready: Value = app.admin_get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["postgres"], true);
    assert_eq!(ready["redis"], true);
    assert_eq!(ready["rabbitmq"], true);
    assert_eq!(
        app.reserve(&crate::helpers::reservation()).await.status(),
        202
    );
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("maskdraw_reservations_accepted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "maskdraw_http_requests_total{route=\"/api/v1/reservations\",status=\"202\"} 1"
        ),
        "{metrics}"
    );
    let api: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(api["openapi"], "3.0.3");
    assert!(api["paths"]["/api/v1/reservations"]["post"].is_object());
    app.teardown().await;
}

#[tokio::test]
async fn the_catalog_is_served_with_etag_and_cache_control() {
    let app = spawn_app().await;
    let resp = app.get("/static/config/pharmacies.json").await;
    assert_eq!(resp.status(), 200);
    let etag = resp.headers().get("etag").expect("an ETag").clone();
    assert!(resp
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("max-age"));
    let list: Vec<Value> = resp.json().await.unwrap();
    assert!(list.len() >= 150);
    let again = app
        .client
        .get(format!("{}/static/config/pharmacies.json", app.address))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let home = app
        .client
        .get(format!("{}/static/index.html", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    app.teardown().await;
}
