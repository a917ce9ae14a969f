//! `zkinfer coordinator` and `zkinfer executor`: parse, build the configs, run the services
//! until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;
use zkinfer_coordinator::chain::WatchConfig;
use zkinfer_coordinator::registry::Registration;
use zkinfer_coordinator::{ChainConfig, Config, Service};
use zkinfer_executor::ExecutorConfig;
use zkinfer_protocol::{ExecutorId, ModelId};
use zkinfer_prover::srs::SrsChoice;

use crate::{CoordinatorArgs, ExecutorArgs, Outcome};

fn pairs(list: &[String], what: &str) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|p| match p.split_once(':') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => bail!("{what} `{p}`: expected NAME:VALUE"),
        })
        .collect()
}

fn model_dirs(list: &[String]) -> Result<Vec<(ModelId, PathBuf)>> {
    pairs(list, "--model")?
        .into_iter()
        .map(|(id, dir)| Ok((ModelId::new(&id).with_context(|| format!("--model {id}:{dir}"))?, PathBuf::from(dir))))
        .collect()
}

fn srs_choice(file: &Option<PathBuf>, dev: bool) -> Option<SrsChoice> {
    match (file, dev) {
        (Some(f), _) => Some(SrsChoice::File(f.clone())),
        (None, true) => {
            tracing::warn!("--dev-srs: keys of fetched or registered models use the INSECURE development SRS");
            Some(SrsChoice::Dev)
        }
        (None, false) => None,
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(crate) fn coordinator(a: &CoordinatorArgs) -> Result<Outcome> {
    let customers: HashMap<String, String> = pairs(&a.api_keys, "--api-key")?.into_iter().map(|(name, key)| (key, name)).collect();
    let registration = match (&a.models_dir, srs_choice(&a.srs, a.dev_srs)) {
        (Some(dir), Some(srs)) => Some(Registration { dir: dir.clone(), srs }),
        (Some(_), None) => bail!("--models-dir needs --srs FILE or --dev-srs (the SRS for registered models' keys)"),
        (None, _) => None,
    };
    let chain = match (&a.rpc_url, a.escrow) {
        (Some(rpc_url), Some(escrow)) => Some(ChainConfig {
            rpc_url: rpc_url.clone(),
            escrow,
            watch: WatchConfig {
                every: Duration::from_millis(a.chain_poll_ms.max(50)),
                from_block: a.from_block,
                max_range: a.max_block_range,
                confirmations: a.confirmations,
            },
            toolchain: a.toolchain.clone(),
        }),
        _ => None,
    };
    let policy = zkinfer_coordinator::Policy {
        min_deadline: Duration::from_secs(a.min_deadline_secs),
        min_stake: a.min_stake_wei,
        min_price: a.min_price_wei,
        max_lease: Duration::from_secs(a.max_lease_secs.max(a.lease_secs)),
        register_timeout: Duration::from_secs(a.register_timeout_secs),
        admin_keys: a.admin_keys.iter().cloned().collect(),
        optimistic: zkinfer_protocol::optimistic::OptimisticPolicy {
            min_challenge_window_s: a.min_challenge_window_secs,
            min_prove_window_s: a.min_prove_window_secs,
            min_challenge_bond_wei: zkinfer_protocol::Wei(a.min_challenge_bond_wei),
            audit_safety_bps: a.audit_safety_bps,
        },
    };
    let config = Config {
        listen: a.listen,
        database_url: a.database_url.clone(),
        customers,
        models: model_dirs(&a.models)?,
        registration,
        lease: Duration::from_secs(a.lease_secs),
        long_poll: Duration::from_secs(a.long_poll_secs),
        chain,
        policy,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let service = Service::bind(config).await.context("starting the coordinator")?;
        // Scripts and tests read the bound address from this line.
        println!("coordinator listening on http://{} (database {})", service.local_addr()?, a.database_url);
        service.run(stop_signal()).await?;
        tracing::info!("coordinator stopped");
        Ok(Outcome::Ok)
    })
}

pub(crate) fn executor(a: &ExecutorArgs) -> Result<Outcome> {
    let models = model_dirs(&a.models)?.into_iter().collect();
    let key: alloy::signers::local::PrivateKeySigner = match &a.key {
        Some(k) => k.parse().context("--key: not a private key (0x and 64 hex digits)")?,
        None => {
            tracing::warn!("no --key: this executor has a new random identity (and payee) each run");
            alloy::signers::local::PrivateKeySigner::random()
        }
    };
    let name = ExecutorId(key.address());
    let chain = match (&a.rpc_url, a.escrow) {
        (Some(rpc_url), Some(escrow)) => Some(zkinfer_executor::ChainConfig { rpc_url: rpc_url.clone(), escrow }),
        _ => None,
    };
    let cfg = ExecutorConfig {
        coordinator: a.coordinator.clone(),
        key,
        models,
        heartbeat: Duration::from_secs(a.heartbeat_secs.max(1)),
        price_wei: a.price_wei,
        stake_wei: a.stake_wei,
        state_dir: a.state_dir.clone(),
        chain,
        fetch_models: match (a.fetch_models, srs_choice(&a.srs, a.dev_srs)) {
            (true, Some(srs)) => Some(srs),
            (true, None) => bail!("--fetch-models needs --srs FILE or --dev-srs (the SRS for fetched models' keys)"),
            (false, _) => None,
        },
        msm: a.msm,
        claim_jobs: a.role != crate::Role::Validator,
        validate: a.role != crate::Role::Executor,
        post_wrong_outputs: a.post_wrong_outputs,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tracing::info!(executor = %name, models = a.models.len(), coordinator = %a.coordinator, "executor starting");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            stop_signal().await;
            tracing::info!("stopping after the job in hand");
            token.cancel();
        });
        zkinfer_executor::run(cfg, shutdown).await
    })?;
    Ok(Outcome::Ok)
}
