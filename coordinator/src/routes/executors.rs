//! `/v1/executors`: executors register and claim jobs (long-poll); customers list them to
//! seal inputs to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkinfer_protocol::types::{ExecutorInfo, ExecutorRegistration, Lease};
use zkinfer_protocol::{ErrorBody, ExecutorId, Wei};

use super::{decode, ApiPath, ApiResult, AppState, Customer, Signed};
use crate::clock::now_ms;
use crate::dispatch::ROUTE_GRACE;
use crate::error::Error;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(register)).routes(routes!(claim))
}

/// Registered executors: address, HPKE public key, price, GPU, models.
#[utoipa::path(get, path = "/v1/executors", tag = "executors", security(("api_key" = [])),
    responses(
        (status = 200, description = "Every registered executor", body = Vec<ExecutorInfo>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
    ))]
async fn list(_customer: Customer, State(api): State<AppState>) -> ApiResult<Json<Vec<ExecutorInfo>>> {
    let mut list = api.store.executors().await?;
    if let Some(chain) = &api.chain {
        for e in &mut list {
            e.stake_wei = Wei(chain.stakes.active(&chain.escrow, e.address).await?);
        }
    }
    Ok(Json(list))
}

/// The path must name the signer.
fn same_executor(path: ExecutorId, signed: &Signed) -> ApiResult<()> {
    if path != signed.executor {
        return Err(Error::BadSignature("the path names another executor".into()).into());
    }
    Ok(())
}

/// Register or update an executor: HPKE key, price, hardware, models.
#[utoipa::path(post, path = "/v1/executors/{address}/register", tag = "executors", request_body = ExecutorRegistration,
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("address" = ExecutorId, Path, description = "The executor: the signer's address")),
    responses(
        (status = 204, description = "Registered"),
        (status = 400, description = "Malformed", body = ErrorBody),
        (status = 401, description = "Missing or bad signature, or the path names another executor", body = ErrorBody),
        (status = 404, description = "A model it names is not served here", body = ErrorBody),
        (status = 409, description = "replayed_request: sign again with a fresh nonce", body = ErrorBody),
    ))]
async fn register(State(api): State<AppState>, ApiPath(address): ApiPath<ExecutorId>, signed: Signed) -> ApiResult<StatusCode> {
    same_executor(address, &signed)?;
    let info: ExecutorRegistration = decode(&signed.body)?;
    if info.hpke_public_key.0.len() != 32 {
        return Err(Error::BadRequest("hpke_public_key must be 32 bytes (X25519)".into()).into());
    }
    zkinfer_protocol::seal::verify_hpke_key(signed.executor, &info.hpke_public_key.0, &info.hpke_key_signature.0)
        .map_err(|e| Error::BadSignature(e.to_string()))?;
    for m in &info.models {
        api.checker.input_len(m).ok_or_else(|| Error::UnknownModel(m.to_string()))?;
    }
    api.store.register_executor(&signed.executor, &info, now_ms()).await?;
    tracing::info!(executor = %signed.executor, models = info.models.len(), price_wei = %info.price_wei, "executor registered");
    Ok(StatusCode::NO_CONTENT)
}

/// Long-poll for a job the executor can prove: 200 with a lease, or 204 when none came.
#[utoipa::path(post, path = "/v1/executors/{address}/claim", tag = "executors",
    security(("executor_address" = [], "executor_nonce" = [], "executor_signature" = [])),
    params(("address" = ExecutorId, Path, description = "The executor: the signer's address")),
    responses(
        (status = 200, description = "A job, leased to this executor", body = Lease),
        (status = 204, description = "No job came during the long-poll"),
        (status = 400, description = "The address does not parse", body = ErrorBody),
        (status = 401, description = "Missing or bad signature, or the path names another executor", body = ErrorBody),
        (status = 403, description = "On chain: the executor has less active stake in the escrow than the coordinator needs", body = ErrorBody),
        (status = 409, description = "replayed_request: sign again with a fresh nonce", body = ErrorBody),
    ))]
async fn claim(State(api): State<AppState>, ApiPath(address): ApiPath<ExecutorId>, signed: Signed) -> ApiResult<Response> {
    same_executor(address, &signed)?;
    let me = signed.executor;
    // On chain, only staked executors get work (a throwaway key cannot hold jobs), and each
    // only the jobs whose minimum bond its stake covers.
    let stake_gwei = match &api.chain {
        Some(chain) => {
            let active = chain.stakes.active(&chain.escrow, me).await?;
            if active < api.policy.min_stake {
                return Err(Error::Forbidden(format!(
                    "executor {me} has {active} wei of active stake in the escrow at {:#x}; stake at least {} wei (zkinfer executor --stake-wei)",
                    chain.escrow.address(),
                    api.policy.min_stake
                ))
                .into());
            }
            Some(crate::chain::gwei(active, false))
        }
        None => None,
    };
    let deadline = tokio::time::Instant::now() + api.long_poll;
    let _waiting = api.dispatch.waiting(me)?;
    loop {
        // Register interest before looking, so a submission between the two is not missed.
        let notified = api.submitted.notified();
        let lapsed = api.store.requeue_lapsed(now_ms()).await?;
        let queued = api.store.queued().await?;
        let d = api.dispatch.decide(me, &lapsed, queued)?;
        // Routing matters only when executors outnumber jobs: then the pick goes first.
        if !d.preferred && d.contended {
            tokio::time::sleep(ROUTE_GRACE).await;
        }
        if let Some(lease) = api.store.claim_staked(&me, stake_gwei, now_ms(), api.lease_ms()).await? {
            if d.preferred {
                api.metrics.picked_claim(me);
            }
            tracing::info!(job = %lease.job, executor = %me, "job leased");
            return Ok(Json(lease).into_response());
        }
        tokio::select! {
            _ = api.shutdown.cancelled() => return Ok(StatusCode::NO_CONTENT.into_response()),
            r = tokio::time::timeout_at(deadline, notified) => if r.is_err() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            },
        }
    }
}
