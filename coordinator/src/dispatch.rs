//! Who gets the next job: the claim policy around the UCB router ([`crate::routing`]). The
//! router learns from deliveries (speed, price) and lapses; when executors waiting outnumber
//! the queued jobs, the router's pick claims first and the others wait [`ROUTE_GRACE`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zkinfer_protocol::types::ExecutorInfo;
use zkinfer_protocol::ExecutorId;

use crate::error::{Error, Result};
use crate::routing::{Outcome, Router};

/// How long an executor the router did not pick waits before claiming: the router's choice,
/// if it is waiting too, gets the job first.
pub const ROUTE_GRACE: Duration = Duration::from_millis(250);

/// Seconds at which the router's speed score halves.
const ROUTER_LATENCY_SCALE_S: f64 = 30.0;

#[derive(Default)]
struct State {
    router: Option<Router>,
    /// Claims open now, per executor.
    waiting: HashMap<ExecutorId, usize>,
}

impl State {
    fn router(&mut self) -> &mut Router {
        self.router.get_or_insert_with(|| Router::new(ROUTER_LATENCY_SCALE_S))
    }
}

/// The routing state shared by every claim.
#[derive(Clone, Default)]
pub struct Dispatch {
    state: Arc<Mutex<State>>,
}

/// How a claim should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether this executor is the router's pick among those waiting.
    pub preferred: bool,
    /// Whether executors waiting outnumber the queued jobs (then the pick goes first).
    pub contended: bool,
}

/// Counts an executor as waiting while its claim request is open.
pub struct Waiting {
    dispatch: Dispatch,
    executor: ExecutorId,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut s) = self.dispatch.state.lock() {
            if let Some(n) = s.waiting.get_mut(&self.executor) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Dispatch {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let mut s = self.state.lock().map_err(|_| Error::Internal("routing state poisoned".into()))?;
        Ok(f(&mut s))
    }

    /// Marks `executor` as waiting until the guard drops.
    pub fn waiting(&self, executor: ExecutorId) -> Result<Waiting> {
        self.with(|s| *s.waiting.entry(executor).or_default() += 1)?;
        Ok(Waiting { dispatch: self.clone(), executor })
    }

    /// Records lapsed leases, then decides how `executor`'s claim goes with `queued` jobs waiting.
    pub fn decide(&self, executor: ExecutorId, lapsed: &[ExecutorId], queued: usize) -> Result<Decision> {
        self.with(|s| {
            for e in lapsed {
                s.router().record(&e.to_string(), Outcome { success: false, seconds: 0.0, price_fraction: 0.0 });
            }
            let mut names: Vec<String> = s.waiting.iter().filter(|(_, &n)| n > 0).map(|(k, _)| k.to_string()).collect();
            names.sort();
            let contended = queued < names.len();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let me = executor.to_string();
            let preferred = s.router().choose(&refs).is_none_or(|pick| pick == me);
            Decision { preferred, contended }
        })
    }

    /// Records how a job on `executor` went.
    pub fn record(&self, executor: ExecutorId, outcome: Outcome) -> Result<()> {
        self.with(|s| s.router().record(&executor.to_string(), outcome))
    }
}

/// An executor's price as a fraction of the highest registered price (0 when unregistered):
/// the router's reward prefers cheaper executors at equal speed and reliability.
pub fn price_fraction(all: &[ExecutorInfo], executor: ExecutorId) -> f64 {
    let price = |e: &ExecutorInfo| f64::from(e.price_wei.0);
    let max = all.iter().map(price).fold(0.0, f64::max);
    all.iter().find(|e| e.address == executor).map_or(0.0, |e| if max > 0.0 { price(e) / max } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, U256};
    use zkinfer_protocol::{HexBytes, Wei};

    use super::*;

    fn info(byte: u8, price: u64) -> ExecutorInfo {
        ExecutorInfo {
            address: ExecutorId(Address::repeat_byte(byte)),
            hpke_public_key: HexBytes(vec![]),
            hpke_key_signature: HexBytes(vec![]),
            stake_wei: Wei::default(),
            price_wei: Wei(U256::from(price)),
            gpu: false,
            models: vec![],
        }
    }

    #[test]
    fn prices_are_fractions_of_the_dearest() {
        let all = [info(1, 10), info(2, 40)];
        assert_eq!(price_fraction(&all, all[0].address), 0.25);
        assert_eq!(price_fraction(&all, all[1].address), 1.0);
        assert_eq!(price_fraction(&all, ExecutorId(Address::repeat_byte(3))), 0.0);
    }

    #[test]
    fn only_waiting_executors_compete_and_the_guard_releases() {
        let d = Dispatch::default();
        let (a, b) = (ExecutorId(Address::repeat_byte(1)), ExecutorId(Address::repeat_byte(2)));
        let ga = d.waiting(a).unwrap();
        assert_eq!(d.decide(a, &[], 0).unwrap(), Decision { preferred: true, contended: true });
        let gb = d.waiting(b).unwrap();
        assert!(d.decide(b, &[], 2).unwrap().contended.eq(&false));
        drop((ga, gb));
        assert!(!d.decide(a, &[], 0).unwrap().contended, "nobody waits any more");
    }
}
