//! The job store, on a SQLite file and on Postgres (each test runs on both): the lifecycle,
//! exclusive claims across two coordinators' connections, lease expiry and re-dispatch,
//! restarts, chain events, and the errors clients get.
//!
//! The Postgres runs need a server: `ZKINFER_TEST_DATABASE_URL` (scripts/test.sh starts a
//! throwaway one with scripts/pg-test.sh); without it they print SKIPPED and pass.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use alloy::primitives::{Address, B256, U256};
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::Error;
use zkinfer_protocol::types::JobEvent;
use zkinfer_protocol::JobState::{self, *};
use zkinfer_protocol::{EscrowJobId, ExecutorId, JobId, ModelId};

const LEASE: i64 = 10_000;

/// A fresh, empty database.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Db { url: format!("sqlite:{}", dir.path().join("coordinator.db").display()), _dir: Some(dir) }
    }

    /// A new database named after the test on the server at `ZKINFER_TEST_DATABASE_URL`.
    async fn postgres(test: &str) -> Option<Self> {
        use sqlx::Connection;
        let Ok(admin) = std::env::var("ZKINFER_TEST_DATABASE_URL") else {
            eprintln!("SKIPPED {test} on Postgres: ZKINFER_TEST_DATABASE_URL is not set (scripts/test.sh starts a server)");
            return None;
        };
        let name = format!("zkt_{}", &test[..test.len().min(50)]);
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        for sql in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
        let base = admin.rsplit_once('/').unwrap().0;
        Some(Db { url: format!("{base}/{name}"), _dir: None })
    }

    async fn store(&self) -> Store {
        let s = Store::open(&self.url).await.unwrap();
        s.register_model(&model("mlp"), 784, 0).await.unwrap();
        s
    }
}

fn model(id: &str) -> ModelId {
    ModelId::new(id).unwrap()
}

/// Test executors: `exec(0xa)` is &exec(EXEC_A), and so on.
fn exec(byte: u8) -> ExecutorId {
    ExecutorId(Address::repeat_byte(byte))
}

const EXEC_A: u8 = 0xa;
const EXEC_B: u8 = 0xb;

/// Runs each test body on SQLite and on Postgres.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(super::Db::sqlite()).await } )*
        }
        mod on_postgres {
            $( #[tokio::test(flavor = "multi_thread")] async fn $name() {
                if let Some(db) = super::Db::postgres(stringify!($name)).await { super::$name(db).await }
            } )*
        }
    };
}

on_both!(
    a_reorg_that_removes_a_payment_or_a_refund_undoes_it_and_the_job_settles_once_when_it_is_seen_again,
    heartbeats_cannot_extend_a_lease_past_its_cap,
    a_job_goes_through_every_state_in_order,
    bad_requests_get_structured_errors,
    a_silent_executor_loses_its_lease_and_the_job_is_redispatched_once,
    claims_are_exclusive_across_two_coordinators_on_one_database,
    jobs_survive_a_restart_and_deadlines_expire_them,
    chain_events_settle_paid_jobs_once_and_refund_expired_ones_and_survive_a_restart,
    optimistic_results_are_claimed_audited_disputed_and_slashed_as_the_chain_says,
);

fn states(events: &[JobEvent]) -> Vec<JobState> {
    events.iter().map(|e| e.state).collect()
}

async fn a_job_goes_through_every_state_in_order(db: Db) {
    let s = db.store().await;
    let id = s.submit(&model("mlp"), "alice", b"sealed", 784, 1_000_000, 1).await.unwrap();
    let lease = s.claim(&exec(EXEC_A), 2, LEASE).await.unwrap().unwrap();
    assert_eq!((lease.job, lease.model_id.as_str(), lease.input.0.as_slice()), (id, "mlp", &b"sealed"[..]));
    assert!(s.claim(&exec(EXEC_B), 3, LEASE).await.unwrap().is_none(), "one queued job, one lease");
    s.start_proving(id, &exec(EXEC_A), 4, LEASE).await.unwrap();
    s.heartbeat(id, &exec(EXEC_A), 5, LEASE, 10 * LEASE).await.unwrap();
    s.complete(id, &exec(EXEC_A), b"proof", 6).await.unwrap();
    s.settle(id, 7).await.unwrap();
    let job = s.job(id).await.unwrap();
    assert_eq!(job.state, Settled);
    assert_eq!(states(&job.events), vec![Queued, Assigned, Proving, Proved, Settled]);
    assert_eq!(job.events.iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![1, 2, 4, 6, 7]);
    assert_eq!(s.proof(id).await.unwrap().as_deref(), Some(&b"proof"[..]));
    // A settled job is paid once: settling again is refused.
    assert!(matches!(s.settle(id, 8).await, Err(Error::BadTransition { .. })));
}

async fn bad_requests_get_structured_errors(db: Db) {
    let s = db.store().await;
    let e = s.submit(&model("resnet"), "alice", b"x", 784, 10, 1).await.unwrap_err();
    assert_eq!((e.code().as_str(), e.code().status()), ("unknown_model", 404));
    let e = s.submit(&model("mlp"), "alice", b"x", 783, 10, 1).await.unwrap_err();
    assert_eq!((e.code().as_str(), e.code().status()), ("input_length", 400));
    assert_eq!(s.job(JobId(42)).await.unwrap_err().code().as_str(), "unknown_job");
    let id = s.submit(&model("mlp"), "alice", b"x", 784, 1_000_000, 1).await.unwrap();
    // Not leased yet: nobody may deliver a proof or settle it.
    assert_eq!(s.complete(id, &exec(EXEC_A), b"p", 2).await.unwrap_err().code().as_str(), "bad_state");
    assert_eq!(s.settle(id, 2).await.unwrap_err().code().as_str(), "bad_state");
    s.claim(&exec(EXEC_A), 3, LEASE).await.unwrap().unwrap();
    assert_eq!(s.start_proving(id, &exec(EXEC_B), 4, LEASE).await.unwrap_err().code().as_str(), "not_lease_holder");
    // Proving comes before a proof.
    assert_eq!(s.complete(id, &exec(EXEC_A), b"p", 5).await.unwrap_err().code().as_str(), "bad_state");
}

async fn a_silent_executor_loses_its_lease_and_the_job_is_redispatched_once(db: Db) {
    let s = db.store().await;
    let id = s.submit(&model("mlp"), "alice", b"x", 784, 1_000_000, 0).await.unwrap();
    s.claim(&exec(EXEC_A), 10, LEASE).await.unwrap().unwrap();
    s.start_proving(id, &exec(EXEC_A), 20, LEASE).await.unwrap();
    // exec-a stops heartbeating (killed mid-proof); after its lease exec-b gets the job.
    assert!(s.claim(&exec(EXEC_B), 20 + LEASE - 1, LEASE).await.unwrap().is_none(), "lease still valid");
    let lease = s.claim(&exec(EXEC_B), 20 + LEASE + 1, LEASE).await.unwrap().unwrap();
    assert_eq!(lease.job, id);
    // The old holder can no longer deliver; the new one can.
    assert_eq!(s.complete(id, &exec(EXEC_A), b"late", 20 + LEASE + 2).await.unwrap_err().code().as_str(), "not_lease_holder");
    s.start_proving(id, &exec(EXEC_B), 20 + LEASE + 3, LEASE).await.unwrap();
    s.complete(id, &exec(EXEC_B), b"proof", 20 + LEASE + 4).await.unwrap();
    let job = s.job(id).await.unwrap();
    assert_eq!((job.state, job.attempts, job.executor), (Proved, 2, Some(exec(EXEC_B))));
    assert_eq!(states(&job.events), vec![Queued, Assigned, Proving, Queued, Assigned, Proving, Proved]);
}

async fn claims_are_exclusive_across_two_coordinators_on_one_database(db: Db) {
    let (a, b) = (db.store().await, db.store().await);
    for _ in 0..20 {
        a.submit(&model("mlp"), "alice", b"x", 784, 1_000_000, 0).await.unwrap();
    }
    let claim_all = |s: Store, who: ExecutorId| async move {
        let mut got = Vec::new();
        while let Some(l) = s.claim(&who, 1, LEASE).await.unwrap() {
            got.push(l.job);
        }
        got
    };
    let (ga, gb) = tokio::join!(tokio::spawn(claim_all(a, exec(EXEC_A))), tokio::spawn(claim_all(b, exec(EXEC_B))));
    let (mut ga, gb) = (ga.unwrap(), gb.unwrap());
    ga.extend(&gb);
    ga.sort_unstable();
    assert_eq!(ga, (1..=20).map(JobId).collect::<Vec<_>>(), "every job leased exactly once");
}

async fn jobs_survive_a_restart_and_deadlines_expire_them(db: Db) {
    let s = db.store().await;
    let queued = s.submit(&model("mlp"), "alice", b"x", 784, 500, 0).await.unwrap();
    let proving = s.submit(&model("mlp"), "bob", b"y", 784, 1_000_000, 0).await.unwrap();
    // Both are queued; exec-a takes the first in order, then the second.
    assert_eq!(s.claim(&exec(EXEC_A), 1, LEASE).await.unwrap().unwrap().job, queued);
    assert_eq!(s.claim(&exec(EXEC_A), 1, LEASE).await.unwrap().unwrap().job, proving);
    s.start_proving(proving, &exec(EXEC_A), 2, LEASE).await.unwrap();
    s.close().await; // the coordinator process goes away
    let s = db.store().await;
    assert_eq!(s.job(proving).await.unwrap().state, Proving);
    assert_eq!(s.expire(600).await.unwrap(), 1);
    assert_eq!(s.job(queued).await.unwrap().state, Expired);
    let counts = s.counts().await.unwrap();
    assert!(counts.contains(&(Expired, 1)) && counts.contains(&(Proving, 1)), "{counts:?}");
}

async fn chain_events_settle_paid_jobs_once_and_refund_expired_ones_and_survive_a_restart(db: Db) {
    use zkinfer_coordinator::store::{JobInput, NewJob};
    use zkinfer_verifier_contract::escrow::{EscrowEvent, Logged};
    let s = db.store().await;
    let mlp = model("mlp");
    let job = |escrow_job: u64, deadline_ms: i64| NewJob {
        model_id: &mlp,
        customer: "alice",
        input: JobInput::Plain { json: b"[]", values: 784 },
        input_commitment: Some("0x01".parse().unwrap()),
        escrow_job: Some(EscrowJobId(escrow_job)),
        deadline_ms,
        min_bond_gwei: None,
        optimistic: None,
    };
    let paid = s.submit_job(&job(7, 1_000_000), 0).await.unwrap();
    let late = s.submit_job(&job(8, 50), 0).await.unwrap();
    let e = s.submit_job(&job(7, 1_000_000), 0).await.unwrap_err();
    assert_eq!(e.code().as_str(), "bad_request", "one coordinator job per escrow job");
    assert_eq!(s.chain_cursor().await.unwrap(), 0);

    // The payment is seen while the job is still proving: it settles when the proof arrives.
    let aa = exec(0xaa);
    s.claim(&aa, 1, LEASE).await.unwrap().unwrap();
    s.start_proving(paid, &aa, 2, LEASE).await.unwrap();
    let logged = |event, block| Logged { event, tx: B256::repeat_byte(1), block, block_hash: B256::ZERO, log_index: 0 };
    let payment = logged(EscrowEvent::Paid { job: EscrowJobId(7), executor: aa, price: U256::from(5) }, 3);
    assert_eq!(s.record_chain_events(std::slice::from_ref(&payment), 4, (3, B256::repeat_byte(3)), 3).await.unwrap(), 1);
    assert_eq!(s.job(paid).await.unwrap().state, Proving);
    s.complete(paid, &aa, b"proof", 5).await.unwrap();
    let v = s.job(paid).await.unwrap();
    assert_eq!(states(&v.events), [Queued, Assigned, Proving, Proved, Settled]);
    assert_eq!(v.payment.unwrap().price_wei.to_string(), "5");
    // The same event read again (a restart re-reads from its cursor) changes nothing.
    s.close().await;
    let s = db.store().await;
    assert_eq!(s.chain_cursor().await.unwrap(), 4);
    assert_eq!(s.record_chain_events(&[payment], 5, (4, B256::repeat_byte(4)), 6).await.unwrap(), 0);
    assert_eq!(states(&s.job(paid).await.unwrap().events).len(), 5);

    // An expired job is refunded when the escrow's refund event is seen; a settled one is not.
    assert_eq!(s.expire(60).await.unwrap(), 1);
    let refunds = [8, 7].map(|j| logged(EscrowEvent::Refunded { job: EscrowJobId(j), amount: U256::from(5), slashed: U256::ZERO }, 5));
    s.record_chain_events(&refunds, 6, (5, B256::repeat_byte(5)), 70).await.unwrap();
    assert_eq!(states(&s.job(late).await.unwrap().events), [Queued, Expired, Refunded]);
    assert_eq!(s.job(paid).await.unwrap().state, Settled);
}

async fn a_reorg_that_removes_a_payment_or_a_refund_undoes_it_and_the_job_settles_once_when_it_is_seen_again(db: Db) {
    use zkinfer_coordinator::store::{JobInput, NewJob};
    use zkinfer_verifier_contract::escrow::{EscrowEvent, Logged};
    let s = db.store().await;
    let mlp = model("mlp");
    let job = |escrow_job: u64, deadline_ms: i64| NewJob {
        model_id: &mlp,
        customer: "alice",
        input: JobInput::Plain { json: b"[]", values: 784 },
        input_commitment: Some("0x01".parse().unwrap()),
        escrow_job: Some(EscrowJobId(escrow_job)),
        deadline_ms,
        min_bond_gwei: Some(1),
        optimistic: None,
    };
    let (paid, late) = (s.submit_job(&job(1, 1_000_000), 0).await.unwrap(), s.submit_job(&job(2, 50), 0).await.unwrap());
    let aa = exec(0xaa);
    s.claim(&aa, 1, LEASE).await.unwrap().unwrap();
    s.start_proving(paid, &aa, 2, LEASE).await.unwrap();
    s.complete(paid, &aa, b"proof", 3).await.unwrap();
    s.expire(60).await.unwrap();
    let at = |event, block| Logged { event, tx: B256::repeat_byte(1), block, block_hash: B256::ZERO, log_index: 0 };
    let pay = at(EscrowEvent::Paid { job: EscrowJobId(1), executor: aa, price: U256::from(5) }, 10);
    let refund = at(EscrowEvent::Refunded { job: EscrowJobId(2), amount: U256::from(5), slashed: U256::ZERO }, 11);
    s.record_chain_events(&[pay.clone(), refund.clone()], 12, (11, B256::repeat_byte(11)), 70).await.unwrap();
    assert_eq!((s.job(paid).await.unwrap().state, s.job(late).await.unwrap().state), (Settled, Refunded));
    assert_eq!(s.chain_checkpoints().await.unwrap(), vec![(11, B256::repeat_byte(11))]);
    // Blocks 10 and up are replaced: both events are gone; the jobs go back.
    s.rewind_chain(10, 80).await.unwrap();
    assert_eq!(s.chain_cursor().await.unwrap(), 10);
    assert!(s.chain_checkpoints().await.unwrap().is_empty());
    let v = s.job(paid).await.unwrap();
    assert_eq!((v.state, v.payment.clone()), (Proved, None));
    assert_eq!(s.job(late).await.unwrap().state, Expired);
    // The payment is mined again in the new chain: it settles, once.
    let again = Logged { block: 13, ..pay };
    assert_eq!(s.record_chain_events(std::slice::from_ref(&again), 14, (13, B256::repeat_byte(13)), 90).await.unwrap(), 1);
    assert_eq!(s.record_chain_events(&[again], 15, (14, B256::repeat_byte(14)), 91).await.unwrap(), 0);
    let v = s.job(paid).await.unwrap();
    assert_eq!(states(&v.events), [Queued, Assigned, Proving, Proved, Settled, Proved, Settled]);
    assert_eq!(v.payment.unwrap().block, 13);
}

async fn heartbeats_cannot_extend_a_lease_past_its_cap(db: Db) {
    let s = db.store().await;
    let id = s.submit(&model("mlp"), "alice", b"x", 784, 1_000_000, 0).await.unwrap();
    let a = exec(EXEC_A);
    s.claim(&a, 100, LEASE).await.unwrap().unwrap();
    // Renewed every few seconds, the lease still ends at 100 + 3 leases.
    for t in (1..40).map(|i| 100 + i * 1_000) {
        s.heartbeat(id, &a, t, LEASE, 3 * LEASE).await.unwrap();
    }
    assert!(s.claim(&exec(EXEC_B), 100 + 3 * LEASE - 1, LEASE).await.unwrap().is_none(), "still leased before the cap");
    assert_eq!(s.claim(&exec(EXEC_B), 100 + 3 * LEASE + 1, LEASE).await.unwrap().unwrap().job, id, "the cap ends it");
}

async fn optimistic_results_are_claimed_audited_disputed_and_slashed_as_the_chain_says(db: Db) {
    use zkinfer_coordinator::store::{ClaimedResult, JobInput, NewJob, OptimisticJob};
    use zkinfer_protocol::Verification;
    use zkinfer_verifier_contract::escrow::{DisputeOutcome, EscrowEvent, Logged};
    let s = db.store().await;
    let mlp = model("mlp");
    let (a, v, other) = (exec(EXEC_A), exec(EXEC_B), exec(0xcc));
    let sealed = vec![(a, b"for a".to_vec()), (v, b"for v".to_vec())];
    let job = |escrow_job: u64| NewJob {
        model_id: &mlp,
        customer: "alice",
        input: JobInput::Sealed(&sealed),
        input_commitment: Some("0x01".parse().unwrap()),
        escrow_job: Some(EscrowJobId(escrow_job)),
        deadline_ms: 1_000_000,
        min_bond_gwei: None,
        optimistic: Some(OptimisticJob { audit_bps: 10_000, challenge_window_s: 60 }),
    };
    let id = s.submit_job(&job(3), 0).await.unwrap();
    let lease = s.claim(&a, 1, LEASE).await.unwrap().unwrap();
    assert_eq!(lease.verification, Verification::Optimistic);
    s.start_proving(id, &a, 2, LEASE).await.unwrap();
    let result = ClaimedResult {
        quantized: vec![vec![1, -2]],
        outputs: vec![vec![0.5, -1.0]],
        outputs_hash: B256::repeat_byte(7),
        post_tx: B256::repeat_byte(8),
        block: 4,
        challenge_ends_s: 1_000,
        signature: vec![9; 65],
    };
    // Only the lease holder claims while the job is leased.
    assert!(matches!(s.claim_result(id, &other, &result, 3).await.unwrap_err(), Error::NotLeaseHolder { .. }));
    s.claim_result(id, &a, &result, 3).await.unwrap();
    let view = s.job(id).await.unwrap();
    assert_eq!((view.state, view.verification), (Posted, Verification::Optimistic));
    let r = view.result.unwrap();
    assert_eq!((r.quantized_outputs, r.outputs, r.challenge_ends_s), (vec![vec![1, -2]], vec![vec![0.5, -1.0]], 1_000));
    // A claim of other outputs than the recorded ones is refused.
    let other_hash = ClaimedResult { outputs_hash: B256::repeat_byte(6), ..result.clone() };
    assert!(s.claim_result(id, &a, &other_hash, 4).await.is_err());
    // Audit: one decision; the chosen validator gets the task with its own ciphertext.
    let candidates = s.audit_candidates().await.unwrap();
    assert_eq!(candidates.len(), 1);
    assert_eq!((candidates[0].executor, candidates[0].sealed_to.clone(), candidates[0].audit_bps), (a, vec![a, v], 10_000));
    s.decide_audit(id, U256::from(42), true, Some(v), 5).await.unwrap();
    s.decide_audit(id, U256::from(43), false, None, 6).await.unwrap();
    assert!(s.audit_candidates().await.unwrap().is_empty(), "decided once");
    assert!(s.audit_tasks(&a).await.unwrap().is_empty(), "the executor does not audit itself");
    let tasks = s.audit_tasks(&v).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].input.0.as_slice(), tasks[0].executor, tasks[0].quantized_outputs.clone()), (&b"for v"[..], a, vec![vec![1, -2]]));
    assert!(matches!(s.report_audit(id, &other, false, None).await.unwrap_err(), Error::Forbidden(_)), "only the validator asked");
    s.report_audit(id, &v, false, Some(B256::repeat_byte(5))).await.unwrap();
    assert!(s.report_audit(id, &v, true, None).await.is_err(), "once");
    // The chain: challenged, then slashed (the refund of a challenged job is a slash).
    let at = |event, block| Logged { event, tx: B256::repeat_byte(1), block, block_hash: B256::ZERO, log_index: 0 };
    let challenged = at(EscrowEvent::Challenged { job: EscrowJobId(3), challenger: v.address(), prove_by: 2_000 }, 10);
    s.record_chain_events(&[challenged], 11, (10, B256::repeat_byte(10)), 20).await.unwrap();
    assert_eq!(s.job(id).await.unwrap().state, Challenged);
    let resolved =
        at(EscrowEvent::Resolved { job: EscrowJobId(3), winner: v.address(), outcome: DisputeOutcome::Slashed, reward: U256::from(1) }, 12);
    let refunded = at(EscrowEvent::Refunded { job: EscrowJobId(3), amount: U256::from(5), slashed: U256::from(1) }, 12);
    s.record_chain_events(&[resolved, refunded], 13, (12, B256::repeat_byte(12)), 30).await.unwrap();
    let view = s.job(id).await.unwrap();
    assert_eq!(states(&view.events), [Queued, Assigned, Proving, Posted, Challenged, Slashed]);
    let r = view.result.unwrap();
    let (audit, dispute) = (r.audit.unwrap(), r.dispute.unwrap());
    assert_eq!((audit.sampled, audit.validator, audit.agreed), (true, Some(v), Some(false)));
    assert_eq!((dispute.challenger, dispute.prove_by_s, dispute.outcome.as_deref()), (v, 2_000, Some("slashed")));
    // A reorg that removes the slash and the challenge takes the job back to posted.
    s.rewind_chain(10, 40).await.unwrap();
    let view = s.job(id).await.unwrap();
    assert_eq!(view.state, Posted);
    assert!(view.result.unwrap().dispute.is_none());
    // A result seen on chain for a job whose executor went silent posts it too.
    let id2 = s.submit_job(&job(4), 50).await.unwrap();
    s.claim(&a, 51, LEASE).await.unwrap().unwrap();
    let posted = at(EscrowEvent::Posted { job: EscrowJobId(4), executor: a, outputs_hash: B256::repeat_byte(2), outputs: vec![] }, 20);
    s.record_chain_events(&[posted], 21, (20, B256::repeat_byte(20)), 60).await.unwrap();
    let view = s.job(id2).await.unwrap();
    assert_eq!(view.state, Posted);
    assert!(view.result.unwrap().quantized_outputs.is_empty(), "not claimed yet");
}
