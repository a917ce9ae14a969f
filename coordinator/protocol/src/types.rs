//! The request and response bodies of the coordinator's HTTP API (`/v1`). The server, the
//! client and the OpenAPI document are all built from these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::optimistic::Verification;
use crate::{Commitment, EscrowJobId, ExecutorId, Hash32, HexBytes, JobId, JobState, ModelId, Salt, Wei};

/// `POST /v1/jobs`: a job for a model. Send exactly one of `input` (plain: the coordinator
/// sees it) and `sealed` (HPKE ciphertexts of an [`InputPayload`], one per executor allowed
/// to prove it; the coordinator never sees the input).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The model to run.
    pub model_id: ModelId,
    /// The input values (all model inputs flattened in order), for a plain job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Vec<f32>>,
    /// Executor address → HPKE ciphertext of the input, for a sealed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<BTreeMap<ExecutorId, HexBytes>>,
    /// The commitment to the input: required when sealed; checked when plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_commitment: Option<Commitment>,
    /// A plain job's salt (a sealed job's salt is inside its ciphertexts); when left out, the
    /// coordinator draws one and returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// The escrow job paying for this job (required when the coordinator settles on chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow_job: Option<EscrowJobId>,
    /// Seconds until the job expires (at most 30 days; on chain, no later than the escrow job's deadline).
    pub deadline_s: u64,
    /// For a paid job: the EIP-191 signature, by the key that opened the escrow job, of
    /// [`crate::auth::submission_message`], so that nobody else can submit its escrow job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_signature: Option<HexBytes>,
    /// How the result is checked (`zk` when left out). An optimistic job needs an optimistic
    /// escrow job and an input sealed to at least two executors (one runs it, another may
    /// audit it).
    #[serde(default, skip_serializing_if = "Verification::is_zk")]
    pub verification: Verification,
}

/// What a sealed ciphertext (or a plain job's stored input) holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputPayload {
    /// The input values (all model inputs flattened in order).
    pub input: Vec<f32>,
    /// The salt of the input commitment.
    pub salt: Salt,
}

/// `201` answer to a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The new job.
    pub job_id: JobId,
    /// Its state (`queued`).
    pub state: JobState,
    /// The commitment its proof must bind.
    pub input_commitment: Commitment,
    /// The salt the coordinator drew for a plain job that came without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
}

/// One step of a job's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// The state reached.
    pub state: JobState,
    /// When (milliseconds since the Unix epoch).
    pub at_ms: i64,
}

/// A payment seen on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    /// Who was paid.
    pub executor: ExecutorId,
    /// How much.
    pub price_wei: Wei,
    /// The paying transaction's hash.
    pub tx: Hash32,
    /// Its block.
    pub block: u64,
}

/// `GET /v1/jobs/{id}`: a job as its customer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// The job.
    pub id: JobId,
    /// Its model.
    pub model_id: ModelId,
    /// Its state.
    pub state: JobState,
    /// The executor holding or having held it.
    pub executor: Option<ExecutorId>,
    /// How many times it was leased.
    pub attempts: u32,
    /// Every state it reached, with the time, in order.
    pub events: Vec<JobEvent>,
    /// The escrow job paying for it.
    pub escrow_job: Option<EscrowJobId>,
    /// The commitment to its input.
    pub input_commitment: Option<Commitment>,
    /// The on-chain payment, once seen.
    pub payment: Option<PaymentView>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// How its result is checked.
    #[serde(default)]
    pub verification: Verification,
    /// An optimistic job's posted result, audit and dispute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
}

/// `POST /v1/jobs/{id}/result`: an optimistic job's lease holder claims its result, after
/// posting the output instances to the escrow (`postResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultClaim {
    /// The quantized outputs, one flattened list per model output.
    pub quantized_outputs: Vec<Vec<i64>>,
    /// Keccak-256 of the output instances posted on chain (the escrow's `outputsHash`).
    pub outputs_hash: Hash32,
    /// The `postResult` transaction.
    pub post_tx: Hash32,
    /// The executor's EIP-191 signature of [`crate::optimistic::result_message`].
    pub signature: HexBytes,
}

/// An optimistic job's result as its customer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultView {
    /// Who posted it.
    pub executor: ExecutorId,
    /// The quantized outputs, one flattened list per model output.
    pub quantized_outputs: Vec<Vec<i64>>,
    /// The same, dequantized.
    pub outputs: Vec<Vec<f64>>,
    /// Keccak-256 of the output instances posted on chain.
    pub outputs_hash: Hash32,
    /// The executor's signature of the claim ([`crate::optimistic::result_signer`] checks it).
    pub signature: HexBytes,
    /// The `postResult` transaction.
    pub post_tx: Hash32,
    /// The last second (unix, chain time) at which it can be challenged.
    pub challenge_ends_s: u64,
    /// Whether a validator re-executes it, who, and what it found.
    pub audit: Option<AuditView>,
    /// The dispute, if it was challenged.
    pub dispute: Option<DisputeView>,
}

/// The audit decision for an optimistic job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    /// The escrow's audit seed (the hash of the block after the posting, with the job id).
    pub seed: Hash32,
    /// Whether the seed sampled the job.
    pub sampled: bool,
    /// The validator asked to re-execute it.
    pub validator: Option<ExecutorId>,
    /// Whether the validator's outputs agreed (`None` until it reports).
    pub agreed: Option<bool>,
}

/// A challenge of an optimistic job's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisputeView {
    /// Who challenged.
    pub challenger: ExecutorId,
    /// When the executor's time to prove ends (unix, chain time).
    pub prove_by_s: u64,
    /// `proved` (the executor proved its outputs) or `slashed`; `None` while open.
    pub outcome: Option<String>,
}

/// `POST /v1/executors/{address}/audits`: a sampled job this validator is asked to re-execute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditTask {
    /// The job.
    pub job: JobId,
    /// Its model.
    pub model_id: ModelId,
    /// The JSON of an [`InputPayload`], or when `sealed`, the HPKE ciphertext the customer
    /// sealed to this validator.
    pub input: HexBytes,
    /// Whether `input` is sealed.
    pub sealed: bool,
    /// The commitment the input must open to.
    pub input_commitment: Commitment,
    /// The escrow job (whose `outputsHash` is what counts).
    pub escrow_job: EscrowJobId,
    /// The executor whose result it is.
    pub executor: ExecutorId,
    /// The outputs it claims.
    pub quantized_outputs: Vec<Vec<i64>>,
}

/// `POST /v1/jobs/{id}/audit`: a validator's finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditReport {
    /// Whether its own outputs hash to the posted `outputsHash`.
    pub agrees: bool,
    /// The `challenge` transaction, when it disagreed and challenged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_tx: Option<Hash32>,
}

/// `POST /v1/executors/{address}/register`: what an executor serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorRegistration {
    /// Its HPKE public key (32 bytes of X25519), to seal inputs to.
    pub hpke_public_key: HexBytes,
    /// Its Ethereum key's EIP-191 signature of the HPKE key ([`crate::seal::sign_hpke_key`]):
    /// customers check it, so a coordinator cannot swap in a key of its own.
    pub hpke_key_signature: HexBytes,
    /// Its price per job.
    pub price_wei: Wei,
    /// Whether it proves on a GPU.
    pub gpu: bool,
    /// The models it has loaded.
    pub models: Vec<ModelId>,
}

/// `GET /v1/executors`: a registered executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecutorInfo {
    /// Its address.
    pub address: ExecutorId,
    /// Its HPKE public key, to seal inputs to.
    pub hpke_public_key: HexBytes,
    /// The executor's signature of it: check with [`crate::seal::verify_hpke_key`] before sealing.
    pub hpke_key_signature: HexBytes,
    /// Its stake in the escrow, as the coordinator last read it (0 off chain).
    pub stake_wei: Wei,
    /// Its price per job.
    pub price_wei: Wei,
    /// Whether it proves on a GPU.
    pub gpu: bool,
    /// The models it serves.
    pub models: Vec<ModelId>,
}

/// `200` answer to a claim: a job leased to the executor until `until_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// Its model.
    pub model_id: ModelId,
    /// The JSON of an [`InputPayload`], or when `sealed`, the HPKE ciphertext of one for this executor.
    pub input: HexBytes,
    /// Whether `input` is sealed.
    pub sealed: bool,
    /// The commitment the proof must bind.
    pub input_commitment: Option<Commitment>,
    /// The escrow job to submit the proof to.
    pub escrow_job: Option<EscrowJobId>,
    /// Lease expiry (milliseconds since the Unix epoch): heartbeat before it.
    pub until_ms: i64,
    /// How the result is checked: `optimistic` posts the outputs on chain and claims them
    /// (`POST /v1/jobs/{id}/result`) instead of proving.
    #[serde(default)]
    pub verification: Verification,
}

/// `GET /v1/terms`: what this coordinator accepts of a paid job's escrow terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketTerms {
    /// The least time an escrow job must have left at submission (seconds).
    pub min_deadline_s: u64,
    /// The least price a paid job must offer (wei), besides what its executors ask.
    pub min_price_wei: Wei,
    /// The least active stake an executor needs to be leased jobs (wei).
    pub min_stake_wei: Wei,
    /// What an optimistic job's terms must meet.
    pub optimistic: crate::optimistic::OptimisticPolicy,
}

/// `POST /v1/jobs/{id}/fail`: the lease holder gives up on a job it cannot prove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailReport {
    /// Why (kept to 500 characters; never the input's values).
    pub reason: String,
}

/// `GET /v1/models`: a model the coordinator serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelSummary {
    /// Its id.
    pub id: ModelId,
    /// How many input values it takes.
    pub input_len: u64,
    /// The model hash its proofs and escrow registration carry.
    pub model_hash: Option<Hash32>,
}

/// `POST /v1/models`: an ONNX model to compile and set up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterModelRequest {
    /// The id to register it under.
    pub id: ModelId,
    /// The ONNX file.
    pub onnx: HexBytes,
    /// Calibration samples, one flattened list per model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<Vec<f32>>>,
}

/// A registered model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisteredModel {
    /// Its id.
    pub model_id: ModelId,
    /// The model hash its proofs and escrow registration carry.
    pub model_hash: Hash32,
    /// SHA-256 of its verifying key.
    pub vk_sha256: Hash32,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// How many input values it takes.
    pub input_len: u64,
}

/// `GET /v1/models/{id}/artifact`: a registered model's compiled circuit, for executors to
/// set up with the same SRS (they check the vk hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelArtifact {
    /// The registration.
    pub model: RegisteredModel,
    /// `model.zkm`.
    pub model_zkm: HexBytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_round_trips_and_unknown_fields_are_refused() {
        let j = SubmitJob {
            model_id: ModelId::new("mlp").unwrap(),
            input: Some(vec![0.5, 1.0]),
            sealed: None,
            input_commitment: Some("0x2a".parse().unwrap()),
            salt: None,
            escrow_job: Some(EscrowJobId(3)),
            deadline_s: 60,
            customer_signature: None,
            verification: Verification::Zk,
        };
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<SubmitJob>(&text).unwrap(), j);
        assert!(!text.contains("sealed"), "absent options are left out: {text}");
        assert!(serde_json::from_str::<SubmitJob>(r#"{"model_id":"mlp","deadline_s":1,"inptu":[]}"#).is_err());
    }
}
