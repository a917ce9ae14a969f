// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title InferenceEscrow: pays an executor only when a valid zkinfer proof for the job arrives.
/// @notice A customer opens a job for a registered model with the Poseidon commitment to
/// their private input and an ETH payment. An executor (optionally claiming it first) submits the proof with
/// its public instances `[inputCommitment, outputs...]`. The escrow checks that the instances
/// bind this job's input, calls the model's verifier (generated for the model's verifying
/// key, so it also fixes the model), records the outputs, and pays. After the deadline an
/// unpaid job is refunded to the customer.
contract InferenceEscrow {
    /// Gas given to a verifier call: a tampered proof burns what it is given.
    uint256 public constant VERIFY_GAS = 2_000_000;

    struct Model {
        address verifier;
        bytes32 modelHash;
        uint32 numInstances;
        address owner;
    }

    enum State {
        None,
        Open,
        Claimed,
        Paid,
        Refunded
    }

    struct Job {
        address customer;
        uint64 modelId;
        uint64 deadline;
        State state;
        address executor;
        uint256 inputCommitment;
        uint256 price;
        bytes32 outputsHash;
        bool restricted;
    }

    uint256 public modelCount;
    uint256 public jobCount;
    mapping(uint256 => Model) public models;
    mapping(uint256 => Job) public jobs;
    mapping(uint256 => mapping(address => bool)) public allowedExecutor;

    event ModelRegistered(uint256 indexed modelId, address indexed verifier, bytes32 modelHash, uint32 numInstances);
    event JobOpened(uint256 indexed jobId, address indexed customer, uint256 indexed modelId, uint256 inputCommitment, uint256 price, uint64 deadline);
    event JobClaimed(uint256 indexed jobId, address indexed executor);
    event JobPaid(uint256 indexed jobId, address indexed executor, uint256 price, bytes32 outputsHash, uint256[] outputs);
    event JobRefunded(uint256 indexed jobId, address indexed customer, uint256 amount);

    error UnknownModel(uint256 modelId);
    error BadModel();
    error BadJob();
    error WrongState(uint256 jobId, State state);
    error NotAllowed(uint256 jobId, address executor);
    error DeadlinePassed(uint256 jobId);
    error DeadlineNotPassed(uint256 jobId);
    error WrongInstanceCount(uint256 expected, uint256 got);
    error WrongInputCommitment(uint256 expected, uint256 got);
    error InvalidProof(uint256 jobId);
    error TransferFailed();

    /// Registers a model: its verifier contract and the zkinfer model hash it was generated for.
    function registerModel(address verifier, bytes32 modelHash, uint32 numInstances) external returns (uint256 modelId) {
        if (verifier.code.length == 0 || numInstances < 2) revert BadModel();
        modelId = ++modelCount;
        models[modelId] = Model(verifier, modelHash, numInstances, msg.sender);
        emit ModelRegistered(modelId, verifier, modelHash, numInstances);
    }

    /// Opens a job paid with `msg.value`. An empty allow-list lets any executor claim it.
    function openJob(uint256 modelId, uint256 inputCommitment, uint64 deadline, address[] calldata allowList) external payable returns (uint256 jobId) {
        if (models[modelId].verifier == address(0)) revert UnknownModel(modelId);
        if (msg.value == 0 || deadline <= block.timestamp) revert BadJob();
        jobId = ++jobCount;
        jobs[jobId] = Job(msg.sender, uint64(modelId), deadline, State.Open, address(0), inputCommitment, msg.value, bytes32(0), allowList.length > 0);
        for (uint256 i = 0; i < allowList.length; i++) {
            allowedExecutor[jobId][allowList[i]] = true;
        }
        emit JobOpened(jobId, msg.sender, modelId, inputCommitment, msg.value, deadline);
    }

    /// Claims an open job before its deadline.
    function claimJob(uint256 jobId) external {
        Job storage job = jobs[jobId];
        if (job.state != State.Open) revert WrongState(jobId, job.state);
        if (block.timestamp >= job.deadline) revert DeadlinePassed(jobId);
        if (job.restricted && !allowedExecutor[jobId][msg.sender]) revert NotAllowed(jobId, msg.sender);
        job.state = State.Claimed;
        job.executor = msg.sender;
        emit JobClaimed(jobId, msg.sender);
    }

    /// Submits the proof for a job; pays the sender when it verifies. A claimed job pays only
    /// its claimant. An open job pays the first allowed sender with a valid proof: a market
    /// coordinator leases jobs off chain and restricts them to the executors it may route to,
    /// so an executor that dies mid-proof does not lock the job (its lease lapses off chain).
    function submitProof(uint256 jobId, uint256[] calldata instances, bytes calldata proof) external {
        Job storage job = jobs[jobId];
        if (job.state == State.Claimed) {
            if (msg.sender != job.executor) revert NotAllowed(jobId, msg.sender);
        } else if (job.state == State.Open) {
            if (job.restricted && !allowedExecutor[jobId][msg.sender]) revert NotAllowed(jobId, msg.sender);
        } else {
            revert WrongState(jobId, job.state);
        }
        if (block.timestamp > job.deadline) revert DeadlinePassed(jobId);
        Model storage model = models[job.modelId];
        if (instances.length != model.numInstances) revert WrongInstanceCount(model.numInstances, instances.length);
        if (instances[0] != job.inputCommitment) revert WrongInputCommitment(job.inputCommitment, instances[0]);
        // The verifier takes the raw calldata `instances ‖ proof` and reverts when invalid.
        (bool ok,) = model.verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(instances, proof));
        if (!ok) revert InvalidProof(jobId);
        uint256[] calldata outputs = instances[1:];
        bytes32 outputsHash = keccak256(abi.encodePacked(outputs));
        uint256 price = job.price;
        job.state = State.Paid;
        job.executor = msg.sender; // the payee, also when the job was paid without a claim
        job.outputsHash = outputsHash;
        emit JobPaid(jobId, msg.sender, price, outputsHash, outputs);
        (bool sent,) = payable(msg.sender).call{value: price}("");
        if (!sent) revert TransferFailed();
    }

    /// Returns the payment of an unpaid job to its customer after the deadline.
    function refund(uint256 jobId) external {
        Job storage job = jobs[jobId];
        if (job.state != State.Open && job.state != State.Claimed) revert WrongState(jobId, job.state);
        if (block.timestamp <= job.deadline) revert DeadlineNotPassed(jobId);
        uint256 amount = job.price;
        job.state = State.Refunded;
        emit JobRefunded(jobId, job.customer, amount);
        (bool sent,) = payable(job.customer).call{value: amount}("");
        if (!sent) revert TransferFailed();
    }
}
