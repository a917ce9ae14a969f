//! The market against dishonest customers, executors, coordinators and third parties, on anvil
//! with real coordinator and executor processes where an attack needs them. Each attack fails,
//! and balances are asserted to the wei (issue 13's list, numbered as there).

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use common::*;
use zkinfer_circuits::circuit::PayeeBinding;
use zkinfer_protocol::client::{Client, ExecutorClient};
use zkinfer_protocol::seal::{SealContext, SealKey};
use zkinfer_protocol::types::{ExecutorRegistration, InputPayload};
use zkinfer_protocol::{Binding, Commitment, ErrorCode, EscrowJobId, ExecutorId, HexBytes, JobId, Salt, Wei};
use zkinfer_prover::{CommitParams, Loaded, ModelDir, MsmChoice, ProofEnvelope, Statement};
use zkinfer_verifier_contract::escrow::{instance_words, JobState as EscrowState, Submission};

const STRANGER: usize = 4;
const SUBMIT_GAS: u64 = 4_000_000;

fn r() -> U256 {
    U256::from_str_radix("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001", 16).unwrap()
}

/// An executor played by the test itself (signed requests, sealed inputs, proofs), so that
/// the test can hold its proof instead of submitting it.
struct TestExecutor {
    key: PrivateKeySigner,
    client: ExecutorClient,
    seal: SealKey,
    loaded: Loaded,
    pk: halo2_proofs::plonk::ProvingKey<halo2_proofs::halo2curves::bn256::G1Affine>,
    params: CommitParams,
}

impl TestExecutor {
    /// Account `i` of the market's chain as an executor: it stakes the bond and registers.
    fn join(m: &Market, i: usize) -> Self {
        let key = m.chain.signer(i);
        m.rt.block_on(m.escrow(i).stake(U256::from(BOND_WEI))).unwrap();
        let dir = ModelDir::new(&m.model);
        let loaded = dir.load().unwrap();
        let pk = dir.load_pk(&loaded).unwrap();
        let (params, _) = dir.commit_params_or_cpu(&loaded, MsmChoice::Precomputed).unwrap();
        let client = Client::new(&format!("http://{}", m.addr)).unwrap().executor(key.clone());
        let seal = SealKey::derive(key.to_bytes().as_slice());
        let public = seal.public_bytes();
        let registration = ExecutorRegistration {
            hpke_key_signature: HexBytes(zkinfer_protocol::seal::sign_hpke_key(&key, &public).unwrap()),
            hpke_public_key: HexBytes(public),
            price_wei: Wei(U256::from(1000)),
            gpu: false,
            models: vec![mlp_id()],
        };
        m.rt.block_on(client.register(&registration)).unwrap();
        TestExecutor { key, client, seal, loaded, pk, params }
    }

    fn id(&self) -> ExecutorId {
        ExecutorId(self.key.address())
    }

    /// Claims the next job, opens its input, proves it bound to this executor and its escrow
    /// job, and delivers; returns the job and the proof (not submitted on chain).
    fn serve_one(&self, m: &Market) -> (JobId, ProofEnvelope) {
        let lease = m.rt.block_on(async {
            let start = Instant::now();
            loop {
                if let Some(l) = self.client.claim().await.unwrap() {
                    return l;
                }
                assert!(start.elapsed() < Duration::from_secs(60), "no job came");
            }
        });
        m.rt.block_on(self.client.start(lease.job)).unwrap();
        let escrow_job = lease.escrow_job.expect("a paid job");
        let binding = Binding { payee: self.id(), chain_id: m.chain_id(), escrow: m.contracts.escrow, escrow_job };
        let ctx = SealContext {
            model_id: &lease.model_id,
            input_commitment: lease.input_commitment.unwrap(),
            escrow: Some(zkinfer_protocol::seal::EscrowBinding { chain_id: binding.chain_id, escrow: binding.escrow, job: escrow_job }),
        };
        let payload: InputPayload = serde_json::from_slice(&self.seal.open(&ctx, &lease.input.0).unwrap()).unwrap();
        let inputs = self.loaded.model.quantize_inputs(&self.loaded.model.split_inputs(&payload.input).unwrap()).unwrap();
        let statement = Statement { inputs, salt: payload.salt.to_fr(), binding: PayeeBinding::from_values(binding.to_fields()) };
        let env = zkinfer_prover::prove(&self.params, &self.pk, self.loaded.model.clone(), statement, self.loaded.bindings).unwrap();
        m.rt.block_on(self.client.deliver(lease.job, &env.to_bytes().unwrap())).unwrap();
        (lease.job, env)
    }
}

/// Sends a submission of raw words from account `from`; returns the mined outcome.
fn submit(m: &Market, from: usize, job: EscrowJobId, words: Vec<U256>, proof: Vec<u8>) -> Submission {
    let c = m.escrow(from);
    m.rt.block_on(async {
        let tx = c.send_submit_raw(job, words, proof, SUBMIT_GAS).await.unwrap();
        Submission::from(&c.wait_receipt(tx, Duration::from_secs(30)).await.unwrap().unwrap())
    })
}

/// A paid sealed job from the customer, allowing `allow` (accounts) to be paid.
fn paid_job(m: &Market, allow: &[usize]) -> (JobId, EscrowJobId, Commitment) {
    let salt = Salt::random();
    let values = input_values();
    let c = commitment(&m.model, &values, salt);
    let mut terms = m.terms(price());
    terms.allow = allow.iter().map(|&a| m.chain.account(a)).collect();
    let escrow_job = m.open(CUSTOMER, c, &terms);
    let job = m.sealed_submission(&values, salt, c, escrow_job, CUSTOMER);
    (m.rt.block_on(alice(&m.addr).submit(&job)).unwrap().job_id, escrow_job, c)
}

fn api_code(e: &zkinfer_protocol::Error) -> Option<(u16, ErrorCode)> {
    match e {
        zkinfer_protocol::Error::Api { status, code, .. } => Some((*status, *code)),
        _ => None,
    }
}

/// Attacks 1 to 4: a customer that allow-lists itself and submits the executor's proof, a
/// third party that submits a copied proof, another customer's key asking for a job or its
/// proof, and an output instance plus r.
#[test]
fn copied_proofs_pay_only_their_executor_and_proofs_reach_only_their_customer_once_settled() {
    let m = Market::start_with(0);
    let exec = TestExecutor::join(&m, EXECUTORS[0]);
    let bob = customer(&m.addr, "key-bob");

    // 1. The customer allow-lists itself, then submits the executor's proof before it can.
    let (job1, escrow1, _) = paid_job(&m, &[EXECUTORS[0], CUSTOMER]);
    let (id, env) = exec.serve_one(&m);
    assert_eq!(id, job1);
    // 3. The owner cannot download the proof before the payment settles; bob never can.
    let early = m.rt.block_on(alice(&m.addr).proof(job1)).unwrap_err();
    assert_eq!(api_code(&early), Some((409, ErrorCode::BadState)), "{early}");
    for e in [m.rt.block_on(bob.proof(job1)).unwrap_err(), m.rt.block_on(bob.job(job1)).map(|_| ()).unwrap_err()] {
        assert_eq!(api_code(&e), Some((404, ErrorCode::UnknownJob)), "{e}");
    }
    let (exec_before, customer_before) = (m.balance(EXECUTORS[0]), m.balance(CUSTOMER));
    let sent = submit(&m, CUSTOMER, escrow1, instance_words(&env), env.proof.clone());
    assert!(sent.success, "the proof is valid, whoever sends it");
    assert_eq!(m.balance(EXECUTORS[0]), exec_before + price(), "the executor is paid the price");
    assert_eq!(m.balance(CUSTOMER), customer_before - sent.fee, "the customer only paid gas");
    let settled = wait_for(&m.addr, job1, "settled", Duration::from_secs(60));
    assert_eq!(settled.payment.unwrap().executor, exec.id());
    assert!(m.rt.block_on(alice(&m.addr).proof(job1)).is_ok(), "the owner gets the proof once settled");
    assert!(m.rt.block_on(bob.proof(job1)).is_err(), "bob still does not");

    // 2. A third party with a copy of the proof (from the mempool, say) submits it first.
    let (job2, escrow2, _) = paid_job(&m, &[]);
    let (_, env2) = exec.serve_one(&m);
    // 4. An output instance plus r: the verifier and the escrow both refuse it.
    let mut plus_r = instance_words(&env2);
    plus_r[6] += r();
    let model = m.rt.block_on(m.escrow(0).model(m.contracts.escrow_model)).unwrap();
    let data: Vec<u8> = plus_r.iter().flat_map(|w| w.to_be_bytes::<32>()).chain(env2.proof.iter().copied()).collect();
    assert!(m.rt.block_on(m.chain.call(model.verifier, data, SUBMIT_GAS)).is_err(), "the verifier accepts an output plus r");
    let stranger_before = m.balance(STRANGER);
    let refused = submit(&m, STRANGER, escrow2, plus_r, env2.proof.clone());
    assert!(!refused.success, "the escrow accepts an output plus r");
    assert_eq!(m.balance(STRANGER), stranger_before - refused.fee);
    let exec_before = m.balance(EXECUTORS[0]);
    let sent = submit(&m, STRANGER, escrow2, instance_words(&env2), env2.proof.clone());
    assert!(sent.success);
    assert_eq!(m.balance(EXECUTORS[0]), exec_before + price(), "the executor is paid, not the stranger");
    assert_eq!(m.balance(STRANGER), stranger_before - refused.fee - sent.fee);
    wait_for(&m.addr, job2, "settled", Duration::from_secs(60));
    let stakes = U256::from(BOND_WEI);
    assert_eq!(m.rt.block_on(m.chain.balance(m.contracts.escrow)).unwrap(), stakes, "the escrow keeps only the stake");
}

/// Attacks 5 and 6: escrow jobs that cannot pay (a reverting verifier, another code hash,
/// another instance count, a short deadline, a low price) are refused at submission and no
/// executor works on them; an executor that claims on chain and vanishes is slashed to the
/// customer, and an unstaked key cannot claim.
#[test]
fn escrow_jobs_that_cannot_pay_are_refused_and_a_vanished_claimant_is_slashed() {
    let m = Market::start_with(1);
    let tc = toolchain();
    let loaded = ModelDir::new(&m.model).load().unwrap();
    let n = loaded.model.num_instances() as u32;
    let deploy = |name: &str| {
        let code = tc
            .compile_one(zkinfer_verifier_contract::solc::Compiler::Escrow, &tc.test_contracts_source(), name, Some(200))
            .unwrap()
            .bytecode;
        m.rt.block_on(m.chain.deployer(0).deploy(code)).unwrap()
    };
    let register =
        |verifier: Address, n: u32| m.rt.block_on(m.escrow(STRANGER).register_model(verifier, &[], loaded.bindings.model_hash, n)).unwrap();
    let real = m.rt.block_on(m.escrow(0).model(m.contracts.escrow_model)).unwrap();
    let reverting = register(deploy("AlwaysReverts"), n);
    let accepting = register(deploy("AlwaysAccepts"), n);
    let miscounted =
        m.rt.block_on(m.escrow(STRANGER).register_model(real.verifier, &real.parts, loaded.bindings.model_hash, n + 1)).unwrap();
    let base = m.terms(price());
    let cases: Vec<(&str, Terms)> = vec![
        ("a verifier that reverts", Terms { model: Some(reverting), ..base.clone() }),
        ("a verifier with another code hash (it accepts anything)", Terms { model: Some(accepting), ..base.clone() }),
        ("another instance count", Terms { model: Some(miscounted), ..base.clone() }),
        ("a short deadline", Terms { deadline_s: 60, ..base.clone() }),
        ("a low price", Terms { price: U256::from(1), ..base.clone() }),
        ("a claimable job", Terms { claimable: true, ..base.clone() }),
    ];
    for (what, terms) in cases {
        let salt = Salt::random();
        let c = commitment(&m.model, &input_values(), salt);
        let escrow_job = m.open(CUSTOMER, c, &terms);
        let job = m.sealed_submission(&input_values(), salt, c, escrow_job, CUSTOMER);
        let e = m.rt.block_on(alice(&m.addr).submit(&job)).unwrap_err();
        assert_eq!(api_code(&e), Some((409, ErrorCode::EscrowMismatch)), "{what}: {e}");
        println!("{what}: refused: {e}");
    }
    // A submission signed by someone else than the escrow job's customer is refused too.
    let salt = Salt::random();
    let c = commitment(&m.model, &input_values(), salt);
    let escrow_job = m.open(CUSTOMER, c, &base);
    let forged = m.sealed_submission(&input_values(), salt, c, escrow_job, STRANGER);
    let e = m.rt.block_on(alice(&m.addr).submit(&forged)).unwrap_err();
    assert_eq!(api_code(&e), Some((409, ErrorCode::EscrowMismatch)), "{e}");
    // No executor worked on any of them: the coordinator holds no job at all.
    let none = m.rt.block_on(alice(&m.addr).job(JobId(1))).unwrap_err();
    assert_eq!(api_code(&none), Some((404, ErrorCode::UnknownJob)));

    // 6. A claimable job, claimed on chain by a staked executor that then vanishes.
    let claimable = m.open(CUSTOMER, c, &Terms { claimable: true, deadline_s: 400, ..base.clone() });
    let unstaked = m.rt.block_on(m.escrow(STRANGER).claim(claimable));
    assert!(unstaked.is_err(), "an unstaked key claimed");
    m.rt.block_on(m.escrow(EXECUTORS[0]).claim(claimable)).unwrap();
    let stake_before = m.rt.block_on(m.escrow(0).stake_of(m.chain.account(EXECUTORS[0]))).unwrap();
    m.rt.block_on(m.chain.increase_time(401)).unwrap();
    let customer_before = m.balance(CUSTOMER);
    let refund = m.rt.block_on(m.escrow(CUSTOMER).refund(claimable)).unwrap();
    let slash = U256::from(BOND_WEI) / U256::from(2);
    assert_eq!(m.balance(CUSTOMER), customer_before - refund.fee + price() + slash, "price and half the bond to the customer");
    let stake_after = m.rt.block_on(m.escrow(0).stake_of(m.chain.account(EXECUTORS[0]))).unwrap();
    assert_eq!(stake_after.amount, stake_before.amount - slash);
    assert_eq!(stake_after.locked, U256::ZERO);
}

/// Attacks 7 and 8: throwaway keys polling and heartbeating; a sealed ciphertext replayed
/// into another job; a sealed input that does not match its commitment.
#[test]
fn throwaway_keys_get_no_work_replayed_ciphertexts_do_not_open_and_a_mismatched_input_fails_and_is_refunded() {
    let m = Market::start_with(1);
    // 7. Fifty unstaked keys claim and heartbeat: every claim is refused (403), and the staked
    // executor proves and is paid for the job.
    let throwaways: Vec<ExecutorClient> =
        (0..50).map(|_| Client::new(&format!("http://{}", m.addr)).unwrap().executor(PrivateKeySigner::random())).collect();
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (job, escrow_job, _) = m.submit_paid_sealed(&input_values(), price());
    let refusals = m.rt.block_on(async {
        let mut codes = Vec::new();
        for t in &throwaways {
            codes.push(api_code(&t.claim().await.unwrap_err()));
            let _ = t.heartbeat(job).await;
        }
        codes
    });
    assert!(refusals.iter().all(|c| *c == Some((403, ErrorCode::Forbidden))), "{refusals:?}");
    let settled = wait_for(&m.addr, job, "settled", Duration::from_secs(240));
    assert_eq!(m.assert_paid_once(&settled, escrow_job, &before, price()), 0);

    // 8a. The attacker replays that job's ciphertexts into its own escrow job for the same
    // input commitment: the executor cannot open them (they are bound to the first job).
    let salt = Salt::random();
    let values = input_values();
    let c = commitment(&m.model, &values, salt);
    let first = m.open(CUSTOMER, c, &m.terms(price()));
    let original = m.sealed_submission(&values, salt, c, first, CUSTOMER);
    let second = m.open(STRANGER, c, &m.terms(price()));
    let mut replay = m.sealed_submission(&values, salt, c, second, STRANGER);
    replay.sealed = original.sealed.clone();
    let replayed = m.rt.block_on(alice(&m.addr).submit(&replay)).unwrap().job_id;
    let failed = wait_for(&m.addr, replayed, "failed", Duration::from_secs(60));
    assert!(failed.failure.as_deref().is_some_and(|f| f.contains("does not open")), "{failed:?}");

    // 8b. A sealed input that is not the committed one ends failed, and is refunded after the deadline.
    let salt = Salt::random();
    let c = commitment(&m.model, &values, salt);
    let mut other = values.clone();
    other[0] += 0.5;
    let terms = Terms { deadline_s: 400, ..m.terms(price()) };
    let escrow_job = m.open(CUSTOMER, c, &terms);
    let wrong = m.sealed_submission(&other, salt, c, escrow_job, CUSTOMER);
    let id = m.rt.block_on(alice(&m.addr).submit(&wrong)).unwrap().job_id;
    let failed = wait_for(&m.addr, id, "failed", Duration::from_secs(120));
    assert_eq!(failed.failure.as_deref(), Some("input does not match commitment"));
    assert_eq!(failed.attempts, 1, "not re-queued");
    m.rt.block_on(m.chain.increase_time(401)).unwrap();
    let customer_before = m.balance(CUSTOMER);
    let refund = m.rt.block_on(m.escrow(CUSTOMER).refund(escrow_job)).unwrap();
    assert_eq!(m.balance(CUSTOMER), customer_before - refund.fee + price(), "refunded to the wei");
    // The executor never sent anything for the failed jobs: it staked and submitted one proof.
    let nonce = m.rt.block_on(async { m.chain.provider(0).get_transaction_count(m.chain.account(EXECUTORS[0])).await }).unwrap();
    assert_eq!(nonce, 2, "stake and one submission");
}

/// Serves fixed JSON bodies by path on a free port (a coordinator that lies); records the
/// requests it gets. Stops when dropped.
struct FakeCoordinator {
    addr: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeCoordinator {
    fn serve(routes: Vec<(&'static str, String)>) -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut s = stream;
                let mut buf = vec![0u8; 1 << 16];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = head.lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(line.clone());
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                    Some((_, b)) => ("200 OK", b.clone()),
                    None => ("404 Not Found", r#"{"error":{"code":"unknown_job","message":"no"}}"#.to_string()),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeCoordinator { addr, seen }
    }
}

/// Attack 9: a coordinator swaps an executor's HPKE key for one of its own; `zkinfer job
/// submit` refuses to seal, and nothing is submitted.
#[test]
fn a_coordinator_that_swaps_an_executors_hpke_key_gets_nothing_sealed_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp_dir(dir.path());
    let compiled = ModelDir::new(&model).read_compiled().unwrap();
    let hash = zkinfer_protocol::Hash32(zkinfer_prover::model_hash(&compiled.model).unwrap());
    let executor = PrivateKeySigner::random();
    let real = SealKey::derive(executor.to_bytes().as_slice()).public_bytes();
    let signature = zkinfer_protocol::seal::sign_hpke_key(&executor, &real).unwrap();
    let coordinators_own = SealKey::derive(&[7; 32]).public_bytes();
    let listed = serde_json::json!([{
        "address": ExecutorId(executor.address()),
        "hpke_public_key": HexBytes(coordinators_own),
        "hpke_key_signature": HexBytes(signature.clone()),
        "stake_wei": "1",
        "price_wei": "0",
        "gpu": false,
        "models": ["mlp"],
    }]);
    let models = serde_json::json!([{ "id": "mlp", "input_len": 784, "model_hash": hash }]);
    let fake = FakeCoordinator::serve(vec![("/v1/models", models.to_string()), ("/v1/executors", listed.to_string())]);
    let out = std::process::Command::new(BIN)
        .args(["job", "submit", "--coordinator", &format!("http://{}", fake.addr), "--api-key", "k"])
        .args(["--model", "mlp", "--model-dir", model.to_str().unwrap(), "--input", example("input.json").to_str().unwrap()])
        .args(["--wait-s", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refusing to seal"), "{err}");
    assert!(!fake.seen.lock().unwrap().iter().any(|l| l.starts_with("POST")), "nothing was submitted: {:?}", fake.seen.lock().unwrap());
    // The control: the executor's own key, with its signature, is sealed to.
    zkinfer_protocol::seal::verify_hpke_key(ExecutorId(executor.address()), &real, &signature).unwrap();
}

/// Attack 10: a reorg removes the block with a payment the coordinator had seen: the job
/// goes back to proved, and settles once when the payment is mined again.
#[test]
fn a_reorg_that_removes_a_seen_payment_returns_the_job_to_proved_and_it_settles_once_when_mined_again() {
    let m = Market::start_with(1);
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (id, escrow_job, _) = m.submit_paid_sealed(&input_values(), price());
    let settled = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    let paid_in = settled.payment.as_ref().unwrap();
    let (tx, block) = (paid_in.tx, paid_in.block);
    let provider = m.chain.provider(0);
    let raw: alloy::primitives::Bytes =
        m.rt.block_on(provider.raw_request("eth_getRawTransactionByHash".into(), (alloy::primitives::B256::from(tx.0),))).unwrap();
    // One more block on top, then replace every block from the payment's on: the payment is
    // mined again in the new chain, one block later.
    let _: serde_json::Value = m.rt.block_on(provider.raw_request("evm_mine".into(), ())).unwrap();
    let latest = m.rt.block_on(provider.get_block_number()).unwrap();
    let reorg = serde_json::json!({ "depth": latest - block + 1, "tx_block_pairs": [[raw, latest - block]] });
    let _: serde_json::Value = m.rt.block_on(provider.raw_request("anvil_reorg".into(), reorg)).unwrap();
    let start = Instant::now();
    let job = loop {
        let j = block_on(alice(&m.addr).job(id)).unwrap();
        let seen: Vec<String> = states(&j);
        if seen.iter().filter(|s| *s == "settled").count() == 2 {
            break j;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the reorg was not undone and settled again: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(states(&job), ["queued", "assigned", "proving", "proved", "settled", "proved", "settled"]);
    let payment = job.payment.unwrap();
    assert_eq!(payment.tx, tx, "the same payment, mined again");
    assert_eq!(payment.block, latest, "in its new block");
    // Paid once on the chain as it is now.
    m.assert_paid_once(&settled_with(&m, id), escrow_job, &before, price());
}

fn settled_with(m: &Market, id: JobId) -> zkinfer_protocol::types::JobView {
    m.rt.block_on(alice(&m.addr).job(id)).unwrap()
}

/// Attack 11: an executor's journal holds an entry whose submission reverts (a proof bound to
/// another escrow job): it sends that transaction once, drops the entry, and the next, payable
/// job is still proved and paid.
#[test]
fn a_journal_entry_that_cannot_pay_sends_at_most_one_transaction_and_blocks_nothing() {
    let m = Market::start_with(0);
    let exec_account = EXECUTORS[0];
    // A proof bound to escrow job A, journaled as if it were for escrow job B.
    let salt = Salt::random();
    let c = commitment(&m.model, &input_values(), salt);
    let terms = m.terms(price());
    let (a, b) = (m.open(CUSTOMER, c, &terms), m.open(CUSTOMER, c, &terms));
    let me = ExecutorId(m.chain.account(exec_account));
    let state_dir = m.dir.path().join("executor0");
    let proof = prove_cli(&m, salt, Binding { payee: me, chain_id: m.chain_id(), escrow: m.contracts.escrow, escrow_job: a });
    let mut entry = zkinfer_executor::settle::Pending::new(JobId(99), b, &proof);
    entry.delivered = true;
    zkinfer_executor::settle::Journal::new(&state_dir).put(&entry).unwrap();
    let endpoint = m.chain.endpoint();
    m.procs_push(executor(
        m.dir.path(),
        &m.addr,
        &m.chain.key_hex(exec_account),
        &m.model,
        Some((endpoint.as_str(), m.contracts.escrow)),
        0,
    ));
    let start = Instant::now();
    while block_on(alice(&m.addr).executors()).unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(120), "the executor did not register");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before: Vec<U256> = EXECUTORS.iter().map(|&x| m.balance(x)).collect();
    let (id, escrow_job, _) = m.submit_paid_sealed(&input_values(), price());
    let settled = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    m.assert_paid_once_holding(&settled, escrow_job, &before, price(), price() * U256::from(2));
    let nonce = m.rt.block_on(async { m.chain.provider(0).get_transaction_count(me.address()).await }).unwrap();
    assert_eq!(nonce, 3, "stake, the one reverted submission, and the payable one");
    // The paid job's entry goes once the executor has its receipt; the bad one is gone.
    let start = Instant::now();
    while !zkinfer_executor::settle::Journal::new(&state_dir).entries().unwrap().is_empty() {
        let log = std::fs::read_to_string(m.dir.path().join("executor0.err")).unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(30), "the journal is not emptied:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(m.rt.block_on(m.escrow(0).job(b)).unwrap().state, EscrowState::Open, "nothing paid escrow job B");
}

/// `zkinfer prove` of the shipped input with `salt`, bound to `binding`.
fn prove_cli(m: &Market, salt: Salt, binding: Binding) -> Vec<u8> {
    let out = m.dir.path().join(format!("bound-{}.zkp", binding.escrow_job));
    let status = std::process::Command::new(BIN)
        .args(["prove", m.model.to_str().unwrap(), "--input", example("input.json").to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--salt", &salt.to_string(), "--payee", &binding.payee.to_string(), "--chain-id", &binding.chain_id.to_string()])
        .args(["--escrow", &format!("{:#x}", binding.escrow), "--escrow-job", &binding.escrow_job.to_string()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    std::fs::read(out).unwrap()
}
