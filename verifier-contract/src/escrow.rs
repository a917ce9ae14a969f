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
        event JobPaid(uint256 indexed jobId, address indexed executor, uint256 price, bytes32 outputsHash, uint256[] outputs);
    }
}
