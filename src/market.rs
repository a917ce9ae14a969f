//! `zkinfer coordinator`: the proving market's HTTP service.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zkinfer_coordinator::api::{now_ms, Api};
use zkinfer_coordinator::chain::Escrow;
use zkinfer_coordinator::check::ProofChecker;
use zkinfer_coordinator::registry::ModelRegistry;
use zkinfer_coordinator::store::Store;
use zkinfer_executor::{ChainConfig, ExecutorConfig};
use zkinfer_prover::srs::SrsChoice;

use crate::{CoordinatorArgs, ExecutorArgs, Outcome};

/// How often deadlines are checked.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

fn pairs(list: &[String], what: &str) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|p| match p.split_once(':') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => bail!("{what} `{p}`: expected NAME:VALUE"),
        })
        .collect()
}

fn srs_choice(file: &Option<std::path::PathBuf>, dev: bool) -> Option<SrsChoice> {
    match (file, dev) {
        (Some(f), _) => Some(SrsChoice::File(f.clone())),
        (None, true) => {
            eprintln!("WARNING: --dev-srs: keys of fetched or registered models use the INSECURE development SRS.");
            Some(SrsChoice::Dev)
        }
        (None, false) => None,
    }
}

pub(crate) fn coordinator(a: &CoordinatorArgs) -> Result<Outcome> {
    let customers: HashMap<String, String> = pairs(&a.api_keys, "--api-key")?.into_iter().map(|(name, key)| (key, name)).collect();
    let models: Vec<(String, std::path::PathBuf)> = pairs(&a.models, "--model")?.into_iter().map(|(id, d)| (id, d.into())).collect();
    let registration = match (&a.models_dir, srs_choice(&a.srs, a.dev_srs)) {
        (Some(dir), Some(srs)) => Some((dir.clone(), srs)),
        (Some(_), None) => bail!("--models-dir needs --srs FILE or --dev-srs (the SRS for registered models' keys)"),
        (None, _) => None,
    };
    let registry = std::sync::Arc::new(ModelRegistry::load(&models, registration)?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let store = Store::open(&a.database_url).await.with_context(|| format!("opening {}", a.database_url))?;
        for id in registry.ids() {
            let len = registry.input_len(&id).context("a registered model")?;
            store.register_model(&id, len, now_ms()).await?;
        }
        let sweeper = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(EXPIRY_SWEEP).await;
                if let Err(e) = sweeper.expire(now_ms()).await {
                    eprintln!("coordinator: expiry sweep failed: {e}");
                }
            }
        });
        let mut api =
            Api::new(store.clone(), registry.clone(), customers, Duration::from_secs(a.lease_secs), Duration::from_secs(a.long_poll_secs));
        if a.models_dir.is_some() {
            api = api.with_registrar(registry.clone());
        }
        if let (Some(rpc), Some(address)) = (&a.rpc_url, a.escrow) {
            let escrow = Escrow::connect(rpc, address)?;
            escrow.payments_since(0).await.with_context(|| format!("reading the escrow at {address:#x} through {rpc}"))?;
            tokio::spawn(zkinfer_coordinator::chain::watch(store, escrow.clone(), Duration::from_millis(a.chain_poll_ms.max(50))));
            eprintln!("coordinator settles jobs through the escrow at {address:#x} ({rpc})");
            api = api.with_escrow(escrow);
        }
        let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("binding {}", a.listen))?;
        println!("coordinator listening on http://{} (database {})", listener.local_addr()?, a.database_url);
        axum::serve(listener, api.router()).await.context("serving")?;
        Ok(Outcome::Ok)
    })
}

pub(crate) fn executor(a: &ExecutorArgs) -> Result<Outcome> {
    let models = pairs(&a.models, "--model")?.into_iter().map(|(id, d)| (id, d.into())).collect();
    let key: alloy::signers::local::PrivateKeySigner = match &a.key {
        Some(k) => k.parse().context("--key: not a private key")?,
        None => alloy::signers::local::PrivateKeySigner::random(),
    };
    let name = zkinfer_coordinator::auth::address_string(key.address());
    let chain = match (&a.rpc_url, a.escrow) {
        (Some(rpc_url), Some(escrow)) => Some(ChainConfig { rpc_url: rpc_url.clone(), escrow }),
        _ => None,
    };
    let cfg = ExecutorConfig {
        coordinator: a.coordinator.clone(),
        key,
        models,
        heartbeat: Duration::from_secs(a.heartbeat_secs.max(1)),
        price_wei: a.price_wei,
        state_dir: a.state_dir.clone(),
        chain,
        fetch_models: match (a.fetch_models, srs_choice(&a.srs, a.dev_srs)) {
            (true, Some(srs)) => Some(srs),
            (true, None) => bail!("--fetch-models needs --srs FILE or --dev-srs (the SRS for fetched models' keys)"),
            (false, _) => None,
        },
        msm: a.msm,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("executor {name} serving {} model(s) for {}", a.models.len(), a.coordinator);
    rt.block_on(zkinfer_executor::run(cfg))?;
    Ok(Outcome::Ok)
}
