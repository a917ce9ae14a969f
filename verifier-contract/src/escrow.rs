//! ABI of the InferenceEscrow contract (`contracts/InferenceEscrow.sol`).

alloy::sol! {
    /// The escrow's external interface.
    #[derive(Debug)]
    interface InferenceEscrow {
        function registerModel(address verifier, bytes32 modelHash, uint32 numInstances) external returns (uint256 modelId);
        function openJob(uint256 modelId, uint256 inputCommitment, uint64 deadline, address[] calldata allowList) external payable returns (uint256 jobId);
        function claimJob(uint256 jobId) external;
        function submitProof(uint256 jobId, uint256[] calldata instances, bytes calldata proof) external;
        function refund(uint256 jobId) external;
        function jobCount() external view returns (uint256);
        function modelCount() external view returns (uint256);
        function jobs(uint256 jobId) external view returns (address customer, uint64 modelId, uint64 deadline, uint8 state, address executor, uint256 inputCommitment, uint256 price, bytes32 outputsHash, bool restricted);
        function allowedExecutor(uint256 jobId, address executor) external view returns (bool);
        function models(uint256 modelId) external view returns (address verifier, bytes32 modelHash, uint32 numInstances, address owner);
        event JobOpened(uint256 indexed jobId, address indexed customer, uint256 indexed modelId, uint256 inputCommitment, uint256 price, uint64 deadline);
        event JobRefunded(uint256 indexed jobId, address indexed customer, uint256 amount);
        event JobPaid(uint256 indexed jobId, address indexed executor, uint256 price, bytes32 outputsHash, uint256[] outputs);
    }
}

/// The escrow's job states (`InferenceEscrow.State`), as `jobs(id).state` returns them.
pub mod job_state {
    /// No such job.
    pub const NONE: u8 = 0;
    /// Paid in, not yet claimed.
    pub const OPEN: u8 = 1;
    /// Claimed by one executor.
    pub const CLAIMED: u8 = 2;
    /// Paid out to an executor.
    pub const PAID: u8 = 3;
    /// Returned to the customer.
    pub const REFUNDED: u8 = 4;
}
