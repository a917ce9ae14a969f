//! The coordinator's HTTP API with fuzzed request bodies: a customer's (API key) and an
//! executor's (signed by the harness, so that the body gets past authentication to the
//! parsers and handlers). The first byte picks the endpoint and the job. No body may get a
//! 5xx answer or crash the service. The proof check is a stand-in (the proof_envelope target
//! fuzzes the real one).

#![no_main]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use zkinfer_coordinator::check::{ExpectedProof, ProofChecker};
use zkinfer_coordinator::routes::{AppState, MAX_BODY};
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::{Error, Result};
use zkinfer_protocol::auth::sign;
use zkinfer_protocol::{Commitment, ExecutorId, ModelId, Salt};

/// Model `m` takes 4 values; only the bytes `proof` verify.
struct Stub;

impl ProofChecker for Stub {
    fn input_len(&self, model_id: &ModelId) -> Option<usize> {
        (model_id.as_str() == "m").then_some(4)
    }

    fn commitment(&self, _model: &ModelId, _input: &[f32], _salt: Salt) -> Result<Commitment> {
        "0x01".parse().map_err(|_| Error::BadRequest("commitment".into()))
    }

    fn check(&self, _model: &ModelId, _expect: &ExpectedProof, proof: &[u8]) -> Result<()> {
        if proof == b"proof" {
            Ok(())
        } else {
            Err(Error::InvalidProof(zkinfer_prover::Error::InvalidProof("not the expected bytes".into())))
        }
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    key: PrivateKeySigner,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let app = rt.block_on(async {
            let store = Store::open(&format!("sqlite:{}", dir.join("c.db").display())).await.expect("opens the store");
            store.register_model(&ModelId::new("m").expect("an id"), 4, 0).await.expect("registers");
            let keys = HashMap::from([("key-c".to_string(), "c".to_string())]);
            zkinfer_coordinator::routes::app(AppState::new(store, Arc::new(Stub), keys, Duration::from_secs(30), Duration::ZERO))
        });
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("a key");
        Harness { rt, app, key }
    })
}

static NONCE: AtomicU64 = AtomicU64::new(1);

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    if body.len() > MAX_BODY {
        return;
    }
    let h = harness();
    let me = ExecutorId(h.key.address()).to_string();
    let job = 1 + (which >> 4) % 4;
    let (path, signed) = match which % 12 {
        0 | 1 => ("/v1/jobs".to_string(), false),
        2 => (format!("/v1/jobs/{job}/start"), true),
        3 => (format!("/v1/jobs/{job}/heartbeat"), true),
        4 => (format!("/v1/jobs/{job}/proof"), true),
        5 => (format!("/v1/jobs/{job}/fail"), true),
        6 => (format!("/v1/jobs/{job}/result"), true),
        7 => (format!("/v1/jobs/{job}/audit"), true),
        8 => (format!("/v1/executors/{me}/register"), true),
        9 => (format!("/v1/executors/{me}/claim"), true),
        10 => (format!("/v1/executors/{me}/audits"), true),
        _ => ("/v1/models".to_string(), false),
    };
    let mut req = Request::builder().method("POST").uri(&path).header("content-type", "application/json");
    if signed {
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        for (k, v) in sign(&h.key, "POST", &path, body, nonce).expect("signs") {
            req = req.header(k, v);
        }
    } else {
        req = req.header("x-api-key", "key-c");
    }
    let request = req.body(Body::from(body.to_vec())).expect("a request");
    let (status, answer) = h.rt.block_on(async {
        let resp = h.app.clone().oneshot(request).await.expect("the router answers");
        let status = resp.status();
        (status, resp.into_body().collect().await.expect("a body").to_bytes())
    });
    assert!(!status.is_server_error(), "{path}: {status} for {:?}: {}", String::from_utf8_lossy(body), String::from_utf8_lossy(&answer));
});
