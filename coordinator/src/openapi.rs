//! The OpenAPI document the coordinator serves at `/v1/openapi.json`.

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// Every stable error code a client can get.
pub const ERROR_CODES: [&str; 15] = [
    "unknown_model",
    "unknown_job",
    "input_length",
    "bad_state",
    "not_lease_holder",
    "invalid_proof",
    "bad_signature",
    "replayed_request",
    "unauthorized",
    "bad_request",
    "body_too_large",
    "escrow_mismatch",
    "chain_unavailable",
    "timeout",
    "internal",
];

fn op(summary: &str, auth: &str, ok: &str) -> Value {
    json!({ "summary": summary, "description": format!("Authentication: {auth}."), "responses": {
        "2XX": { "description": ok },
        "4XX": { "description": "A structured error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
    } })
}

const CUSTOMER: &str = "header x-api-key";
const EXECUTOR: &str =
    "EIP-191 signature by the executor's key over method, path, body hash and nonce (headers x-executor, x-nonce, x-signature)";

/// `GET /v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    Json(json!({
        "openapi": "3.0.3",
        "info": { "title": "zkinfer coordinator", "version": "0.1.0",
                  "description": "The proving market: customers submit jobs (plain or HPKE-sealed inputs, paid through the on-chain escrow); executors claim, prove and deliver; jobs settle when the escrow's payment event is seen." },
        "paths": {
            "/v1/models": {
                "get": op("Registered models: id, input_len, model_hash", "none", "a list"),
                "post": op("Register an ONNX model: {id, onnx (hex), calibration?: [[number]]}; compiles it, runs keygen, and returns {model_id, model_hash, vk_hash, k}", CUSTOMER, "the registered model")
            },
            "/v1/models/{id}/artifact": { "get": op("A registered model's compiled circuit (model.zkm, hex) and registration, for executors to set up with the same SRS (they check the vk hash)", "none (models are public)", "JSON {model, model_zkm}") },
            "/v1/jobs": { "post": op("Submit a job: {model_id, deadline_s, input: [number] | sealed: {executor address: hex HPKE ciphertext}, input_commitment (required when sealed), escrow_job (required when the coordinator runs on chain)}", CUSTOMER, "201 {job_id, state, input_commitment}") },
            "/v1/jobs/{id}": { "get": op("A job: state, executor, attempts, lifecycle events with times, escrow job, input commitment, on-chain payment, failure reason", CUSTOMER, "the job") },
            "/v1/jobs/{id}/proof": {
                "get": op("Download the proof file once proved", CUSTOMER, "application/octet-stream"),
                "post": op("Deliver a proof (lease holder); verified against the model's keys and the job's input commitment, else 422 invalid_proof", EXECUTOR, "204")
            },
            "/v1/jobs/{id}/start": { "post": op("Start proving a leased job", EXECUTOR, "204") },
            "/v1/jobs/{id}/heartbeat": { "post": op("Renew the lease", EXECUTOR, "204") },
            "/v1/jobs/{id}/fail": { "post": op("Give up a job that cannot be proved: {reason}", EXECUTOR, "204") },
            "/v1/executors": { "get": op("Registered executors: address, HPKE public key, price, GPU, models", CUSTOMER, "a list") },
            "/v1/executors/{address}/register": { "post": op("Register or update: {hpke_public_key (hex), price_wei (decimal), gpu, models}", EXECUTOR, "204") },
            "/v1/executors/{address}/claim": { "post": op("Long-poll for a job it can prove: 200 with a lease {job, model_id, input, sealed, input_commitment, escrow_job, until_ms}, or 204", EXECUTOR, "200 or 204") },
            "/metrics": { "get": op("Prometheus metrics: jobs by state, prove seconds, routing choices", "none", "text/plain") }
        },
        "components": { "schemas": { "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
            "code": { "type": "string", "enum": ERROR_CODES },
            "message": { "type": "string" } } } } } } }
    }))
}
