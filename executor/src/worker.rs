//! The executor's loop: register, resume the journal, claim, prove (or, for an optimistic
//! job, run and post), deliver, get paid; beside it, a loop that follows posted results
//! and, as a validator, re-executes sampled ones ([`crate::optimistic`], [`crate::audit`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zkinfer_protocol::client::{Client, ExecutorClient};
use zkinfer_protocol::seal::{EscrowBinding, SealContext, SealKey};
use zkinfer_protocol::types::{ExecutorRegistration, Lease};
use zkinfer_protocol::{Binding, ErrorCode, EscrowJobId, ExecutorId, HexBytes, JobId, ModelId, Verification, Wei};
use zkinfer_verifier_contract::escrow::{EscrowClient, JobState as EscrowState};

use crate::prover::{ProveFailure, Prover};
use crate::settle::{settle, Journal, Pending, Settled};
use crate::{Error, ExecutorConfig, Result};

/// How long a delivery waits for an unreachable coordinator, one try a second.
const DELIVERY_RETRIES: u32 = 60;
/// The longest pause between retries of a coordinator that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The least time an escrow job must have left for this executor to prove it.
const MIN_TIME_LEFT: Duration = Duration::from_secs(60);

/// A running executor's parts.
pub(crate) struct Executor {
    pub(crate) cfg: ExecutorConfig,
    pub(crate) client: ExecutorClient,
    provers: RwLock<HashMap<ModelId, Arc<Prover>>>,
    pub(crate) seal: SealKey,
    /// The escrow and the chain's id.
    pub(crate) escrow: Option<(EscrowClient, u64)>,
    journal: Journal,
    pub(crate) posted: crate::optimistic::Journal,
    pub(crate) challenges: crate::audit::Journal,
    /// Audits this validator cannot judge, not tried again in this run.
    pub(crate) unjudgeable: std::sync::Mutex<std::collections::HashSet<JobId>>,
    /// Optimistic results a task is advancing now.
    pub(crate) busy: std::sync::Mutex<std::collections::HashSet<EscrowJobId>>,
}

/// How often posted results, disputes and audits are looked at.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Doubles a pause, up to [`MAX_BACKOFF`].
fn backoff(d: Duration) -> Duration {
    (d * 2).min(MAX_BACKOFF)
}

impl Executor {
    /// Loads the models and connects to the escrow.
    pub(crate) async fn start(cfg: ExecutorConfig) -> Result<Self> {
        let mut provers = HashMap::new();
        for (id, dir) in &cfg.models {
            let (id2, dir, msm) = (id.to_string(), dir.clone(), cfg.msm);
            let p = tokio::task::spawn_blocking(move || Prover::load(&id2, &dir, msm))
                .await
                .map_err(|_| Error::Panicked("loading a model"))??;
            provers.insert(id.clone(), Arc::new(p));
        }
        let escrow = match &cfg.chain {
            Some(c) => {
                let client = EscrowClient::connect(&c.rpc_url, c.escrow, Some(cfg.key.clone()))?;
                let chain_id = client.chain_id().await?;
                if let Some(want) = cfg.stake_wei {
                    let active = client.stake_of(cfg.key.address()).await?.active();
                    if active < want {
                        let top_up = want - active;
                        client.stake(top_up).await?;
                        tracing::info!(executor = %ExecutorId(cfg.key.address()), stake_wei = %want, added = %top_up, "staked in the escrow");
                    }
                }
                Some((client, chain_id))
            }
            None => None,
        };
        Ok(Executor {
            client: Client::new(&cfg.coordinator)?.executor(cfg.key.clone()),
            seal: SealKey::derive(cfg.key.to_bytes().as_slice()),
            journal: Journal::new(&cfg.state_dir),
            posted: crate::optimistic::Journal::new(&cfg.state_dir),
            challenges: crate::audit::Journal::new(&cfg.state_dir),
            provers: RwLock::new(provers),
            unjudgeable: Default::default(),
            busy: Default::default(),
            escrow,
            cfg,
        })
    }

    pub(crate) fn id(&self) -> ExecutorId {
        self.client.id()
    }

    /// The prover of a loaded model.
    pub(crate) fn prover(&self, model: &ModelId) -> Option<Arc<Prover>> {
        self.provers.read().ok().and_then(|p| p.get(model).cloned())
    }

    /// Whether the model is loaded.
    pub(crate) fn has_model(&self, model: &ModelId) -> bool {
        self.provers.read().is_ok_and(|p| p.contains_key(model))
    }

    /// Adds a loaded model.
    pub(crate) fn add_prover(&self, model: ModelId, prover: Prover) {
        if let Ok(mut p) = self.provers.write() {
            p.insert(model, Arc::new(prover));
        }
    }

    pub(crate) async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let me = Arc::new(self);
        me.sync_models().await;
        me.register(&shutdown).await?;
        let follower = tokio::spawn(me.clone().follow(shutdown.clone()));
        let result = me.claim_loop(&shutdown).await;
        shutdown.cancel();
        let _ = follower.await;
        tracing::info!(executor = %me.id(), "stopped");
        result
    }

    /// Follows what outlives a lease until `shutdown`: optimistic results (finalize after the
    /// window, prove when challenged) and, as a validator, sampled results to re-execute and
    /// its challenges.
    async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            self.follow_posted().await;
            if self.cfg.validate {
                self.audit_round().await;
                self.follow_challenges().await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
        }
    }

    async fn claim_loop(&self, shutdown: &CancellationToken) -> Result<()> {
        if !self.cfg.claim_jobs {
            // A validator only: it audits (in `follow`) and never takes jobs.
            shutdown.cancelled().await;
            return Ok(());
        }
        let mut pause = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            if self.sync_models().await {
                self.register(shutdown).await?;
            }
            // Unpaid proofs first (left by a crash, or by a chain that was unreachable).
            self.resume().await;
            let claimed = tokio::select! {
                _ = shutdown.cancelled() => break,
                c = self.client.claim() => c,
            };
            match claimed {
                Ok(None) => pause = Duration::from_secs(1), // the long-poll ended empty
                Ok(Some(lease)) => {
                    pause = Duration::from_secs(1);
                    if let Err(e) = self.work(lease).await {
                        tracing::warn!(executor = %self.id(), error = %e, "job ended with an error");
                    }
                }
                // Transient, or refused for want of active stake (bonds of posted results are
                // released when they are paid): wait, and keep following what is posted.
                Err(e) if e.is_transient() || e.code() == Some(ErrorCode::Forbidden) => {
                    tracing::warn!(executor = %self.id(), error = %e, retry_s = pause.as_secs(), "claim failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = backoff(pause);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Tells the coordinator what it serves, retrying while the coordinator is unreachable.
    async fn register(&self, shutdown: &CancellationToken) -> Result<()> {
        let mut models: Vec<ModelId> = self.provers.read().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        models.sort();
        let public = self.seal.public_bytes();
        let info = ExecutorRegistration {
            hpke_key_signature: HexBytes(zkinfer_protocol::seal::sign_hpke_key(&self.cfg.key, &public)?),
            hpke_public_key: HexBytes(public),
            price_wei: Wei(self.cfg.price_wei),
            gpu: false,
            models,
        };
        let mut pause = Duration::from_secs(1);
        loop {
            match self.client.register(&info).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && !shutdown.is_cancelled() => {
                    tracing::warn!(executor = %self.id(), error = %e, "registering failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = backoff(pause);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Finishes what a previous run left in the journal: deliver, then get paid. One entry's
    /// failure is logged and does not stop the others.
    async fn resume(&self) {
        let entries = match self.journal.entries() {
            Ok(e) => e,
            Err(e) => return tracing::warn!(executor = %self.id(), error = %e, "reading the journal failed"),
        };
        let now = crate::settle::now_ms();
        for mut entry in entries.into_iter().filter(|e| e.next_try_ms <= now) {
            tracing::info!(executor = %self.id(), job = %entry.job, escrow_job = %entry.escrow_job, "resuming a journaled proof");
            if let Err(e) = self.deliver_and_settle(&mut entry).await {
                // This entry waits longer each time; the others are not held up by it.
                entry.backoff();
                tracing::warn!(executor = %self.id(), job = %entry.job, error = %e, retry_in_s = entry.retry_in_s(), "journaled proof not settled yet");
                if let Err(e) = self.journal.put_if_present(&entry) {
                    tracing::warn!(executor = %self.id(), error = %e, "recording the retry failed");
                }
            }
        }
    }

    /// What a sealed input of this lease must have been sealed for.
    pub(crate) fn seal_context<'a>(&self, lease: &'a Lease) -> std::result::Result<SealContext<'a>, ProveFailure> {
        let input_commitment = lease.input_commitment.ok_or(ProveFailure::NoCommitment)?;
        let escrow = match (lease.escrow_job, &self.escrow) {
            (Some(job), Some((client, chain_id))) => Some(EscrowBinding { chain_id: *chain_id, escrow: client.address(), job }),
            _ => None,
        };
        Ok(SealContext { model_id: &lease.model_id, input_commitment, escrow })
    }

    /// Who this lease's proof pays: this executor, for the lease's escrow job if it has one.
    pub(crate) fn binding(&self, lease: &Lease) -> Binding {
        match (lease.escrow_job, &self.escrow) {
            (Some(job), Some((client, chain_id))) => {
                Binding { payee: self.id(), chain_id: *chain_id, escrow: client.address(), escrow_job: job }
            }
            _ => Binding::off_chain(self.id()),
        }
    }

    /// Why the lease's escrow job would not pay this executor, if it would not: checked before
    /// any work, from the chain (state, deadline, allow-list, price, bond).
    async fn unpayable(&self, lease: &Lease) -> Result<Option<String>> {
        let (Some(job), Some((escrow, _))) = (lease.escrow_job, &self.escrow) else { return Ok(None) };
        let j = escrow.job(job).await?;
        let me = self.id().address();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let why = if !(j.state == EscrowState::Open || (j.state == EscrowState::Claimed && j.executor == me)) {
            format!("{job} is {:?} on chain", j.state)
        } else if j.deadline <= now + MIN_TIME_LEFT.as_secs() {
            format!("{job} ends at {}, too soon to prove and submit", j.deadline)
        } else if j.restricted && !escrow.allows(job, me).await? {
            format!("{job} does not allow this executor")
        } else if j.token.is_zero() && j.price < self.cfg.price_wei {
            format!("{job} pays {} wei, this executor asks {}", j.price, self.cfg.price_wei)
        } else if escrow.stake_of(me).await?.active() < j.min_bond && j.state == EscrowState::Open {
            format!("{job} needs {} wei of active stake", j.min_bond)
        } else {
            return Ok(None);
        };
        Ok(Some(why))
    }

    async fn work(&self, lease: Lease) -> Result<()> {
        let job = lease.job;
        let Some(prover) = self.prover(&lease.model_id) else {
            // Not ours to prove: let the lease lapse so another executor gets it.
            tracing::warn!(executor = %self.id(), %job, model = %lease.model_id, "job for a model not loaded here; letting its lease lapse");
            return Ok(());
        };
        self.client.start(job).await?;
        if let Some(why) = self.unpayable(&lease).await? {
            tracing::warn!(executor = %self.id(), %job, %why, "the escrow job cannot pay: not proving it");
            return Ok(self.client.fail(job, &ProveFailure::Unpayable(why).to_string()).await?);
        }
        let beat = self.heartbeat(job);
        let payload = self.open_input(&lease);
        let result = if lease.verification == Verification::Optimistic {
            tracing::info!(executor = %self.id(), %job, model = %lease.model_id, "running (optimistic)");
            match payload {
                Ok(payload) => self.run_optimistic(&lease, prover, payload).await,
                Err(reason) => Err(Error::Prove { job, reason }),
            }
        } else {
            tracing::info!(executor = %self.id(), %job, model = %lease.model_id, "proving");
            self.prove_and_finish(&lease, prover, payload).await
        };
        beat.abort();
        match result {
            Err(Error::Prove { reason, .. }) => {
                tracing::warn!(executor = %self.id(), %job, error = %reason, "cannot prove; reporting the failure");
                self.client.fail(job, &reason.to_string()).await.map_err(Error::from)
            }
            other => other,
        }
    }

    /// The lease's input payload (JSON), opened when sealed.
    pub(crate) fn open_input(&self, lease: &Lease) -> std::result::Result<Vec<u8>, ProveFailure> {
        if lease.sealed {
            self.seal_context(lease).and_then(|ctx| self.seal.open(&ctx, &lease.input.0).map_err(ProveFailure::Open))
        } else {
            Ok(lease.input.0.clone())
        }
    }

    /// Proves a ZK job, then delivers the proof and gets paid.
    async fn prove_and_finish(
        &self,
        lease: &Lease,
        prover: Arc<Prover>,
        payload: std::result::Result<Vec<u8>, ProveFailure>,
    ) -> Result<()> {
        let (job, binding, commitment) = (lease.job, self.binding(lease), lease.input_commitment);
        let payload = payload.map_err(|reason| Error::Prove { job, reason })?;
        let c = commitment.ok_or(Error::Prove { job, reason: ProveFailure::NoCommitment })?;
        let proof = tokio::task::spawn_blocking(move || prover.prove(job, &payload, c, &binding))
            .await
            .map_err(|_| Error::Prove { job, reason: ProveFailure::Panicked })??;
        self.finish(job, lease.escrow_job, proof).await
    }

    fn heartbeat(&self, job: JobId) -> tokio::task::JoinHandle<()> {
        let (client, every) = (self.client.clone(), self.cfg.heartbeat);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = client.heartbeat(job).await {
                    tracing::warn!(executor = %client.id(), %job, error = %e, "heartbeat failed");
                }
            }
        })
    }

    /// Delivers a proof; for a paid job, journals it first and then gets paid.
    async fn finish(&self, job: JobId, escrow_job: Option<EscrowJobId>, proof: Vec<u8>) -> Result<()> {
        match (escrow_job, &self.escrow) {
            (Some(escrow_job), Some(_)) => {
                let mut entry = Pending::new(job, escrow_job, &proof);
                self.journal.put(&entry)?;
                self.deliver_and_settle(&mut entry).await
            }
            (Some(escrow_job), None) => {
                tracing::warn!(executor = %self.id(), %job, %escrow_job, "the job is paid through an escrow, but no --rpc-url/--escrow is set: delivering only");
                self.deliver(job, &proof).await.map(|_| ())
            }
            (None, _) => self.deliver(job, &proof).await.map(|_| ()),
        }
    }

    /// Delivers a proof. `Ok(false)` when the job moved on (its lease lapsed and it was
    /// re-leased or proved by another executor): the proof is still valid on chain.
    async fn deliver(&self, job: JobId, proof: &[u8]) -> Result<bool> {
        // An unreachable coordinator (restarting, say) gets DELIVERY_RETRIES seconds to come back.
        let mut tries = 0;
        loop {
            match self.client.deliver(job, proof).await {
                Ok(()) => {
                    tracing::info!(executor = %self.id(), %job, "delivered");
                    return Ok(true);
                }
                Err(e) if matches!(e.code(), Some(ErrorCode::BadState | ErrorCode::NotLeaseHolder)) => {
                    tracing::warn!(executor = %self.id(), %job, error = %e, "the job moved on before delivery");
                    return Ok(false);
                }
                Err(e) if e.is_transient() && tries < DELIVERY_RETRIES => {
                    tries += 1;
                    tracing::warn!(executor = %self.id(), %job, error = %e, "delivery failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn deliver_and_settle(&self, entry: &mut Pending) -> Result<()> {
        if !entry.delivered {
            let proof = entry.proof_bytes()?;
            if let Err(e) = self.deliver(entry.job, &proof).await {
                if matches!(&e, Error::Coordinator(p) if p.code() == Some(ErrorCode::InvalidProof)) {
                    // The proof itself was refused: the escrow would refuse it too.
                    self.journal.done(entry.escrow_job)?;
                }
                return Err(e);
            }
            entry.delivered = true;
            self.journal.put(entry)?;
        }
        let Some((escrow, _)) = &self.escrow else { return Ok(()) };
        let settled = match settle(escrow, &self.journal, entry).await {
            Err(e @ (Error::Unpayable { .. } | Error::SubmissionReverted { .. })) => {
                // Nothing will pay for it (refunded, expired, claimed by another), or the one
                // submission it gets reverted: stop, rather than pay gas again and again.
                self.journal.done(entry.escrow_job)?;
                return Err(e);
            }
            other => other?,
        };
        match settled {
            Settled::Paid(tx) => {
                tracing::info!(executor = %self.id(), job = %entry.job, escrow_job = %entry.escrow_job, tx = %tx, "paid")
            }
            Settled::AlreadyPaid { to } => {
                tracing::info!(executor = %self.id(), escrow_job = %entry.escrow_job, payee = %to, "already paid; not submitting again")
            }
        }
        self.journal.done(entry.escrow_job)
    }
}
