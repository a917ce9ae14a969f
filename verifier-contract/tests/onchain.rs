//! On a real EVM node (anvil): the generated verifier accepts the shipped MLP's proof and
//! rejects every tampered byte and instance, every instance or proof scalar plus r, and
//! calldata of the wrong length; the escrow pays only the payee a valid proof binds, exactly
//! once, whoever submits it, in ETH or an ERC-20; it refunds after the deadline, slashes a
//! claimant that did not deliver to the customer, and makes unstaking wait. Every case asserts
//! balances to the wei.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_proofs::plonk::ProvingKey;
use zkinfer_circuits::circuit::PayeeBinding;
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_circuits::quant::QModel;
use zkinfer_protocol::{Binding, Commitment, EscrowJobId, ExecutorId, Salt};
use zkinfer_prover::keys::{keygen, vk_hash};
use zkinfer_prover::{model_hash, prove, Bindings, CommitParams, ProofEnvelope, Srs, Statement};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::codegen::{calldata, verifier_solidity};
use zkinfer_verifier_contract::escrow::{instance_words, EscrowClient, JobState, OpenJob, Submission, IERC20};
use zkinfer_verifier_contract::market::{escrow_code, EscrowTerms};
use zkinfer_verifier_contract::solc::{Compiler, Toolchain};
use zkinfer_verifier_contract::verifier::CompiledVerifier;

/// The BN254 scalar field modulus.
fn r() -> U256 {
    U256::from_str_radix("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001", 16).unwrap()
}

struct Fixture {
    model: Arc<QModel>,
    pk: ProvingKey<G1Affine>,
    params: CommitParams,
    bindings: Bindings,
    inputs: Vec<Vec<i64>>,
    solidity: String,
}

fn example(name: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).join(file)
}

fn fixture() -> Fixture {
    fixture_of("mlp")
}

fn fixture_of(name: &str) -> Fixture {
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(example(name, f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(example(name, "model.onnx")).unwrap();
    let compiled = compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap();
    let model = Arc::new(compiled.model);
    let srs = Srs::dev(model.settings.k).unwrap();
    let pk = keygen(&srs.params, model.clone()).unwrap();
    let bindings = Bindings { model_hash: model_hash(&model).unwrap(), vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let inputs = model.quantize_inputs(&read("input.json")).unwrap();
    let solidity = verifier_solidity(&srs.params, pk.get_vk(), model.num_instances()).unwrap();
    Fixture { model, pk, params: CommitParams::halo2(srs.params), bindings, inputs, solidity }
}

impl Fixture {
    fn prove(&self, salt: Salt, binding: Option<&Binding>) -> ProofEnvelope {
        let binding = binding.map_or_else(PayeeBinding::default, |b| PayeeBinding::from_values(b.to_fields()));
        let statement = Statement { inputs: self.inputs.clone(), salt: salt.to_fr(), binding };
        prove(&self.params, &self.pk, self.model.clone(), statement, self.bindings).unwrap()
    }

    fn commitment(&self, salt: Salt) -> Commitment {
        Commitment::from(zkinfer_circuits::circuit::salted_commitment(&self.inputs, salt.to_fr(), self.model.settings.value_bits))
    }
}

/// Deploys the verifier on a chain that enforces EIP-170 (split into parts when it must be).
async fn deploy_verifier(chain: &LocalChain, tc: &Toolchain, solidity: &str) -> (Address, Vec<Address>, CompiledVerifier) {
    let v = CompiledVerifier::build(tc, solidity).unwrap();
    assert!(v.largest_contract() <= EIP170_CODE_SIZE_LIMIT);
    println!(
        "verifier: {} part contracts and a wrapper, {} bytes of code in all, largest {} bytes (EIP-170 limit {EIP170_CODE_SIZE_LIMIT})",
        v.parts.len(),
        v.total_code(),
        v.largest_contract()
    );
    let (verifier, parts) = v.deploy(&chain.deployer(0)).await.unwrap();
    (verifier, parts, v)
}

const VERIFY_GAS: u64 = 3_000_000;

/// The wrapper pins each part by code hash: deployed over an address without code (whose
/// `staticcall` would succeed and pass any proof) or over the parts in another order, its
/// constructor reverts; over its own parts' code, it deploys.
#[tokio::test(flavor = "multi_thread")]
async fn the_split_verifiers_wrapper_refuses_parts_that_are_not_its_own() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let v = CompiledVerifier::build(&tc, &f.solidity).unwrap();
    assert!(v.parts.len() >= 2, "the MLP's verifier is split");
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    // A fresh provider per deployment: a reverted one leaves a cached nonce behind it.
    let deployer = chain.deployer(0);
    let refused = |code: Vec<u8>| {
        let d = chain.deployer(0);
        async move { d.deploy(code).await.is_err() }
    };
    let mut parts = Vec::new();
    for p in &v.parts {
        parts.push(deployer.deploy(p.bytecode.clone()).await.unwrap());
    }
    let wrapper_over = |addrs: &[Address]| {
        let mut code = v.verifier.bytecode.clone();
        for a in addrs {
            code.extend_from_slice(&[0u8; 12]);
            code.extend_from_slice(a.as_slice());
        }
        code
    };
    let mut no_code = parts.clone();
    *no_code.last_mut().unwrap() = chain.account(5);
    assert!(refused(wrapper_over(&no_code)).await, "the last part at an address without code");
    let mut swapped = parts.clone();
    swapped.swap(0, 1);
    assert!(refused(wrapper_over(&swapped)).await, "the parts in another order");
    // It pins code, not addresses: a second copy of part 0 will do.
    let mut copy = parts.clone();
    let fresh = chain.deployer(0);
    copy[0] = fresh.deploy(v.parts[0].bytecode.clone()).await.unwrap();
    fresh.deploy(wrapper_over(&copy)).await.expect("a copy of its own part 0");
    let wrapper = fresh.deploy(wrapper_over(&parts)).await.expect("its own parts");
    let env = f.prove(Salt::zero(), None);
    chain.call(wrapper, calldata(&env).unwrap(), VERIFY_GAS).await.expect("and it verifies");
}

#[tokio::test(flavor = "multi_thread")]
async fn verifier_accepts_the_proof_and_rejects_every_tampered_byte_instance_non_canonical_scalar_and_length() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let env = f.prove(Salt::zero(), None);
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let (verifier, _, _) = deploy_verifier(&chain, &tc, &f.solidity).await;
    let data = calldata(&env).unwrap();
    chain.call(verifier, data.clone(), VERIFY_GAS).await.expect("valid proof verifies on chain");
    let mined = chain.transact(0, verifier, data.clone(), U256::ZERO, None).await.unwrap();
    assert!(mined.success);
    println!("verifyProof gas ({}): {} (MLP 784-128-10, {} public instances)", chain.hardfork, mined.gas_used, env.instances.len());

    let header = 32 * env.instances.len();
    // Every proof byte flipped is rejected.
    for i in header..data.len() {
        let mut d = data.clone();
        d[i] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "proof byte {} flipped verifies on chain", i - header);
    }
    // Every public instance changed (by one unit), and every instance plus r, is rejected.
    let word = |d: &[u8], at: usize| U256::from_be_slice(&d[at..at + 32]);
    for i in 0..env.instances.len() {
        let mut d = data.clone();
        d[32 * i + 31] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "instance {i} changed verifies on chain");
        let mut d = data.clone();
        d[32 * i..32 * i + 32].copy_from_slice(&(word(&data, 32 * i) + r()).to_be_bytes::<32>());
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "instance {i} plus r verifies on chain");
    }
    // Every proof word below r read as a scalar, plus r, is rejected (points are checked on the curve).
    let mut scalars = 0;
    for at in (header..data.len()).step_by(32) {
        let v = word(&data, at);
        if v >= r() || v + r() < v {
            continue;
        }
        let mut d = data.clone();
        d[at..at + 32].copy_from_slice(&(v + r()).to_be_bytes::<32>());
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "proof word at {at} plus r verifies on chain");
        scalars += 1;
    }
    assert!(scalars > 10, "the proof has scalar words: {scalars}");
    // Truncated and trailing calldata are rejected.
    assert!(chain.call(verifier, data[..data.len() - 32].to_vec(), VERIFY_GAS).await.is_err());
    for extra in [&[0u8][..], &[0u8; 32][..]] {
        let d = [data.as_slice(), extra].concat();
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "{} trailing bytes verify on chain", extra.len());
    }
}

/// A circuit with a second phase (the transformer's attention products, checked with a random
/// challenge drawn after the first phase's commitments): its verifier draws the challenge from
/// the same transcript, accepts the proof, and rejects a flipped byte in every proof word
/// (every commitment of both phases and every evaluation) and every changed instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_phase_circuit_verifies_on_chain_and_rejects_every_tampered_word_and_instance() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture_of("transformer");
    assert!(f.model.settings.challenge_advice > 0, "the transformer's products are checked with a challenge");
    let env = f.prove(Salt::zero(), None);
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let (verifier, _, _) = deploy_verifier(&chain, &tc, &f.solidity).await;
    let data = calldata(&env).unwrap();
    // Under the same gas as the tampered calls below, so that they fail for their data alone.
    chain.call(verifier, data.clone(), VERIFY_GAS).await.expect("the valid proof verifies on chain");
    let mined = chain.transact(0, verifier, data.clone(), U256::ZERO, None).await.unwrap();
    assert!(mined.success, "the valid proof verifies in a transaction");
    println!(
        "verifyProof gas ({}): {} (transformer, second-phase columns, {} proof bytes)",
        chain.hardfork,
        mined.gas_used,
        env.proof.len()
    );
    let header = 32 * env.instances.len();
    for at in (header..data.len()).step_by(32) {
        let mut d = data.clone();
        d[at + 31] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "proof word at {} flipped verifies on chain", at - header);
    }
    for i in 0..env.instances.len() {
        let mut d = data.clone();
        d[32 * i + 31] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "instance {i} changed verifies on chain");
    }
}

/// An escrow on a chain, with the MLP registered; accounts: 0 deploys, 1 is the customer,
/// 2 the executor, 3 a stranger.
struct Escrow {
    chain: LocalChain,
    address: Address,
    model: u64,
    chain_id: u64,
}

const CUSTOMER: usize = 1;
const EXECUTOR: usize = 2;
const STRANGER: usize = 3;
const SUBMIT_GAS: u64 = 4_000_000;

impl Escrow {
    async fn deploy(tc: &Toolchain, f: &Fixture, terms: EscrowTerms) -> Self {
        let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
        let (verifier, parts, compiled) = deploy_verifier(&chain, tc, &f.solidity).await;
        let address = chain.deployer(0).deploy(escrow_code(tc, terms).unwrap()).await.unwrap();
        let n = f.model.num_instances() as u32;
        let client = chain.escrow(address, 0).unwrap();
        let model = client.register_model(verifier, &parts, f.bindings.model_hash, n).await.unwrap();
        let recorded = client.model(model).await.unwrap();
        assert_eq!(recorded.code_hash, compiled.code_hash(&parts).unwrap(), "the escrow pins the verifier the toolchain built");
        assert_eq!(recorded.parts, parts);
        let chain_id = client.chain_id().await.unwrap();
        Escrow { chain, address, model, chain_id }
    }

    fn client(&self, i: usize) -> EscrowClient {
        self.chain.escrow(self.address, i).unwrap()
    }

    async fn balance(&self, who: Address) -> U256 {
        self.chain.balance(who).await.unwrap()
    }

    fn binding(&self, payee: usize, job: EscrowJobId) -> Binding {
        Binding { payee: ExecutorId(self.chain.account(payee)), chain_id: self.chain_id, escrow: self.address, escrow_job: job }
    }

    #[allow(clippy::too_many_arguments)]
    async fn open(
        &self,
        c: Commitment,
        ttl: u64,
        allow: Vec<Address>,
        token: Option<Address>,
        price: U256,
        bond: U256,
        claimable: bool,
    ) -> EscrowJobId {
        let deadline = self.chain.timestamp().await.unwrap() + ttl;
        let open = OpenJob { model: self.model, commitment: c, deadline, allow, token, price, min_bond: bond, claimable, optimistic: None };
        self.client(CUSTOMER).open_job(&open).await.unwrap()
    }

    /// Submits from `from` and returns the mined outcome.
    async fn submit(&self, from: usize, job: EscrowJobId, instances: Vec<U256>, proof: Vec<u8>) -> Submission {
        let c = self.client(from);
        let tx = c.send_submit_raw(job, instances, proof, SUBMIT_GAS).await.unwrap();
        Submission::from(&c.wait_receipt(tx, std::time::Duration::from_secs(30)).await.unwrap().unwrap())
    }

    /// A submission that must be mined, rejected, cost the sender its gas, and move no money.
    async fn rejected(&self, what: &str, from: usize, job: EscrowJobId, instances: Vec<U256>, proof: Vec<u8>) {
        let (sender, holding) = (self.balance(self.chain.account(from)).await, self.balance(self.address).await);
        let mined = self.submit(from, job, instances, proof).await;
        assert!(!mined.success, "{what} was accepted");
        assert_eq!(self.balance(self.chain.account(from)).await, sender - mined.fee, "{what}: sender balance");
        assert_eq!(self.balance(self.address).await, holding, "{what}: escrow balance");
    }
}

fn eth(x: u64, decimals: u32) -> U256 {
    U256::from(x) * U256::from(10u64).pow(U256::from(decimals))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_escrow_pays_the_bound_payee_once_whoever_submits_and_rejects_every_other_proof() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let e = Escrow::deploy(&tc, &f, EscrowTerms::default()).await;
    let (price, bond) = (eth(1, 18), eth(1, 16));
    let staked = e.client(EXECUTOR).stake(bond).await.unwrap();
    println!("escrow stake gas ({}): {}", e.chain.hardfork, staked.gas_used);
    let salt = Salt::random();
    let c = f.commitment(salt);
    // An unknown model, a zero bond, a commitment at or above r, a wrong payment: refused.
    let bad = [
        OpenJob {
            model: 99,
            commitment: c,
            deadline: u64::MAX / 2,
            allow: vec![],
            token: None,
            price,
            min_bond: bond,
            claimable: false,
            optimistic: None,
        },
        OpenJob {
            model: e.model,
            commitment: c,
            deadline: u64::MAX / 2,
            allow: vec![],
            token: None,
            price,
            min_bond: U256::ZERO,
            claimable: false,
            optimistic: None,
        },
    ];
    for open in bad {
        assert!(e.client(CUSTOMER).open_job(&open).await.is_err(), "{open:?}");
    }
    let before_open = e.balance(e.chain.account(CUSTOMER)).await;
    let deadline = e.chain.timestamp().await.unwrap() + 3600;
    let open = OpenJob {
        model: e.model,
        commitment: c,
        deadline,
        allow: vec![],
        token: None,
        price,
        min_bond: bond,
        claimable: false,
        optimistic: None,
    };
    let (job, opened) = e.client(CUSTOMER).open_job_mined(&open).await.unwrap();
    println!("escrow openJob gas ({}, ETH, no allow-list): {}", e.chain.hardfork, opened.gas_used);
    assert_eq!(e.balance(e.chain.account(CUSTOMER)).await, before_open - price - opened.fee, "the customer paid the price");
    let other = e.open(f.commitment(Salt::random()), 3600, vec![], None, price, bond, false).await;
    assert_eq!(e.balance(e.address).await, bond + price * U256::from(2));

    let env = f.prove(salt, Some(&e.binding(EXECUTOR, job)));
    let (words, proof) = (instance_words(&env), env.proof.clone());
    let mut tampered = proof.clone();
    tampered[100] ^= 1;
    e.rejected("a tampered proof", STRANGER, job, words.clone(), tampered).await;
    let mut output = words.clone();
    output[6] += U256::from(1);
    e.rejected("a changed output", STRANGER, job, output, proof.clone()).await;
    for row in 0..words.len() {
        let mut plus_r = words.clone();
        plus_r[row] += r();
        e.rejected("an instance plus r", STRANGER, job, plus_r, proof.clone()).await;
    }
    e.rejected("a proof bound to another escrow job", STRANGER, other, words.clone(), proof.clone()).await;
    let mut payee = words.clone();
    payee[1] = U256::from_be_slice(e.chain.account(STRANGER).as_slice());
    e.rejected("a copied proof with another payee written in", STRANGER, job, payee, proof.clone()).await;
    // A proof bound to an unstaked payee cannot be paid, even though it verifies.
    let unstaked = f.prove(salt, Some(&e.binding(STRANGER, job)));
    e.rejected("a proof paying an unstaked key", STRANGER, job, instance_words(&unstaked), unstaked.proof.clone()).await;

    // The valid proof, sent by a stranger, pays the executor exactly the price, once.
    let (exec_before, stranger_before) = (e.balance(e.chain.account(EXECUTOR)).await, e.balance(e.chain.account(STRANGER)).await);
    let paid = e.submit(STRANGER, job, words.clone(), proof.clone()).await;
    assert!(paid.success);
    println!("escrow submitProof gas ({}): {}", e.chain.hardfork, paid.gas_used);
    assert_eq!(e.balance(e.chain.account(EXECUTOR)).await, exec_before + price, "the bound payee is paid, not the sender");
    assert_eq!(e.balance(e.chain.account(STRANGER)).await, stranger_before - paid.fee);
    assert_eq!(e.balance(e.address).await, bond + price, "the stake and the other job's payment remain");
    let j = e.client(0).job(job).await.unwrap();
    assert_eq!((j.state, j.executor), (JobState::Paid, e.chain.account(EXECUTOR)));
    e.rejected("a replayed submission", EXECUTOR, job, words.clone(), proof.clone()).await;

    // Refunds: not before the deadline; then exactly the price to the customer, once.
    let customer = e.client(CUSTOMER);
    let refund = |job| customer.refund(job);
    assert!(refund(other).await.is_err(), "early refund");
    e.chain.increase_time(3601).await.unwrap();
    let c_before = e.balance(e.chain.account(CUSTOMER)).await;
    let r = refund(other).await.unwrap();
    println!("escrow refund gas ({}): {}", e.chain.hardfork, r.gas_used);
    assert_eq!(e.balance(e.chain.account(CUSTOMER)).await, c_before - r.fee + price);
    assert_eq!(e.balance(e.address).await, bond, "only the stake remains");
    assert!(refund(other).await.is_err(), "double refund");
    assert!(refund(job).await.is_err(), "refund of a paid job");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claimant_that_does_not_deliver_is_slashed_to_the_customer_and_unstaking_waits() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let terms = EscrowTerms { unstake_delay: 600, slash_bps: 5_000 };
    let e = Escrow::deploy(&tc, &f, terms).await;
    let (price, bond) = (eth(1, 17), eth(2, 16));
    let c = f.commitment(Salt::random());
    let claimable = e.open(c, 100, vec![], None, price, bond, true).await;
    let market = e.open(c, 100, vec![], None, price, bond, false).await;
    // An unstaked key cannot claim, and nobody can claim a market job.
    assert!(e.client(STRANGER).claim(claimable).await.is_err(), "an unstaked key claimed");
    e.client(EXECUTOR).stake(bond).await.unwrap();
    assert!(e.client(EXECUTOR).claim(market).await.is_err(), "a market job was claimed");
    let claimed = e.client(EXECUTOR).claim(claimable).await.unwrap();
    println!("escrow claimJob gas ({}): {}", e.chain.hardfork, claimed.gas_used);
    let s = e.client(0).stake_of(e.chain.account(EXECUTOR)).await.unwrap();
    assert_eq!((s.locked, s.active()), (bond, U256::ZERO), "the claim locks the bond");
    assert!(e.client(EXECUTOR).request_unstake(bond).await.is_err(), "a locked bond cannot be unstaked");

    // The claimant vanishes: after the deadline anyone's refund pays the customer the price
    // and half the bond.
    e.chain.increase_time(101).await.unwrap();
    let c_before = e.balance(e.chain.account(CUSTOMER)).await;
    let r = e.client(STRANGER).refund(claimable).await.unwrap();
    assert!(r.success);
    println!("escrow refund with a slash gas ({}): {}", e.chain.hardfork, r.gas_used);
    assert_eq!(e.balance(e.chain.account(CUSTOMER)).await, c_before + price + bond / U256::from(2), "price and slash to the customer");
    let s = e.client(0).stake_of(e.chain.account(EXECUTOR)).await.unwrap();
    assert_eq!((s.amount, s.locked), (bond / U256::from(2), U256::ZERO));
    e.client(CUSTOMER).refund(market).await.unwrap();
    assert_eq!(e.balance(e.address).await, bond / U256::from(2), "only the rest of the stake remains");

    // Unstaking waits out the delay, then returns the stake to the wei.
    let left = bond / U256::from(2);
    let requested = e.client(EXECUTOR).request_unstake(left).await.unwrap();
    println!("escrow requestUnstake gas ({}): {}", e.chain.hardfork, requested.gas_used);
    assert!(e.client(EXECUTOR).withdraw_stake().await.is_err(), "withdrawn before the delay");
    e.chain.increase_time(601).await.unwrap();
    let x_before = e.balance(e.chain.account(EXECUTOR)).await;
    let w = e.client(EXECUTOR).withdraw_stake().await.unwrap();
    println!("escrow withdrawStake gas ({}): {}", e.chain.hardfork, w.gas_used);
    assert_eq!(e.balance(e.chain.account(EXECUTOR)).await, x_before - w.fee + left);
    assert_eq!(e.balance(e.address).await, U256::ZERO);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_paid_in_an_erc20_token_pays_the_token_to_the_bound_payee() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let e = Escrow::deploy(&tc, &f, EscrowTerms::default()).await;
    let token_code = tc.compile_one(Compiler::Escrow, &tc.test_contracts_source(), "TestToken", Some(200)).unwrap().bytecode;
    let token = e.chain.deployer(0).deploy(token_code).await.unwrap();
    let usd = |x: u64| eth(x, 18);
    let erc20 = IERC20::new(token, e.chain.provider(0));
    erc20.mint(e.chain.account(CUSTOMER), usd(100)).send().await.unwrap().get_receipt().await.unwrap();
    let bond = eth(1, 16);
    e.client(EXECUTOR).stake(bond).await.unwrap();
    let salt = Salt::random();
    let job = e.open(f.commitment(salt), 3600, vec![e.chain.account(EXECUTOR)], Some(token), usd(25), bond, false).await;
    let balance = |who: Address| {
        let e = &e;
        async move { e.client(0).balance(Some(token), who).await.unwrap() }
    };
    assert_eq!(balance(e.chain.account(CUSTOMER)).await, usd(75));
    assert_eq!(balance(e.address).await, usd(25));
    let env = f.prove(salt, Some(&e.binding(EXECUTOR, job)));
    let paid = e.submit(STRANGER, job, instance_words(&env), env.proof.clone()).await;
    assert!(paid.success);
    println!("escrow submitProof gas ({}, ERC-20): {}", e.chain.hardfork, paid.gas_used);
    assert_eq!(balance(e.chain.account(EXECUTOR)).await, usd(25), "the token goes to the bound payee");
    assert_eq!(balance(e.address).await, U256::ZERO);
}

#[tokio::test(flavor = "multi_thread")]
async fn optimistic_jobs_pay_after_an_unchallenged_window_and_disputes_end_with_a_proof_or_a_slash() {
    use zkinfer_verifier_contract::escrow::OptimisticTerms;
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = fixture();
    let e = Escrow::deploy(&tc, &f, EscrowTerms::default()).await;
    let (price, bond, challenge_bond) = (eth(1, 17), eth(1, 18), eth(1, 16));
    let terms = OptimisticTerms { audit_bps: 5_000, challenge_window: 600, prove_window: 900, challenge_bond };
    for who in [EXECUTOR, STRANGER] {
        e.client(who).stake(bond).await.unwrap();
    }
    let open = |terms: OptimisticTerms, salt: Salt| {
        let e = &e;
        let c = f.commitment(salt);
        async move {
            let deadline = e.chain.timestamp().await.unwrap() + 3600;
            let open = OpenJob {
                model: e.model,
                commitment: c,
                deadline,
                allow: vec![],
                token: None,
                price,
                min_bond: bond,
                claimable: false,
                optimistic: Some(terms),
            };
            e.client(CUSTOMER).open_job_mined(&open).await
        }
    };
    // Terms that cannot work are refused.
    for bad in [
        OptimisticTerms { audit_bps: 10_001, ..terms },
        OptimisticTerms { challenge_window: 0, ..terms },
        OptimisticTerms { prove_window: 0, ..terms },
        OptimisticTerms { challenge_bond: U256::ZERO, ..terms },
    ] {
        assert!(open(bad, Salt::random()).await.is_err(), "{bad:?}");
    }
    let salt = Salt::random();
    let (job, opened) = open(terms, salt).await.unwrap();
    println!("escrow openOptimisticJob gas ({}): {}", e.chain.hardfork, opened.gas_used);
    let env = f.prove(salt, Some(&e.binding(EXECUTOR, job)));
    let words = instance_words(&env);
    let outputs = words[5..].to_vec();
    // No proof path, no claim; a post with the wrong count, a non-canonical word, or by an
    // unstaked key is refused.
    let ex = e.client(EXECUTOR);
    assert!(!e.submit(STRANGER, job, words.clone(), env.proof.clone()).await.success, "submitProof on an optimistic job");
    assert!(ex.claim(job).await.is_err());
    let post = |who: usize, job: EscrowJobId, outs: Vec<U256>| {
        let c = e.client(who);
        async move {
            let tx = c.send_post_result(job, outs).await.unwrap();
            Submission::from(&c.wait_receipt(tx, std::time::Duration::from_secs(30)).await.unwrap().unwrap())
        }
    };
    assert!(!post(EXECUTOR, job, outputs[1..].to_vec()).await.success, "too few outputs");
    let mut big = outputs.clone();
    big[0] += r();
    assert!(!post(EXECUTOR, job, big).await.success, "an output plus r");
    let lone = e.chain.signer(4).address();
    assert_eq!(e.client(0).stake_of(lone).await.unwrap().amount, U256::ZERO);
    assert!(!post(4, job, outputs.clone()).await.success, "an unstaked key posted");
    let posted = post(EXECUTOR, job, outputs.clone()).await;
    assert!(posted.success);
    println!("escrow postResult gas ({}, {} outputs): {}", e.chain.hardfork, outputs.len(), posted.gas_used);
    assert!(!post(STRANGER, job, outputs.clone()).await.success, "a second post");
    assert_eq!(e.client(0).stake_of(e.chain.account(EXECUTOR)).await.unwrap().locked, bond, "the post bonds the stake");
    // The audit seed exists once the block after the posting does (anvil mines on demand).
    let client = e.client(0);
    assert_eq!(client.audit_seed(job).await.unwrap(), U256::ZERO);
    e.chain.increase_time(1).await.unwrap();
    e.chain.increase_time(1).await.unwrap();
    let seed = client.audit_seed(job).await.unwrap();
    assert_ne!(seed, U256::ZERO);
    // Not final before the window; the executor cannot challenge itself; the bond must be exact.
    assert!(e.client(STRANGER).finalize(job).await.is_err(), "finalized in the window");
    assert!(ex.challenge(job, challenge_bond).await.is_err(), "the executor challenged itself");
    assert!(e.client(STRANGER).challenge(job, challenge_bond - U256::from(1)).await.is_err(), "a short bond");
    e.chain.increase_time(600).await.unwrap();
    assert!(e.client(STRANGER).challenge(job, challenge_bond).await.unwrap_err().to_string().contains("WindowClosed"));
    let exec_before = e.balance(e.chain.account(EXECUTOR)).await;
    let fin = e.client(STRANGER).finalize(job).await.unwrap();
    println!("escrow finalize gas ({}): {}", e.chain.hardfork, fin.gas_used);
    assert_eq!(e.balance(e.chain.account(EXECUTOR)).await, exec_before + price, "paid the price, whoever finalizes");
    assert_eq!(e.balance(e.address).await, bond * U256::from(2), "only the stakes remain");

    // A challenged honest result: the executor's proof wins it the challenger's bond.
    let salt = Salt::random();
    let (job, _) = open(terms, salt).await.unwrap();
    let env = f.prove(salt, Some(&e.binding(EXECUTOR, job)));
    let words = instance_words(&env);
    assert!(post(EXECUTOR, job, words[5..].to_vec()).await.success);
    let challenged = e.client(STRANGER).challenge(job, challenge_bond).await.unwrap();
    println!("escrow challenge gas ({}): {}", e.chain.hardfork, challenged.gas_used);
    assert!(e.client(CUSTOMER).challenge(job, challenge_bond).await.unwrap_err().to_string().contains("WrongState"), "a second challenge");
    assert!(e.client(STRANGER).slash_unproven(job).await.is_err(), "slashed before the prove window closed");
    let other = f.prove(salt, Some(&e.binding(STRANGER, job)));
    let resolve = |who: usize, job: EscrowJobId, w: Vec<U256>, p: Vec<u8>| {
        let c = e.client(who);
        async move {
            let tx = c.send_resolve_raw(job, w, p, SUBMIT_GAS).await.unwrap();
            Submission::from(&c.wait_receipt(tx, std::time::Duration::from_secs(30)).await.unwrap().unwrap())
        }
    };
    assert!(!resolve(STRANGER, job, instance_words(&other), other.proof.clone()).await.success, "a proof paying the challenger");
    let exec_before = e.balance(e.chain.account(EXECUTOR)).await;
    let resolved = resolve(STRANGER, job, words.clone(), env.proof.clone()).await;
    assert!(resolved.success);
    println!("escrow resolveWithProof gas ({}): {}", e.chain.hardfork, resolved.gas_used);
    assert_eq!(e.balance(e.chain.account(EXECUTOR)).await, exec_before + price + challenge_bond, "the price and the challenger's bond");
    assert_eq!(e.balance(e.address).await, bond * U256::from(2));

    // A wrong result, challenged: the true proof cannot settle it, and the bond is slashed.
    let salt = Salt::random();
    let (job, _) = open(terms, salt).await.unwrap();
    let env = f.prove(salt, Some(&e.binding(EXECUTOR, job)));
    let words = instance_words(&env);
    let mut wrong = words[5..].to_vec();
    wrong[0] += U256::from(1);
    assert!(post(EXECUTOR, job, wrong).await.success);
    e.client(STRANGER).challenge(job, challenge_bond).await.unwrap();
    assert!(!resolve(EXECUTOR, job, words.clone(), env.proof.clone()).await.success, "a proof of other outputs settled the dispute");
    e.chain.increase_time(901).await.unwrap();
    assert!(!resolve(EXECUTOR, job, words, env.proof.clone()).await.success, "a proof after the prove window");
    let (c_before, s_before) = (e.balance(e.chain.account(CUSTOMER)).await, e.balance(e.chain.account(STRANGER)).await);
    let slashed = e.client(STRANGER).slash_unproven(job).await.unwrap();
    println!("escrow slashUnproven gas ({}): {}", e.chain.hardfork, slashed.gas_used);
    let half = bond / U256::from(2);
    assert_eq!(
        e.balance(e.chain.account(STRANGER)).await,
        s_before - slashed.fee + challenge_bond + half,
        "the challenger: its bond and half"
    );
    assert_eq!(e.balance(e.chain.account(CUSTOMER)).await, c_before + price + (bond - half), "the customer: refunded and the other half");
    let s = e.client(0).stake_of(e.chain.account(EXECUTOR)).await.unwrap();
    assert_eq!((s.amount, s.locked), (bond - bond, U256::ZERO), "the whole bond is slashed");
    assert_eq!(e.balance(e.address).await, bond, "only the challenger's stake remains");
    assert!(e.client(STRANGER).slash_unproven(job).await.is_err(), "slashed twice");
}
