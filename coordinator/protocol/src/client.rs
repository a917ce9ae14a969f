//! The one typed client of the coordinator's API: public calls on [`Client`], a customer half
//! ([`CustomerClient`], authenticated by API key) and an executor half ([`ExecutorClient`],
//! every request signed with the executor's key, see [`crate::auth`]).
//!
//! Every answer is decoded into the protocol's types; an error answer becomes
//! [`Error::Api`] with its stable [`crate::ErrorCode`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorBody, Result};
use crate::types::{
    AuditReport, AuditTask, ExecutorInfo, ExecutorRegistration, FailReport, JobView, Lease, MarketTerms, ModelArtifact, ModelSummary,
    RegisterModelRequest, RegisteredModel, ResultClaim, SubmitJob, Submitted,
};
use crate::{ErrorCode, ExecutorId, JobId, ModelId};

/// How long an ordinary request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a claim may take: the coordinator's long-poll plus slack.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a model registration may take (the coordinator compiles and runs keygen).
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often a refused nonce is re-signed with a fresh one before giving up.
const NONCE_RETRIES: usize = 3;

/// A request body and its content type.
struct Body {
    bytes: Vec<u8>,
    content_type: &'static str,
}

fn json_body<T: Serialize>(value: &T) -> Body {
    // Serializing the protocol's own types cannot fail (no maps with non-string keys).
    Body { bytes: serde_json::to_vec(value).unwrap_or_default(), content_type: "application/json" }
}

/// The coordinator at one base URL; its public calls.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the coordinator at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Url { url: base.to_string(), why: "it must start with http:// or https://" });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|_| Error::Url { url: base.to_string(), why: "no HTTP client can be built for it" })?;
        Ok(Client { http, base: base.to_string() })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The customer half, authenticated by `api_key`.
    pub fn customer(&self, api_key: &str) -> CustomerClient {
        CustomerClient { client: self.clone(), api_key: api_key.to_string() }
    }

    /// The executor half: every request signed with `key`.
    pub fn executor(&self, key: PrivateKeySigner) -> ExecutorClient {
        ExecutorClient { client: self.clone(), key, nonce: Arc::new(AtomicU64::new(0)) }
    }

    /// Sends a request; returns the status and the body, or the transport error.
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Body>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>)> {
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let mut req = self.http.request(m, format!("{}{path}", self.base)).timeout(timeout);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", b.content_type).body(b.bytes.clone());
        }
        let transport = |source| Error::Transport { method, path: path.to_string(), source };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }

    /// The body of a 2xx answer, or the structured error of any other.
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Body>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>)> {
        let (status, bytes) = self.send(method, path, headers, body, timeout).await?;
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Error::Api { method, path: path.to_string(), status, code: e.error.code, message: e.error.message },
            Err(_) => Error::Unexpected {
                method,
                path: path.to_string(),
                status,
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string(),
            },
        })
    }

    /// `GET /v1/models`: the models served.
    pub async fn models(&self) -> Result<Vec<ModelSummary>> {
        let (_, b) = self.call("GET", "/v1/models", &[], None, REQUEST_TIMEOUT).await?;
        decode("the model list", &b)
    }

    /// `GET /v1/models/{id}/artifact`: a registered model's compiled circuit.
    pub async fn model_artifact(&self, id: &ModelId) -> Result<ModelArtifact> {
        let (_, b) = self.call("GET", &format!("/v1/models/{id}/artifact"), &[], None, REQUEST_TIMEOUT).await?;
        decode("a model artifact", &b)
    }

    /// `GET /v1/terms`: what the coordinator accepts of a paid job.
    pub async fn terms(&self) -> Result<MarketTerms> {
        let (_, b) = self.call("GET", "/v1/terms", &[], None, REQUEST_TIMEOUT).await?;
        decode("the market terms", &b)
    }

    /// `GET /v1/openapi.json`: the API's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        let (_, b) = self.call("GET", "/v1/openapi.json", &[], None, REQUEST_TIMEOUT).await?;
        decode("the OpenAPI document", &b)
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        let (_, b) = self.call("GET", "/metrics", &[], None, REQUEST_TIMEOUT).await?;
        Ok(String::from_utf8_lossy(&b).to_string())
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Decode { what, source })
}

/// The customer half of the client.
#[derive(Clone, Debug)]
pub struct CustomerClient {
    client: Client,
    api_key: String,
}

impl CustomerClient {
    fn auth(&self) -> [(&'static str, String); 1] {
        [("x-api-key", self.api_key.clone())]
    }

    async fn get<T: DeserializeOwned>(&self, what: &'static str, path: &str) -> Result<T> {
        let (_, b) = self.client.call("GET", path, &self.auth(), None, REQUEST_TIMEOUT).await?;
        decode(what, &b)
    }

    /// The public calls.
    pub fn public(&self) -> &Client {
        &self.client
    }

    /// `POST /v1/jobs`.
    pub async fn submit(&self, job: &SubmitJob) -> Result<Submitted> {
        let (_, b) = self.client.call("POST", "/v1/jobs", &self.auth(), Some(&json_body(job)), REQUEST_TIMEOUT).await?;
        decode("the submission's answer", &b)
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: JobId) -> Result<JobView> {
        self.get("a job", &format!("/v1/jobs/{id}")).await
    }

    /// `GET /v1/jobs/{id}/proof`: the proof file's bytes.
    pub async fn proof(&self, id: JobId) -> Result<Vec<u8>> {
        Ok(self.client.call("GET", &format!("/v1/jobs/{id}/proof"), &self.auth(), None, REQUEST_TIMEOUT).await?.1)
    }

    /// `GET /v1/executors`.
    pub async fn executors(&self) -> Result<Vec<ExecutorInfo>> {
        self.get("the executor list", "/v1/executors").await
    }

    /// `POST /v1/models`: compiles and sets up a model (minutes for a large one).
    pub async fn register_model(&self, req: &RegisterModelRequest) -> Result<RegisteredModel> {
        let (_, b) = self.client.call("POST", "/v1/models", &self.auth(), Some(&json_body(req)), REGISTER_TIMEOUT).await?;
        decode("the registered model", &b)
    }

    /// Polls the job every `every` until `done` holds for it (returns it), or `timeout` passes.
    pub async fn wait_until(
        &self,
        id: JobId,
        wanted: &str,
        timeout: Duration,
        every: Duration,
        done: impl Fn(&JobView) -> bool,
    ) -> Result<JobView> {
        let start = Instant::now();
        loop {
            let job = self.job(id).await?;
            if done(&job) {
                return Ok(job);
            }
            if start.elapsed() >= timeout {
                return Err(Error::WaitTimeout { job: id, wanted: wanted.to_string(), state: job.state, secs: timeout.as_secs() });
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The executor half of the client: signs every request.
#[derive(Clone, Debug)]
pub struct ExecutorClient {
    client: Client,
    key: PrivateKeySigner,
    /// The last nonce used: nonces are milliseconds, bumped to stay strictly increasing.
    nonce: Arc<AtomicU64>,
}

impl ExecutorClient {
    /// This executor.
    pub fn id(&self) -> ExecutorId {
        ExecutorId(self.key.address())
    }

    /// The public calls.
    pub fn public(&self) -> &Client {
        &self.client
    }

    fn next_nonce(&self) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut last = self.nonce.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.nonce.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// A signed POST. A request refused as replayed (another request of this executor, sent
    /// at the same time, used a higher nonce first) did nothing at the coordinator, so it is
    /// signed again with a fresh nonce and resent.
    async fn post(&self, path: &str, body: Body, timeout: Duration) -> Result<(u16, Vec<u8>)> {
        let mut tries = 0;
        loop {
            let headers = crate::auth::sign(&self.key, "POST", path, &body.bytes, self.next_nonce())?;
            match self.client.call("POST", path, &headers, Some(&body), timeout).await {
                Err(e) if e.code() == Some(ErrorCode::ReplayedRequest) && tries < NONCE_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// `POST /v1/executors/{me}/register`.
    pub async fn register(&self, registration: &ExecutorRegistration) -> Result<()> {
        self.post(&format!("/v1/executors/{}/register", self.id()), json_body(registration), REQUEST_TIMEOUT).await.map(|_| ())
    }

    /// `POST /v1/executors/{me}/claim`: long-polls for a job; `None` when the poll ended empty.
    pub async fn claim(&self) -> Result<Option<Lease>> {
        let empty = Body { bytes: Vec::new(), content_type: "application/json" };
        let (status, b) = self.post(&format!("/v1/executors/{}/claim", self.id()), empty, CLAIM_TIMEOUT).await?;
        if status == 204 {
            return Ok(None);
        }
        decode("a lease", &b).map(Some)
    }

    async fn job_call(&self, id: JobId, what: &str, body: Body) -> Result<()> {
        self.post(&format!("/v1/jobs/{id}/{what}"), body, REQUEST_TIMEOUT).await.map(|_| ())
    }

    /// `POST /v1/jobs/{id}/start`: starts proving a leased job.
    pub async fn start(&self, id: JobId) -> Result<()> {
        self.job_call(id, "start", Body { bytes: Vec::new(), content_type: "application/json" }).await
    }

    /// `POST /v1/jobs/{id}/heartbeat`: renews the lease.
    pub async fn heartbeat(&self, id: JobId) -> Result<()> {
        self.job_call(id, "heartbeat", Body { bytes: Vec::new(), content_type: "application/json" }).await
    }

    /// `POST /v1/jobs/{id}/proof`: delivers the proof file.
    pub async fn deliver(&self, id: JobId, proof: &[u8]) -> Result<()> {
        self.job_call(id, "proof", Body { bytes: proof.to_vec(), content_type: "application/octet-stream" }).await
    }

    /// `POST /v1/jobs/{id}/fail`: gives up a job that cannot be proved.
    pub async fn fail(&self, id: JobId, reason: &str) -> Result<()> {
        self.job_call(id, "fail", json_body(&FailReport { reason: reason.to_string() })).await
    }

    /// `POST /v1/jobs/{id}/result`: claims an optimistic job's result (posted on chain first).
    pub async fn post_result(&self, id: JobId, claim: &ResultClaim) -> Result<()> {
        self.job_call(id, "result", json_body(claim)).await
    }

    /// `POST /v1/executors/{me}/audits`: the sampled jobs this validator is asked to re-execute.
    pub async fn audits(&self) -> Result<Vec<AuditTask>> {
        let empty = Body { bytes: Vec::new(), content_type: "application/json" };
        let (_, b) = self.post(&format!("/v1/executors/{}/audits", self.id()), empty, REQUEST_TIMEOUT).await?;
        decode("the audit tasks", &b)
    }

    /// `POST /v1/jobs/{id}/audit`: reports a re-execution's finding.
    pub async fn report_audit(&self, id: JobId, report: &AuditReport) -> Result<()> {
        self.job_call(id, "audit", json_body(report)).await
    }
}
