//! The escrow's batch settlement (`registerBatchVerifier`, `trustBatchVerifier`, `submitBatch`)
//! on anvil, with stand-in verifiers, so that every check the escrow itself makes is tried
//! alone: the proof is not what these cases are about (the aggregated proof's own tests are in
//! `prover/aggregate` and `tests/aggregation.rs`). Every case asserts balances to the wei.

#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use zkinfer_protocol::{Commitment, EscrowJobId};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::escrow::{EscrowClient, JobState, OpenJob, IERC20};
use zkinfer_verifier_contract::market::{escrow_code, EscrowTerms};
use zkinfer_verifier_contract::solc::{Compiler, Toolchain};

const OWNER: usize = 0;
const CUSTOMER: usize = 1;
const EXECUTORS: [usize; 2] = [2, 3];
const STRANGER: usize = 4;
const OTHER_CUSTOMER: usize = 5;
/// A model's instances: commitment, the four binding rows, and three outputs.
const N: u32 = 8;
const GAS: u64 = 6_000_000;

fn r() -> U256 {
    U256::from_str_radix("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001", 16).unwrap()
}

struct Setup {
    chain: LocalChain,
    escrow: Address,
    models: [u64; 2],
    accepting: u64,
    reverting: u64,
    chain_id: u64,
}

impl Setup {
    async fn new(tc: &Toolchain) -> Self {
        let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
        let deploy = |name: &'static str| {
            let code = tc.compile_one(Compiler::Escrow, &tc.test_contracts_source(), name, Some(200)).unwrap().bytecode;
            let d = chain.deployer(OWNER);
            async move { d.deploy(code).await.unwrap() }
        };
        let (yes, no) = (deploy("AlwaysAccepts").await, deploy("AlwaysReverts").await);
        let escrow = chain.deployer(OWNER).deploy(escrow_code(tc, EscrowTerms::default()).unwrap()).await.unwrap();
        let c = chain.escrow(escrow, OWNER).unwrap();
        let models = [c.register_model(yes, &[], [1; 32], N).await.unwrap(), c.register_model(yes, &[], [2; 32], N).await.unwrap()];
        let s = chain.escrow(escrow, STRANGER).unwrap();
        // Anyone may register a batch verifier; only the customers who trust it are settled by it.
        let accepting = s.register_batch_verifier(yes, &[], &[models[0], models[0], models[1], models[0]]).await.unwrap();
        let reverting = s.register_batch_verifier(no, &[], &[models[0], models[0], models[1], models[0]]).await.unwrap();
        let chain_id = c.chain_id().await.unwrap();
        Setup { chain, escrow, models, accepting, reverting, chain_id }
    }

    /// A fresh setup with a test token: the customer holds 10^7 units and trusts the accepting
    /// batch verifier, and both executors stake.
    async fn with_token(tc: &Toolchain) -> (Self, Address) {
        let s = Setup::new(tc).await;
        let code = tc.compile_one(Compiler::Escrow, &tc.test_contracts_source(), "TestToken", Some(200)).unwrap().bytecode;
        let token = s.chain.deployer(OWNER).deploy(code).await.unwrap();
        let erc20 = IERC20::new(token, s.chain.provider(OWNER));
        erc20.mint(s.chain.account(CUSTOMER), U256::from(10_000_000u64)).send().await.unwrap().get_receipt().await.unwrap();
        for e in EXECUTORS {
            s.client(e).stake(U256::from(10_000u64)).await.unwrap();
        }
        s.client(CUSTOMER).trust_batch_verifier(s.accepting, true).await.unwrap();
        (s, token)
    }

    fn client(&self, i: usize) -> EscrowClient {
        self.chain.escrow(self.escrow, i).unwrap()
    }

    async fn balance(&self, i: usize) -> U256 {
        self.chain.balance(self.chain.account(i)).await.unwrap()
    }

    async fn open(&self, customer: usize, model: u64, commitment: u64, price: U256) -> EscrowJobId {
        self.open_paying(customer, model, commitment, price, None).await
    }

    /// As [`Setup::open`], paid in `token` (None: ETH).
    async fn open_paying(&self, customer: usize, model: u64, commitment: u64, price: U256, token: Option<Address>) -> EscrowJobId {
        let deadline = self.chain.timestamp().await.unwrap() + 3600;
        let open = OpenJob {
            model,
            commitment: Commitment::try_from(U256::from(commitment)).unwrap(),
            deadline,
            allow: vec![],
            token,
            price,
            min_bond: U256::from(1_000u64),
            claimable: false,
            optimistic: None,
        };
        self.client(customer).open_job(&open).await.unwrap()
    }

    /// One job's own instances, as its proof would have them.
    fn own(&self, commitment: u64, payee: usize, job: EscrowJobId) -> Vec<U256> {
        let payee = U256::from_be_slice(self.chain.account(payee).as_slice());
        let escrow = U256::from_be_slice(self.escrow.as_slice());
        let mut v = vec![U256::from(commitment), payee, U256::from(self.chain_id), escrow, job.to_u256()];
        v.extend((0..N as u64 - 5).map(|i| U256::from(100 + i)));
        v
    }

    /// A submission from `STRANGER` that must revert and move no money.
    async fn refused(&self, what: &str, batch: u64, jobs: &[EscrowJobId], words: Vec<U256>) {
        let held = self.chain.balance(self.escrow).await.unwrap();
        let e = self.client(STRANGER).submit_batch_raw(batch, jobs, words, vec![0u8; 64], GAS).await;
        assert!(e.is_err(), "{what} was accepted");
        assert_eq!(self.chain.balance(self.escrow).await.unwrap(), held, "{what}: money moved");
    }
}

fn words(parts: &[Vec<U256>]) -> Vec<U256> {
    let mut w: Vec<U256> = (0..12u64).map(U256::from).collect();
    for p in parts {
        w.extend(p.iter().copied());
    }
    w
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_pays_each_job_to_its_own_bound_payee_and_refuses_every_batch_that_does_not_bind_each_job() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let s = Setup::new(&tc).await;
    let c = s.client(STRANGER);
    // Registration: no code, no models, an unknown model are refused.
    let yes = s.client(OWNER).batch_verifier(s.accepting).await.unwrap().verifier;
    assert!(c.register_batch_verifier(s.chain.account(STRANGER), &[], &[s.models[0]]).await.is_err(), "an address without code");
    assert!(c.register_batch_verifier(yes, &[], &[]).await.is_err(), "no models");
    assert!(c.register_batch_verifier(yes, &[], &[99]).await.is_err(), "an unknown model");
    let recorded = s.client(OWNER).batch_verifier(s.accepting).await.unwrap();
    assert_eq!(recorded.models, vec![s.models[0], s.models[0], s.models[1], s.models[0]]);
    assert_eq!(recorded.num_instances, 12 + 4 * N as u64);
    assert!(s.client(CUSTOMER).trust_batch_verifier(77, true).await.is_err(), "an unknown batch verifier");

    for e in EXECUTORS {
        s.client(e).stake(U256::from(10_000u64)).await.unwrap();
    }
    let price = |i: u64| U256::from(1_000_000_000_000_000u64 + i);
    let mut jobs = Vec::new();
    for (i, model) in [s.models[0], s.models[0], s.models[1], s.models[0]].into_iter().enumerate() {
        jobs.push(s.open(CUSTOMER, model, 7 + i as u64, price(i as u64)).await);
    }
    let payees = [EXECUTORS[0], EXECUTORS[1], EXECUTORS[0], EXECUTORS[1]];
    let own: Vec<Vec<U256>> = (0..4).map(|i| s.own(7 + i as u64, payees[i], jobs[i])).collect();
    let good = words(&own);

    // The customer has not trusted the batch verifier: nothing is paid, whoever trusts it.
    s.refused("an untrusted batch verifier", s.accepting, &jobs, good.clone()).await;
    s.client(OTHER_CUSTOMER).trust_batch_verifier(s.accepting, true).await.unwrap();
    s.refused("a verifier only another customer trusts", s.accepting, &jobs, good.clone()).await;
    s.client(CUSTOMER).trust_batch_verifier(s.accepting, true).await.unwrap();
    s.client(CUSTOMER).trust_batch_verifier(s.reverting, true).await.unwrap();

    s.refused("a verifier that rejects the proof", s.reverting, &jobs, good.clone()).await;
    s.refused("an unknown batch verifier", 99, &jobs, good.clone()).await;
    s.refused("three jobs for four", s.accepting, &jobs[..3], words(&own[..3])).await;
    s.refused("one instance short", s.accepting, &jobs, good[..good.len() - 1].to_vec()).await;
    let mut twice = jobs.clone();
    twice[3] = jobs[0];
    let mut twice_own = own.clone();
    twice_own[3] = own[0].clone();
    s.refused("a job listed twice", s.accepting, &twice, words(&twice_own)).await;
    let mut swapped = jobs.clone();
    swapped.swap(1, 2);
    s.refused(
        "jobs out of the verifier's model order",
        s.accepting,
        &swapped,
        words(&[own[0].clone(), own[2].clone(), own[1].clone(), own[3].clone()]),
    )
    .await;
    let mut crossed = own.clone();
    crossed.swap(0, 1);
    s.refused("each job's slice bound to the other job", s.accepting, &jobs, words(&crossed)).await;
    for (row, what) in [(0, "another input commitment"), (2, "another chain"), (3, "another escrow"), (4, "another job id")] {
        let mut bad = own.clone();
        bad[2][row] += U256::from(1);
        s.refused(what, s.accepting, &jobs, words(&bad)).await;
    }
    let mut unstaked = own.clone();
    unstaked[1][1] = U256::from_be_slice(s.chain.account(STRANGER).as_slice());
    s.refused("a payee without stake", s.accepting, &jobs, words(&unstaked)).await;
    let mut acc = good.clone();
    acc[5] += r();
    s.refused("an accumulator limb plus r", s.accepting, &jobs, acc).await;
    let mut out = good.clone();
    *out.last_mut().unwrap() += r();
    s.refused("an output plus r", s.accepting, &jobs, out).await;

    // The batch, sent by a stranger: each payee gets exactly its jobs' prices.
    let before = [s.balance(EXECUTORS[0]).await, s.balance(EXECUTORS[1]).await, s.balance(STRANGER).await];
    let held = s.chain.balance(s.escrow).await.unwrap();
    let paid = s.client(STRANGER).submit_batch_raw(s.accepting, &jobs, good.clone(), vec![0u8; 64], GAS).await.unwrap();
    println!("escrow submitBatch gas for 4 jobs ({}, stand-in verifier): {}", s.chain.hardfork, paid.gas_used);
    assert_eq!(s.balance(EXECUTORS[0]).await, before[0] + price(0) + price(2));
    assert_eq!(s.balance(EXECUTORS[1]).await, before[1] + price(1) + price(3));
    assert_eq!(s.balance(STRANGER).await, before[2] - paid.fee, "the sender is paid nothing");
    assert_eq!(s.chain.balance(s.escrow).await.unwrap(), held - (0..4).map(price).fold(U256::ZERO, |a, b| a + b));
    for (i, job) in jobs.iter().enumerate() {
        let j = s.client(OWNER).job(*job).await.unwrap();
        assert_eq!((j.state, j.executor), (JobState::Paid, s.chain.account(payees[i])));
    }
    s.refused("the same batch again", s.accepting, &jobs, good).await;

    // A customer withdraws its trust in front of a batch of its open jobs (whose calldata shows
    // their outputs): the jobs opened while it trusted the verifier are still settled by it.
    let open4 = |first: u64| {
        let s = &s;
        async move {
            let mut jobs = Vec::new();
            for (i, model) in [s.models[0], s.models[0], s.models[1], s.models[0]].into_iter().enumerate() {
                jobs.push(s.open(CUSTOMER, model, first + i as u64, price(0)).await);
            }
            let own: Vec<Vec<U256>> = (0..4).map(|i| s.own(first + i as u64, payees[i], jobs[i])).collect();
            (jobs, words(&own))
        }
    };
    let (held_jobs, held_words) = open4(20).await;
    s.client(CUSTOMER).trust_batch_verifier(s.accepting, false).await.unwrap();
    let before = [s.balance(EXECUTORS[0]).await, s.balance(EXECUTORS[1]).await];
    let held = s.chain.balance(s.escrow).await.unwrap();
    s.client(STRANGER).submit_batch_raw(s.accepting, &held_jobs, held_words, vec![0u8; 64], GAS).await.unwrap();
    assert_eq!(s.balance(EXECUTORS[0]).await, before[0] + price(0) + price(0), "jobs opened under trust are paid");
    assert_eq!(s.balance(EXECUTORS[1]).await, before[1] + price(0) + price(0), "jobs opened under trust are paid");
    assert_eq!(s.chain.balance(s.escrow).await.unwrap(), held - price(0) * U256::from(4u64));

    // Its jobs opened after the withdrawal are not settled by the verifier, nor after trusting
    // and withdrawing again.
    let (more, more_words) = open4(30).await;
    s.refused("a job opened after the trust was withdrawn", s.accepting, &more, more_words.clone()).await;
    s.client(CUSTOMER).trust_batch_verifier(s.reverting, false).await.unwrap();
    s.refused("the same after withdrawing another verifier's trust", s.accepting, &more, more_words).await;
    let (late, late_words) = open4(40).await;
    s.client(CUSTOMER).trust_batch_verifier(s.accepting, true).await.unwrap();
    s.client(CUSTOMER).trust_batch_verifier(s.accepting, false).await.unwrap();
    let (after, after_words) = open4(50).await;
    s.refused("a job opened after the second withdrawal", s.accepting, &after, after_words).await;
    // Trusted again and withdrawn: the jobs opened before that second withdrawal are covered.
    let held = s.chain.balance(s.escrow).await.unwrap();
    s.client(STRANGER).submit_batch_raw(s.accepting, &late, late_words, vec![0u8; 64], GAS).await.unwrap();
    assert_eq!(s.chain.balance(s.escrow).await.unwrap(), held - price(0) * U256::from(4u64));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payee_the_token_refuses_is_credited_and_the_rest_of_the_batch_is_paid() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let (s, token) = Setup::with_token(&tc).await;
    let erc20 = |i: usize| IERC20::new(token, s.chain.provider(i));
    let tokens = |who: Address| {
        let s = &s;
        async move { s.client(OWNER).balance(Some(token), who).await.unwrap() }
    };
    let price = |i: u64| U256::from(1_000_000u64 + i);
    let mut jobs = Vec::new();
    for (i, model) in [s.models[0], s.models[0], s.models[1], s.models[0]].into_iter().enumerate() {
        jobs.push(s.open_paying(CUSTOMER, model, 60 + i as u64, price(i as u64), Some(token)).await);
    }
    let payees = [EXECUTORS[0], EXECUTORS[1], EXECUTORS[0], EXECUTORS[1]];
    let own: Vec<Vec<U256>> = (0..4).map(|i| s.own(60 + i as u64, payees[i], jobs[i])).collect();
    // The token blacklists the second executor after the jobs were opened.
    let blocked = s.chain.account(EXECUTORS[1]);
    erc20(OWNER).setBlocked(blocked, true).send().await.unwrap().get_receipt().await.unwrap();
    let held = tokens(s.escrow).await;
    let before = [tokens(s.chain.account(EXECUTORS[0])).await, tokens(blocked).await];
    s.client(STRANGER).submit_batch_raw(s.accepting, &jobs, words(&own), vec![0u8; 64], GAS).await.unwrap();
    assert_eq!(tokens(s.chain.account(EXECUTORS[0])).await, before[0] + price(0) + price(2), "the other payee is paid");
    assert_eq!(tokens(blocked).await, before[1], "the refused payee got nothing yet");
    let owed = price(1) + price(3);
    assert_eq!(s.client(OWNER).token_credit_of(token, blocked).await.unwrap(), owed);
    assert_eq!(tokens(s.escrow).await, held - price(0) - price(2), "the credited tokens stay in the escrow");
    for (i, job) in jobs.iter().enumerate() {
        let j = s.client(OWNER).job(*job).await.unwrap();
        assert_eq!((j.state, j.executor), (JobState::Paid, s.chain.account(payees[i])));
    }
    // Nobody else can withdraw the credit, nor the payee to itself while the token refuses it.
    let stranger = s.chain.account(STRANGER);
    assert!(s.client(STRANGER).withdraw_token_credit(token, stranger).await.is_err(), "a stranger has no credit");
    assert!(s.client(EXECUTORS[1]).withdraw_token_credit(token, blocked).await.is_err(), "the token still refuses the payee");
    assert!(s.client(EXECUTORS[1]).withdraw_token_credit(token, Address::ZERO).await.is_err(), "to the zero address");
    assert_eq!(s.client(OWNER).token_credit_of(token, blocked).await.unwrap(), owed, "a failed withdrawal keeps the credit");
    // Half to another address of its own now; the rest to itself once the token lets it.
    let other = s.chain.account(OTHER_CUSTOMER);
    let other_before = tokens(other).await;
    s.client(EXECUTORS[1]).withdraw_token_credit(token, other).await.unwrap();
    assert_eq!(tokens(other).await, other_before + owed);
    assert_eq!(tokens(s.escrow).await, held - (0..4).map(price).fold(U256::ZERO, |a, b| a + b));
    assert_eq!(s.client(OWNER).token_credit_of(token, blocked).await.unwrap(), U256::ZERO);
    assert!(s.client(EXECUTORS[1]).withdraw_token_credit(token, other).await.is_err(), "withdrawn twice");
    assert_eq!(tokens(blocked).await, before[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_burns_all_its_gas_is_credited_and_cannot_sink_the_batch() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let (s, token) = Setup::with_token(&tc).await;
    let erc20 = IERC20::new(token, s.chain.provider(OWNER));
    // Jobs 0 and 2 pay in the token, 1 and 3 in ETH; the token then burns every unit of gas.
    let price = U256::from(1_000_000u64);
    let mut jobs = Vec::new();
    for (i, model) in [s.models[0], s.models[0], s.models[1], s.models[0]].into_iter().enumerate() {
        jobs.push(s.open_paying(CUSTOMER, model, 80 + i as u64, price, (i % 2 == 0).then_some(token)).await);
    }
    let payees = [EXECUTORS[0], EXECUTORS[1], EXECUTORS[1], EXECUTORS[0]];
    let own: Vec<Vec<U256>> = (0..4).map(|i| s.own(80 + i as u64, payees[i], jobs[i])).collect();
    erc20.setGasBurner(true).send().await.unwrap().get_receipt().await.unwrap();
    let eth_before = [s.balance(EXECUTORS[0]).await, s.balance(EXECUTORS[1]).await];
    s.client(STRANGER).submit_batch_raw(s.accepting, &jobs, words(&own), vec![0u8; 64], GAS).await.unwrap();
    assert_eq!(s.balance(EXECUTORS[1]).await, eth_before[1] + price, "job 1's ETH is paid");
    assert_eq!(s.balance(EXECUTORS[0]).await, eth_before[0] + price, "job 3's ETH is paid");
    for (who, job) in [(EXECUTORS[0], 0), (EXECUTORS[1], 2)] {
        assert_eq!(s.client(OWNER).token_credit_of(token, s.chain.account(who)).await.unwrap(), price, "job {job}'s tokens are credited");
    }
    for job in &jobs {
        assert_eq!(s.client(OWNER).job(*job).await.unwrap().state, JobState::Paid);
    }
}
