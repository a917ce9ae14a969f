//! `/v1/jobs`: customers submit jobs and read them back; the lease holder starts, renews,
//! fails or delivers.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkinfer_protocol::types::{FailReport, InputPayload, JobView, SubmitJob, Submitted};
use zkinfer_protocol::{Binding, Commitment, ErrorBody, ExecutorId, JobId, JobState, Salt, Verification};
use zkinfer_verifier_contract::escrow::{EscrowJob, OptimisticState};

use super::{blocking, decode, ApiError, ApiJson, ApiPath, ApiResult, AppState, Customer, Signed};
use crate::check::ExpectedProof;
use crate::clock::now_ms;
use crate::error::Error;
use crate::openapi::ProofFile;
use crate::routing::Outcome;
use crate::store::{JobInput, NewJob, OptimisticJob};

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
/// open escrow job for this model, its verifier and this input, payable to every executor
/// sealed to, on this coordinator's terms (price, deadline; `GET /v1/terms`), opened by the
/// key that signed `customer_signature`. An `optimistic` job needs an optimistic escrow job
/// whose audit probability, windows and challenge bond meet the terms.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = SubmitJob, security(("api_key" = [])),
    responses(
        (status = 201, description = "Queued", body = Submitted),
        (status = 400, description = "Malformed, or the input has the wrong length (input_length)", body = ErrorBody),
        (status = 401, description = "No or unknown API key, or a bad customer signature", body = ErrorBody),
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
    let (plain, sealed, commitment, drawn) = match (&b.input, &b.sealed) {
        (Some(values), None) => {
            if values.len() != expected {
                return Err(Error::InputLength { got: values.len(), expected }.into());
            }
            let salt = b.salt.unwrap_or_else(Salt::random);
            let c = api.checker.commitment(&b.model_id, values, salt)?;
            if b.input_commitment.is_some_and(|given| given != c) {
                return Err(bad("input_commitment is not the commitment to input with salt"));
            }
            let json = serde_json::to_vec(&InputPayload { input: values.clone(), salt }).map_err(|e| bad(&e.to_string()))?;
            (Some(json), Vec::new(), c, b.salt.is_none().then_some(salt))
        }
        (None, Some(by_executor)) => {
            if b.salt.is_some() {
                return Err(bad("a sealed job's salt goes inside its ciphertexts, not beside them"));
            }
            let c = b.input_commitment.ok_or_else(|| bad("a sealed input needs input_commitment"))?;
            let sealed: Vec<(ExecutorId, Vec<u8>)> = by_executor.iter().map(|(e, ct)| (*e, ct.0.clone())).collect();
            (None, sealed, c, None)
        }
        _ => return Err(bad("send exactly one of input (plain) and sealed")),
    };
    if b.verification == Verification::Optimistic && plain.is_none() && sealed.len() < 2 {
        return Err(bad("an optimistic job's input must be sealed to at least two executors: one runs it, another may audit it"));
    }
    let escrow = check_escrow(&api, &b, commitment, &sealed).await?;
    let optimistic = match (&escrow, b.verification) {
        (Some((_, o)), Verification::Optimistic) => {
            Some(OptimisticJob { audit_bps: o.terms.audit_bps, challenge_window_s: o.terms.challenge_window })
        }
        (None, Verification::Optimistic) => {
            return Err(bad("optimistic verification needs the escrow: start the coordinator with --rpc-url and --escrow"))
        }
        _ => None,
    };
    let escrow_job = escrow.map(|(j, _)| j);
    let now = now_ms();
    let mut deadline = now + (b.deadline_s.min(MAX_DEADLINE_S) * 1000) as i64;
    if let Some(job) = &escrow_job {
        // Off chain the job ends before the escrow job does, leaving time to submit the proof.
        let margin = (api.policy.min_deadline.as_millis() as i64) / 2;
        deadline = deadline.min((job.deadline as i64) * 1000 - margin);
    }
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
        min_bond_gwei: escrow_job.as_ref().map(|j| crate::chain::gwei(j.min_bond, true)),
        optimistic,
    };
    let id = api.store.submit_job(&job, now).await?;
    api.submitted.notify_waiters();
    tracing::info!(job = %id, model = %b.model_id, sealed = plain.is_none(), optimistic = optimistic.is_some(), "job submitted");
    let body = Submitted { job_id: id, state: JobState::Queued, input_commitment: commitment, salt: drawn };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// On chain, a job must name an escrow job that pays for it (see [`submit`]); returns it,
/// with its optimistic state.
async fn check_escrow(
    api: &AppState,
    b: &SubmitJob,
    commitment: Commitment,
    sealed: &[(ExecutorId, Vec<u8>)],
) -> ApiResult<Option<(EscrowJob, OptimisticState)>> {
    let Some(chain) = &api.chain else {
        if b.escrow_job.is_some() {
            return Err(Error::BadRequest("this coordinator is not connected to a chain: omit escrow_job".into()).into());
        }
        return Ok(None);
    };
    let id = b
        .escrow_job
        .ok_or_else(|| Error::BadRequest("this coordinator settles on chain: open an escrow job and pass escrow_job".into()))?;
    let signature = b.customer_signature.as_ref().ok_or_else(|| {
        Error::BadRequest(
            "a paid job needs customer_signature: the escrow job's customer signs the submission (zkinfer_protocol::auth::sign_submission)"
                .into(),
        )
    })?;
    let signer = zkinfer_protocol::auth::submission_signer(&chain.binding(id), &b.model_id, &commitment, &signature.0)
        .map_err(|e| Error::BadSignature(e.to_string()))?;
    let unknown = || Error::UnknownModel(b.model_id.to_string());
    let model_hash = api.checker.model_hash(&b.model_id).ok_or_else(unknown)?;
    let num_instances = api.checker.num_instances(&b.model_id).ok_or_else(unknown)?;
    let job = chain.escrow.job(id).await?;
    let (checker, model, parts) = (api.checker.clone(), b.model_id.clone(), job.model.parts.clone());
    let code_hash = blocking("verifier pin", move || checker.expected_code_hash(&model, &parts)).await?;
    let sealed_to: Vec<ExecutorId> = sealed.iter().map(|(e, _)| *e).collect();
    let asked = api.store.executors().await?.into_iter().filter(|e| sealed_to.contains(&e.address)).map(|e| e.price_wei.0).max();
    let now_s = (now_ms() / 1000) as u64;
    let wanted = crate::chain::Wanted {
        model_hash,
        num_instances,
        code_hash,
        commitment,
        sealed_to: &sealed_to,
        deadline_at_least: now_s + api.policy.min_deadline.as_secs(),
        price_at_least: asked.unwrap_or_default().max(api.policy.min_price),
        signer,
        optimistic: (b.verification == Verification::Optimistic).then_some(&api.policy.optimistic),
    };
    let o = crate::chain::check_pays_for(&chain.escrow, &job, &wanted).await?;
    Ok(Some((job, o)))
}

/// The job, if it is the customer's (another customer's job is an unknown job: its id tells nothing).
async fn own_job(api: &AppState, customer: &Customer, id: JobId) -> ApiResult<JobView> {
    if api.store.customer_of(id).await? != customer.0 {
        return Err(Error::UnknownJob(id).into());
    }
    Ok(api.store.job(id).await?)
}

/// A job: state, executor, attempts, lifecycle events with times, escrow job, input
/// commitment, on-chain payment, failure reason.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", security(("api_key" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such job (or not this customer's)", body = ErrorBody),
    ))]
async fn job(
    customer: Customer,
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(own_job(&api, &customer, id).await?))
}

/// Download the proof file: the job's own customer only, once the job is proved (off chain)
/// or settled (paid on chain, so that nobody can race the executor to the payment with it).
#[utoipa::path(get, path = "/v1/jobs/{id}/proof", tag = "jobs", security(("api_key" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 200, description = "The proof file", body = ProofFile, content_type = "application/octet-stream"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such job (or not this customer's)", body = ErrorBody),
        (status = 409, description = "Not proved, or paid on chain but not settled yet (bad_state)", body = ErrorBody),
    ))]
async fn proof(
    customer: Customer,
    axum::extract::State(api): axum::extract::State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> ApiResult<Response> {
    let job = own_job(&api, &customer, id).await?;
    let ready = if job.escrow_job.is_some() { job.state == JobState::Settled } else { job.state.reached(JobState::Proved) };
    match api.store.proof(id).await? {
        Some(p) if ready => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], p).into_response()),
        _ => Err(Error::BadTransition { job: id, state: job.state, action: "download a proof" }.into()),
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
    api.store.heartbeat(id, &signed.executor, now_ms(), api.lease_ms(), api.policy.max_lease.as_millis() as i64).await?;
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
    // The proof must pay this executor, for the job's escrow job when it has one.
    let binding = match (api.store.job(id).await?.escrow_job, &api.chain) {
        (Some(job), Some(chain)) => {
            let b = chain.binding(job);
            Binding { payee: executor, chain_id: b.chain_id, escrow: b.escrow, escrow_job: job }
        }
        _ => Binding::off_chain(executor),
    };
    let expect = ExpectedProof { commitment, binding };
    // Verifying takes milliseconds of CPU: keep it off the async workers.
    let (checker, proof) = (api.checker.clone(), signed.body.clone());
    blocking("proof check", move || checker.check(&model_id, &expect, &proof)).await?;
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
