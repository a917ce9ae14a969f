// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title InferenceEscrow: pays an executor only when a valid zkinfer proof for the job arrives.
/// @notice A customer opens a job for a registered model with the salted Poseidon commitment to
/// its private input and a payment in ETH or an ERC-20 token. A proof's public instances are
/// `[inputCommitment, payee, chainId, escrow, jobId, outputs...]`, each below the BN254 scalar
/// field modulus: the escrow checks that they bind this job on this chain and this escrow,
/// calls the model's verifier, and pays the payee the proof names, whoever sends the
/// transaction, so a copied proof pays only the executor that made it. Executors bond ETH stake;
/// a job requires a minimum bond; a claimable job can be claimed (locking the bond), and a
/// claimant that does not deliver by the deadline loses part of its bond to the customer.
/// Unstaking waits out a delay. After the deadline an unpaid job is refunded to the customer.
///
/// An optimistic job pays without a proof: its executor posts the outputs, bonding `minBond`;
/// if nobody challenges them within the challenge window, they are final and paid. The customer
/// or a staked validator (one that re-executed the job, sampled with `auditBps` by `auditSeed`,
/// which the executor cannot predict when it posts) can challenge by posting `challengeBond`;
/// the executor must then prove the posted outputs with a ZK proof within the prove window,
/// taking the challenger's bond, or lose its bond: half to the challenger, half to the customer,
/// who is refunded.
contract InferenceEscrow is ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The BN254 scalar field modulus: every public instance must be below it, so that
    /// a proof has exactly one encoding and the recorded outputs are unique.
    uint256 public constant FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Gas given to a verifier call: a tampered proof burns what it is given.
    uint256 public constant VERIFY_GAS = 2_000_000;
    /// @notice Instance rows of the payee binding, and the first output row.
    uint256 public constant PAYEE_ROW = 1;
    uint256 public constant CHAIN_ROW = 2;
    uint256 public constant ESCROW_ROW = 3;
    uint256 public constant JOB_ROW = 4;
    uint256 public constant FIRST_OUTPUT_ROW = 5;
    /// @notice Instances of an aggregated proof before its jobs' own: the KZG accumulator, two
    /// G1 points in 3 limbs of 88 bits per coordinate, which the batch verifier decides.
    uint256 public constant ACCUMULATOR_INSTANCES = 12;
    /// @notice Most jobs one batch verifier settles at once.
    uint256 public constant MAX_BATCH = 64;
    /// @notice Gas an ETH payment may use: a recipient that burns more, or reverts, is credited
    /// instead (`withdrawCredit`), so that no recipient can make the other payments of the same
    /// transaction (a batch's payees, a dispute's parties) run out of gas.
    uint256 public constant PUSH_GAS = 50_000;
    /// @notice Gas an ERC-20 transfer may use: a token (the customer's choice) that burns more,
    /// or refuses the recipient, has the payment credited instead (`withdrawTokenCredit`).
    uint256 public constant TOKEN_GAS = 100_000;

    /// @notice Seconds between an unstake request and the withdrawal it allows.
    uint64 public immutable unstakeDelay;
    /// @notice Share of a claimant's bond (basis points) paid to the customer when it fails to deliver.
    uint16 public immutable slashBps;

    struct Model {
        address verifier;
        bytes32 modelHash;
        uint32 numInstances;
        address owner;
        /// keccak256 of the code hashes of the verifier and each part it calls, in order.
        bytes32 codeHash;
        address[] parts;
    }

    enum State {
        None,
        Open,
        Claimed,
        Paid,
        Refunded,
        Posted,
        Disputed
    }

    /// What an optimistic job agrees to.
    struct OptimisticTerms {
        /// Probability (basis points) that validators re-execute the posted result.
        uint16 auditBps;
        /// Seconds after posting during which the result can be challenged.
        uint32 challengeWindow;
        /// Seconds a challenged executor has to prove its posted outputs.
        uint32 proveWindow;
        /// What a challenger posts (returned with a reward if it was right, lost if not).
        uint256 challengeBond;
    }

    /// An optimistic job's result and dispute.
    struct Optimistic {
        OptimisticTerms terms;
        bytes32 outputsHash;
        uint64 postedAt;
        uint64 postedBlock;
        uint64 proveBy;
        address challenger;
    }

    struct Job {
        address customer;
        uint64 modelId;
        uint64 deadline;
        State state;
        address executor;
        address token;
        uint256 inputCommitment;
        uint256 price;
        uint256 minBond;
        bytes32 outputsHash;
        bool restricted;
        bool claimable;
    }

    struct Stake {
        uint256 amount;
        uint256 locked;
        uint256 unstaking;
        uint64 unlockAt;
    }

    uint256 public modelCount;
    uint256 public jobCount;
    mapping(uint256 => Model) internal models;
    mapping(uint256 => Job) internal jobs;
    mapping(uint256 => mapping(address => bool)) public allowedExecutor;
    mapping(address => Stake) public stakes;
    /// @notice ETH that could not be pushed to its recipient, to withdraw with `withdrawCredit`.
    mapping(address => uint256) public credit;
    mapping(uint256 => Optimistic) internal optimistic;

    /// A verifier of aggregated proofs, for batches of jobs of `modelIds` in that order.
    struct BatchVerifier {
        address verifier;
        /// keccak256 of the code hashes of the verifier and each part it calls, in order.
        bytes32 codeHash;
        uint256 numInstances;
        uint256[] modelIds;
        address[] parts;
    }

    uint256 public batchVerifierCount;
    mapping(uint256 => BatchVerifier) internal batchVerifiers;
    /// @notice Whether a customer lets a batch verifier settle its jobs.
    mapping(address => mapping(uint256 => bool)) public trustsBatch;
    /// Jobs up to this id stay settleable by a batch verifier whose trust their customer has
    /// withdrawn: a withdrawal leaves every job opened before it covered, so a customer cannot
    /// sink a batch (whose calldata already shows its outputs) by withdrawing in front of it.
    mapping(address => mapping(uint256 => uint256)) internal batchTrustHeldUpTo;
    /// @notice Tokens that could not be transferred to their recipient (`token => recipient =>
    /// amount`): the token refused it (a blacklist, a pause) or burned more than `TOKEN_GAS`, so
    /// that no recipient or token blocks the other payments. Withdrawn with `withdrawTokenCredit`.
    mapping(address => mapping(address => uint256)) public tokenCredit;

    event ModelRegistered(uint256 indexed modelId, address indexed verifier, bytes32 modelHash, uint32 numInstances, bytes32 codeHash);
    event JobOpened(
        uint256 indexed jobId,
        address indexed customer,
        uint256 indexed modelId,
        uint256 inputCommitment,
        address token,
        uint256 price,
        uint256 minBond,
        uint64 deadline,
        bool claimable
    );
    event JobClaimed(uint256 indexed jobId, address indexed executor, uint256 bond);
    event JobPaid(uint256 indexed jobId, address indexed executor, address token, uint256 price, bytes32 outputsHash, uint256[] outputs);
    event JobRefunded(uint256 indexed jobId, address indexed customer, address token, uint256 amount, uint256 slashed);
    event Staked(address indexed executor, uint256 amount, uint256 total);
    event UnstakeRequested(address indexed executor, uint256 amount, uint64 unlockAt);
    event StakeWithdrawn(address indexed executor, uint256 amount);
    event Slashed(address indexed executor, uint256 indexed jobId, uint256 amount);
    event Credited(address indexed to, uint256 amount);
    event TokenCredited(address indexed token, address indexed to, uint256 amount);
    event BatchVerifierRegistered(uint256 indexed batchId, address indexed verifier, uint256[] modelIds, uint256 numInstances, bytes32 codeHash);
    event BatchVerifierTrusted(address indexed customer, uint256 indexed batchId, bool trusted);
    event BatchSettled(uint256 indexed batchId, address indexed submitter, uint256[] jobIds);
    event OptimisticJobOpened(uint256 indexed jobId, uint16 auditBps, uint32 challengeWindow, uint32 proveWindow, uint256 challengeBond);
    event ResultPosted(uint256 indexed jobId, address indexed executor, bytes32 outputsHash, uint256[] outputs);
    event Challenged(uint256 indexed jobId, address indexed challenger, uint64 proveBy);
    event DisputeResolved(uint256 indexed jobId, address indexed winner, bool executorProved, uint256 reward);

    error UnknownModel(uint256 modelId);
    error BadModel();
    error BadJob();
    error WrongPayment();
    error BadStake();
    error WrongState(uint256 jobId, State state);
    error NotAllowed(uint256 jobId, address executor);
    error NotClaimable(uint256 jobId);
    error InsufficientStake(address executor, uint256 active, uint256 needed);
    error DeadlinePassed(uint256 jobId);
    error DeadlineNotPassed(uint256 jobId);
    error StillLocked(uint64 unlockAt);
    error WrongInstanceCount(uint256 expected, uint256 got);
    error NonCanonicalInstance(uint256 row);
    error WrongInputCommitment(uint256 expected, uint256 got);
    error WrongBinding(uint256 row);
    error InvalidProof(uint256 jobId);
    error TransferFailed();
    error NotOptimistic(uint256 jobId);
    error OptimisticJob(uint256 jobId);
    error WindowClosed(uint256 jobId);
    error WindowOpen(uint256 jobId);
    error WrongOutputs(uint256 jobId);
    error UnknownBatchVerifier(uint256 batchId);
    error UntrustedBatchVerifier(uint256 jobId, uint256 batchId);
    error WrongBatchSize(uint256 expected, uint256 got);
    error WrongBatchModel(uint256 jobId, uint256 expectedModel);
    error InvalidBatchProof(uint256 batchId);

    /// @param unstakeDelay_ seconds an unstake request waits before its withdrawal.
    /// @param slashBps_ share (basis points, at most 10000) of a failed claimant's bond paid to the customer.
    constructor(uint64 unstakeDelay_, uint16 slashBps_) {
        if (slashBps_ > 10_000) revert BadStake();
        unstakeDelay = unstakeDelay_;
        slashBps = slashBps_;
    }

    /// @notice Registers a model: its verifier (and, for a split verifier, the parts it calls, in
    /// order), the zkinfer model hash and the instance count. Anyone may register; the code hash
    /// recorded with it lets a coordinator or customer check that the verifier is the one it
    /// generates for the model's verifying key.
    function registerModel(address verifier, address[] calldata parts, bytes32 modelHash, uint32 numInstances)
        external
        returns (uint256 modelId)
    {
        if (verifier.code.length == 0 || numInstances <= FIRST_OUTPUT_ROW) revert BadModel();
        bytes32[] memory hashes = new bytes32[](parts.length + 1);
        hashes[0] = verifier.codehash;
        for (uint256 i = 0; i < parts.length; i++) {
            if (parts[i].code.length == 0) revert BadModel();
            hashes[i + 1] = parts[i].codehash;
        }
        bytes32 codeHash = keccak256(abi.encodePacked(hashes));
        modelId = ++modelCount;
        models[modelId] = Model(verifier, modelHash, numInstances, msg.sender, codeHash, parts);
        emit ModelRegistered(modelId, verifier, modelHash, numInstances, codeHash);
    }

    /// @notice Opens a job paying `price` of `token` (address 0: ETH, sent as `msg.value`; else
    /// an ERC-20 the caller has approved). Only executors with at least `minBond` of active stake
    /// can be paid (or claim); an empty allow-list admits any of them. A market job is opened
    /// with `claimable = false`, so that nobody can lock it with a claim.
    function openJob(
        uint256 modelId,
        uint256 inputCommitment,
        uint64 deadline,
        address[] calldata allowList,
        address token,
        uint256 price,
        uint256 minBond,
        bool claimable
    ) external payable nonReentrant returns (uint256 jobId) {
        jobId = _open(modelId, inputCommitment, deadline, allowList, token, price, minBond, claimable);
    }

    /// @notice Opens an optimistic job: paid when its executor's posted outputs survive the
    /// challenge window, or are proved when challenged (see the contract's notice). It cannot be
    /// claimed; the same payment and bond rules as `openJob` apply.
    function openOptimisticJob(
        uint256 modelId,
        uint256 inputCommitment,
        uint64 deadline,
        address[] calldata allowList,
        address token,
        uint256 price,
        uint256 minBond,
        OptimisticTerms calldata terms
    ) external payable nonReentrant returns (uint256 jobId) {
        if (terms.auditBps > 10_000 || terms.challengeWindow == 0 || terms.proveWindow == 0 || terms.challengeBond == 0) revert BadJob();
        jobId = _open(modelId, inputCommitment, deadline, allowList, token, price, minBond, false);
        optimistic[jobId].terms = terms;
        emit OptimisticJobOpened(jobId, terms.auditBps, terms.challengeWindow, terms.proveWindow, terms.challengeBond);
    }

    function _open(
        uint256 modelId,
        uint256 inputCommitment,
        uint64 deadline,
        address[] calldata allowList,
        address token,
        uint256 price,
        uint256 minBond,
        bool claimable
    ) internal returns (uint256 jobId) {
        if (models[modelId].verifier == address(0)) revert UnknownModel(modelId);
        if (price == 0 || minBond == 0 || deadline <= block.timestamp || inputCommitment >= FIELD_MODULUS) revert BadJob();
        if (msg.value != (token == address(0) ? price : 0)) revert WrongPayment();
        jobId = ++jobCount;
        jobs[jobId] = Job(
            msg.sender, uint64(modelId), deadline, State.Open, address(0), token, inputCommitment, price, minBond, bytes32(0), allowList.length > 0, claimable
        );
        for (uint256 i = 0; i < allowList.length; i++) {
            allowedExecutor[jobId][allowList[i]] = true;
        }
        emit JobOpened(jobId, msg.sender, modelId, inputCommitment, token, price, minBond, deadline, claimable);
        if (token != address(0)) {
            // Fee-on-transfer tokens would leave the escrow short of the price: refuse them.
            uint256 before = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), price);
            if (IERC20(token).balanceOf(address(this)) - before != price) revert WrongPayment();
        }
    }

    /// @notice The stake an executor can bond now: staked, less what is locked by claims and
    /// what is being unstaked.
    function activeStake(address executor) public view returns (uint256) {
        Stake storage s = stakes[executor];
        return s.amount - s.locked - s.unstaking;
    }

    /// @notice Adds `msg.value` to the caller's stake.
    function stake() external payable {
        if (msg.value == 0) revert BadStake();
        Stake storage s = stakes[msg.sender];
        s.amount += msg.value;
        emit Staked(msg.sender, msg.value, s.amount);
    }

    /// @notice Starts unstaking `amount` of active stake; it can be withdrawn after `unstakeDelay`
    /// (a new request restarts the delay for everything being unstaked).
    function requestUnstake(uint256 amount) external {
        if (amount == 0 || amount > activeStake(msg.sender)) revert BadStake();
        Stake storage s = stakes[msg.sender];
        s.unstaking += amount;
        s.unlockAt = uint64(block.timestamp) + unstakeDelay;
        emit UnstakeRequested(msg.sender, amount, s.unlockAt);
    }

    /// @notice Withdraws what is being unstaked, once its delay is over.
    function withdrawStake() external nonReentrant {
        Stake storage s = stakes[msg.sender];
        uint256 amount = s.unstaking;
        if (amount == 0) revert BadStake();
        if (block.timestamp < s.unlockAt) revert StillLocked(s.unlockAt);
        s.unstaking = 0;
        s.amount -= amount;
        emit StakeWithdrawn(msg.sender, amount);
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert TransferFailed();
    }

    /// @notice Claims a claimable open job before its deadline, locking `minBond` of the caller's
    /// active stake: from then on only the caller's proof pays, and if none arrives by the
    /// deadline, `slashBps` of the bond goes to the customer.
    function claimJob(uint256 jobId) external {
        Job storage job = jobs[jobId];
        if (job.state != State.Open) revert WrongState(jobId, job.state);
        if (!job.claimable) revert NotClaimable(jobId);
        if (block.timestamp >= job.deadline) revert DeadlinePassed(jobId);
        if (job.restricted && !allowedExecutor[jobId][msg.sender]) revert NotAllowed(jobId, msg.sender);
        uint256 active = activeStake(msg.sender);
        if (active < job.minBond) revert InsufficientStake(msg.sender, active, job.minBond);
        stakes[msg.sender].locked += job.minBond;
        job.state = State.Claimed;
        job.executor = msg.sender;
        emit JobClaimed(jobId, msg.sender, job.minBond);
    }

    /// @notice Submits the proof for a job. Anyone may send it: the job pays the payee the proof
    /// binds, which must be the claimant of a claimed job, or an allowed executor with enough
    /// active stake for an open one.
    function submitProof(uint256 jobId, uint256[] calldata instances, bytes calldata proof) external nonReentrant {
        Job storage job = jobs[jobId];
        address payee = _accept(jobId, job, instances);
        _verify(jobId, job, instances, proof);
        _settle(jobId, job, payee, instances[FIRST_OUTPUT_ROW:]);
        _pay(job.token, payee, job.price);
    }

    /// Checks that job `jobId` can be paid now with a proof of `instances` (its state, deadline,
    /// binding, and its payee's right to it); returns the payee.
    function _accept(uint256 jobId, Job storage job, uint256[] calldata instances) internal view returns (address payee) {
        if (job.state != State.Open && job.state != State.Claimed) revert WrongState(jobId, job.state);
        if (optimistic[jobId].terms.challengeWindow != 0) revert OptimisticJob(jobId);
        if (block.timestamp > job.deadline) revert DeadlinePassed(jobId);
        payee = _bound(jobId, job, instances);
        if (job.state == State.Claimed) {
            if (payee != job.executor) revert NotAllowed(jobId, payee);
        } else {
            if (job.restricted && !allowedExecutor[jobId][payee]) revert NotAllowed(jobId, payee);
            uint256 active = activeStake(payee);
            if (active < job.minBond) revert InsufficientStake(payee, active, job.minBond);
        }
    }

    /// Records job `jobId` as paid to `payee` for `outputs` (the payment itself is the caller's).
    function _settle(uint256 jobId, Job storage job, address payee, uint256[] calldata outputs) internal {
        bytes32 outputsHash = keccak256(abi.encodePacked(outputs));
        if (job.state == State.Claimed) stakes[payee].locked -= job.minBond;
        job.state = State.Paid;
        job.executor = payee;
        job.outputsHash = outputsHash;
        emit JobPaid(jobId, payee, job.token, job.price, outputsHash, outputs);
    }

    /// @notice Registers the verifier of aggregated proofs (`zkinfer solidity --aggregation`) for
    /// batches of jobs of `modelIds`, in that order. Anyone may register one; it settles only the
    /// jobs of customers who trust it (`trustBatchVerifier`), as a customer's choice of model is
    /// what makes a model's verifier pay.
    function registerBatchVerifier(address verifier, address[] calldata parts, uint256[] calldata modelIds)
        external
        returns (uint256 batchId)
    {
        if (verifier.code.length == 0 || modelIds.length == 0 || modelIds.length > MAX_BATCH) revert BadModel();
        bytes32[] memory hashes = new bytes32[](parts.length + 1);
        hashes[0] = verifier.codehash;
        for (uint256 i = 0; i < parts.length; i++) {
            if (parts[i].code.length == 0) revert BadModel();
            hashes[i + 1] = parts[i].codehash;
        }
        uint256 numInstances = ACCUMULATOR_INSTANCES;
        for (uint256 i = 0; i < modelIds.length; i++) {
            if (models[modelIds[i]].verifier == address(0)) revert UnknownModel(modelIds[i]);
            numInstances += models[modelIds[i]].numInstances;
        }
        bytes32 codeHash = keccak256(abi.encodePacked(hashes));
        batchId = ++batchVerifierCount;
        batchVerifiers[batchId] = BatchVerifier(verifier, codeHash, numInstances, modelIds, parts);
        emit BatchVerifierRegistered(batchId, verifier, modelIds, numInstances, codeHash);
    }

    /// @notice Lets batch verifier `batchId` settle the caller's jobs, or stops it for the jobs
    /// the caller opens from now on: a withdrawal leaves the jobs opened before it settleable. A
    /// customer trusts one after checking its code hash against the verifier it generates from
    /// the batch key.
    function trustBatchVerifier(uint256 batchId, bool trusted) external {
        if (batchVerifiers[batchId].verifier == address(0)) revert UnknownBatchVerifier(batchId);
        if (!trusted && trustsBatch[msg.sender][batchId]) batchTrustHeldUpTo[msg.sender][batchId] = jobCount;
        trustsBatch[msg.sender][batchId] = trusted;
        emit BatchVerifierTrusted(msg.sender, batchId, trusted);
    }

    /// @notice Settles `jobIds` with one aggregated proof checked by batch verifier `batchId`.
    /// `instances` are the accumulator's 12 limbs, then each job's own instances in order; each
    /// job is checked as `submitProof` checks it (its input commitment, chain, escrow, job id,
    /// and its payee's right to it) and paid to the payee its own proof binds, whoever sends the
    /// transaction. Every job's customer must trust the batch verifier, or have withdrawn its
    /// trust only after opening the job. A job listed twice fails: it is no longer payable the
    /// second time.
    function submitBatch(uint256 batchId, uint256[] calldata jobIds, uint256[] calldata instances, bytes calldata proof)
        external
        nonReentrant
    {
        BatchVerifier storage batch = batchVerifiers[batchId];
        if (batch.verifier == address(0)) revert UnknownBatchVerifier(batchId);
        if (jobIds.length != batch.modelIds.length) revert WrongBatchSize(batch.modelIds.length, jobIds.length);
        if (instances.length != batch.numInstances) revert WrongInstanceCount(batch.numInstances, instances.length);
        for (uint256 i = 0; i < ACCUMULATOR_INSTANCES; i++) {
            if (instances[i] >= FIELD_MODULUS) revert NonCanonicalInstance(i);
        }
        address[] memory payees = new address[](jobIds.length);
        uint256 offset = ACCUMULATOR_INSTANCES;
        for (uint256 i = 0; i < jobIds.length; i++) {
            uint256 jobId = jobIds[i];
            Job storage job = jobs[jobId];
            if (job.modelId != batch.modelIds[i]) revert WrongBatchModel(jobId, batch.modelIds[i]);
            if (!trustsBatch[job.customer][batchId] && jobId > batchTrustHeldUpTo[job.customer][batchId]) {
                revert UntrustedBatchVerifier(jobId, batchId);
            }
            uint256 end = offset + models[job.modelId].numInstances;
            uint256[] calldata own = instances[offset:end];
            payees[i] = _accept(jobId, job, own);
            // Paid before the next job is looked at, so a job listed twice is refused.
            _settle(jobId, job, payees[i], own[FIRST_OUTPUT_ROW:]);
            offset = end;
        }
        (bool ok,) = batch.verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(instances, proof));
        if (!ok) revert InvalidBatchProof(batchId);
        emit BatchSettled(batchId, msg.sender, jobIds);
        for (uint256 i = 0; i < jobIds.length; i++) {
            Job storage job = jobs[jobIds[i]];
            _pay(job.token, payees[i], job.price);
        }
    }

    /// @notice A registered batch verifier.
    function getBatchVerifier(uint256 batchId) external view returns (BatchVerifier memory) {
        return batchVerifiers[batchId];
    }

    /// Checks that `instances` are canonical and bind job `jobId` (its input, this chain, this
    /// escrow, the job); returns the payee they bind.
    function _bound(uint256 jobId, Job storage job, uint256[] calldata instances) internal view returns (address) {
        Model storage model = models[job.modelId];
        if (instances.length != model.numInstances) revert WrongInstanceCount(model.numInstances, instances.length);
        for (uint256 i = 0; i < instances.length; i++) {
            if (instances[i] >= FIELD_MODULUS) revert NonCanonicalInstance(i);
        }
        if (instances[0] != job.inputCommitment) revert WrongInputCommitment(job.inputCommitment, instances[0]);
        if (instances[CHAIN_ROW] != block.chainid) revert WrongBinding(CHAIN_ROW);
        if (instances[ESCROW_ROW] != uint256(uint160(address(this)))) revert WrongBinding(ESCROW_ROW);
        if (instances[JOB_ROW] != jobId) revert WrongBinding(JOB_ROW);
        if (instances[PAYEE_ROW] == 0 || instances[PAYEE_ROW] >> 160 != 0) revert WrongBinding(PAYEE_ROW);
        return address(uint160(instances[PAYEE_ROW]));
    }

    /// Calls the model's verifier on the raw calldata `instances ‖ proof`; it reverts when invalid.
    function _verify(uint256 jobId, Job storage job, uint256[] calldata instances, bytes calldata proof) internal view {
        (bool ok,) = models[job.modelId].verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(instances, proof));
        if (!ok) revert InvalidProof(jobId);
    }

    /// @notice Posts an optimistic job's outputs (an allowed executor with `minBond` of active
    /// stake, before the deadline), bonding `minBond`. The challenge window starts.
    function postResult(uint256 jobId, uint256[] calldata outputs) external {
        Job storage job = jobs[jobId];
        Optimistic storage o = optimistic[jobId];
        if (o.terms.challengeWindow == 0) revert NotOptimistic(jobId);
        if (job.state != State.Open) revert WrongState(jobId, job.state);
        if (block.timestamp > job.deadline) revert DeadlinePassed(jobId);
        if (job.restricted && !allowedExecutor[jobId][msg.sender]) revert NotAllowed(jobId, msg.sender);
        if (outputs.length + FIRST_OUTPUT_ROW != models[job.modelId].numInstances) revert WrongOutputs(jobId);
        for (uint256 i = 0; i < outputs.length; i++) {
            if (outputs[i] >= FIELD_MODULUS) revert NonCanonicalInstance(FIRST_OUTPUT_ROW + i);
        }
        uint256 active = activeStake(msg.sender);
        if (active < job.minBond) revert InsufficientStake(msg.sender, active, job.minBond);
        stakes[msg.sender].locked += job.minBond;
        job.state = State.Posted;
        job.executor = msg.sender;
        o.outputsHash = keccak256(abi.encodePacked(outputs));
        o.postedAt = uint64(block.timestamp);
        o.postedBlock = uint64(block.number);
        emit ResultPosted(jobId, msg.sender, o.outputsHash, outputs);
    }

    /// @notice The seed that decides whether validators re-execute a posted result: the hash of
    /// the block after the one the result was posted in, with the job id. Zero until that block
    /// exists, and again once it is more than 256 blocks old (validators read it in between).
    /// The executor cannot know it when it posts; a block producer could, and could withhold
    /// a block to change it (design.md §7 says what that assumes).
    function auditSeed(uint256 jobId) public view returns (uint256) {
        Optimistic storage o = optimistic[jobId];
        if (o.postedBlock == 0 || block.number <= o.postedBlock + 1) return 0;
        bytes32 h = blockhash(o.postedBlock + 1);
        if (h == bytes32(0)) return 0;
        return uint256(keccak256(abi.encodePacked(h, jobId)));
    }

    /// @notice Whether validators re-execute job `jobId`: its seed, below `auditBps` in 10,000.
    function audited(uint256 jobId) external view returns (bool) {
        uint256 seed = auditSeed(jobId);
        return seed != 0 && seed % 10_000 < optimistic[jobId].terms.auditBps;
    }

    /// @notice Pays a posted result once its challenge window closed unchallenged (anyone may call).
    function finalize(uint256 jobId) external nonReentrant {
        Job storage job = jobs[jobId];
        Optimistic storage o = optimistic[jobId];
        if (job.state != State.Posted) revert WrongState(jobId, job.state);
        if (block.timestamp <= o.postedAt + o.terms.challengeWindow) revert WindowOpen(jobId);
        stakes[job.executor].locked -= job.minBond;
        job.state = State.Paid;
        job.outputsHash = o.outputsHash;
        emit JobPaid(jobId, job.executor, job.token, job.price, o.outputsHash, new uint256[](0));
        _pay(job.token, job.executor, job.price);
    }

    /// @notice Challenges a posted result within its window, posting `challengeBond` (ETH): the
    /// customer or a staked validator other than the executor.
    function challenge(uint256 jobId) external payable {
        Job storage job = jobs[jobId];
        Optimistic storage o = optimistic[jobId];
        if (job.state != State.Posted) revert WrongState(jobId, job.state);
        if (block.timestamp > o.postedAt + o.terms.challengeWindow) revert WindowClosed(jobId);
        if (msg.value != o.terms.challengeBond) revert WrongPayment();
        if (msg.sender == job.executor || (msg.sender != job.customer && activeStake(msg.sender) == 0)) revert NotAllowed(jobId, msg.sender);
        job.state = State.Disputed;
        o.challenger = msg.sender;
        o.proveBy = uint64(block.timestamp) + o.terms.proveWindow;
        emit Challenged(jobId, msg.sender, o.proveBy);
    }

    /// @notice Settles a dispute with a ZK proof of the posted outputs, bound to the executor and
    /// this job (anyone may send it): the executor is paid the price and the challenger's bond.
    function resolveWithProof(uint256 jobId, uint256[] calldata instances, bytes calldata proof) external nonReentrant {
        Job storage job = jobs[jobId];
        Optimistic storage o = optimistic[jobId];
        if (job.state != State.Disputed) revert WrongState(jobId, job.state);
        if (block.timestamp > o.proveBy) revert WindowClosed(jobId);
        if (_bound(jobId, job, instances) != job.executor) revert NotAllowed(jobId, address(uint160(instances[PAYEE_ROW])));
        if (keccak256(abi.encodePacked(instances[FIRST_OUTPUT_ROW:])) != o.outputsHash) revert WrongOutputs(jobId);
        _verify(jobId, job, instances, proof);
        stakes[job.executor].locked -= job.minBond;
        job.state = State.Paid;
        job.outputsHash = o.outputsHash;
        uint256 bond = o.terms.challengeBond;
        emit DisputeResolved(jobId, job.executor, true, bond);
        emit JobPaid(jobId, job.executor, job.token, job.price, o.outputsHash, instances[FIRST_OUTPUT_ROW:]);
        _pay(job.token, job.executor, job.price);
        _pay(address(0), job.executor, bond);
    }

    /// @notice Ends a dispute whose executor did not prove its outputs in time (anyone may call):
    /// its bond is slashed, half to the challenger (with its own bond back), half to the
    /// customer, who is refunded the price.
    function slashUnproven(uint256 jobId) external nonReentrant {
        Job storage job = jobs[jobId];
        Optimistic storage o = optimistic[jobId];
        if (job.state != State.Disputed) revert WrongState(jobId, job.state);
        if (block.timestamp <= o.proveBy) revert WindowOpen(jobId);
        Stake storage s = stakes[job.executor];
        uint256 slashed = job.minBond;
        s.locked -= slashed;
        s.amount -= slashed;
        uint256 reward = slashed / 2;
        job.state = State.Refunded;
        emit Slashed(job.executor, jobId, slashed);
        emit DisputeResolved(jobId, o.challenger, false, reward);
        emit JobRefunded(jobId, job.customer, job.token, job.price, slashed - reward);
        _pay(address(0), o.challenger, o.terms.challengeBond + reward);
        _pay(job.token, job.customer, job.price);
        _pay(address(0), job.customer, slashed - reward);
    }

    /// @notice An optimistic job's terms and result.
    function getOptimistic(uint256 jobId) external view returns (Optimistic memory) {
        return optimistic[jobId];
    }

    /// @notice Returns an unpaid job's payment to its customer after the deadline (anyone may
    /// call it); a claimant that did not deliver loses `slashBps` of its bond to the customer.
    function refund(uint256 jobId) external nonReentrant {
        Job storage job = jobs[jobId];
        if (job.state != State.Open && job.state != State.Claimed) revert WrongState(jobId, job.state);
        if (block.timestamp <= job.deadline) revert DeadlineNotPassed(jobId);
        uint256 slashed = 0;
        if (job.state == State.Claimed) {
            Stake storage s = stakes[job.executor];
            slashed = job.minBond * slashBps / 10_000;
            s.locked -= job.minBond;
            s.amount -= slashed;
            emit Slashed(job.executor, jobId, slashed);
        }
        job.state = State.Refunded;
        emit JobRefunded(jobId, job.customer, job.token, job.price, slashed);
        _pay(job.token, job.customer, job.price);
        if (slashed > 0) _pay(address(0), job.customer, slashed);
    }

    /// @notice Withdraws ETH that could not be pushed to the caller.
    function withdrawCredit() external nonReentrant {
        uint256 amount = credit[msg.sender];
        if (amount == 0) revert BadStake();
        credit[msg.sender] = 0;
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert TransferFailed();
    }

    /// @notice Withdraws, to `to`, the tokens of `token` that could not be transferred to the
    /// caller (to another address of its own, if the token refuses the caller's).
    function withdrawTokenCredit(address token, address to) external nonReentrant {
        uint256 amount = tokenCredit[token][msg.sender];
        if (amount == 0 || to == address(0)) revert BadStake();
        tokenCredit[token][msg.sender] = 0;
        IERC20(token).safeTransfer(to, amount);
    }

    /// @notice A job.
    function getJob(uint256 jobId) external view returns (Job memory) {
        return jobs[jobId];
    }

    /// @notice A registered model.
    function getModel(uint256 modelId) external view returns (Model memory) {
        return models[modelId];
    }

    /// Pays ETH or a token so that neither the recipient nor the token can block the rest of the
    /// transaction: the call gets at most `PUSH_GAS` (`TOKEN_GAS`), copies back at most one word,
    /// and a payment that fails is credited to its recipient.
    function _pay(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            uint256 cap = PUSH_GAS;
            bool sent;
            assembly ("memory-safe") {
                sent := call(cap, to, amount, 0, 0, 0, 0)
            }
            if (!sent) {
                credit[to] += amount;
                emit Credited(to, amount);
            }
        } else if (!_tryTransfer(token, to, amount)) {
            tokenCredit[token][to] += amount;
            emit TokenCredited(token, to, amount);
        }
    }

    /// `token.transfer(to, amount)` with at most `TOKEN_GAS`; it succeeded as SafeERC20 counts
    /// success: the call did not revert and returned true, or returned nothing from a contract.
    function _tryTransfer(address token, address to, uint256 amount) internal returns (bool ok) {
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, amount));
        uint256 cap = TOKEN_GAS;
        assembly ("memory-safe") {
            let success := call(cap, token, 0, add(data, 0x20), mload(data), 0, 0x20)
            switch returndatasize()
            case 0 { ok := and(success, gt(extcodesize(token), 0)) }
            default { ok := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0), 1))) }
        }
    }
}
