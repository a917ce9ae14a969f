//! What an aggregated proof's on-chain verification costs for a given shape of the aggregation
//! circuit, measured in seconds instead of the half hour a real aggregation takes (issue #15).
//!
//! The verifier's gas depends on the circuit's columns, lookups and public instances, not on
//! what the rows hold or (beyond a few field operations) on k. So this builds halo2-base's
//! circuit, the one snark-verifier-sdk's aggregation circuit is made of, with the columns asked
//! for at a small k, exposes the instances an aggregated proof would (12 accumulator limbs, then
//! the members'), proves it with the EVM transcript, generates the same aggregation verifier
//! zkinfer deploys (`codegen::aggregation_verifier_solidity`) and runs it on anvil.
//!
//! The accumulator limbs encode (τ·G, G) of the probe's seeded SRS, so the verifier's final
//! pairing passes exactly as it does for a real accumulator. A measurement, not a feature.
//!
//! ```text
//! cargo run --release -p zkinfer-verifier-contract --example settle_shape_probe -- \
//!     ADVICE LOOKUP_ADVICE FIXED MEMBER_INSTANCES [K]
//! ```

use alloy::primitives::U256;
use anyhow::{bail, Result};
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{keygen_pk, keygen_vk};
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use snark_verifier::util::arithmetic::fe_to_limbs;
use snark_verifier_sdk::evm::gen_evm_proof_shplonk;
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::codegen::{aggregation_verifier_solidity, calldata_of};
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

fn builder(stage: CircuitBuilderStage, params: &BaseCircuitParams, instances: &[Fr]) -> BaseCircuitBuilder<Fr> {
    let mut b = BaseCircuitBuilder::from_stage(stage).use_params(params.clone());
    let range = b.range_chip();
    let ctx = b.main(0);
    let cells = ctx.assign_witnesses(instances.iter().copied());
    // Some gate and lookup rows, so that every column is in use.
    let mut acc = ctx.load_constant(Fr::one());
    for c in &cells {
        acc = range.gate().mul_add(ctx, acc, *c, acc);
    }
    let small = ctx.load_witness(Fr::from(12345));
    range.range_check(ctx, small, 16);
    b.assigned_instances[0].extend(cells);
    b
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<std::result::Result<_, _>>()?;
    let (advice, lookup, fixed, members, k) = match args.as_slice() {
        [a, l, f, m] => (*a, *l, *f, *m, 12),
        [a, l, f, m, k] => (*a, *l, *f, *m, *k),
        _ => bail!("usage: settle_shape_probe ADVICE LOOKUP_ADVICE FIXED MEMBER_INSTANCES [K]"),
    };
    let params = ParamsKZG::<Bn256>::setup(k as u32, rand_chacha::ChaCha20Rng::seed_from_u64(15));
    let g = params.get_g();
    let limbs = |p: G1Affine| [p.x, p.y].into_iter().flat_map(|c: Fq| fe_to_limbs::<Fq, Fr, 3, 88>(c)).collect::<Vec<_>>();
    let mut instances: Vec<Fr> = limbs(g[1]).into_iter().chain(limbs(g[0])).collect();
    instances.extend((0..members).map(|i| Fr::from(1000 + i as u64)));
    let shape = BaseCircuitParams {
        k,
        num_advice_per_phase: vec![advice],
        num_fixed: fixed,
        num_lookup_advice_per_phase: vec![lookup],
        lookup_bits: Some(k - 1),
        num_instance_columns: 1,
    };
    let keygen = builder(CircuitBuilderStage::Keygen, &shape, &instances);
    let vk = keygen_vk(&params, &keygen)?;
    let pk = keygen_pk(&params, vk, &keygen)?;
    let cs = pk.get_vk().cs();
    println!(
        "shape: {advice} advice, {lookup} lookup advice, {fixed} fixed; halo2: {} advice, {} fixed, {} lookups, degree {}, {} instances",
        cs.num_advice_columns(),
        cs.num_fixed_columns(),
        cs.lookups().len(),
        cs.degree(),
        instances.len()
    );
    let prover = builder(CircuitBuilderStage::Prover, &shape, &instances).use_break_points(keygen.break_points());
    let proof = gen_evm_proof_shplonk(&params, &pk, prover, vec![instances.clone()]);
    let source = aggregation_verifier_solidity(&params, pk.get_vk(), instances.len())?;
    let tc = Toolchain::in_repo()?;
    let verifier = CompiledVerifier::build(&tc, &source)?;
    let chain = LocalChain::start(&tc.anvil()?, DEFAULT_HARDFORK)?;
    let (address, _) = verifier.deploy(&chain.deployer(0)).await?;
    let calldata = calldata_of(&instances, &proof);
    let mined = chain.transact(0, address, calldata.clone(), U256::ZERO, Some(3_000_000)).await?;
    let mut bad = calldata;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let rejected = chain.call(address, bad, 3_000_000).await.is_err();
    println!(
        "proof {} B; verifier {} contract(s), largest {} B; call ({}) success {}, {} gas; flipped byte rejected {rejected}",
        proof.len(),
        verifier.parts.len().max(1),
        verifier.largest_contract(),
        chain.hardfork,
        mined.success,
        mined.gas_used
    );
    Ok(())
}
