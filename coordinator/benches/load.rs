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
use zkinfer_coordinator::check::{ExpectedProof, ProofChecker};
use zkinfer_coordinator::routes::{app, AppState};
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::{Error, Result};
use zkinfer_protocol::client::Client;
use zkinfer_protocol::types::SubmitJob;
use zkinfer_protocol::{Commitment, ModelId, Salt};

const RECORDED: &[u8] = b"recorded proof of the load-test model";

struct Recorded;

impl ProofChecker for Recorded {
    fn input_len(&self, model_id: &ModelId) -> Option<usize> {
        (model_id.as_str() == "load").then_some(4)
    }

    fn commitment(&self, _model: &ModelId, _input: &[f32], _salt: Salt) -> Result<Commitment> {
        Ok("0x01".parse().expect("a commitment"))
    }

    fn check(&self, _model: &ModelId, _expect: &ExpectedProof, proof: &[u8]) -> Result<()> {
        if proof == RECORDED {
            Ok(())
        } else {
            Err(Error::InvalidProof(zkinfer_prover::Error::InvalidProof("not the recorded result".into())))
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
    let model = ModelId::new("load").expect("id");
    store.register_model(&model, 4, 0).await.expect("model");
    let keys = HashMap::from([("k".to_string(), "bench".to_string())]);
    let state = AppState::new(store, Arc::new(Recorded), keys, Duration::from_secs(60), Duration::from_millis(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let client = Client::new(&base).expect("client");
    let job = SubmitJob {
        model_id: model,
        input: Some(vec![0.25, -0.5, 0.75, 1.0]),
        sealed: None,
        input_commitment: None,
        salt: None,
        escrow_job: None,
        deadline_s: 3600,
        customer_signature: None,
        verification: zkinfer_protocol::Verification::Zk,
    };

    let gate = Arc::new(Semaphore::new(64));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (customer, job, gate) = (client.customer("k"), job.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let t = Instant::now();
            customer.submit(&job).await.expect("submit");
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
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(w + 1)).expect("key");
        let executor = client.executor(key);
        workers.spawn(async move {
            let mut done = 0usize;
            while let Some(lease) = executor.claim().await.expect("claim") {
                executor.start(lease.job).await.expect("start");
                executor.deliver(lease.job, RECORDED).await.expect("deliver");
                done += 1;
            }
            done
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
