//! The job store, on a SQLite file and on Postgres (each test runs on both): the lifecycle,
//! exclusive claims across two coordinators' connections, lease expiry and re-dispatch,
//! restarts, chain events, and the errors clients get.
//!
//! The Postgres runs need a server: `ZKINFER_TEST_DATABASE_URL` (scripts/test.sh starts a
//! throwaway one with scripts/pg-test.sh); without it they print SKIPPED and pass.

use zkinfer_coordinator::state::JobState::{self, *};
use zkinfer_coordinator::store::Store;
use zkinfer_coordinator::Error;

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
        s.register_model("mlp", 784, 0).await.unwrap();
        s
    }
}

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
    a_job_goes_through_every_state_in_order,
    bad_requests_get_structured_errors,
    a_silent_executor_loses_its_lease_and_the_job_is_redispatched_once,
    claims_are_exclusive_across_two_coordinators_on_one_database,
    jobs_survive_a_restart_and_deadlines_expire_them,
    chain_events_settle_paid_jobs_once_and_refund_expired_ones_and_survive_a_restart,
);

fn states(events: &[(JobState, i64)]) -> Vec<JobState> {
    events.iter().map(|e| e.0).collect()
}

async fn a_job_goes_through_every_state_in_order(db: Db) {
    let s = db.store().await;
    let id = s.submit("mlp", "alice", b"sealed", 784, 1_000_000, 1).await.unwrap();
    let lease = s.claim("exec-a", 2, LEASE).await.unwrap().unwrap();
    assert_eq!((lease.job, lease.model_id.as_str(), lease.input.as_slice()), (id, "mlp", &b"sealed"[..]));
    assert!(s.claim("exec-b", 3, LEASE).await.unwrap().is_none(), "one queued job, one lease");
    s.start_proving(id, "exec-a", 4, LEASE).await.unwrap();
    s.heartbeat(id, "exec-a", 5, LEASE).await.unwrap();
    s.complete(id, "exec-a", b"proof", 6).await.unwrap();
    s.settle(id, 7).await.unwrap();
    let job = s.job(id).await.unwrap();
    assert_eq!(job.state, Settled);
    assert_eq!(states(&job.events), vec![Queued, Assigned, Proving, Proved, Settled]);
    assert_eq!(job.events.iter().map(|e| e.1).collect::<Vec<_>>(), vec![1, 2, 4, 6, 7]);
    assert_eq!(s.proof(id).await.unwrap().as_deref(), Some(&b"proof"[..]));
    // A settled job is paid once: settling again is refused.
    assert!(matches!(s.settle(id, 8).await, Err(Error::BadTransition { .. })));
}

async fn bad_requests_get_structured_errors(db: Db) {
    let s = db.store().await;
    let e = s.submit("resnet", "alice", b"x", 784, 10, 1).await.unwrap_err();
    assert_eq!((e.code(), e.status().as_u16()), ("unknown_model", 404));
    let e = s.submit("mlp", "alice", b"x", 783, 10, 1).await.unwrap_err();
    assert_eq!((e.code(), e.status().as_u16()), ("input_length", 400));
    assert_eq!(s.job(42).await.unwrap_err().code(), "unknown_job");
    let id = s.submit("mlp", "alice", b"x", 784, 1_000_000, 1).await.unwrap();
    // Not leased yet: nobody may deliver a proof or settle it.
    assert_eq!(s.complete(id, "exec-a", b"p", 2).await.unwrap_err().code(), "bad_state");
    assert_eq!(s.settle(id, 2).await.unwrap_err().code(), "bad_state");
    s.claim("exec-a", 3, LEASE).await.unwrap().unwrap();
    assert_eq!(s.start_proving(id, "exec-b", 4, LEASE).await.unwrap_err().code(), "not_lease_holder");
    // Proving comes before a proof.
    assert_eq!(s.complete(id, "exec-a", b"p", 5).await.unwrap_err().code(), "bad_state");
}

async fn a_silent_executor_loses_its_lease_and_the_job_is_redispatched_once(db: Db) {
    let s = db.store().await;
    let id = s.submit("mlp", "alice", b"x", 784, 1_000_000, 0).await.unwrap();
    s.claim("exec-a", 10, LEASE).await.unwrap().unwrap();
    s.start_proving(id, "exec-a", 20, LEASE).await.unwrap();
    // exec-a stops heartbeating (killed mid-proof); after its lease exec-b gets the job.
    assert!(s.claim("exec-b", 20 + LEASE - 1, LEASE).await.unwrap().is_none(), "lease still valid");
    let lease = s.claim("exec-b", 20 + LEASE + 1, LEASE).await.unwrap().unwrap();
    assert_eq!(lease.job, id);
    // The old holder can no longer deliver; the new one can.
    assert_eq!(s.complete(id, "exec-a", b"late", 20 + LEASE + 2).await.unwrap_err().code(), "not_lease_holder");
    s.start_proving(id, "exec-b", 20 + LEASE + 3, LEASE).await.unwrap();
    s.complete(id, "exec-b", b"proof", 20 + LEASE + 4).await.unwrap();
    let job = s.job(id).await.unwrap();
    assert_eq!((job.state, job.attempts, job.executor.as_deref()), (Proved, 2, Some("exec-b")));
    assert_eq!(states(&job.events), vec![Queued, Assigned, Proving, Queued, Assigned, Proving, Proved]);
}

async fn claims_are_exclusive_across_two_coordinators_on_one_database(db: Db) {
    let (a, b) = (db.store().await, db.store().await);
    for _ in 0..20 {
        a.submit("mlp", "alice", b"x", 784, 1_000_000, 0).await.unwrap();
    }
    let claim_all = |s: Store, who: &'static str| async move {
        let mut got = Vec::new();
        while let Some(l) = s.claim(who, 1, LEASE).await.unwrap() {
            got.push(l.job);
        }
        got
    };
    let (ga, gb) = tokio::join!(tokio::spawn(claim_all(a, "exec-a")), tokio::spawn(claim_all(b, "exec-b")));
    let (mut ga, gb) = (ga.unwrap(), gb.unwrap());
    ga.extend(&gb);
    ga.sort_unstable();
    assert_eq!(ga, (1..=20).collect::<Vec<i64>>(), "every job leased exactly once");
}

async fn jobs_survive_a_restart_and_deadlines_expire_them(db: Db) {
    let s = db.store().await;
    let queued = s.submit("mlp", "alice", b"x", 784, 500, 0).await.unwrap();
    let proving = s.submit("mlp", "bob", b"y", 784, 1_000_000, 0).await.unwrap();
    // Both are queued; exec-a takes the first in order, then the second.
    assert_eq!(s.claim("exec-a", 1, LEASE).await.unwrap().unwrap().job, queued);
    assert_eq!(s.claim("exec-a", 1, LEASE).await.unwrap().unwrap().job, proving);
    s.start_proving(proving, "exec-a", 2, LEASE).await.unwrap();
    s.close().await; // the coordinator process goes away
    let s = db.store().await;
    assert_eq!(s.job(proving).await.unwrap().state, Proving);
    assert_eq!(s.expire(600).await.unwrap(), 1);
    assert_eq!(s.job(queued).await.unwrap().state, Expired);
    let counts = s.counts().await.unwrap();
    assert!(counts.contains(&(Expired, 1)) && counts.contains(&(Proving, 1)), "{counts:?}");
}

async fn chain_events_settle_paid_jobs_once_and_refund_expired_ones_and_survive_a_restart(db: Db) {
    use zkinfer_coordinator::chain::Payment;
    use zkinfer_coordinator::store::{JobInput, NewJob};
    let s = db.store().await;
    let job = |escrow_job: u64, deadline_ms: i64| NewJob {
        model_id: "mlp",
        customer: "alice",
        input: JobInput::Plain { json: b"[]", values: 784 },
        input_commitment: Some("0x01"),
        escrow_job: Some(escrow_job),
        deadline_ms,
    };
    let paid = s.submit_job(&job(7, 1_000_000), 0).await.unwrap();
    let late = s.submit_job(&job(8, 50), 0).await.unwrap();
    let e = s.submit_job(&job(7, 1_000_000), 0).await.unwrap_err();
    assert_eq!(e.code(), "bad_request", "one coordinator job per escrow job");
    assert_eq!(s.chain_cursor().await.unwrap(), 0);

    // The payment is seen while the job is still proving: it settles when the proof arrives.
    s.claim("0xaa", 1, LEASE).await.unwrap().unwrap();
    s.start_proving(paid, "0xaa", 2, LEASE).await.unwrap();
    let payment = Payment { escrow_job: 7, executor: "0xaa".into(), price: 5u64.try_into().unwrap(), tx: Default::default(), block: 3 };
    assert_eq!(s.record_chain_events(std::slice::from_ref(&payment), &[], 4, 3).await.unwrap(), 1);
    assert_eq!(s.job(paid).await.unwrap().state, Proving);
    s.complete(paid, "0xaa", b"proof", 5).await.unwrap();
    let v = s.job(paid).await.unwrap();
    assert_eq!(states(&v.events), [Queued, Assigned, Proving, Proved, Settled]);
    assert_eq!(v.payment.unwrap().price_wei, "5");
    // The same event read again (a restart re-reads from its cursor) changes nothing.
    s.close().await;
    let s = db.store().await;
    assert_eq!(s.chain_cursor().await.unwrap(), 4);
    assert_eq!(s.record_chain_events(&[payment], &[], 5, 6).await.unwrap(), 0);
    assert_eq!(states(&s.job(paid).await.unwrap().events).len(), 5);

    // An expired job is refunded when the escrow's refund event is seen; a settled one is not.
    assert_eq!(s.expire(60).await.unwrap(), 1);
    s.record_chain_events(&[], &[8, 7], 6, 70).await.unwrap();
    assert_eq!(states(&s.job(late).await.unwrap().events), [Queued, Expired, Refunded]);
    assert_eq!(s.job(paid).await.unwrap().state, Settled);
}
