//! Optimistic verification on anvil (a block a second) with real coordinator, executor and
//! validator processes, balances asserted to the wei: an honest result paid after the window;
//! a cheater caught by a validator, unable to prove and slashed; a frivolous challenge lost to
//! the executor's proof; challenges after the window and second challenges refused.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use common::*;
use zkinfer_protocol::types::JobView;
use zkinfer_protocol::{EscrowJobId, JobId, JobState, Salt, Verification};
use zkinfer_verifier_contract::escrow::{OpenJob, OptimisticTerms};

/// The validator's account (the executors are 2 and 3).
const VALIDATOR: usize = 4;
/// What an optimistic job pays: 0.001 ETH, so that the executors' 0.01 ETH bond deters
/// cheating at 30% (2 × 1.5 × 0.001 / 0.01).
const PRICE: u64 = 1_000_000_000_000_000;
/// A challenger's bond: 0.002 ETH.
const CHALLENGE_BOND: u64 = 2_000_000_000_000_000;
const WINDOW_S: u32 = 30;
const PROVE_S: u32 = 120;

/// A market whose coordinator accepts windows this short, with executors `(account, args)`.
fn market(executors: &[(usize, Vec<&str>)]) -> Market {
    let coordinator =
        ["--min-challenge-window-secs", "30", "--min-prove-window-secs", "120", "--min-challenge-bond-wei", "2000000000000000"];
    Market::start_custom(Some(1), &coordinator, executors)
}

fn validator() -> (usize, Vec<&'static str>) {
    (VALIDATOR, vec!["--role", "validator"])
}

/// Opens an optimistic escrow job for `values` (audited for sure) allowing `allow`, seals the
/// input to exactly those executors and submits; returns the job, escrow job and the fee the
/// customer paid to open it.
fn submit(m: &Market, values: &[f32], allow: &[usize]) -> (JobId, EscrowJobId, U256) {
    let salt = Salt::random();
    let c = commitment(&m.model, values, salt);
    let deadline = m.rt.block_on(m.chain.timestamp()).unwrap() + 3600;
    let open = OpenJob {
        model: m.contracts.escrow_model,
        commitment: c,
        deadline,
        allow: allow.iter().map(|&a| m.chain.account(a)).collect(),
        token: None,
        price: U256::from(PRICE),
        min_bond: U256::from(BOND_WEI),
        claimable: false,
        optimistic: Some(OptimisticTerms {
            audit_bps: 10_000,
            challenge_window: WINDOW_S,
            prove_window: PROVE_S,
            challenge_bond: U256::from(CHALLENGE_BOND),
        }),
    };
    let (escrow_job, opened) = m.rt.block_on(m.escrow(CUSTOMER).open_job_mined(&open)).unwrap();
    let mut job = m.sealed_submission(values, salt, c, escrow_job, CUSTOMER);
    job.verification = Verification::Optimistic;
    let wanted: Vec<Address> = allow.iter().map(|&a| m.chain.account(a)).collect();
    job.sealed.as_mut().unwrap().retain(|e, _| wanted.contains(&e.address()));
    let submitted = m.rt.block_on(alice(&m.addr).submit(&job)).unwrap();
    (submitted.job_id, escrow_job, opened.fee)
}

fn wait_until(m: &Market, id: JobId, what: &str, limit: Duration, done: impl Fn(&JobView) -> bool) -> JobView {
    let start = Instant::now();
    loop {
        let j = m.rt.block_on(alice(&m.addr).job(id)).unwrap();
        if done(&j) {
            return j;
        }
        if start.elapsed() >= limit {
            panic!("job {id} never got {what}: {j:?}\n{}", logs(m));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tail of every process's log, for a failure's message.
fn logs(m: &Market) -> String {
    let mut out = String::new();
    for f in std::fs::read_dir(m.dir.path()).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "err") {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out += &format!("--- {}\n{}\n", f.file_name().to_string_lossy(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
    out
}

/// Wei that `account` paid for gas in the blocks after `from`.
fn fees_since(m: &Market, account: usize, from: u64) -> U256 {
    let p = m.chain.provider(0);
    let who = m.chain.account(account);
    let latest = m.rt.block_on(p.get_block_number()).unwrap();
    let mut fees = U256::ZERO;
    for n in from + 1..=latest {
        for r in m.rt.block_on(p.get_block_receipts(n.into())).unwrap().unwrap_or_default() {
            if r.from == who {
                fees += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
            }
        }
    }
    fees
}

fn stake(m: &Market, account: usize) -> U256 {
    m.rt.block_on(m.escrow(0).stake_of(m.chain.account(account))).unwrap().amount
}

fn escrow_balance(m: &Market) -> U256 {
    m.rt.block_on(m.chain.balance(m.contracts.escrow)).unwrap()
}

fn block(m: &Market) -> u64 {
    m.rt.block_on(m.escrow(0).block_number()).unwrap()
}

/// Moves the chain's clock past the challenge window (or the prove window) of the result.
fn skip(m: &Market, secs: u32) {
    m.rt.block_on(m.chain.increase_time(u64::from(secs) + 2)).unwrap();
}

fn posted(j: &JobView) -> bool {
    j.state == JobState::Posted
}

#[test]
fn an_honest_optimistic_result_arrives_without_a_proof_is_audited_and_is_paid_after_the_window() {
    let m = market(&[(EXECUTORS[0], vec!["--role", "executor"]), validator()]);
    let values = input_values();
    let (exec, val) = (EXECUTORS[0], VALIDATOR);
    let from = block(&m);
    let before = [m.balance(CUSTOMER), m.balance(exec), m.balance(val)];
    let (id, escrow_job, open_fee) = submit(&m, &values, &[exec, val]);
    // Posted (the coordinator may see it on chain first), and claimed by its executor.
    let j = wait_until(&m, id, "posted and claimed", Duration::from_secs(120), |j| {
        posted(j) && j.result.as_ref().is_some_and(|r| !r.quantized_outputs.is_empty())
    });
    let r = j.result.as_ref().expect("the posted result");
    assert_eq!(r.executor.address(), m.chain.account(exec));
    // The claim is the executor's, and its outputs are the model's (the shipped expected output).
    let binding = zkinfer_protocol::seal::EscrowBinding { chain_id: m.chain_id(), escrow: m.contracts.escrow, job: escrow_job };
    let c = j.input_commitment.unwrap();
    let signer = zkinfer_protocol::optimistic::result_signer(&binding, &c, &r.outputs_hash.0.into(), &r.signature.0).unwrap();
    assert_eq!(signer, m.chain.account(exec));
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example("expected.json")).unwrap()).unwrap();
    let expected: Vec<f64> = expected["outputs"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (got, want) in r.outputs[0].iter().zip(&expected) {
        assert!((got - want).abs() < 0.05, "output {got} against float {want}");
    }
    // The validator re-executes it and agrees.
    let j = wait_until(&m, id, "an agreeing audit", Duration::from_secs(60), |j| {
        j.result.as_ref().and_then(|r| r.audit.as_ref()).is_some_and(|a| a.agreed == Some(true))
    });
    let audit = j.result.unwrap().audit.unwrap();
    assert!(audit.sampled);
    assert_eq!(audit.validator.unwrap().address(), m.chain.account(val));
    assert_eq!(j.state, JobState::Posted, "not paid before the window closes");
    skip(&m, WINDOW_S);
    let j = wait_until(&m, id, "settled", Duration::from_secs(60), |j| j.state == JobState::Settled);
    assert_eq!(j.payment.unwrap().executor.address(), m.chain.account(exec));
    let price = U256::from(PRICE);
    assert_eq!(m.balance(CUSTOMER), before[0] - price - open_fee, "the customer paid the price and its gas");
    assert_eq!(m.balance(exec), before[1] + price - fees_since(&m, exec, from), "the executor got the price, less its gas");
    assert_eq!(m.balance(val), before[2], "the validator sent nothing");
    assert_eq!(stake(&m, exec), U256::from(BOND_WEI), "the bond is released");
    assert_eq!(escrow_balance(&m), stake(&m, exec) + stake(&m, val), "the escrow holds only the stakes");
    let states: Vec<JobState> = j.events.iter().map(|e| e.state).collect();
    assert_eq!(states, [JobState::Queued, JobState::Assigned, JobState::Proving, JobState::Posted, JobState::Settled]);
}

#[test]
fn a_cheating_executor_is_caught_by_the_validator_cannot_prove_and_is_slashed() {
    let m = market(&[(EXECUTORS[1], vec!["--role", "executor", "--post-wrong-outputs"]), validator()]);
    let (cheat, val) = (EXECUTORS[1], VALIDATOR);
    let from = block(&m);
    let before = [m.balance(CUSTOMER), m.balance(cheat), m.balance(val)];
    let (id, escrow_job, open_fee) = submit(&m, &input_values(), &[cheat, val]);
    let j = wait_until(&m, id, "challenged, with the validator's report", Duration::from_secs(180), |j| {
        j.state == JobState::Challenged && j.result.as_ref().and_then(|r| r.audit.as_ref()).is_some_and(|a| a.agreed.is_some())
    });
    let r = j.result.unwrap();
    assert_eq!(r.audit.unwrap().agreed, Some(false), "the validator disagreed");
    assert_eq!(r.dispute.unwrap().challenger.address(), m.chain.account(val));
    // The cheater tries to prove and cannot: its proof shows the true outputs.
    skip(&m, PROVE_S);
    let j = wait_until(&m, id, "slashed", Duration::from_secs(120), |j| j.state == JobState::Slashed);
    assert_eq!(j.result.unwrap().dispute.unwrap().outcome.as_deref(), Some("slashed"));
    let (price, bond) = (U256::from(PRICE), U256::from(BOND_WEI));
    let reward = bond / U256::from(2);
    assert_eq!(stake(&m, cheat), U256::ZERO, "the cheater's whole bond is slashed");
    assert_eq!(m.balance(cheat), before[1] - fees_since(&m, cheat, from), "the cheater got nothing and paid its gas");
    assert_eq!(m.balance(val), before[2] + reward - fees_since(&m, val, from), "the validator: half the bond, its own bond back");
    assert_eq!(m.balance(CUSTOMER), before[0] - open_fee + (bond - reward), "the customer: refunded, and the other half");
    assert_eq!(escrow_balance(&m), stake(&m, val), "the escrow holds only the validator's stake");
    assert_eq!(m.rt.block_on(m.escrow(0).job(escrow_job)).unwrap().price, price);
}

#[test]
fn a_frivolous_challenge_is_answered_with_a_proof_and_its_bond_goes_to_the_executor_and_a_second_challenge_is_refused() {
    let m = market(&[(EXECUTORS[0], vec!["--role", "executor"]), validator()]);
    let (exec, val) = (EXECUTORS[0], VALIDATOR);
    let from = block(&m);
    let before = [m.balance(CUSTOMER), m.balance(exec)];
    let (id, escrow_job, open_fee) = submit(&m, &input_values(), &[exec, val]);
    wait_until(&m, id, "posted", Duration::from_secs(120), posted);
    let bond = U256::from(CHALLENGE_BOND);
    // A challenge with the wrong bond, and by the executor itself, are refused.
    assert!(m.rt.block_on(m.escrow(CUSTOMER).challenge(escrow_job, bond - U256::from(1))).is_err());
    assert!(m.rt.block_on(m.escrow(exec).challenge(escrow_job, bond)).is_err());
    let challenged = m.rt.block_on(m.escrow(CUSTOMER).challenge(escrow_job, bond)).unwrap();
    // A second challenge of the same job: refused (the job is disputed already).
    let second = m.rt.block_on(m.escrow(val).challenge(escrow_job, bond)).unwrap_err();
    assert!(second.to_string().contains("WrongState"), "{second}");
    let j = wait_until(&m, id, "settled by the executor's proof", Duration::from_secs(300), |j| j.state == JobState::Settled);
    assert_eq!(j.result.unwrap().dispute.unwrap().outcome.as_deref(), Some("proved"));
    let price = U256::from(PRICE);
    assert_eq!(m.balance(exec), before[1] + price + bond - fees_since(&m, exec, from), "the executor: the price and the challenger's bond");
    assert_eq!(m.balance(CUSTOMER), before[0] - price - bond - open_fee - challenged.fee, "the challenger lost its bond");
    assert_eq!(stake(&m, exec), U256::from(BOND_WEI), "the bond is released");
    assert_eq!(escrow_balance(&m), stake(&m, exec) + stake(&m, val));
}

#[test]
fn a_challenge_after_the_window_is_refused_and_a_restarted_executor_still_collects() {
    let m = market(&[(EXECUTORS[0], vec!["--role", "executor"]), validator()]);
    let (exec, val) = (EXECUTORS[0], VALIDATOR);
    let (id, escrow_job, _) = submit(&m, &input_values(), &[exec, val]);
    wait_until(&m, id, "posted", Duration::from_secs(120), posted);
    // The executor dies with its result posted; the window closes.
    m.procs.kill(1);
    skip(&m, WINDOW_S);
    let bond = U256::from(CHALLENGE_BOND);
    for challenger in [CUSTOMER, val] {
        let late = m.rt.block_on(m.escrow(challenger).challenge(escrow_job, bond)).unwrap_err();
        assert!(late.to_string().contains("WindowClosed"), "{late}");
    }
    // Restarted with its state directory, it finds its journaled result and finalizes it.
    let dir = m.dir.path();
    std::fs::rename(dir.join("executor0.err"), dir.join("executor0-before-restart.err")).unwrap();
    let endpoint = m.chain.endpoint();
    let chain = Some((endpoint.as_str(), m.contracts.escrow));
    m.procs_push(executor_with(m.dir.path(), &m.addr, &m.chain.key_hex(exec), &m.model, chain, 0, &["--role", "executor"]));
    let j = wait_until(&m, id, "settled", Duration::from_secs(120), |j| j.state == JobState::Settled);
    assert_eq!(j.payment.unwrap().executor.address(), m.chain.account(exec));
}
