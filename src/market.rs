//! `zkinfer coordinator`: the proving market's HTTP service.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zkinfer_coordinator::api::{now_ms, Api};
use zkinfer_coordinator::store::Store;

use crate::{CoordinatorArgs, Outcome};

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

pub(crate) fn coordinator(a: &CoordinatorArgs) -> Result<Outcome> {
    let customers: HashMap<String, String> = pairs(&a.api_keys, "--api-key")?.into_iter().map(|(name, key)| (key, name)).collect();
    let models = pairs(&a.models, "--model")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let store = Store::open(&a.database_url).await.with_context(|| format!("opening {}", a.database_url))?;
        for (id, len) in models {
            let len: usize = len.parse().with_context(|| format!("--model {id}: input length `{len}`"))?;
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
        let api = Api::new(store, customers, Duration::from_secs(a.lease_secs), Duration::from_secs(a.long_poll_secs));
        let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("binding {}", a.listen))?;
        println!("coordinator listening on http://{} (database {})", listener.local_addr()?, a.database_url);
        axum::serve(listener, api.router()).await.context("serving")?;
        Ok(Outcome::Ok)
    })
}
