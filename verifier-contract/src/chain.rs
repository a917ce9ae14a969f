//! A local EVM node (anvil, bound to 127.0.0.1 on a free port) and a small client for it.

use std::path::Path;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;

use crate::error::{Error, Result};

/// anvil's default hardfork in the pinned version; gas figures are stated with it.
pub const DEFAULT_HARDFORK: &str = "osaka";

/// EIP-170's limit on deployed code (24 KiB). Local chains enforce it, as real ones do; a
/// verifier larger than this is split ([`crate::split`]).
pub const EIP170_CODE_SIZE_LIMIT: usize = 0x6000;

/// Deploys contracts from one funded account, on any chain.
#[derive(Clone, Debug)]
pub struct Deployer {
    provider: DynProvider,
}

impl Deployer {
    /// Deploys through `rpc_url`, paying with `key`.
    pub fn connect(rpc_url: &str, key: PrivateKeySigner) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Rpc { call: "connect", message: format!("RPC URL `{rpc_url}`: {e}") })?;
        Ok(Deployer { provider: ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url).erased() })
    }

    /// Deploys `code` (with its constructor arguments appended); returns the address.
    pub async fn deploy(&self, code: Vec<u8>) -> Result<Address> {
        let tx = TransactionRequest::default().with_deploy_code(code);
        let pending = self.provider.send_transaction(tx).await.map_err(|e| Error::Reverted(format!("deployment: {e}")))?;
        let r = pending.get_receipt().await.map_err(|e| rpc("receipt")(e.to_string()))?;
        match (r.status(), r.contract_address) {
            (true, Some(a)) => Ok(a),
            _ => Err(Error::Reverted("deployment".into())),
        }
    }

    /// The block of the latest chain head (the escrow watcher starts from a deployment block).
    pub async fn block_number(&self) -> Result<u64> {
        self.provider.get_block_number().await.map_err(|e| rpc("eth_blockNumber")(e.to_string()))
    }
}

/// A running anvil with funded accounts. The node stops when this is dropped.
pub struct LocalChain {
    anvil: AnvilInstance,
    signers: Vec<PrivateKeySigner>,
    /// The hardfork anvil runs.
    pub hardfork: String,
}

/// What a mined transaction cost.
#[derive(Clone, Copy, Debug)]
pub struct Mined {
    /// Whether it succeeded.
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// Wei paid for gas.
    pub fee: U256,
    /// A deployed contract's address.
    pub contract: Option<Address>,
}

/// An RPC failure of the local node.
fn rpc(call: &'static str) -> impl Fn(String) -> Error {
    move |message| Error::Rpc { call, message }
}

impl LocalChain {
    /// Starts anvil from `binary` on 127.0.0.1 and a free port, with EIP-170's code size
    /// limit, mining a block for each transaction.
    pub fn start(binary: &Path, hardfork: &str) -> Result<Self> {
        Self::start_with_block_time(binary, hardfork, None)
    }

    /// [`Self::start`], mining a block every `block_time` seconds instead (when set), as a
    /// real chain does: optimistic jobs need blocks after the posting (their audit seed) and
    /// a clock that moves without transactions (their windows).
    pub fn start_with_block_time(binary: &Path, hardfork: &str, block_time: Option<u64>) -> Result<Self> {
        let mut builder = Anvil::at(binary).host("127.0.0.1").port(0u16).args(["--hardfork", hardfork]);
        if let Some(secs) = block_time {
            builder = builder.block_time(secs);
        }
        let anvil = builder.try_spawn().map_err(|e| rpc("starting anvil")(e.to_string()))?;
        let signers = anvil.keys().iter().map(|k| PrivateKeySigner::from(k.clone())).collect();
        Ok(LocalChain { anvil, signers, hardfork: hardfork.to_string() })
    }

    /// Address of funded account `i`.
    pub fn account(&self, i: usize) -> Address {
        self.anvil.addresses()[i]
    }

    /// The node's JSON-RPC endpoint.
    pub fn endpoint(&self) -> String {
        self.anvil.endpoint()
    }

    /// Account `i`'s private key, 0x-hex (anvil's well-known development keys).
    pub fn key_hex(&self, i: usize) -> String {
        zkinfer_protocol::to_hex(self.signers[i].to_bytes().as_slice())
    }

    /// Wei paid for gas by a mined transaction.
    pub async fn fee(&self, tx: alloy::primitives::B256) -> Result<U256> {
        Ok(self.gas(tx).await?.1)
    }

    /// Gas used by a mined transaction, and the wei paid for it.
    pub async fn gas(&self, tx: alloy::primitives::B256) -> Result<(u64, U256)> {
        let r = self.provider(0).get_transaction_receipt(tx).await.map_err(|e| rpc("eth_getTransactionReceipt")(e.to_string()))?;
        let r = r.ok_or_else(|| Error::Decode(format!("no receipt for {tx:#x}")))?;
        Ok((r.gas_used, U256::from(r.gas_used) * U256::from(r.effective_gas_price)))
    }

    /// A provider that signs as account `i`.
    pub fn provider(&self, i: usize) -> DynProvider {
        let wallet = EthereumWallet::from(self.signers[i].clone());
        ProviderBuilder::new().wallet(wallet).connect_http(self.anvil.endpoint_url()).erased()
    }

    /// A deployer paying with account `i`.
    pub fn deployer(&self, i: usize) -> Deployer {
        Deployer { provider: self.provider(i) }
    }

    /// Deploys `code` from account `from`.
    pub async fn deploy(&self, from: usize, code: Vec<u8>) -> Result<Mined> {
        let tx = TransactionRequest::default().with_deploy_code(code);
        let mined = self.send(from, tx).await?;
        if !mined.success || mined.contract.is_none() {
            return Err(Error::Reverted("deployment".into()));
        }
        Ok(mined)
    }

    /// `eth_call`: the return data, or `Error::Reverted`.
    pub async fn call(&self, to: Address, data: Vec<u8>, gas: u64) -> Result<Bytes> {
        let tx = TransactionRequest::default().with_to(to).with_input(data).with_gas_limit(gas);
        self.provider(0).call(tx).await.map_err(|e| Error::Reverted(e.to_string()))
    }

    /// Sends a transaction; with `gas_limit` set, a reverting one is still mined (and paid for).
    pub async fn transact(&self, from: usize, to: Address, data: Vec<u8>, value: U256, gas_limit: Option<u64>) -> Result<Mined> {
        let mut tx = TransactionRequest::default().with_to(to).with_input(data).with_value(value);
        if let Some(g) = gas_limit {
            tx = tx.with_gas_limit(g);
        }
        self.send(from, tx).await
    }

    async fn send(&self, from: usize, tx: TransactionRequest) -> Result<Mined> {
        let pending = self.provider(from).send_transaction(tx).await.map_err(|e| Error::Reverted(e.to_string()))?;
        let r = pending.get_receipt().await.map_err(|e| rpc("receipt")(e.to_string()))?;
        Ok(Mined {
            success: r.status(),
            gas_used: r.gas_used,
            fee: U256::from(r.gas_used) * U256::from(r.effective_gas_price),
            contract: r.contract_address,
        })
    }

    /// Balance of an address.
    pub async fn balance(&self, a: Address) -> Result<U256> {
        self.provider(0).get_balance(a).await.map_err(|e| rpc("eth_getBalance")(e.to_string()))
    }

    /// Latest block timestamp.
    pub async fn timestamp(&self) -> Result<u64> {
        let block = self
            .provider(0)
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc("eth_getBlockByNumber")(e.to_string()))?;
        block.map(|b| b.header.timestamp).ok_or_else(|| Error::Decode("no latest block".into()))
    }

    /// Moves the chain's clock forward and mines a block.
    pub async fn increase_time(&self, secs: u64) -> Result<()> {
        let p = self.provider(0);
        let _: serde_json::Value =
            p.raw_request("evm_increaseTime".into(), (secs,)).await.map_err(|e| rpc("evm_increaseTime")(e.to_string()))?;
        let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.map_err(|e| rpc("evm_mine")(e.to_string()))?;
        Ok(())
    }

    /// The private key of account `i`.
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        self.signers[i].clone()
    }

    /// A client of the escrow at `address` that sends as account `i`.
    pub fn escrow(&self, address: Address, i: usize) -> Result<crate::escrow::EscrowClient> {
        crate::escrow::EscrowClient::connect(&self.endpoint(), address, Some(self.signer(i)))
    }
}
