//! `/v1/jobs`: customers submit jobs and read them back; the lease holder starts, renews,
//! fails or delivers.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkinfer_protocol::types::{FailReport, InputPayload, JobView, SubmitJob, Submitted};
use zkinfer_protocol::{Commitment, ErrorBody, ExecutorId, JobId, JobState};

use super::{blocking, decode, ApiError, ApiJson, ApiPath, ApiResult, AppState, Customer, Signed};
use crate::clock::now_ms;
use crate::error::Error;
use crate::openapi::ProofFile;
use crate::routing::Outcome;
use crate::store::{JobInput, NewJob};

/// Longest a job may run before its deadline.
const MAX_DEADLINE_S: u64 = 30 * 86_400;

/// Longest failure reason kept.
const MAX_REASON_CHARS: usize = 500;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(job))
        .routes(routes!(proof, deliver))
        .routes(routes!(start))
        .routes(routes!(heartbeat))
        .routes(routes!(fail))
}

/// Submit a job: plain (`input`, the coordinator sees it) or sealed (`sealed`: HPKE
/// ciphertexts per executor, with `input_commitment`). On chain, `escrow_job` must name an
/// open escrow job for this model and input, payable to every executor sealed to.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = SubmitJob, security(("api_key" = [])),
    responses(
        (status = 201, description = "Queued", body = Submitted),
        (status = 400, description = "Malformed, or the input has the wrong length (input_length)", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 409, description = "The escrow job does not pay for it (escrow_mismatch)", body = ErrorBody),
        (status = 502, description = "The chain could not be read", body = ErrorBody),
    ))]
async fn submit(
    customer: Customer,
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiJson(b): ApiJson<SubmitJob>,
) -> ApiResult<Response> {
    let expected = api.checker.input_len(&b.model_id).ok_or_else(|| Error::UnknownModel(b.model_id.to_string()))?;
    let bad = |m: &str| ApiError::from(Error::BadRequest(m.to_string()));
    let (plain, sealed, commitment) = match (&b.input, &b.sealed) {
        (Some(values), None) => {
            if values.len() != expected {
                return Err(Error::InputLength { got: values.len(), expected }.into());
            }
            let c = api.checker.commitment(&b.model_id, values)?;
            if b.input_commitment.is_some_and(|given| given != c) {
                return Err(bad("input_commitment is not the commitment to input"));
            }
            let json = serde_json::to_vec(&InputPayload { input: values.clone() }).map_err(|e| bad(&e.to_string()))?;
            (Some(json), Vec::new(), c)
        }
        (None, Some(by_executor)) => {
            let c = b.input_commitment.ok_or_else(|| bad("a sealed input needs input_commitment"))?;
            let sealed: Vec<(ExecutorId, Vec<u8>)> = by_executor.iter().map(|(e, ct)| (*e, ct.0.clone())).collect();
            (None, sealed, c)
        }
        _ => return Err(bad("send exactly one of input (plain) and sealed")),
    };
    check_escrow(&api, &b, commitment, &sealed).await?;
    let now = now_ms();
    let deadline = now + (b.deadline_s.min(MAX_DEADLINE_S) * 1000) as i64;
    let input = match &plain {
        Some(json) => JobInput::Plain { json, values: expected },
        None => JobInput::Sealed(&sealed),
    };
    let job = NewJob {
        model_id: &b.model_id,
        customer: &customer.0,
        input,
        input_commitment: Some(commitment),
        escrow_job: b.escrow_job,
        deadline_ms: deadline,
    };
    let id = api.store.submit_job(&job, now).await?;
    api.submitted.notify_waiters();
    tracing::info!(job = %id, model = %b.model_id, sealed = plain.is_none(), "job submitted");
    Ok((StatusCode::CREATED, Json(Submitted { job_id: id, state: JobState::Queued, input_commitment: commitment })).into_response())
}

/// On chain, a job must name an open escrow job for its model and input, payable to every
/// executor its input is sealed to.
async fn check_escrow(api: &AppState, b: &SubmitJob, commitment: Commitment, sealed: &[(ExecutorId, Vec<u8>)]) -> ApiResult<()> {
    let Some(escrow) = &api.escrow else {
        if b.escrow_job.is_some() {
            return Err(Error::BadRequest("this coordinator is not connected to a chain: omit escrow_job".into()).into());
        }
        return Ok(());
    };
    let id = b
        .escrow_job
        .ok_or_else(|| Error::BadRequest("this coordinator settles on chain: open an escrow job and pass escrow_job".into()))?;
    let hash = api.checker.model_hash(&b.model_id).ok_or_else(|| Error::UnknownModel(b.model_id.to_string()))?;
    let sealed_to: Vec<ExecutorId> = sealed.iter().map(|(e, _)| *e).collect();
    crate::chain::check_pays_for(escrow, id, &hash, commitment, &sealed_to).await?;
    Ok(())
}

/// A job: state, executor, attempts, lifecycle events with times, escrow job, input
/// commitment, on-chain payment, failure reason.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("api_key" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
async fn job(
    _customer: Customer,
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(api.store.job(id).await?))
}

/// Download the proof file once the job is proved.
#[utoipa::path(get, path = "/v1/jobs/{id}/proof", tag = "jobs", security(("api_key" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 200, description = "The proof file", body = ProofFile, content_type = "application/octet-stream"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not proved yet (bad_state)", body = ErrorBody),
    ))]
async fn proof(
    _customer: Customer,
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> ApiResult<Response> {
    match api.store.proof(id).await? {
        Some(p) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], p).into_response()),
        None => {
            let state = api.store.job(id).await?.state;
            Err(Error::BadTransition { job: id, state, action: "download a proof" }.into())
        }
    }
}

const EXECUTOR_ERRORS: &str =
    "bad_signature (401), replayed_request (409: sign again with a fresh nonce), unknown_job (404), bad_state or not_lease_holder (409)";

/// Start proving a leased job (lease holder).
#[utoipa::path(post, path = "/v1/jobs/{id}/start", tag = "executors",
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 204, description = "Proving; the lease is extended"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = EXECUTOR_ERRORS, body = ErrorBody),
    ))]
async fn start(
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    signed: Signed,
) -> ApiResult<StatusCode> {
    api.store.start_proving(id, &signed.executor, now_ms(), api.lease_ms()).await?;
    tracing::info!(job = %id, executor = %signed.executor, "proving");
    Ok(StatusCode::NO_CONTENT)
}

/// Renew the lease (lease holder).
#[utoipa::path(post, path = "/v1/jobs/{id}/heartbeat", tag = "executors",
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 204, description = "The lease is extended"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = EXECUTOR_ERRORS, body = ErrorBody),
    ))]
async fn heartbeat(
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    signed: Signed,
) -> ApiResult<StatusCode> {
    api.store.heartbeat(id, &signed.executor, now_ms(), api.lease_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deliver a proof (lease holder): verified against the model's keys and the job's input
/// commitment, else 422 `invalid_proof`.
#[utoipa::path(post, path = "/v1/jobs/{id}/proof", tag = "executors",
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    request_body(content = ProofFile, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Verified; the job is proved"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = EXECUTOR_ERRORS, body = ErrorBody),
        (status = 422, description = "The proof does not verify or binds another input", body = ErrorBody),
    ))]
async fn deliver(
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    signed: Signed,
) -> ApiResult<StatusCode> {
    let executor = signed.executor;
    // Only the lease holder may deliver (checked again, atomically, when the job moves).
    api.store.ensure_holder(id, &executor, "deliver a proof").await?;
    let (model_id, commitment) = api.store.job_commitment(id).await?;
    let commitment = commitment.ok_or_else(|| Error::Internal(format!("job {id} has no input commitment")))?;
    // Verifying takes milliseconds of CPU: keep it off the async workers.
    let (checker, proof) = (api.checker.clone(), signed.body.clone());
    blocking("proof check", move || checker.check(&model_id, &commitment, &proof)).await?;
    api.store.complete(id, &executor, &signed.body, now_ms()).await?;
    let seconds = api.store.proving_since(id).await?.map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1e3);
    api.metrics.proved(seconds);
    let price_fraction = crate::dispatch::price_fraction(&api.store.executors().await?, executor);
    api.dispatch.record(executor, Outcome { success: true, seconds, price_fraction })?;
    tracing::info!(job = %id, %executor, seconds, "proof verified; job proved");
    Ok(StatusCode::NO_CONTENT)
}

/// Give up a job that cannot be proved (lease holder), with a reason.
#[utoipa::path(post, path = "/v1/jobs/{id}/fail", tag = "executors", request_body = FailReport,
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 204, description = "The job failed"),
        (status = 400, description = "Malformed", body = ErrorBody),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = EXECUTOR_ERRORS, body = ErrorBody),
    ))]
async fn fail(
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    signed: Signed,
) -> ApiResult<StatusCode> {
    let b: FailReport = decode(&signed.body)?;
    let reason: String = b.reason.chars().take(MAX_REASON_CHARS).collect();
    api.store.fail(id, &signed.executor, &reason, now_ms()).await?;
    api.dispatch.record(signed.executor, Outcome { success: false, seconds: 0.0, price_fraction: 0.0 })?;
    tracing::warn!(job = %id, executor = %signed.executor, "job failed");
    Ok(StatusCode::NO_CONTENT)
}
