//! `/metrics` and `/v1/openapi.json`.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics: jobs by state, prove seconds, routing choices, HTTP requests.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(api): State<AppState>) -> ApiResult<impl IntoResponse> {
    let counts = api.store.counts().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], api.metrics.render(&counts)))
}

/// The document, built once.
static DOCUMENT: LazyLock<Arc<utoipa::openapi::OpenApi>> = LazyLock::new(|| Arc::new(crate::openapi::document()));

/// `GET /v1/openapi.json`: the OpenAPI document, generated from the routes and the protocol's types.
pub(super) fn openapi_route() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(|| async { Json(DOCUMENT.as_ref().clone()) }))
}
