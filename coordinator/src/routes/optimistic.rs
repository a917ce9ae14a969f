//! Optimistic jobs: the lease holder claims its posted result (`POST /v1/jobs/{id}/result`),
//! validators fetch the sampled jobs they are asked to re-execute
//! (`POST /v1/executors/{address}/audits`) and report what they found
//! (`POST /v1/jobs/{id}/audit`). The chain decides: a claim must match what the escrow holds,
//! and a validator that disagrees challenges on chain itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkinfer_protocol::types::{AuditReport, AuditTask, ResultClaim};
use zkinfer_protocol::{ErrorBody, ExecutorId, JobId};
use zkinfer_verifier_contract::escrow::{outputs_hash, JobState as EscrowState};

use super::{decode, ApiPath, ApiResult, AppState, Signed};
use crate::clock::now_ms;
use crate::error::{Error, EscrowMismatch};
use crate::store::ClaimedResult;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(claim_result)).routes(routes!(audits)).routes(routes!(report))
}

const SIGNED_ERRORS: &str = "bad_signature (401), replayed_request (409: sign again with a fresh nonce), unknown_job (404), bad_state or not_lease_holder (409), escrow_mismatch (409: not what the escrow holds)";

/// Claim an optimistic job's result (its lease holder, or the executor that posted it on
/// chain): the quantized outputs, whose output instances must hash to what the executor
/// posted with `postResult`, and the executor's signature of the claim. The job is posted:
/// its customer reads the outputs at once, and is paid when the challenge window closes.
#[utoipa::path(post, path = "/v1/jobs/{id}/result", tag = "executors", request_body = ResultClaim,
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 204, description = "The result is recorded; the job is posted"),
        (status = 400, description = "Malformed, not an optimistic job, or outputs that do not fit the model or their hash", body = ErrorBody),
        (status = 401, description = "Missing or bad request or claim signature", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = SIGNED_ERRORS, body = ErrorBody),
        (status = 502, description = "The chain could not be read", body = ErrorBody),
    ))]
async fn claim_result(State(api): State<AppState>, ApiPath(id): ApiPath<JobId>, signed: Signed) -> ApiResult<StatusCode> {
    let claim: ResultClaim = decode(&signed.body)?;
    let executor = signed.executor;
    if api.store.optimistic_terms(id).await?.is_none() {
        return Err(Error::BadRequest(format!("job {id} is verified by a ZK proof: deliver a proof (POST /v1/jobs/{id}/proof)")).into());
    }
    let view = api.store.job(id).await?;
    let (Some(escrow_job), Some(chain)) = (view.escrow_job, &api.chain) else {
        return Err(Error::Internal(format!("optimistic job {id} has no escrow job")).into());
    };
    let commitment = view.input_commitment.ok_or_else(|| Error::Internal(format!("job {id} has no input commitment")))?;
    let (words, outputs) = {
        let (checker, model, q) = (api.checker.clone(), view.model_id.clone(), claim.quantized_outputs.clone());
        super::blocking("output instances", move || checker.outputs(&model, &q)).await?
    };
    let hash = outputs_hash(&words);
    if hash.0 != claim.outputs_hash.0 {
        return Err(Error::BadRequest(format!(
            "outputs_hash {} is not the hash of these outputs' instances ({hash:#x})",
            claim.outputs_hash
        ))
        .into());
    }
    let binding = chain.binding(escrow_job);
    let signer = zkinfer_protocol::optimistic::result_signer(&binding, &commitment, &hash, &claim.signature.0)
        .map_err(|e| Error::BadSignature(e.to_string()))?;
    if signer != executor.address() {
        return Err(Error::BadSignature(format!("the result claim is signed by {signer:#x}, not by {executor}")).into());
    }
    // The chain decides what was posted, and by whom.
    let on_chain = chain.escrow.job(escrow_job).await?;
    let o = chain.escrow.optimistic(escrow_job).await?;
    let posted = matches!(on_chain.state, EscrowState::Posted | EscrowState::Disputed | EscrowState::Paid);
    let mismatch = |why: String| Error::Escrow { job: escrow_job, reason: EscrowMismatch::ResultNotPosted(why) };
    if !posted || on_chain.executor != executor.address() {
        return Err(mismatch(format!("escrow job {escrow_job} is {:?}, posted by {:#x}", on_chain.state, on_chain.executor)).into());
    }
    if o.outputs_hash != hash {
        return Err(mismatch(format!("the escrow holds outputs hash {:#x}", o.outputs_hash)).into());
    }
    let result = ClaimedResult {
        quantized: claim.quantized_outputs,
        outputs,
        outputs_hash: hash,
        post_tx: claim.post_tx.0.into(),
        block: o.posted_block,
        challenge_ends_s: o.challenge_ends(),
        signature: claim.signature.0,
    };
    api.store.claim_result(id, &executor, &result, now_ms()).await?;
    tracing::info!(job = %id, %executor, %escrow_job, challenge_ends_s = result.challenge_ends_s, "optimistic result posted");
    Ok(StatusCode::NO_CONTENT)
}

/// The sampled jobs this validator is asked to re-execute (and has not reported on): each
/// with its input sealed to this validator by the customer, the commitment it must open to,
/// and the outputs its executor claims. Compare with the escrow's `outputsHash`; challenge on
/// chain if they differ.
#[utoipa::path(post, path = "/v1/executors/{address}/audits", tag = "executors",
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("address" = ExecutorId, Path, description = "The validator: the signer's address")),
    responses(
        (status = 200, description = "The audits asked of this validator", body = Vec<AuditTask>),
        (status = 400, description = "The address does not parse", body = ErrorBody),
        (status = 401, description = "Missing or bad signature, or the path names another executor", body = ErrorBody),
        (status = 409, description = "replayed_request: sign again with a fresh nonce", body = ErrorBody),
    ))]
async fn audits(State(api): State<AppState>, ApiPath(address): ApiPath<ExecutorId>, signed: Signed) -> ApiResult<Json<Vec<AuditTask>>> {
    if address != signed.executor {
        return Err(Error::BadSignature("the path names another executor".into()).into());
    }
    Ok(Json(api.store.audit_tasks(&signed.executor).await?))
}

/// Report a re-execution: whether the validator's outputs hash to what the executor posted,
/// and its `challenge` transaction when they did not (only the validator asked, once).
#[utoipa::path(post, path = "/v1/jobs/{id}/audit", tag = "executors", request_body = AuditReport,
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("id" = JobId, Path, description = "The job")),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed", body = ErrorBody),
        (status = 401, description = "Missing or bad signature", body = ErrorBody),
        (status = 403, description = "Not this job's validator, or already reported", body = ErrorBody),
        (status = 409, description = "replayed_request: sign again with a fresh nonce", body = ErrorBody),
    ))]
async fn report(State(api): State<AppState>, ApiPath(id): ApiPath<JobId>, signed: Signed) -> ApiResult<StatusCode> {
    let r: AuditReport = decode(&signed.body)?;
    api.store.report_audit(id, &signed.executor, r.agrees, r.challenge_tx.map(|h| h.0.into())).await?;
    if r.agrees {
        tracing::info!(job = %id, validator = %signed.executor, "audit: the validator's outputs agree");
    } else {
        tracing::warn!(job = %id, validator = %signed.executor, challenge_tx = ?r.challenge_tx, "audit: the validator's outputs differ; it challenged");
    }
    Ok(StatusCode::NO_CONTENT)
}
