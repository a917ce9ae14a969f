//! `/v1/models`: the models served, registration over HTTP, and their compiled circuits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkinfer_protocol::types::{ModelArtifact, ModelSummary, RegisterModelRequest, RegisteredModel};
use zkinfer_protocol::{ErrorBody, Hash32, HexBytes, ModelId};

use super::{blocking, Admin, ApiJson, ApiPath, ApiResult, AppState};
use crate::clock::now_ms;
use crate::error::Error;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, register)).routes(routes!(artifact))
}

/// The models served (public: executors list them to fetch new ones).
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "Every model served", body = Vec<ModelSummary>)))]
async fn list(State(api): State<AppState>) -> ApiResult<Json<Vec<ModelSummary>>> {
    let list = api
        .store
        .models()
        .await?
        .into_iter()
        .map(|(id, input_len)| {
            let model_hash = api.checker.model_hash(&id).map(Hash32);
            ModelSummary { id, input_len: input_len as u64, model_hash }
        })
        .collect();
    Ok(Json(list))
}

/// Register an ONNX model (an admin's key): compiles it, runs keygen with the coordinator's
/// SRS, and serves it. One registration runs at a time, under a time limit.
#[utoipa::path(post, path = "/v1/models", tag = "models", request_body = RegisterModelRequest, security(("api_key" = [])),
    responses(
        (status = 201, description = "Registered", body = RegisteredModel),
        (status = 400, description = "Malformed, does not compile (the op and node are named), already registered, or registration is off", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "A customer's key, not an admin's", body = ErrorBody),
        (status = 503, description = "Another registration is running, or this one ran out of time: retry", body = ErrorBody),
    ))]
async fn register(_admin: Admin, State(api): State<AppState>, ApiJson(req): ApiJson<RegisterModelRequest>) -> ApiResult<Response> {
    let registrar = api.registrar.clone().ok_or_else(|| {
        Error::BadRequest("this coordinator does not register models (start it with --models-dir and --srs or --dev-srs)".into())
    })?;
    let permit =
        api.registering.clone().try_acquire_owned().map_err(|_| Error::Busy("another model registration is running; retry later"))?;
    // Compiling and keygen take seconds to minutes of CPU: off the async workers. The permit
    // goes with the work, so a registration that ran out of time still blocks the next one
    // until it has really finished.
    let work = blocking("registration", move || {
        let _permit = permit;
        registrar.register(&req)
    });
    let limit = api.policy.register_timeout;
    let out = tokio::time::timeout(limit, work).await.map_err(|_| Error::Timeout { secs: limit.as_secs() })??;
    api.store.register_model(&out.model_id, out.input_len as usize, now_ms()).await?;
    tracing::info!(model = %out.model_id, k = out.k, "model registered");
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// A registered model's compiled circuit (`model.zkm`) and registration, for executors to set
/// up with the same SRS (they check the vk hash). Models are public.
#[utoipa::path(get, path = "/v1/models/{id}/artifact", tag = "models",
    params(("id" = ModelId, Path, description = "The model")),
    responses(
        (status = 200, description = "The compiled model", body = ModelArtifact),
        (status = 400, description = "The id is not a model id", body = ErrorBody),
        (status = 404, description = "Not a model registered over HTTP", body = ErrorBody),
    ))]
async fn artifact(State(api): State<AppState>, ApiPath(id): ApiPath<ModelId>) -> ApiResult<Json<ModelArtifact>> {
    let registrar = api.registrar.clone().ok_or_else(|| Error::UnknownModel(id.to_string()))?;
    let (zkm, model) = blocking("artifact", move || registrar.artifact(&id)).await?;
    Ok(Json(ModelArtifact { model, model_zkm: HexBytes(zkm) }))
}
