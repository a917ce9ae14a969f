//! Load test (a benchmark, not a test): N jobs (default 10,000) submitted over loopback HTTP to
//! an in-process coordinator on a SQLite file, 64 in flight; reports submissions per second and
//! p50/p99 submit latency. Then four executors drain the queue (claim → start → deliver) with a
//! recorded result in place of proving (every executor request signed and its nonce checked),
//! and it reports jobs per second through the lifecycle.
//!
//! The recorded result is checked by byte comparison, not verified: verification costs about
//! 5 ms of CPU per proof (papers/benchmarks.md) and would measure the prover library, not the
//! coordinator. Run: `cargo bench -p zkinfer-coordinator --bench load [-- N]`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::Semaphore;
use zkinfer_coordinator::api::Api;
use zkinfer_coordinator::auth::{address_string, sign};
use zkinfer_coordinator::check::ProofChecker;
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::{Error, Result};

const RECORDED: &[u8] = b"recorded proof of the load-test model";

struct Recorded;

impl ProofChecker for Recorded {
    fn input_len(&self, model_id: &str) -> Option<usize> {
        (model_id == "load").then_some(4)
    }

    fn commitment(&self, _model: &str, _input: &[f32]) -> Result<String> {
        Ok("0x01".into())
    }

    fn check(&self, _model: &str, _commitment: &str, proof: &[u8]) -> Result<()> {
        if proof == RECORDED {
            Ok(())
        } else {
            Err(Error::InvalidProof("not the recorded result".into()))
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite:{}", dir.path().join("load.db").display())).await.expect("db");
    store.register_model("load", 4, 0).await.expect("model");
    let keys = HashMap::from([("k".to_string(), "bench".to_string())]);
    let api = Api::new(store, Arc::new(Recorded), keys, Duration::from_secs(60), Duration::from_millis(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, api.router()).await });
    let client = reqwest::Client::new();
    let body = br#"{"model_id": "load", "input": [0.25, -0.5, 0.75, 1.0], "deadline_s": 3600}"#;

    let gate = Arc::new(Semaphore::new(64));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url, gate) = (client.clone(), format!("{base}/v1/jobs"), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let t = Instant::now();
            let r = client.post(url).header("x-api-key", "k").body(&body[..]).send().await.expect("submit");
            assert_eq!(r.status(), 201);
            t.elapsed()
        });
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    while let Some(d) = tasks.join_next().await {
        lat.push(d.expect("task"));
    }
    let submit_s = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "submit: {n} jobs in {submit_s:.2} s = {:.0} jobs/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n as f64 / submit_s,
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );

    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4u8 {
        let (client, base) = (client.clone(), base.clone());
        workers.spawn(async move {
            let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(w + 1)).expect("key");
            let name = address_string(key.address());
            let mut nonce = 0u64;
            let mut post = |path: String, body: &'static [u8]| {
                nonce += 1;
                let h = sign(&key, "POST", &path, body, nonce).expect("sign");
                let mut req = client.post(format!("{base}{path}")).body(body);
                for (k, v) in h {
                    req = req.header(k, v);
                }
                req.send()
            };
            let mut done = 0usize;
            loop {
                let r = post(format!("/v1/executors/{name}/claim"), b"").await.expect("claim");
                if r.status() == 204 {
                    return done;
                }
                let lease: serde_json::Value = serde_json::from_slice(&r.bytes().await.expect("lease")).expect("json");
                let job = lease["job"].as_i64().expect("job id");
                for (path, body) in [("start", &b""[..]), ("proof", RECORDED)] {
                    let r = post(format!("/v1/jobs/{job}/{path}"), body).await.expect(path);
                    assert!(r.status().is_success(), "{path}: {}", r.status());
                }
                done += 1;
            }
        });
    }
    let mut total = 0;
    while let Some(d) = workers.join_next().await {
        total += d.expect("worker");
    }
    let drain_s = start.elapsed().as_secs_f64();
    assert_eq!(total, n, "every job proved exactly once");
    println!(
        "lifecycle: {total} jobs claimed, started and delivered by 4 executors in {drain_s:.2} s = {:.0} jobs/s",
        total as f64 / drain_s
    );
}
