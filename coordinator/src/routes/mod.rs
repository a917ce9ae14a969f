//! The HTTP API under `/v1` (axum): customers submit jobs and fetch results with an API key;
//! executors claim jobs (long-poll), report progress and deliver proofs, each request signed.
//!
//! Each area's routes live in its own module ([`jobs`], [`optimistic`], [`executors`],
//! [`models`], [`meta`]),
//! annotated for the OpenAPI document ([`crate::openapi`]). Every error is JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code; internal failures are
//! logged, never shown to clients. Bodies are limited to [`MAX_BODY`].

pub mod executors;
pub mod jobs;
pub mod meta;
pub mod models;
pub mod optimistic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use zkinfer_protocol::{ErrorBody, ErrorDetail, ExecutorId};
use zkinfer_verifier_contract::escrow::EscrowClient;

use crate::chain::StakeCache;
use crate::check::{ModelRegistrar, ProofChecker};
use crate::dispatch::Dispatch;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::store::Store;

/// Largest request body: a sealed input of a few hundred thousand values, or a proof.
pub const MAX_BODY: usize = 4 << 20;

/// Largest model registration body (the ONNX file is sent as hex).
pub const MAX_MODEL_BODY: usize = 64 << 20;

/// Shared state of the API: the services every route reaches.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) checker: Arc<dyn ProofChecker>,
    /// API key → customer name.
    pub(crate) customers: Arc<HashMap<String, String>>,
    /// How long a claim lasts without a heartbeat.
    pub(crate) lease: Duration,
    /// How long a claim waits for a job before answering "nothing".
    pub(crate) long_poll: Duration,
    pub(crate) submitted: Arc<Notify>,
    pub(crate) dispatch: Dispatch,
    /// The escrow paying for jobs, when the market runs on chain.
    pub(crate) chain: Option<Arc<Chain>>,
    /// What the coordinator accepts.
    pub(crate) policy: Arc<Policy>,
    /// One model registration at a time.
    pub(crate) registering: Arc<tokio::sync::Semaphore>,
    /// Registers models sent over HTTP, when enabled.
    pub(crate) registrar: Option<Arc<dyn ModelRegistrar>>,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when the service shuts down: long-polls end early.
    pub(crate) shutdown: CancellationToken,
}

impl AppState {
    /// The state over `store`; `customers` maps API keys to customer names; `checker`
    /// verifies delivered proofs; leases last `lease` without a heartbeat; a claim waits up
    /// to `long_poll` for a job.
    pub fn new(
        store: Store,
        checker: Arc<dyn ProofChecker>,
        customers: HashMap<String, String>,
        lease: Duration,
        long_poll: Duration,
    ) -> Self {
        AppState {
            store,
            checker,
            customers: Arc::new(customers),
            lease,
            long_poll,
            submitted: Arc::new(Notify::new()),
            dispatch: Dispatch::default(),
            chain: None,
            policy: Arc::new(Policy::default()),
            registering: Arc::new(tokio::sync::Semaphore::new(1)),
            registrar: None,
            metrics: Arc::new(Metrics::new()),
            shutdown: CancellationToken::new(),
        }
    }

    /// Accepts model registrations (`POST /v1/models`) through `registrar`.
    pub fn with_registrar(mut self, registrar: Arc<dyn ModelRegistrar>) -> Self {
        self.registrar = Some(registrar);
        self
    }

    /// Requires every job to be paid through this escrow on the chain `chain_id` (checked at
    /// submission); the service runs [`crate::chain::watch`] to settle them.
    pub fn with_escrow(mut self, escrow: EscrowClient, chain_id: u64) -> Self {
        self.chain = Some(Arc::new(Chain { escrow, chain_id, stakes: StakeCache::new(Duration::from_secs(10)) }));
        self
    }

    /// Accepts on these terms.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Ends long-polls when `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    pub(crate) fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }

    /// The longest a request may take (a claim's long-poll, plus slack); model registration,
    /// which compiles and runs keygen, is exempt.
    fn request_timeout(&self) -> Duration {
        self.long_poll + Duration::from_secs(30)
    }
}

/// The chain a coordinator settles on.
pub struct Chain {
    /// The escrow.
    pub escrow: EscrowClient,
    /// The chain's id.
    pub chain_id: u64,
    /// Executors' stake, read from the escrow.
    pub stakes: StakeCache,
}

impl Chain {
    /// What a sealed input or a proof of escrow job `job` is bound to.
    pub fn binding(&self, job: zkinfer_protocol::EscrowJobId) -> zkinfer_protocol::seal::EscrowBinding {
        zkinfer_protocol::seal::EscrowBinding { chain_id: self.chain_id, escrow: self.escrow.address(), job }
    }
}

/// Every route, annotated for the OpenAPI document.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(jobs::router())
        .merge(optimistic::router())
        .merge(executors::router())
        .merge(models::router())
        .merge(meta::router())
}

/// The whole API over `state`: routes, the OpenAPI document at `/v1/openapi.json`, the
/// body limit, request timeouts and request metrics.
pub fn app(state: AppState) -> Router {
    let (router, _) = api_router().split_for_parts();
    let timeout = state.request_timeout();
    router
        .merge(meta::openapi_route())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(timeout, with_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), with_metrics))
        .with_state(state)
}

/// An [`Error`] as an HTTP response (boxed: errors are rare, and routes' results stay small).
#[derive(Debug)]
pub struct ApiError(pub Box<Error>);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(Box::new(e.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let message = if self.0.is_internal() {
            tracing::error!(error = %self.0, "internal error");
            "internal error (logged at the coordinator)".to_string()
        } else {
            self.0.to_string()
        };
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: ErrorDetail { code, message } })).into_response()
    }
}

/// A route's result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Answers 503 `timeout` when a request runs past `limit` (model registration excepted).
async fn with_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST && req.uri().path() == "/v1/models" {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::from(Error::Timeout { secs: limit.as_secs() }).into_response(),
    }
}

/// Counts each answered request by its route (not its raw path) and status.
async fn with_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    state.metrics.request(&route, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// The body, or 413 `body_too_large` over the limit.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        ApiError::from(if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge { limit }
        } else {
            Error::BadRequest(r.body_text())
        })
    })
}

/// A JSON body, decoded into a protocol type (400 `bad_request` naming the field otherwise).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::from(Error::BadRequest(format!("body: {e}"))))
}

/// A JSON request body with the API's errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = if req.uri().path() == "/v1/models" { MAX_MODEL_BODY } else { MAX_BODY };
        let bytes = body_bytes(Bytes::from_request(req, state).await, limit)?;
        Ok(ApiJson(decode(&bytes)?))
    }
}

/// Path parameters with the API's errors (400 `bad_request` when one does not parse).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::from(Error::BadRequest(format!("path: {}", e.body_text())))),
        }
    }
}

/// The customer a request's API key (`x-api-key`) names.
pub struct Customer(pub String);

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).ok_or(Error::Unauthorized)?;
        Ok(Customer(state.customers.get(key).cloned().ok_or(Error::Unauthorized)?))
    }
}

/// A request with an admin's API key (`x-api-key` among the coordinator's admin keys).
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).ok_or(Error::Unauthorized)?;
        if state.policy.admin_keys.contains(key) {
            return Ok(Admin);
        }
        if state.customers.contains_key(key) {
            return Err(Error::Forbidden("registering models needs an admin key (coordinator --admin-key)".into()).into());
        }
        Err(Error::Unauthorized.into())
    }
}

/// A request signed by an executor, after checking the signature and that its nonce is
/// fresh (see [`zkinfer_protocol::auth`]), with its body.
pub struct Signed {
    /// Who signed it.
    pub executor: ExecutorId,
    /// The body it signed.
    pub body: Bytes,
}

impl FromRequest<AppState> for Signed {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        use zkinfer_protocol::auth;
        let (method, path, headers) = (req.method().clone(), req.uri().path().to_string(), req.headers().clone());
        let body = body_bytes(Bytes::from_request(req, state).await, MAX_BODY)?;
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).ok_or_else(|| Error::BadSignature(format!("missing header {k}")));
        let (executor, nonce) = auth::verify(method.as_str(), &path, &body, h(auth::EXECUTOR)?, h(auth::NONCE)?, h(auth::SIGNATURE)?)
            .map_err(|e| Error::BadSignature(e.to_string()))?;
        state.store.accept_nonce(&executor, nonce).await?;
        Ok(Signed { executor, body })
    }
}

/// Runs blocking work (proof checks, compiling) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(what: &'static str, f: impl FnOnce() -> crate::Result<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::from(Error::Internal(format!("{what} task failed: {e}"))))?
        .map_err(ApiError::from)
}
