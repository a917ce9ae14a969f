//! The HTTP API in process: authentication, structured 4xx errors, the body limit, a job's
//! whole path through the API, and the metrics.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use zkinfer_coordinator::api::{Api, MAX_BODY};
use zkinfer_coordinator::check::ProofChecker;
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::{Error, Result};

/// A test double for the proof check (the real one, against a model's keys, is exercised by
/// the CLI's market test): model `mlp` takes 4 values and only the bytes `proof` verify.
struct Fake;

impl ProofChecker for Fake {
    fn input_len(&self, model_id: &str) -> Option<usize> {
        (model_id == "mlp").then_some(4)
    }

    fn check(&self, _model: &str, _input: &[u8], proof: &[u8]) -> Result<()> {
        if proof == b"proof" {
            Ok(())
        } else {
            Err(Error::InvalidProof("not the expected bytes".into()))
        }
    }
}

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("c.db").display())).await.unwrap();
    store.register_model("mlp", 4, 0).await.unwrap();
    let keys = HashMap::from([("key-alice".to_string(), "alice".to_string())]);
    (Api::new(store, std::sync::Arc::new(Fake), keys, Duration::from_secs(30), Duration::from_millis(50)).router(), dir)
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

fn job(model: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({ "model_id": model, "input": vec![0.5f32; n], "deadline_s": 600 })).unwrap()
}

#[tokio::test]
async fn bad_requests_get_stable_4xx_codes() {
    let (app, _d) = app().await;
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
    // Nothing queued: the long-poll answers 204 after its wait.
    assert_eq!(call(&app, "POST", "/v1/executors/exec-a/claim", &[], vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, b) = call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = serde_json::from_slice::<Value>(&b).unwrap()["job_id"].as_i64().unwrap();
    let (s, b) = call(&app, "POST", "/v1/executors/exec-a/claim", &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["job"], id);
    let exec_a = ("x-executor", "exec-a");
    // The proof is not there yet; another executor may not deliver one.
    let (s, b) = call(&app, "GET", &format!("/v1/jobs/{id}/proof"), &[ALICE], vec![]).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "bad_state".to_string()));
    assert_eq!(call(&app, "POST", &format!("/v1/jobs/{id}/start"), &[exec_a], vec![]).await.0, StatusCode::NO_CONTENT);
    let (s, b) = call(&app, "POST", &format!("/v1/jobs/{id}/proof"), &[("x-executor", "exec-b")], b"forged".to_vec()).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "not_lease_holder".to_string()));
    assert_eq!(call(&app, "POST", &format!("/v1/jobs/{id}/heartbeat"), &[exec_a], vec![]).await.0, StatusCode::NO_CONTENT);
    // A proof that does not verify is refused and the job stays with its executor.
    let (s, b) = call(&app, "POST", &format!("/v1/jobs/{id}/proof"), &[exec_a], b"garbage".to_vec()).await;
    assert_eq!((s, code(&b)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof".to_string()));
    assert_eq!(call(&app, "POST", &format!("/v1/jobs/{id}/proof"), &[exec_a], b"proof".to_vec()).await.0, StatusCode::NO_CONTENT);
    let (s, b) = call(&app, "GET", &format!("/v1/jobs/{id}"), &[ALICE], vec![]).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("proved")));
    let states: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "assigned", "proving", "proved"]);
    assert_eq!(call(&app, "GET", &format!("/v1/jobs/{id}/proof"), &[ALICE], vec![]).await, (StatusCode::OK, b"proof".to_vec()));
    let (_, m) = call(&app, "GET", "/metrics", &[], vec![]).await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("zkinfer_jobs{state=\"proved\"} 1") && m.contains("zkinfer_jobs{state=\"queued\"} 0"), "{m}");
    let (s, b) = call(&app, "GET", "/v1/openapi.json", &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["paths"]["/v1/jobs"].is_object());
}

#[tokio::test]
async fn a_waiting_claim_wakes_up_when_a_job_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("c.db").display())).await.unwrap();
    store.register_model("mlp", 4, 0).await.unwrap();
    let keys = HashMap::from([("key-alice".to_string(), "alice".to_string())]);
    let app = Api::new(store, std::sync::Arc::new(Fake), keys, Duration::from_secs(30), Duration::from_secs(20)).router();
    let waiting = tokio::spawn({
        let app = app.clone();
        async move { call(&app, "POST", "/v1/executors/exec-a/claim", &[], vec![]).await }
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
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("c.db").display())).await.unwrap();
    store.register_model("mlp", 4, 0).await.unwrap();
    let keys = HashMap::from([("key-alice".to_string(), "alice".to_string())]);
    let app = Api::new(store, std::sync::Arc::new(Fake), keys, Duration::from_millis(300), Duration::from_secs(2)).router();
    let deliver = |who: &'static str, id: i64| {
        let app = app.clone();
        async move {
            for path in ["start", "proof"] {
                let body = if path == "proof" { b"proof".to_vec() } else { vec![] };
                let (s, b) = call(&app, "POST", &format!("/v1/jobs/{id}/{path}"), &[("x-executor", who)], body).await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{who} {path}: {}", String::from_utf8_lossy(&b));
            }
        }
    };
    let claim = |who: &'static str| {
        let app = app.clone();
        async move {
            let (s, b) = call(&app, "POST", &format!("/v1/executors/{who}/claim"), &[], vec![]).await;
            (s, serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["job"].as_i64()))
        }
    };
    // History: exec-a delivers job 1; exec-b lets job 2's lease lapse, and exec-a delivers it.
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(claim("exec-a").await, (StatusCode::OK, Some(1)));
    deliver("exec-a", 1).await;
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(claim("exec-b").await, (StatusCode::OK, Some(2)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(claim("exec-a").await, (StatusCode::OK, Some(2)));
    deliver("exec-a", 2).await;
    // Both wait; a new job goes to exec-a, the reliable one. exec-b's long-poll ends empty.
    let (a, b) = (tokio::spawn(claim("exec-a")), tokio::spawn(claim("exec-b")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(call(&app, "POST", "/v1/jobs", &[ALICE], job("mlp", 4)).await.0, StatusCode::CREATED);
    assert_eq!(a.await.unwrap(), (StatusCode::OK, Some(3)));
    assert_eq!(b.await.unwrap(), (StatusCode::NO_CONTENT, None));
    let (_, m) = call(&app, "GET", "/metrics", &[], vec![]).await;
    assert!(String::from_utf8(m).unwrap().contains("zkinfer_routing_picked_claims{executor=\"exec-a\"}"));
}
