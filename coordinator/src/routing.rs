//! Adaptive routing: choose the executor for the next job with a UCB1 bandit over what each
//! executor has delivered (reliability, latency, price), exploring executors it knows little about.

use std::collections::HashMap;

/// What one job on an executor came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Whether a valid proof arrived before the lease ran out.
    pub success: bool,
    /// Seconds from assignment to proof.
    pub seconds: f64,
    /// The executor's price as a fraction of the job's budget, in `[0, 1]`.
    pub price_fraction: f64,
}

impl Outcome {
    /// The reward in `[0, 1]`: 0 for a failure; otherwise higher for faster and cheaper.
    pub fn reward(&self, latency_scale_s: f64) -> f64 {
        if !self.success {
            return 0.0;
        }
        let speed = latency_scale_s / (latency_scale_s + self.seconds.max(0.0));
        speed * (1.0 - 0.5 * self.price_fraction.clamp(0.0, 1.0))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Arm {
    pulls: u64,
    reward_sum: f64,
}

/// A UCB1 router.
#[derive(Clone, Debug)]
pub struct Router {
    arms: HashMap<String, Arm>,
    total: u64,
    /// Exploration weight: UCB1's is √2; rewards here spread over about [0, 0.6], so less
    /// exploration (0.5) loses less (measured in the simulation test).
    pub exploration: f64,
    /// Seconds at which the speed score is one half.
    pub latency_scale_s: f64,
}

impl Router {
    /// A router with exploration weight 0.5 and a latency scale.
    pub fn new(latency_scale_s: f64) -> Self {
        Router { arms: HashMap::new(), total: 0, exploration: 0.5, latency_scale_s }
    }

    /// The executor to try next among `candidates` (untried ones first, in order).
    pub fn choose<'a>(&self, candidates: &[&'a str]) -> Option<&'a str> {
        if let Some(new) = candidates.iter().find(|c| self.arms.get(**c).is_none_or(|a| a.pulls == 0)) {
            return Some(new);
        }
        let ln_n = (self.total.max(1) as f64).ln();
        candidates.iter().copied().max_by(|a, b| self.score(a, ln_n).total_cmp(&self.score(b, ln_n)))
    }

    fn score(&self, executor: &str, ln_n: f64) -> f64 {
        let arm = self.arms.get(executor).copied().unwrap_or_default();
        let n = arm.pulls.max(1) as f64;
        arm.reward_sum / n + self.exploration * (ln_n / n).sqrt()
    }

    /// Records how a job on `executor` went.
    pub fn record(&mut self, executor: &str, outcome: Outcome) {
        let arm = self.arms.entry(executor.to_string()).or_default();
        arm.pulls += 1;
        arm.reward_sum += outcome.reward(self.latency_scale_s);
        self.total += 1;
    }

    /// Mean reward seen from an executor.
    pub fn mean(&self, executor: &str) -> Option<f64> {
        self.arms.get(executor).filter(|a| a.pulls > 0).map(|a| a.reward_sum / a.pulls as f64)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A simulated executor: mean prove seconds (exponential), failure rate, price fraction.
    struct Sim {
        name: &'static str,
        mean_s: f64,
        fail: f64,
        price: f64,
    }

    const EXECUTORS: [Sim; 5] = [
        Sim { name: "fast-flaky", mean_s: 2.0, fail: 0.45, price: 0.5 },
        Sim { name: "fast-reliable", mean_s: 3.0, fail: 0.02, price: 0.6 },
        Sim { name: "slow-cheap", mean_s: 12.0, fail: 0.05, price: 0.1 },
        Sim { name: "slow-dear", mean_s: 10.0, fail: 0.05, price: 0.9 },
        Sim { name: "broken", mean_s: 4.0, fail: 0.95, price: 0.2 },
    ];
    const SCALE_S: f64 = 5.0;

    fn draw(sim: &Sim, rng: &mut ChaCha8Rng) -> Outcome {
        let seconds = -sim.mean_s * (1.0 - rng.gen::<f64>()).ln();
        Outcome { success: rng.gen::<f64>() >= sim.fail, seconds, price_fraction: sim.price }
    }

    /// Expected reward of an executor, by Monte Carlo with a fixed seed.
    fn expected(sim: &Sim) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        (0..200_000).map(|_| draw(sim, &mut rng).reward(SCALE_S)).sum::<f64>() / 200_000.0
    }

    /// Regret after `jobs` jobs (expected reward of always picking the best executor, minus the
    /// expected reward of the choices made) for UCB and for uniform random choice.
    fn regrets(jobs: usize, seed: u64) -> (f64, f64, String) {
        let means: Vec<f64> = EXECUTORS.iter().map(expected).collect();
        let best = means.iter().copied().fold(0.0, f64::max);
        let names: Vec<&str> = EXECUTORS.iter().map(|s| s.name).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut router = Router::new(SCALE_S);
        let (mut ucb, mut random) = (0.0, 0.0);
        for _ in 0..jobs {
            let pick = router.choose(&names).expect("candidates");
            let i = names.iter().position(|n| *n == pick).expect("known");
            ucb += best - means[i];
            router.record(pick, draw(&EXECUTORS[i], &mut rng));
            random += best - means[rng.gen_range(0..names.len())];
        }
        let best_name = names[means.iter().position(|&m| m == best).expect("max")].to_string();
        (ucb, random, best_name)
    }

    #[test]
    fn ucb_regret_is_far_below_random_and_grows_sublinearly() {
        let (r1k, rand1k, best) = regrets(1_000, 7);
        let (r10k, rand10k, _) = regrets(10_000, 7);
        println!("routing simulation ({best} is best): regret after 1,000 jobs: UCB {r1k:.1}, random {rand1k:.1}; after 10,000: UCB {r10k:.1}, random {rand10k:.1}");
        assert_eq!(best, "fast-reliable");
        assert!(r1k < rand1k / 2.0, "UCB {r1k} vs random {rand1k}");
        // Random's regret is linear (10× the jobs, about 10× the regret); UCB's grows like log n.
        assert!(r10k < 4.0 * r1k, "UCB regret {r1k} → {r10k}");
    }

    #[test]
    fn untried_executors_are_explored_first() {
        let mut r = Router::new(SCALE_S);
        r.record("a", Outcome { success: true, seconds: 1.0, price_fraction: 0.0 });
        assert_eq!(r.choose(&["a", "b"]), Some("b"));
        assert_eq!(r.choose(&[]), None);
        assert!(r.mean("a").is_some_and(|m| m > 0.8));
    }
}
