//! The HTTP API in process: authentication, structured 4xx errors, the body limit, a job's
//! whole path through the API, and the metrics.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use zkinfer_coordinator::check::{ExpectedProof, ProofChecker};
use zkinfer_coordinator::routes::{AppState, MAX_BODY};
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::{Error, Result};
use zkinfer_protocol::auth::sign;
use zkinfer_protocol::seal::{seal, SealContext, SealKey};
use zkinfer_protocol::{Commitment, ExecutorId, HexBytes, ModelId, Salt};

/// A test double for the proof check (the real one, against a model's keys, is exercised by
/// the CLI's market test): model `mlp` takes 4 values and only the bytes `proof` verify.
struct Fake;

impl ProofChecker for Fake {
    fn input_len(&self, model_id: &ModelId) -> Option<usize> {
        (model_id.as_str() == "mlp").then_some(4)
    }

    fn commitment(&self, _model: &ModelId, _input: &[f32], _salt: Salt) -> Result<Commitment> {
        Ok("0x01".parse().unwrap())
    }

    fn check(&self, _model: &ModelId, _expect: &ExpectedProof, proof: &[u8]) -> Result<()> {
        if proof == b"proof" {
            Ok(())
        } else {
            Err(Error::InvalidProof(zkinfer_prover::Error::InvalidProof("not the expected bytes".into())))
        }
    }
}

async fn app() -> (axum::Router, tempfile::TempDir) {
    app_with(Duration::from_secs(30), Duration::from_millis(50)).await
}

/// An API on a fresh SQLite file with model `mlp` and customer alice, with this lease and long-poll.
async fn app_with(lease: Duration, long_poll: Duration) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("c.db").display())).await.unwrap();
    store.register_model(&ModelId::new("mlp").unwrap(), 4, 0).await.unwrap();
    let keys = HashMap::from([("key-alice".to_string(), "alice".to_string())]);
    (zkinfer_coordinator::routes::app(AppState::new(store, std::sync::Arc::new(Fake), keys, lease, long_poll)), dir)
}

async fn call(app: &axum::Router, method: &str, uri: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or("<not a structured error>").to_string()
}

const ALICE: (&str, &str) = ("x-api-key", "key-alice");

/// A test executor key, deterministic.
fn key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap()
}

fn addr(k: &PrivateKeySigner) -> String {
    ExecutorId(k.address()).to_string()
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A POST signed by executor `k` with a fresh nonce.
async fn exec(app: &axum::Router, k: &PrivateKeySigner, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let h = sign(k, "POST", path, &body, nonce).unwrap();
    let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(app, "POST", path, &headers, body).await
}

fn job(model: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({ "model_id": model, "input": vec![0.5f32; n], "deadline_s": 600 })).unwrap()
}

#[tokio::test]
async fn bad_requests_get_stable_4xx_codes() {
    let (app, _d) = app().await;
    #[allow(clippy::type_complexity)]
    let cases: [(&[(&str, &str)], Vec<u8>, StatusCode, &str); 6] = [
        (&[], job("mlp", 4), StatusCode::UNAUTHORIZED, "unauthorized"),
        (&[("x-api-key", "stolen")], job("mlp", 4), StatusCode::UNAUTHORIZED, "unauthorized"),
        (&[ALICE], job("resnet", 4), StatusCode::NOT_FOUND, "unknown_model"),
        (&[ALICE], job("mlp", 3), StatusCode::BAD_REQUEST, "input_length"),
        (&[ALICE], b"{not json".to_vec(), StatusCode::BAD_REQUEST, "bad_request"),
        (&[ALICE], vec![b' '; MAX_BODY + 1], StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
    ];
    for (headers, body, status, expected) in cases {
        let (s, b) = call(&app, "POST", "/v1/jobs", headers, body).await;
        assert_eq!((s, code(&b)), (status, expected.to_string()));
    }
    let (s, b) = call(&app, "GET", "/v1/jobs/99", &[ALICE], vec![]).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "unknown_job".to_string()));
}

#[tokio::test]
async fn a_job_through_the_api_and_the_metrics() {
    let (app, _d) = app().await;
    let (a, b) = (key(1), key(2));
    let claim_a = format!("/v1/executors/{}/claim", addr(&a));
    // Nothing queued: the long-poll answers 204 after its wait.
    assert_eq!(exec(&app, &a, &claim_a, vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, body) = call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = serde_json::from_slice::<Value>(&body).unwrap()["job_id"].as_i64().unwrap();
    let (s, body) = exec(&app, &a, &claim_a, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["job"], id);
    // The proof is not there yet; another executor may not deliver one.
    let (s, body) = call(&app, "GET", &format!("/v1/jobs/{id}/proof"), &[ALICE], vec![]).await;
    assert_eq!((s, code(&body)), (StatusCode::CONFLICT, "bad_state".to_string()));
    assert_eq!(exec(&app, &a, &format!("/v1/jobs/{id}/start"), vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, body) = exec(&app, &b, &format!("/v1/jobs/{id}/proof"), b"proof".to_vec()).await;
    assert_eq!((s, code(&body)), (StatusCode::CONFLICT, "not_lease_holder".to_string()));
    assert_eq!(exec(&app, &a, &format!("/v1/jobs/{id}/heartbeat"), vec![]).await.0, StatusCode::NO_CONTENT);
    // A proof that does not verify is refused and the job stays with its executor.
    let (s, body) = exec(&app, &a, &format!("/v1/jobs/{id}/proof"), b"garbage".to_vec()).await;
    assert_eq!((s, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof".to_string()));
    assert_eq!(exec(&app, &a, &format!("/v1/jobs/{id}/proof"), b"proof".to_vec()).await.0, StatusCode::NO_CONTENT);
    let (s, body) = call(&app, "GET", &format!("/v1/jobs/{id}"), &[ALICE], vec![]).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, v["state"].as_str(), v["executor"].as_str()), (StatusCode::OK, Some("proved"), Some(addr(&a).as_str())));
    let states: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "assigned", "proving", "proved"]);
    assert_eq!(call(&app, "GET", &format!("/v1/jobs/{id}/proof"), &[ALICE], vec![]).await, (StatusCode::OK, b"proof".to_vec()));
    let (_, m) = call(&app, "GET", "/metrics", &[], vec![]).await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("zkinfer_jobs{state=\"proved\"} 1") && m.contains("zkinfer_jobs{state=\"queued\"} 0"), "{m}");
    assert!(m.contains("zkinfer_prove_seconds_count 1"), "{m}");
    let (s, body) = call(&app, "GET", "/v1/openapi.json", &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["paths"]["/v1/jobs"].is_object());
}

#[tokio::test]
async fn executor_requests_need_a_valid_fresh_signature() {
    let (app, _d) = app().await;
    let (a, b) = (key(1), key(2));
    let claim_a = format!("/v1/executors/{}/claim", addr(&a));
    // No signature at all.
    let (s, body) = call(&app, "POST", &claim_a, &[], vec![]).await;
    assert_eq!((s, code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature".to_string()));
    // Signed by b but claiming to be a; and b claiming a's queue with its own signature.
    let mut h = sign(&b, "POST", &claim_a, b"", 1_000_000).unwrap();
    h[0].1 = addr(&a);
    let forged: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, body) = call(&app, "POST", &claim_a, &forged, vec![]).await;
    assert_eq!((s, code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature".to_string()));
    let (s, body) = exec(&app, &b, &claim_a, vec![]).await;
    assert_eq!((s, code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature".to_string()));
    // A signed body cannot be swapped for another.
    let h = sign(&a, "POST", "/v1/jobs/1/proof", b"proof", 2_000_000).unwrap();
    let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, body) = call(&app, "POST", "/v1/jobs/1/proof", &hs, b"other".to_vec()).await;
    assert_eq!((s, code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature".to_string()));
    // A captured valid request is answered once; the replay is refused.
    let h = sign(&a, "POST", &claim_a, b"", 3_000_000).unwrap();
    let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(call(&app, "POST", &claim_a, &hs, vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, body) = call(&app, "POST", &claim_a, &hs, vec![]).await;
    assert_eq!((s, code(&body)), (StatusCode::CONFLICT, "replayed_request".to_string()));
}

#[tokio::test]
async fn a_waiting_claim_wakes_up_when_a_job_arrives() {
    let (app, _dir) = app_with(Duration::from_secs(30), Duration::from_secs(20)).await;
    let waiting = tokio::spawn({
        let app = app.clone();
        async move { exec(&app, &key(1), &format!("/v1/executors/{}/claim", addr(&key(1))), vec![]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    let (s, _) = waiting.await.unwrap();
    assert_eq!(s, StatusCode::OK);
    // Woken by the submission, not by the 20 s long-poll timeout.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_router_prefers_the_executor_that_delivered_over_one_whose_lease_lapsed() {
    let (app, _dir) = app_with(Duration::from_millis(300), Duration::from_secs(2)).await;
    let deliver = |who: u8, id: i64| {
        let app = app.clone();
        async move {
            for path in ["start", "proof"] {
                let body = if path == "proof" { b"proof".to_vec() } else { vec![] };
                let (s, b) = exec(&app, &key(who), &format!("/v1/jobs/{id}/{path}"), body).await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{who} {path}: {}", String::from_utf8_lossy(&b));
            }
        }
    };
    let claim = |who: u8| {
        let app = app.clone();
        async move {
            let (s, b) = exec(&app, &key(who), &format!("/v1/executors/{}/claim", addr(&key(who))), vec![]).await;
            (s, serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["job"].as_i64()))
        }
    };
    let (exec_a, exec_b) = (1u8, 2u8);
    // History: exec-a delivers job 1; exec-b lets job 2's lease lapse, and exec-a delivers it.
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(claim(exec_a).await, (StatusCode::OK, Some(1)));
    deliver(exec_a, 1).await;
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(claim(exec_b).await, (StatusCode::OK, Some(2)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(claim(exec_a).await, (StatusCode::OK, Some(2)));
    deliver(exec_a, 2).await;
    // Both wait; a new job goes to exec-a, the reliable one. exec-b's long-poll ends empty.
    let (a, b) = (tokio::spawn(claim(exec_a)), tokio::spawn(claim(exec_b)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(a.await.unwrap(), (StatusCode::OK, Some(3)));
    assert_eq!(b.await.unwrap(), (StatusCode::NO_CONTENT, None));
    let (_, m) = call(&app, "GET", "/metrics", &[], vec![]).await;
    assert!(String::from_utf8(m).unwrap().contains(&format!("zkinfer_routing_picked_claims{{executor=\"{}\"}}", addr(&key(exec_a)))));
}

#[tokio::test]
async fn a_sealed_job_goes_only_to_an_executor_it_was_sealed_to_and_can_be_failed_with_a_reason() {
    let (app, _d) = app().await;
    let (a, b) = (key(1), key(2));
    let seal_a = SealKey::derive(&[1; 32]);
    let signed_key = hex::encode(zkinfer_protocol::seal::sign_hpke_key(&a, &seal_a.public_bytes()).unwrap());
    let info = |models: &[&str]| {
        serde_json::to_vec(&json!({
            "hpke_public_key": hex::encode(seal_a.public_bytes()),
            "hpke_key_signature": signed_key,
            "price_wei": "5",
            "gpu": false,
            "models": models
        }))
        .unwrap()
    };
    let register = |k: &PrivateKeySigner| format!("/v1/executors/{}/register", addr(k));
    let (s, body) = exec(&app, &a, &register(&a), info(&["resnet"])).await;
    assert_eq!((s, code(&body)), (StatusCode::NOT_FOUND, "unknown_model".to_string()));
    let (s, body) = exec(&app, &b, &register(&a), info(&["mlp"])).await;
    assert_eq!((s, code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature".to_string()));
    assert_eq!(exec(&app, &a, &register(&a), info(&["mlp"])).await.0, StatusCode::NO_CONTENT);
    let (s, body) = call(&app, "GET", "/v1/executors", &[ALICE], vec![]).await;
    let listed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, listed[0]["address"].as_str(), listed[0]["models"].clone()), (StatusCode::OK, Some(addr(&a).as_str()), json!(["mlp"])));

    let mlp = ModelId::new("mlp").unwrap();
    let ctx = SealContext { model_id: &mlp, input_commitment: "0x2a".parse().unwrap(), escrow: None };
    let sealed = seal(&seal_a.public_bytes(), &ctx, b"[0.5,0.5,0.5,0.5]").unwrap();
    let body = |extra: Value| {
        let mut j = json!({ "model_id": "mlp", "deadline_s": 600 });
        j.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::to_vec(&j).unwrap()
    };
    let to_a = json!({ addr(&a): hex::encode(&sealed) });
    for bad in [
        json!({ "sealed": to_a }),                                                           // no commitment
        json!({ "sealed": to_a, "input": [0.5, 0.5, 0.5, 0.5], "input_commitment": "0x1" }), // both
        json!({ "input": [0.5, 0.5, 0.5, 0.5], "escrow_job": 1 }),                           // no chain here
        json!({ "sealed": { addr(&a): "not hex" }, "input_commitment": "0x1" }),
    ] {
        let (s, resp) = call(&app, "POST", "/v1/jobs", &[ALICE], body(bad.clone())).await;
        assert_eq!((s, code(&resp)), (StatusCode::BAD_REQUEST, "bad_request".to_string()), "{bad}");
    }
    let (s, resp) = call(&app, "POST", "/v1/jobs", &[ALICE], body(json!({ "sealed": to_a, "input_commitment": "0x2a" }))).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&resp));
    let id = serde_json::from_slice::<Value>(&resp).unwrap()["job_id"].as_i64().unwrap();
    // b has no ciphertext for it: nothing to claim.
    assert_eq!(exec(&app, &b, &format!("/v1/executors/{}/claim", addr(&b)), vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, lease) = exec(&app, &a, &format!("/v1/executors/{}/claim", addr(&a)), vec![]).await;
    let lease: Value = serde_json::from_slice(&lease).unwrap();
    assert_eq!((s, lease["job"].as_i64(), lease["sealed"].as_bool()), (StatusCode::OK, Some(id), Some(true)));
    let input: HexBytes = serde_json::from_value(lease["input"].clone()).unwrap();
    assert_eq!(input.0, sealed, "the executor gets its ciphertext, as sent");
    assert_eq!(seal_a.open(&ctx, &input.0).unwrap(), b"[0.5,0.5,0.5,0.5]");
    assert_eq!(lease["input_commitment"], format!("0x{:064x}", 0x2a));

    assert_eq!(exec(&app, &a, &format!("/v1/jobs/{id}/start"), vec![]).await.0, StatusCode::NO_CONTENT);
    let reason = serde_json::to_vec(&json!({ "reason": "input has 3 values, the model takes 4" })).unwrap();
    let (s, body) = exec(&app, &b, &format!("/v1/jobs/{id}/fail"), reason.clone()).await;
    assert_eq!((s, code(&body)), (StatusCode::CONFLICT, "not_lease_holder".to_string()));
    assert_eq!(exec(&app, &a, &format!("/v1/jobs/{id}/fail"), reason).await.0, StatusCode::NO_CONTENT);
    let (_, body) = call(&app, "GET", &format!("/v1/jobs/{id}"), &[ALICE], vec![]).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((v["state"].as_str(), v["failure"].as_str()), (Some("failed"), Some("input has 3 values, the model takes 4")));
}
