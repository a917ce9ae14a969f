//! On a real EVM node (anvil): the generated verifier accepts the shipped MLP's proof and
//! rejects every tampered byte and instance; the escrow pays exactly once, only for a valid
//! proof of the job's input, and refunds after the deadline. Every case asserts balances.

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::sol_types::SolCall;
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_prover::keys::{keygen, vk_hash};
use zkinfer_prover::{model_hash, prove, Bindings, ProofEnvelope, Srs};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::codegen::{calldata, verifier_solidity};
use zkinfer_verifier_contract::escrow::InferenceEscrow;
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

struct Fixture {
    env: ProofEnvelope,
    solidity: String,
    model_hash: [u8; 32],
}

fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/mlp").join(file)
}

fn mlp_proof() -> Fixture {
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(example(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(example("model.onnx")).unwrap();
    let compiled = compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap();
    let model = Arc::new(compiled.model);
    let srs = Srs::dev(model.settings.k).unwrap();
    let pk = keygen(&srs.params, model.clone()).unwrap();
    let mh = model_hash(&model).unwrap();
    let bindings = Bindings { model_hash: mh, vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let q = model.quantize_inputs(&read("input.json")).unwrap();
    let env = prove(&zkinfer_prover::CommitParams::halo2(srs.params.clone()), &pk, model.clone(), q, bindings).unwrap();
    let solidity = verifier_solidity(&srs.params, pk.get_vk(), env.instances.len()).unwrap();
    Fixture { env, solidity, model_hash: mh }
}

/// Deploys the verifier on a chain that enforces EIP-170 (split into parts when it must be).
async fn deploy_verifier(chain: &LocalChain, tc: &Toolchain, solidity: &str) -> Address {
    let v = CompiledVerifier::build(tc, solidity).unwrap();
    assert!(v.largest_contract() <= EIP170_CODE_SIZE_LIMIT);
    println!(
        "verifier: {} part contracts and a wrapper, {} bytes of code in all, largest {} bytes (EIP-170 limit {EIP170_CODE_SIZE_LIMIT})",
        v.parts.len(),
        v.total_code(),
        v.largest_contract()
    );
    v.deploy(&chain.deployer(0)).await.unwrap()
}

const VERIFY_GAS: u64 = 3_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn verifier_accepts_the_proof_and_rejects_every_tampered_byte_and_instance() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = mlp_proof();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let verifier = deploy_verifier(&chain, &tc, &f.solidity).await;
    let data = calldata(&f.env).unwrap();
    chain.call(verifier, data.clone(), VERIFY_GAS).await.expect("valid proof verifies on chain");
    let mined = chain.transact(0, verifier, data.clone(), U256::ZERO, None).await.unwrap();
    assert!(mined.success);
    println!("verifyProof gas ({}): {} (MLP 784-128-10, {} public instances)", chain.hardfork, mined.gas_used, f.env.instances.len());

    let header = 32 * f.env.instances.len();
    // Every proof byte flipped is rejected.
    for i in header..data.len() {
        let mut d = data.clone();
        d[i] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "proof byte {} flipped verifies on chain", i - header);
    }
    // Every public instance changed (by one unit: another output or another commitment) is rejected.
    for i in 0..f.env.instances.len() {
        let mut d = data.clone();
        d[32 * i + 31] ^= 0x01;
        assert!(chain.call(verifier, d, VERIFY_GAS).await.is_err(), "instance {i} changed verifies on chain");
    }
    // Truncated calldata is rejected.
    assert!(chain.call(verifier, data[..data.len() - 32].to_vec(), VERIFY_GAS).await.is_err());
}

fn u256(b: &[u8; 32]) -> U256 {
    U256::from_le_bytes(*b)
}

#[tokio::test(flavor = "multi_thread")]
async fn escrow_pays_once_for_a_valid_proof_and_refunds_after_the_deadline() {
    let tc = Toolchain::in_repo().expect("run `npm ci --prefix verifier-contract`");
    let f = mlp_proof();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let verifier = deploy_verifier(&chain, &tc, &f.solidity).await;
    let escrow_code = tc.compile_one(&tc.escrow_source(), "InferenceEscrow", Some(200)).unwrap();
    let escrow = chain.deploy(0, escrow_code.bytecode).await.unwrap().contract.unwrap();
    let (customer, executor, stranger) = (1, 2, 3);
    let price = U256::from(10u64).pow(U256::from(18u64)); // 1 ETH
    let n = f.env.instances.len() as u32;
    let instances: Vec<U256> = f.env.instances.iter().map(u256).collect();
    let commitment = instances[0];
    let proof = f.env.proof.clone();
    let gas = Some(4_000_000);

    let reg = InferenceEscrow::registerModelCall { verifier, modelHash: FixedBytes(f.model_hash), numInstances: n }.abi_encode();
    assert!(chain.transact(0, escrow, reg, U256::ZERO, gas).await.unwrap().success);
    let model_id = U256::from(1);

    let now = chain.timestamp().await.unwrap();
    let open = |commitment: U256, deadline: u64, allow: Vec<Address>| {
        InferenceEscrow::openJobCall { modelId: model_id, inputCommitment: commitment, deadline, allowList: allow }.abi_encode()
    };
    // An unknown model cannot be used.
    let bad =
        InferenceEscrow::openJobCall { modelId: U256::from(99), inputCommitment: commitment, deadline: now + 3600, allowList: vec![] }
            .abi_encode();
    assert!(!chain.transact(customer, escrow, bad, price, gas).await.unwrap().success);

    // Job 1: the real input. Job 2: another input commitment.
    assert!(chain.transact(customer, escrow, open(commitment, now + 3600, vec![]), price, gas).await.unwrap().success);
    assert!(chain.transact(customer, escrow, open(commitment + U256::from(1), now + 3600, vec![]), price, gas).await.unwrap().success);
    assert_eq!(chain.balance(escrow).await.unwrap(), price * U256::from(2));
    for job in [1u64, 2] {
        let claim = InferenceEscrow::claimJobCall { jobId: U256::from(job) }.abi_encode();
        assert!(chain.transact(executor, escrow, claim, U256::ZERO, gas).await.unwrap().success);
    }
    let submit = |job: u64, instances: Vec<U256>, proof: Vec<u8>| {
        InferenceEscrow::submitProofCall { jobId: U256::from(job), instances, proof: proof.into() }.abi_encode()
    };

    // Each rejected submission is mined, costs the executor its gas, and pays nothing.
    let expect_rejected_from = |from: usize, what: &'static str, data: Vec<u8>| {
        let chain = &chain;
        async move {
            let (before_exec, before_escrow) = (chain.balance(chain.account(from)).await.unwrap(), chain.balance(escrow).await.unwrap());
            let mined = chain.transact(from, escrow, data, U256::ZERO, gas).await.unwrap();
            assert!(!mined.success, "{what} was accepted");
            assert_eq!(chain.balance(chain.account(from)).await.unwrap(), before_exec - mined.fee, "{what}: sender balance");
            assert_eq!(chain.balance(escrow).await.unwrap(), before_escrow, "{what}: escrow balance");
        }
    };
    let expect_rejected = |what: &'static str, data: Vec<u8>| expect_rejected_from(executor, what, data);
    let mut tampered = proof.clone();
    tampered[100] ^= 1;
    expect_rejected("a tampered proof", submit(1, instances.clone(), tampered)).await;
    let mut wrong_output = instances.clone();
    wrong_output[3] += U256::from(1);
    expect_rejected("a changed output", submit(1, wrong_output, proof.clone())).await;
    expect_rejected("a proof for another input", submit(2, instances.clone(), proof.clone())).await;
    expect_rejected_from(stranger, "a submission by a non-claimant", submit(1, instances.clone(), proof.clone())).await;

    // The valid proof pays the executor exactly the price, once.
    let before = chain.balance(chain.account(executor)).await.unwrap();
    let mined = chain.transact(executor, escrow, submit(1, instances.clone(), proof.clone()), U256::ZERO, gas).await.unwrap();
    assert!(mined.success);
    println!("escrow submitProof gas ({}): {}", chain.hardfork, mined.gas_used);
    assert_eq!(chain.balance(chain.account(executor)).await.unwrap(), before + price - mined.fee);
    assert_eq!(chain.balance(escrow).await.unwrap(), price);
    expect_rejected("a replayed submission", submit(1, instances.clone(), proof.clone())).await;

    // Refunds: not before the deadline, then exactly the price to the customer, once.
    let refund = |job: u64| InferenceEscrow::refundCall { jobId: U256::from(job) }.abi_encode();
    let c_before = chain.balance(chain.account(customer)).await.unwrap();
    let early = chain.transact(customer, escrow, refund(2), U256::ZERO, gas).await.unwrap();
    assert!(!early.success);
    chain.increase_time(3601).await.unwrap();
    let late = chain.transact(customer, escrow, refund(2), U256::ZERO, gas).await.unwrap();
    assert!(late.success);
    assert_eq!(chain.balance(chain.account(customer)).await.unwrap(), c_before - early.fee - late.fee + price);
    assert_eq!(chain.balance(escrow).await.unwrap(), U256::ZERO);
    assert!(!chain.transact(customer, escrow, refund(2), U256::ZERO, gas).await.unwrap().success, "double refund");
    assert!(!chain.transact(customer, escrow, refund(1), U256::ZERO, gas).await.unwrap().success, "refund of a paid job");

    // A late claim is rejected and the job stays refundable; an allow-list is enforced.
    let now = chain.timestamp().await.unwrap();
    assert!(
        chain.transact(customer, escrow, open(commitment, now + 100, vec![chain.account(stranger)]), price, gas).await.unwrap().success
    );
    expect_rejected("a direct submission outside the allow-list", submit(3, instances.clone(), proof.clone())).await;
    let claim3 = InferenceEscrow::claimJobCall { jobId: U256::from(3) }.abi_encode();
    assert!(!chain.transact(executor, escrow, claim3.clone(), U256::ZERO, gas).await.unwrap().success, "claim outside the allow-list");
    chain.increase_time(200).await.unwrap();
    assert!(!chain.transact(stranger, escrow, claim3, U256::ZERO, gas).await.unwrap().success, "late claim");
    let c_before = chain.balance(chain.account(customer)).await.unwrap();
    let r = chain.transact(customer, escrow, refund(3), U256::ZERO, gas).await.unwrap();
    assert!(r.success);
    assert_eq!(chain.balance(chain.account(customer)).await.unwrap(), c_before - r.fee + price);
}
