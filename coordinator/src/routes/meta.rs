//! `/metrics`, `/v1/terms` and `/v1/openapi.json`.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use zkinfer_protocol::types::MarketTerms;
use zkinfer_protocol::Wei;

use super::{ApiResult, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics)).routes(routes!(terms))
}

/// What this coordinator accepts of a paid job: the least deadline, price and executor stake,
/// and what an optimistic job's audit probability, windows and challenge bond must meet.
#[utoipa::path(get, path = "/v1/terms", tag = "meta",
    responses((status = 200, description = "The terms", body = MarketTerms)))]
async fn terms(State(api): State<AppState>) -> Json<MarketTerms> {
    let p = &api.policy;
    Json(MarketTerms {
        min_deadline_s: p.min_deadline.as_secs(),
        min_price_wei: Wei(p.min_price),
        min_stake_wei: Wei(p.min_stake),
        optimistic: p.optimistic.clone(),
    })
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
