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
        Refunded
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
        if (job.state != State.Open && job.state != State.Claimed) revert WrongState(jobId, job.state);
        if (block.timestamp > job.deadline) revert DeadlinePassed(jobId);
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
        address payee = address(uint160(instances[PAYEE_ROW]));
        if (job.state == State.Claimed) {
            if (payee != job.executor) revert NotAllowed(jobId, payee);
        } else {
            if (job.restricted && !allowedExecutor[jobId][payee]) revert NotAllowed(jobId, payee);
            uint256 active = activeStake(payee);
            if (active < job.minBond) revert InsufficientStake(payee, active, job.minBond);
        }
        // The verifier takes the raw calldata `instances ‖ proof` and reverts when invalid.
        (bool ok,) = model.verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(instances, proof));
        if (!ok) revert InvalidProof(jobId);
        uint256[] calldata outputs = instances[FIRST_OUTPUT_ROW:];
        bytes32 outputsHash = keccak256(abi.encodePacked(outputs));
        if (job.state == State.Claimed) stakes[payee].locked -= job.minBond;
        job.state = State.Paid;
        job.executor = payee;
        job.outputsHash = outputsHash;
        emit JobPaid(jobId, payee, job.token, job.price, outputsHash, outputs);
        _pay(job.token, payee, job.price);
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

    /// @notice A job.
    function getJob(uint256 jobId) external view returns (Job memory) {
        return jobs[jobId];
    }

    /// @notice A registered model.
    function getModel(uint256 modelId) external view returns (Model memory) {
        return models[modelId];
    }

    /// Pays ETH (crediting a recipient that refuses it, so that no recipient can block a job's
    /// settlement) or a token.
    function _pay(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            (bool sent,) = payable(to).call{value: amount}("");
            if (!sent) {
                credit[to] += amount;
                emit Credited(to, amount);
            }
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}
