//! `zkinfer coordinator` and `zkinfer executor` as processes, on a real chain (anvil): a
//! customer seals a job's input to two executors, pays for it in the escrow and submits it
//! over HTTP; the job is proved, delivered, paid on chain and settled, and balances show the
//! executor paid exactly the price, once. An executor killed mid-proof loses the job to the
//! other, which is paid; the coordinator's database and logs never hold the input in
//! plaintext; jobs queued and running survive a coordinator kill -9 (SQLite and Postgres).

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use common::*;
use serde_json::Value;
use zkinfer_protocol::client::Client;
use zkinfer_protocol::types::RegisterModelRequest;
use zkinfer_protocol::{HexBytes, JobId, ModelId, Salt};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::market::deploy_market;

#[test]
fn a_sealed_job_is_proved_paid_on_chain_and_settled_and_its_input_never_reaches_the_coordinator() {
    let m = Market::start();
    let values = input_values();
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (id, escrow_job, c) = m.submit_paid_sealed(&values, price());
    let job = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    assert_eq!(states(&job), ["queued", "assigned", "proving", "proved", "settled"]);
    assert_eq!(job.escrow_job, Some(escrow_job));
    m.assert_paid_once(&job, escrow_job, &before, price());
    m.audit(id, c);

    // Nothing the coordinator wrote holds the input: not the database (with its WAL), not its logs.
    let plaintext = serde_json::to_vec(&values).unwrap();
    let head = serde_json::to_string(&values[..3]).unwrap();
    let head = head.trim_matches(|ch| ch == '[' || ch == ']').to_string();
    let floats: Vec<u8> = values[..4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut scanned = Vec::new();
    for f in ["coordinator.db", "coordinator.db-wal", "coordinator.out", "coordinator.err"] {
        scanned.extend(std::fs::read(m.dir.path().join(f)).unwrap_or_default());
    }
    let has = |needle: &[u8]| scanned.windows(needle.len()).any(|w| w == needle);
    assert!(has(c.to_string().as_bytes()), "control: the scan sees what the coordinator stores (the commitment)");
    assert!(!has(&plaintext), "the input's JSON is in the coordinator's files");
    assert!(!has(head.as_bytes()), "the input's first values are in the coordinator's files: {head}");
    assert!(!has(&floats), "the input's f32 bytes are in the coordinator's files");
}

#[test]
fn an_executor_killed_mid_proof_loses_the_job_to_the_other_which_is_paid_exactly_once() {
    let m = Market::start();
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (id, escrow_job, c) = m.submit_paid_sealed(&input_values(), price());
    let proving = wait_for(&m.addr, id, "proving", Duration::from_secs(60));
    let holder = proving.executor.unwrap();
    let victim = EXECUTORS.iter().position(|&a| m.chain.account(a) == holder.address()).expect("a test executor holds it");
    m.procs.kill(1 + victim); // SIGKILL mid-proof: no goodbye, its lease just stops
    let job = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    assert_ne!(job.executor, Some(holder), "{job:?}");
    assert_eq!(job.attempts, 2);
    assert_eq!(states(&job), ["queued", "assigned", "proving", "queued", "assigned", "proving", "proved", "settled"]);
    let winner = m.assert_paid_once(&job, escrow_job, &before, price());
    assert_ne!(winner, victim);
    m.audit(id, c);
}

#[test]
fn queued_and_running_jobs_survive_a_coordinator_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    survive_kill_9(&format!("sqlite:{}", dir.path().join("coordinator.db").display()), dir);
}

#[test]
fn queued_and_running_jobs_survive_a_coordinator_kill_9_and_restart_on_postgres() {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("ZKINFER_TEST_DATABASE_URL") else {
        eprintln!("SKIPPED on Postgres: ZKINFER_TEST_DATABASE_URL is not set (scripts/test.sh starts a server)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        for sql in ["DROP DATABASE IF EXISTS zkt_market_restart WITH (FORCE)", "CREATE DATABASE zkt_market_restart"] {
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    });
    let url = format!("{}/zkt_market_restart", admin.rsplit_once('/').unwrap().0);
    survive_kill_9(&url, tempfile::tempdir().unwrap());
}

/// Three jobs, one of them proving: the coordinator is SIGKILLed and restarted on the same
/// address; the executor reconnects, and every job is proved exactly once.
fn survive_kill_9(db: &str, dir: tempfile::TempDir) {
    let model = mlp_dir(dir.path());
    // A fixed port, so that the executor finds the restarted coordinator.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let (first, addr) = coordinator_at(&listen, db, dir.path(), &model, "60", None);
    let procs = Procs::new(vec![first]);
    let client = alice(&addr);
    let ids: Vec<JobId> = (0..3).map(|_| block_on(client.submit(&plain_job(input_values(), 3600))).unwrap().job_id).collect();
    assert_eq!(ids, [JobId(1), JobId(2), JobId(3)]);
    let e = block_on(client.submit(&plain_job(vec![1.0], 60))).unwrap_err();
    assert!(matches!(e, zkinfer_protocol::Error::Api { status: 400, code: zkinfer_protocol::ErrorCode::InputLength, .. }), "{e}");
    let key = "0x0101010101010101010101010101010101010101010101010101010101010101";
    procs.push(executor(dir.path(), &addr, key, &model, None, 0));
    wait_for(&addr, JobId(1), "proving", Duration::from_secs(60));
    procs.kill(0); // SIGKILL while job 1 is proving and jobs 2 and 3 are queued
    let (second, addr) = coordinator_at(&listen, db, dir.path(), &model, "60", None);
    procs.push(second);
    for id in ids {
        let job = wait_for(&addr, id, "proved", Duration::from_secs(240));
        assert_eq!(job.attempts, 1, "job {id}: {job:?}");
        assert_eq!(states(&job), ["queued", "assigned", "proving", "proved"], "job {id}: {job:?}");
    }
    let missing = block_on(alice(&addr).job(JobId(4))).unwrap_err();
    assert!(matches!(missing, zkinfer_protocol::Error::Api { status: 404, .. }), "no job was duplicated: {missing}");
}

#[test]
fn the_market_demo_prints_each_state_as_it_is_reached_and_the_exact_payment() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN)
        .args(["demo", "--market", "--workdir", dir.path().to_str().unwrap()])
        .args(["--model", root.join("examples/mlp").to_str().unwrap(), "--toolchain", root.join("verifier-contract").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lifecycle: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("lifecycle of job"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(lifecycle, ["queued", "assigned", "proving", "proved", "settled"], "{text}");
    assert!(text.contains("auditor: the downloaded proof") && text.contains("escrow paid executor"), "{text}");
}

#[test]
fn a_restarted_executor_never_submits_a_proof_twice() {
    use alloy::providers::Provider;
    use zkinfer_executor::settle::{settle, Journal, Pending, Settled};
    let dir = tempfile::tempdir().unwrap();
    let model = mlp_dir(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = toolchain();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let loaded = zkinfer_prover::ModelDir::new(&model).load().unwrap();
    let contracts = rt.block_on(deploy_market(&chain, &tc, &loaded, 0)).unwrap();
    let me = chain.account(2);
    rt.block_on(chain.escrow(contracts.escrow, 2).unwrap().stake(U256::from(BOND_WEI))).unwrap();
    // The customer commits with a salt and opens the job; the executor proves bound to it.
    let salt = Salt::random();
    let commitment = commitment(&model, &input_values(), salt);
    let deadline = rt.block_on(chain.timestamp()).unwrap() + 3600;
    let open = zkinfer_verifier_contract::escrow::OpenJob {
        model: contracts.escrow_model,
        commitment,
        deadline,
        allow: vec![me],
        token: None,
        price: price(),
        min_bond: U256::from(BOND_WEI),
        claimable: false,
        optimistic: None,
    };
    let escrow_job = rt.block_on(chain.escrow(contracts.escrow, CUSTOMER).unwrap().open_job(&open)).unwrap();
    let proof_file = dir.path().join("job.zkp");
    let chain_id = rt.block_on(chain.escrow(contracts.escrow, 0).unwrap().chain_id()).unwrap().to_string();
    let out = Command::new(BIN)
        .args(["prove", model.to_str().unwrap(), "--input", example("input.json").to_str().unwrap(), "-o", proof_file.to_str().unwrap()])
        .args(["--salt", &salt.to_string(), "--payee", &format!("{me:#x}"), "--chain-id", &chain_id])
        .args(["--escrow", &format!("{:#x}", contracts.escrow), "--escrow-job", &escrow_job.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proof = std::fs::read(&proof_file).unwrap();
    let escrow = chain.escrow(contracts.escrow, 2).unwrap();
    let journal = Journal::new(&dir.path().join("state"));
    let nonce = || rt.block_on(async { chain.provider(0).get_transaction_count(me).await }).unwrap();
    let balance = || rt.block_on(chain.balance(me)).unwrap();
    let (before, nonce0) = (balance(), nonce());

    let mut fresh = Pending::new(JobId(1), escrow_job, &proof);
    fresh.delivered = true;
    let mut entry = fresh.clone();
    journal.put(&entry).unwrap();
    let Settled::Paid(tx) = rt.block_on(settle(&escrow, &journal, &mut entry)).unwrap() else { panic!("not paid") };
    assert_eq!(journal.entries().unwrap()[0].tx, Some(tx), "the transaction is journaled before it is awaited");
    assert_eq!(nonce(), nonce0 + 1);
    // A restart after the transaction was sent: the journaled transaction is found, none is sent.
    let mut resumed = journal.entries().unwrap().remove(0);
    assert_eq!(rt.block_on(settle(&escrow, &journal, &mut resumed)).unwrap(), Settled::Paid(tx));
    // A restart that lost the transaction hash: the escrow says it is paid, none is sent.
    let mut lost = fresh.clone();
    assert_eq!(rt.block_on(settle(&escrow, &journal, &mut lost)).unwrap(), Settled::AlreadyPaid { to: me });
    assert_eq!(nonce(), nonce0 + 1, "no second submission");
    let fee = rt.block_on(chain.fee(tx)).unwrap();
    assert_eq!(balance(), before + price() - fee, "paid exactly once");
    journal.done(escrow_job).unwrap();
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn a_model_registered_over_http_is_set_up_by_an_executor_that_fetches_it_and_proved() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
    #[allow(clippy::zombie_processes)] // the test kills and waits for each child
    let start_coordinator = || {
        let child = Command::new(BIN)
            .args([
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db,
                "--api-key",
                "alice:key-alice",
                "--admin-key",
                "admin-secret",
                "--long-poll-secs",
                "1",
            ])
            .args(["--models-dir", models.to_str().unwrap(), "--dev-srs"])
            .stdout(log_file(dir.path(), "coordinator.out"))
            .stderr(log_file(dir.path(), "coordinator.err"))
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            let out = std::fs::read_to_string(dir.path().join("coordinator.out")).unwrap_or_default();
            if let Some(addr) = out.split("http://").nth(1).and_then(|r| r.split_whitespace().next()) {
                return (child, addr.to_string());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the coordinator did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (c, addr) = start_coordinator();
    let procs = Procs::new(vec![c]);
    let client = alice(&addr);
    let admin = customer(&addr, "admin-secret");
    let register_as = |who: &zkinfer_protocol::client::CustomerClient, id: &str, onnx: &Path| {
        let calibration: Value = serde_json::from_str(&std::fs::read_to_string(example("calibration.json")).unwrap()).unwrap();
        let calibration: Vec<Vec<f32>> = serde_json::from_value(calibration["input_data"].clone()).unwrap();
        let req = RegisterModelRequest {
            id: ModelId::new(id).unwrap(),
            onnx: HexBytes(std::fs::read(onnx).unwrap()),
            calibration: Some(calibration),
        };
        block_on(who.register_model(&req))
    };
    let register = |id: &str, onnx: &Path| register_as(&admin, id, onnx);
    // A customer's key may not register models (they run compile and keygen on the coordinator).
    let refused = register_as(&client, "mlp", &example("model.onnx")).unwrap_err();
    assert!(matches!(refused, zkinfer_protocol::Error::Api { status: 403, code: zkinfer_protocol::ErrorCode::Forbidden, .. }), "{refused}");
    let registered = register("mlp", &example("model.onnx")).unwrap();
    assert_eq!((registered.model_id.as_str(), registered.input_len), ("mlp", 784));
    let unsupported = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/unsupported/model.onnx");
    let e = register("bad", &unsupported).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, zkinfer_protocol::Error::Api { status: 400, code: zkinfer_protocol::ErrorCode::BadRequest, .. })
            && text.contains("unsupported"),
        "{text}"
    );
    assert!(
        matches!(register("mlp", &example("model.onnx")), Err(zkinfer_protocol::Error::Api { status: 400, .. })),
        "an id cannot be registered twice"
    );

    let mut exec = Command::new(BIN);
    exec.args(["executor", "--coordinator", &format!("http://{addr}"), "--fetch-models", "--dev-srs", "--heartbeat-secs", "1"])
        .args(["--state-dir", dir.path().join("executor").to_str().unwrap()])
        .stdout(log_file(dir.path(), "executor.out"))
        .stderr(log_file(dir.path(), "executor.err"));
    procs.push(exec.spawn().unwrap());
    let id = block_on(client.submit(&plain_job(input_values(), 600))).unwrap().job_id;
    wait_for(&addr, id, "proved", Duration::from_secs(240));
    let proof = block_on(client.proof(id)).unwrap();
    let file = dir.path().join("job.zkp");
    std::fs::write(&file, proof).unwrap();
    let out = Command::new(BIN).args(["verify", models.join("mlp").to_str().unwrap(), file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // A restarted coordinator serves the models registered before.
    procs.kill(0);
    let (c, addr) = start_coordinator();
    procs.push(c);
    let listed = block_on(alice(&addr).public().models()).unwrap();
    assert_eq!(listed[0].id.as_str(), "mlp", "{listed:?}");
    assert_eq!(listed[0].model_hash, Some(registered.model_hash));
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_the_coordinator_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (db, models) = (format!("sqlite:{}", dir.path().join("c.db").display()), dir.path().join("models"));
    let args = ["--listen", "127.0.0.1:0", "--database-url", &db, "--api-key", "alice:key-alice", "--long-poll-secs", "20"];
    let (mut child, addr) = spawn_coordinator(dir.path(), &[&args[..], &["--models-dir", models.to_str().unwrap(), "--dev-srs"]].concat());
    let executor = Client::new(&format!("http://{addr}")).unwrap().executor(alloy::signers::local::PrivateKeySigner::random());
    // A long-poll in flight (nothing is queued): it would wait 20 s.
    let in_flight = std::thread::spawn(move || {
        let start = Instant::now();
        (block_on(executor.claim()), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let (answer, took) = in_flight.join().unwrap();
    assert!(matches!(answer, Ok(None)), "the claim in flight is answered (204), not cut off: {answer:?}");
    assert!(took < Duration::from_secs(15), "the long-poll ended at shutdown, not at its 20 s timeout: {took:?}");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the coordinator did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    let logs = std::fs::read_to_string(dir.path().join("coordinator.err")).unwrap();
    assert!(logs.contains("shutting down") && logs.contains("coordinator stopped"), "{logs}");
    assert!(std::net::TcpStream::connect(&addr).is_err(), "nothing listens any more");
}
