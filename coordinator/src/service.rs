//! The coordinator as a service: [`Service::bind`] wires the store, the models, the escrow
//! watcher and the expiry sweeper to the API; [`Service::run`] serves until its stop signal,
//! then lets in-flight requests finish (long-polls end at once) before it returns.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use tokio_util::sync::CancellationToken;
use zkinfer_protocol::ModelId;
use zkinfer_verifier_contract::escrow::EscrowClient;

use crate::chain::WatchConfig;
use crate::check::ProofChecker;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::registry::{ModelRegistry, Registration};
use crate::routes::{app, AppState};
use crate::store::Store;
use zkinfer_verifier_contract::solc::Toolchain;

/// How often deadlines are checked.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

/// Where the escrow is and how to watch it.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// The JSON-RPC endpoint.
    pub rpc_url: String,
    /// The `InferenceEscrow` contract.
    pub escrow: Address,
    /// How events are read.
    pub watch: WatchConfig,
    /// The Solidity toolchain: each model's verifier is compiled with it, and escrow jobs
    /// whose registered verifier differs are refused.
    pub toolchain: PathBuf,
}

/// What a coordinator serves, and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; see [`Service::local_addr`]).
    pub listen: SocketAddr,
    /// `sqlite:FILE` or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// API key → customer name.
    pub customers: HashMap<String, String>,
    /// Set-up model directories.
    pub models: Vec<(ModelId, PathBuf)>,
    /// Accept model registrations over HTTP into this directory, with this SRS.
    pub registration: Option<Registration>,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How long a claim waits for a job.
    pub long_poll: Duration,
    /// Settle through this escrow; `None` runs the market off chain.
    pub chain: Option<ChainConfig>,
    /// What it accepts.
    pub policy: Policy,
}

/// A bound, wired coordinator, ready to run.
pub struct Service {
    listener: tokio::net::TcpListener,
    state: AppState,
    store: Store,
    escrow: Option<(EscrowClient, WatchConfig)>,
    shutdown: CancellationToken,
}

impl Service {
    /// Opens the store, loads the models (regenerating each verifying key), connects to the
    /// escrow (which must answer), and binds the listener.
    pub async fn bind(config: Config) -> Result<Self> {
        let (models, registration) = (config.models.clone(), config.registration.clone());
        let toolchain = match &config.chain {
            Some(c) => Some(Toolchain::new(&c.toolchain).map_err(|e| Error::BadRequest(format!("--toolchain: {e}")))?),
            None => None,
        };
        let registry = tokio::task::spawn_blocking(move || {
            let mut r = ModelRegistry::load(&models, registration)?;
            if let Some(tc) = toolchain {
                // Each served model's verifier, as escrow registrations are checked against it.
                r = r.with_toolchain(tc);
                for id in r.ids() {
                    tracing::info!(model = %id, "building the model's verifier to pin escrow registrations to (cached after the first time)");
                    r.verifier(&id)?;
                }
            }
            Ok::<_, Error>(r)
        })
        .await
        .map_err(|e| Error::Internal(format!("loading models: {e}")))??;
        let registry = Arc::new(registry);
        let store = Store::open(&config.database_url).await?;
        for id in registry.ids() {
            let len = registry.input_len(&id).ok_or_else(|| Error::UnknownModel(id.to_string()))?;
            store.register_model(&id, len, now_ms()).await?;
        }
        let shutdown = CancellationToken::new();
        let mut state = AppState::new(store.clone(), registry.clone(), config.customers.clone(), config.lease, config.long_poll)
            .with_shutdown(shutdown.clone())
            .with_policy(config.policy.clone());
        if registry.accepts_registrations() {
            state = state.with_registrar(registry.clone());
        }
        let mut escrow = None;
        if let Some(c) = &config.chain {
            let client = EscrowClient::connect(&c.rpc_url, c.escrow, None)?;
            // Fail now, not at the first job, when the endpoint or the contract is wrong.
            client.model_count().await?;
            let chain_id = client.chain_id().await?;
            tracing::info!(escrow = %c.escrow, rpc = %c.rpc_url, chain_id, "settling jobs through the escrow");
            state = state.with_escrow(client.clone(), chain_id);
            escrow = Some((client, c.watch));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::BadRequest(format!("cannot listen on {}: {e}", config.listen)))?;
        Ok(Service { listener, state, store, escrow, shutdown })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Internal(format!("listener address: {e}")))
    }

    /// Serves until `stop` resolves, then finishes the requests in flight and returns.
    pub async fn run(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        let (sweeper, token) = (self.store.clone(), self.shutdown.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(EXPIRY_SWEEP) => {}
                }
                if let Err(e) = sweeper.expire(now_ms()).await {
                    tracing::warn!(error = %e, "expiry sweep failed");
                }
            }
        });
        if let Some((client, watch)) = self.escrow {
            let min_stake = self.state.policy.min_stake;
            tasks.spawn(crate::audit::sample(self.store.clone(), client.clone(), min_stake, watch.every, self.shutdown.clone()));
            tasks.spawn(crate::chain::watch(self.store.clone(), client, watch, self.shutdown.clone()));
        }
        let token = self.shutdown.clone();
        let signal = async move {
            stop.await;
            tracing::info!("shutting down: finishing the requests in flight");
            token.cancel();
        };
        let served = axum::serve(self.listener, app(self.state)).with_graceful_shutdown(signal).await;
        self.shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        served.map_err(|e| Error::Internal(format!("serving: {e}")))
    }
}

/// Binds and runs a coordinator until `stop` resolves.
pub async fn serve(config: Config, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    Service::bind(config).await?.run(stop).await
}
