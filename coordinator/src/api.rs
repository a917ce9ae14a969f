//! The HTTP API under `/v1` (axum): customers submit jobs and fetch results with an API key;
//! executors claim jobs (long-poll), report progress and deliver proofs.
//!
//! Every error is JSON `{"error": {"code": "...", "message": "..."}}` with a stable code;
//! database failures are logged, never shown to clients. Bodies are limited to [`MAX_BODY`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::chain::Escrow;
use crate::check::{commitment_u256, ModelRegistrar, ProofChecker, RegisterModel};
use crate::error::Error;
use crate::routing::{Outcome, Router as Bandit};
use crate::state::ALL_STATES;
use crate::store::Store;
use crate::store::{ExecutorInfo, JobInput, NewJob};

/// Largest request body: a sealed input of a few hundred thousand values, or a proof.
pub const MAX_BODY: usize = 4 << 20;

/// Largest model registration body (the ONNX file is sent as hex).
pub const MAX_MODEL_BODY: usize = 64 << 20;

/// How long an executor the router did not pick waits before claiming: the router's choice,
/// if it is waiting too, gets the job first.
pub const ROUTE_GRACE: Duration = Duration::from_millis(250);

/// Seconds at which the router's speed score halves.
const ROUTER_LATENCY_SCALE_S: f64 = 30.0;

/// Routing state: the bandit, who is long-polling now, and how often the pick claimed.
#[derive(Default)]
struct Routing {
    bandit: Option<Bandit>,
    waiting: HashMap<String, usize>,
    picked: HashMap<String, u64>,
}

impl Routing {
    fn bandit(&mut self) -> &mut Bandit {
        self.bandit.get_or_insert_with(|| Bandit::new(ROUTER_LATENCY_SCALE_S))
    }

    /// Executors with a claim open now.
    fn waiting_count(&self) -> usize {
        self.waiting.values().filter(|&&n| n > 0).count()
    }

    /// Whether `name` is the router's pick among the executors waiting now.
    fn prefers(&mut self, name: &str) -> bool {
        let mut names: Vec<String> = self.waiting.iter().filter(|(_, &n)| n > 0).map(|(k, _)| k.clone()).collect();
        names.sort();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.bandit().choose(&refs).is_none_or(|pick| pick == name)
    }
}

/// Counts an executor as waiting while a claim request is open.
struct Waiting {
    routing: Arc<std::sync::Mutex<Routing>>,
    name: String,
}

impl Waiting {
    fn new(routing: &Arc<std::sync::Mutex<Routing>>, name: &str) -> Self {
        if let Ok(mut r) = routing.lock() {
            *r.waiting.entry(name.to_string()).or_default() += 1;
        }
        Waiting { routing: routing.clone(), name: name.to_string() }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut r) = self.routing.lock() {
            if let Some(n) = r.waiting.get_mut(&self.name) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// Shared state of the API.
#[derive(Clone)]
pub struct Api {
    store: Store,
    checker: Arc<dyn ProofChecker>,
    /// API key → customer name.
    customers: Arc<HashMap<String, String>>,
    /// How long a claim lasts without a heartbeat.
    lease: Duration,
    /// How long a claim waits for a job before answering "nothing".
    long_poll: Duration,
    submitted: Arc<Notify>,
    routing: Arc<std::sync::Mutex<Routing>>,
    /// The escrow paying for jobs, when the market runs on chain.
    escrow: Option<Escrow>,
    /// Registers models sent over HTTP, when enabled.
    registrar: Option<Arc<dyn ModelRegistrar>>,
}

impl Api {
    /// An API over `store`; `customers` maps API keys to customer names; `checker` verifies
    /// delivered proofs.
    pub fn new(
        store: Store,
        checker: Arc<dyn ProofChecker>,
        customers: HashMap<String, String>,
        lease: Duration,
        long_poll: Duration,
    ) -> Self {
        Api {
            store,
            checker,
            customers: Arc::new(customers),
            lease,
            long_poll,
            submitted: Arc::new(Notify::new()),
            routing: Arc::new(std::sync::Mutex::new(Routing::default())),
            escrow: None,
            registrar: None,
        }
    }

    /// Accepts model registrations (`POST /v1/models`) through `registrar`.
    pub fn with_registrar(mut self, registrar: Arc<dyn ModelRegistrar>) -> Self {
        self.registrar = Some(registrar);
        self
    }

    /// The longest a request may take (a claim's long-poll, plus slack); model registration,
    /// which compiles and runs keygen, is exempt.
    fn request_timeout(&self) -> Duration {
        self.long_poll + Duration::from_secs(30)
    }

    /// Requires every job to be paid through this escrow (checked at submission); the
    /// caller runs [`crate::chain::watch`] to settle them.
    pub fn with_escrow(mut self, escrow: Escrow) -> Self {
        self.escrow = Some(escrow);
        self
    }

    /// The router, with the body limit applied.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/openapi.json", get(crate::openapi::document))
            .route("/v1/jobs", post(submit))
            .route("/v1/jobs/{id}", get(job))
            .route("/v1/jobs/{id}/proof", get(proof).post(deliver))
            .route("/v1/jobs/{id}/start", post(start))
            .route("/v1/jobs/{id}/heartbeat", post(heartbeat))
            .route("/v1/jobs/{id}/fail", post(fail))
            .route("/v1/models", get(models).post(register_model).layer(DefaultBodyLimit::max(MAX_MODEL_BODY)))
            .route("/v1/models/{id}/artifact", get(artifact))
            .route("/v1/executors", get(executors))
            .route("/v1/executors/{name}/register", post(register))
            .route("/v1/executors/{name}/claim", post(claim))
            .route("/metrics", get(metrics))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(axum::middleware::from_fn_with_state(self.request_timeout(), with_timeout))
            .with_state(self)
    }

    fn customer(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).ok_or(Error::Unauthorized)?;
        Ok(self.customers.get(key).cloned().ok_or(Error::Unauthorized)?)
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }

    fn route<T>(&self, f: impl FnOnce(&mut Routing) -> T) -> Result<T, ApiError> {
        let mut r = self.routing.lock().map_err(|_| ApiError(Error::Internal("routing state poisoned".into())))?;
        Ok(f(&mut r))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An [`Error`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self.0 {
            Error::Database(_) | Error::Internal(_) | Error::ModelDir(_) => {
                eprintln!("coordinator: {}", self.0);
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        (self.0.status(), Json(json!({ "error": { "code": self.0.code(), "message": message } }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Answers 503 `timeout` when a request runs past `limit` (model registration excepted).
async fn with_timeout(State(limit): State<Duration>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::POST && req.uri().path() == "/v1/models" {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError(Error::Timeout { secs: limit.as_secs() }).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    model_id: String,
    /// The input values (flattened), for inputs that need no privacy from the coordinator.
    #[serde(default)]
    input: Option<Vec<f32>>,
    /// Sensitive inputs: executor address → hex HPKE ciphertext of the JSON input ([`crate::seal`]).
    #[serde(default)]
    sealed: Option<HashMap<String, String>>,
    /// The Poseidon commitment to the input (0x-hex); required for a sealed input.
    #[serde(default)]
    input_commitment: Option<String>,
    /// The escrow job paying for this job (required when the coordinator runs on chain).
    #[serde(default)]
    escrow_job: Option<u64>,
    /// Seconds until the job expires.
    deadline_s: u64,
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// The body, or a structured error (413 `body_too_large` over [`MAX_BODY`]).
fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        ApiError(if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge { limit: MAX_BODY }
        } else {
            Error::BadRequest(r.body_text())
        })
    })
}

fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    serde_json::from_slice(&body_bytes(body)?).map_err(|e| ApiError(Error::BadRequest(e.to_string())))
}

async fn submit(State(api): State<Api>, headers: HeaderMap, body: Body) -> ApiResult<impl IntoResponse> {
    let customer = api.customer(&headers)?;
    let b: SubmitBody = json_body(body)?;
    let expected = api.checker.input_len(&b.model_id).ok_or_else(|| Error::UnknownModel(b.model_id.clone()))?;
    let bad = |m: &str| ApiError(Error::BadRequest(m.to_string()));
    let (plain, sealed, commitment) = match (&b.input, &b.sealed) {
        (Some(values), None) => {
            if values.len() != expected {
                return Err(Error::InputLength { got: values.len(), expected }.into());
            }
            let c = api.checker.commitment(&b.model_id, values)?;
            if b.input_commitment.as_ref().is_some_and(|given| commitment_u256(given).ok() != commitment_u256(&c).ok()) {
                return Err(bad("input_commitment is not the commitment to input"));
            }
            (Some(serde_json::to_vec(values).map_err(|e| bad(&e.to_string()))?), Vec::new(), c)
        }
        (None, Some(by_executor)) => {
            let given = b.input_commitment.as_deref().ok_or_else(|| bad("a sealed input needs input_commitment"))?;
            let c = commitment_u256(given)?;
            let mut sealed = Vec::with_capacity(by_executor.len());
            for (executor, ct) in by_executor {
                let ct = hex::decode(ct.trim_start_matches("0x")).map_err(|_| bad("sealed ciphertexts must be hex"))?;
                sealed.push((executor.to_lowercase(), ct));
            }
            (None, sealed, format!("0x{}", hex::encode(c.to_be_bytes::<32>())))
        }
        _ => return Err(bad("send exactly one of input (plain) and sealed")),
    };
    check_escrow(&api, &b, &commitment, &sealed).await?;
    let now = now_ms();
    let deadline = now + (b.deadline_s.min(30 * 86_400) * 1000) as i64;
    let input = match &plain {
        Some(json) => JobInput::Plain { json, values: expected },
        None => JobInput::Sealed(&sealed),
    };
    let job = NewJob {
        model_id: &b.model_id,
        customer: &customer,
        input,
        input_commitment: Some(&commitment),
        escrow_job: b.escrow_job,
        deadline_ms: deadline,
    };
    let id = api.store.submit_job(&job, now).await?;
    api.submitted.notify_waiters();
    Ok((StatusCode::CREATED, Json(json!({ "job_id": id, "state": "queued", "input_commitment": commitment }))))
}

/// On chain, a job must name an open escrow job for its model and input, payable to every
/// executor its input is sealed to.
async fn check_escrow(api: &Api, b: &SubmitBody, commitment: &str, sealed: &[(String, Vec<u8>)]) -> Result<(), ApiError> {
    let Some(escrow) = &api.escrow else {
        if b.escrow_job.is_some() {
            return Err(Error::BadRequest("this coordinator is not connected to a chain: omit escrow_job".into()).into());
        }
        return Ok(());
    };
    let id = b
        .escrow_job
        .ok_or_else(|| Error::BadRequest("this coordinator settles on chain: open an escrow job and pass escrow_job".into()))?;
    let hash = api.checker.model_hash(&b.model_id).ok_or_else(|| Error::UnknownModel(b.model_id.clone()))?;
    let job = escrow.check_open(id, &hash, commitment_u256(commitment)?).await?;
    if job.restricted {
        for (executor, _) in sealed {
            let a = executor.parse().map_err(|_| Error::BadRequest(format!("`{executor}` is not an address")))?;
            if !escrow.allows(id, a).await? {
                return Err(Error::Escrow { job: id, reason: format!("executor {executor} is sealed to but not on its allow-list") }.into());
            }
        }
    }
    Ok(())
}

async fn job(State(api): State<Api>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    api.customer(&headers)?;
    Ok(Json(api.store.job(id).await?))
}

async fn proof(State(api): State<Api>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult<Response> {
    api.customer(&headers)?;
    match api.store.proof(id).await? {
        Some(p) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], p).into_response()),
        None => {
            let state = api.store.job(id).await?.state;
            Err(Error::BadTransition { job: id, state: state.as_str(), action: "download a proof" }.into())
        }
    }
}

/// The executor (its address) that signed this request, after checking the signature and
/// that its nonce is fresh (see [`crate::auth`]).
async fn signed(api: &Api, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).ok_or_else(|| ApiError(Error::BadSignature(format!("missing {k}"))));
    let (executor, nonce) =
        crate::auth::verify("POST", uri.path(), body, h(crate::auth::EXECUTOR)?, h(crate::auth::NONCE)?, h(crate::auth::SIGNATURE)?)?;
    api.store.accept_nonce(&executor, nonce).await?;
    Ok(executor)
}

async fn claim(State(api): State<Api>, Path(name): Path<String>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    if signed(&api, &uri, &headers, b"").await? != name.to_lowercase() {
        return Err(Error::BadSignature("the path names another executor".into()).into());
    }
    let name = name.to_lowercase();
    let deadline = tokio::time::Instant::now() + api.long_poll;
    let _waiting = Waiting::new(&api.routing, &name);
    loop {
        // Register interest before looking, so a submission between the two is not missed.
        let notified = api.submitted.notified();
        let lost = api.store.requeue_lapsed(now_ms()).await?;
        let queued = api.store.queued().await?;
        let (preferred, contended) = api.route(|r| {
            for executor in &lost {
                r.bandit().record(executor, Outcome { success: false, seconds: 0.0, price_fraction: 0.0 });
            }
            (r.prefers(&name), queued < r.waiting_count())
        })?;
        // Routing matters only when executors outnumber jobs: then the pick goes first.
        if !preferred && contended {
            tokio::time::sleep(ROUTE_GRACE).await;
        }
        if let Some(lease) = api.store.claim(&name, now_ms(), api.lease_ms()).await? {
            if preferred {
                api.route(|r| *r.picked.entry(name.clone()).or_default() += 1)?;
            }
            return Ok(Json(lease).into_response());
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

async fn start(State(api): State<Api>, uri: Uri, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    let executor = signed(&api, &uri, &headers, b"").await?;
    api.store.start_proving(id, &executor, now_ms(), api.lease_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn heartbeat(State(api): State<Api>, uri: Uri, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    let executor = signed(&api, &uri, &headers, b"").await?;
    api.store.heartbeat(id, &executor, now_ms(), api.lease_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliver(State(api): State<Api>, uri: Uri, headers: HeaderMap, Path(id): Path<i64>, body: Body) -> ApiResult<StatusCode> {
    let body = body_bytes(body)?;
    let executor = signed(&api, &uri, &headers, &body).await?;
    // Only the lease holder may deliver (checked again, atomically, when the job moves).
    api.store.ensure_holder(id, &executor, "deliver a proof").await?;
    let (model_id, commitment) = api.store.job_commitment(id).await?;
    let commitment = commitment.ok_or_else(|| Error::Internal(format!("job {id} has no input commitment")))?;
    // Verifying takes milliseconds of CPU: keep it off the async workers.
    let checker = api.checker.clone();
    let proof = body.clone();
    tokio::task::spawn_blocking(move || checker.check(&model_id, &commitment, &proof))
        .await
        .map_err(|e| ApiError(Error::Internal(format!("proof check task failed: {e}"))))??;
    api.store.complete(id, &executor, &body, now_ms()).await?;
    let seconds = api.store.assigned_at(id).await?.map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1e3);
    let price_fraction = price_fraction(&api, &executor).await?;
    api.route(|r| r.bandit().record(&executor, Outcome { success: true, seconds, price_fraction }))?;
    Ok(StatusCode::NO_CONTENT)
}

/// An executor's price as a fraction of the highest registered price (0 when unregistered):
/// the router's reward prefers cheaper executors at equal speed and reliability.
async fn price_fraction(api: &Api, executor: &str) -> Result<f64, ApiError> {
    let all = api.store.executors().await?;
    let price = |e: &ExecutorInfo| e.price_wei.parse::<f64>().unwrap_or(0.0);
    let max = all.iter().map(price).fold(0.0, f64::max);
    Ok(all.iter().find(|e| e.address == executor).map_or(0.0, |e| if max > 0.0 { price(e) / max } else { 0.0 }))
}

#[derive(Deserialize)]
struct FailBody {
    reason: String,
}

async fn fail(State(api): State<Api>, uri: Uri, headers: HeaderMap, Path(id): Path<i64>, body: Body) -> ApiResult<StatusCode> {
    let body = body_bytes(body)?;
    let executor = signed(&api, &uri, &headers, &body).await?;
    let b: FailBody = serde_json::from_slice(&body).map_err(|e| ApiError(Error::BadRequest(e.to_string())))?;
    api.store.fail(id, &executor, &b.reason.chars().take(500).collect::<String>(), now_ms()).await?;
    api.route(|r| r.bandit().record(&executor, Outcome { success: false, seconds: 0.0, price_fraction: 0.0 }))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn register(State(api): State<Api>, Path(name): Path<String>, uri: Uri, headers: HeaderMap, body: Body) -> ApiResult<StatusCode> {
    let body = body_bytes(body)?;
    let executor = signed(&api, &uri, &headers, &body).await?;
    if executor != name.to_lowercase() {
        return Err(Error::BadSignature("the path names another executor".into()).into());
    }
    let mut info: ExecutorInfo = serde_json::from_slice(&body).map_err(|e| ApiError(Error::BadRequest(e.to_string())))?;
    info.price_wei.parse::<alloy::primitives::U256>().map_err(|_| Error::BadRequest("price_wei is not a decimal number".into()))?;
    for m in &info.models {
        api.checker.input_len(m).ok_or_else(|| Error::UnknownModel(m.clone()))?;
    }
    info.address = executor;
    api.store.register_executor(&info, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn executors(State(api): State<Api>, headers: HeaderMap) -> ApiResult<impl IntoResponse> {
    api.customer(&headers)?;
    Ok(Json(api.store.executors().await?))
}

/// The registered models (public: executors list them to fetch new ones).
async fn models(State(api): State<Api>) -> ApiResult<impl IntoResponse> {
    let list: Vec<_> = api
        .store
        .models()
        .await?
        .into_iter()
        .map(|(id, input_len)| {
            let hash = api.checker.model_hash(&id).map(|h| format!("0x{}", hex::encode(h)));
            json!({ "id": id, "input_len": input_len, "model_hash": hash })
        })
        .collect();
    Ok(Json(list))
}

async fn metrics(State(api): State<Api>) -> ApiResult<impl IntoResponse> {
    let counts = api.store.counts().await?;
    let mut text = String::from("# HELP zkinfer_jobs Jobs by state.\n# TYPE zkinfer_jobs gauge\n");
    for s in ALL_STATES {
        let n = counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
        text.push_str(&format!("zkinfer_jobs{{state=\"{}\"}} {n}\n", s.as_str()));
    }
    let (proofs, seconds) = api.store.prove_seconds().await?;
    text.push_str(
        "# HELP zkinfer_prove_seconds Seconds from start of proving to a verified delivery.\n# TYPE zkinfer_prove_seconds summary\n",
    );
    text.push_str(&format!("zkinfer_prove_seconds_sum {seconds}\nzkinfer_prove_seconds_count {proofs}\n"));
    text.push_str("# HELP zkinfer_routing_picked_claims Jobs claimed by the executor the router picked.\n# TYPE zkinfer_routing_picked_claims counter\n");
    let mut picked: Vec<(String, u64)> = api.route(|r| r.picked.iter().map(|(k, v)| (k.clone(), *v)).collect())?;
    picked.sort();
    for (executor, n) in picked {
        text.push_str(&format!("zkinfer_routing_picked_claims{{executor=\"{executor}\"}} {n}\n"));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    id: String,
    /// The ONNX file, hex.
    onnx: String,
    #[serde(default)]
    calibration: Option<Vec<Vec<f32>>>,
}

async fn register_model(State(api): State<Api>, headers: HeaderMap, body: Body) -> ApiResult<impl IntoResponse> {
    api.customer(&headers)?;
    let registrar = api.registrar.clone().ok_or_else(|| {
        Error::BadRequest("this coordinator does not register models (start it with --models-dir and --srs or --dev-srs)".into())
    })?;
    let b: RegisterBody = json_body(body)?;
    let onnx = hex::decode(b.onnx.trim_start_matches("0x")).map_err(|_| Error::BadRequest("onnx must be hex".into()))?;
    let req = RegisterModel { id: b.id, onnx, calibration: b.calibration };
    // Compiling and keygen take seconds to minutes of CPU: off the async workers.
    let out = tokio::task::spawn_blocking(move || registrar.register(&req))
        .await
        .map_err(|e| ApiError(Error::Internal(format!("registration task failed: {e}"))))??;
    api.store.register_model(&out.model_id, out.input_len, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The compiled model (`model.zkm`, hex) with its registration: executors set it up with
/// their SRS and check that their verifying key is the coordinator's. Models are public.
async fn artifact(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let registrar = api.registrar.clone().ok_or_else(|| Error::UnknownModel(id.clone()))?;
    let (zkm, model) = tokio::task::spawn_blocking(move || registrar.artifact(&id))
        .await
        .map_err(|e| ApiError(Error::Internal(format!("artifact task failed: {e}"))))??;
    Ok(Json(json!({ "model": model, "model_zkm": hex::encode(zkm) })))
}
