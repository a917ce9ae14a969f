//! The Solidity verifier for a verifying key (snark-verifier's EVM code generator) and the
//! calldata it takes.

use std::rc::Rc;

use halo2_proofs::halo2curves::bn256::{Bn256, Fq, Fr, G1Affine};
use halo2_proofs::plonk::VerifyingKey;
use halo2_proofs::poly::commitment::ParamsProver;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use snark_verifier::loader::evm::{encode_calldata, EvmLoader};
use snark_verifier::pcs::kzg::{Bdfg21, KzgAs, KzgDecidingKey};
use snark_verifier::system::halo2::{compile, transcript::evm::EvmTranscript, Config};
use snark_verifier::verifier::{plonk::PlonkVerifier, SnarkVerifier};
use zkinfer_prover::ProofEnvelope;

use crate::error::{Error, Result};

/// SHPLONK (BDFG21) over KZG, matching the prover.
type Shplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>>;

/// Generates the Solidity source of a verifier for `vk` with one instance column of `num_instances` values.
pub fn verifier_solidity(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, num_instances: usize) -> Result<String> {
    let protocol = compile(params, vk, Config::kzg().with_num_instance(vec![num_instances]));
    let dk: KzgDecidingKey<Bn256> = (params.get_g()[0], params.g2(), params.s_g2()).into();
    let loader = EvmLoader::new::<Fq, Fr>();
    let protocol = protocol.loaded(&loader);
    let mut transcript = EvmTranscript::<G1Affine, Rc<EvmLoader>, _, _>::new(&loader);
    let instances = transcript.load_instances(vec![num_instances]);
    let proof = Shplonk::read_proof(&dk, &protocol, &instances, &mut transcript).map_err(|e| Error::Codegen(format!("{e:?}")))?;
    Shplonk::verify(&dk, &protocol, &instances, &proof).map_err(|e| Error::Codegen(format!("{e:?}")))?;
    Ok(loader.solidity_code())
}

/// The exact calldata the generated verifier takes: 32-byte big-endian instances, then the proof.
pub fn calldata(env: &ProofEnvelope) -> Result<Vec<u8>> {
    let instances = env.instance_values()?;
    Ok(encode_calldata(&[instances], &env.proof))
}
