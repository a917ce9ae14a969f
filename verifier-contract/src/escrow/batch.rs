//! Batch settlement on the escrow: registering a verifier of aggregated proofs, a customer's
//! trust in it, and `submitBatch`, which pays N jobs for one aggregated proof.

use alloy::primitives::{Address, B256, U256};
use zkinfer_protocol::EscrowJobId;

use super::client::{EscrowClient, SETUP_GAS};
use super::{InferenceEscrow, Submission};
use crate::error::{Error, Result};

/// A registered batch verifier (`InferenceEscrow.BatchVerifier`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowBatchVerifier {
    /// The contract to call.
    pub verifier: Address,
    /// keccak256 of the code hashes of the verifier and its parts.
    pub code_hash: B256,
    /// Public instances of its aggregated proofs (the accumulator's 12 and each job's).
    pub num_instances: u64,
    /// The escrow models of the jobs it settles, in order.
    pub models: Vec<u64>,
    /// The part contracts the verifier calls, in order (empty for one contract).
    pub parts: Vec<Address>,
}

impl EscrowClient {
    /// Registers a batch verifier for jobs of `models`, in order; returns its id.
    pub async fn register_batch_verifier(&self, verifier: Address, parts: &[Address], models: &[u64]) -> Result<u64> {
        self.need_sender()?;
        let ids = models.iter().map(|&m| U256::from(m)).collect();
        let call = self.contract.registerBatchVerifier(verifier, parts.to_vec(), ids).gas(SETUP_GAS);
        let tx = *self.contract("registerBatchVerifier", call.send()).await?.tx_hash();
        let r = self.mined("registerBatchVerifier", tx).await?;
        let e = r
            .decoded_log::<InferenceEscrow::BatchVerifierRegistered>()
            .ok_or_else(|| Error::Decode("no BatchVerifierRegistered event".into()))?;
        u64::try_from(e.data.batchId).map_err(|_| Error::Decode("batch verifier id out of range".into()))
    }

    /// Lets (or stops) batch verifier `id` settle the sender's jobs.
    pub async fn trust_batch_verifier(&self, id: u64, trusted: bool) -> Result<Submission> {
        self.need_sender()?;
        let call = self.contract.trustBatchVerifier(U256::from(id), trusted).gas(SETUP_GAS);
        let tx = *self.contract("trustBatchVerifier", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("trustBatchVerifier", tx).await?))
    }

    /// A registered batch verifier.
    pub async fn batch_verifier(&self, id: u64) -> Result<EscrowBatchVerifier> {
        let b = self.contract("getBatchVerifier", self.contract.getBatchVerifier(U256::from(id)).call()).await?;
        let models = b
            .modelIds
            .iter()
            .map(|m| u64::try_from(*m).map_err(|_| Error::Decode("model id out of range".into())))
            .collect::<Result<_>>()?;
        let num_instances = u64::try_from(b.numInstances).map_err(|_| Error::Decode("instance count out of range".into()))?;
        Ok(EscrowBatchVerifier { verifier: b.verifier, code_hash: b.codeHash, num_instances, models, parts: b.parts })
    }

    /// Sends `submitBatch` with raw instance words and proof bytes (tests send tampered ones)
    /// and waits for it; a revert comes back as [`Error::Reverted`].
    pub async fn submit_batch_raw(
        &self,
        batch: u64,
        jobs: &[EscrowJobId],
        instances: Vec<U256>,
        proof: Vec<u8>,
        gas: u64,
    ) -> Result<Submission> {
        self.need_sender()?;
        let ids = jobs.iter().map(|j| j.to_u256()).collect();
        let call = self.contract.submitBatch(U256::from(batch), ids, instances, proof.into()).gas(gas);
        let tx = *self.contract("submitBatch", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("submitBatch", tx).await?))
    }
}
