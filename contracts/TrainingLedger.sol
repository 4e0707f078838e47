// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ITrainingLedger} from "./ITrainingLedger.sol";

/// @title TrainingLedger — proof-of-training claims, verification, disputes and rewards.
/// @notice See ITrainingLedger for the external API and docs/contract.md for the lifecycle,
/// the economics and the invariants.
/// @dev Storage is packed so that each hot path touches few slots (docs/gas.md): what is not
/// needed by a later check (code CID, manifest digest, segment lists, observed hashes) lives
/// in events only. Payouts are credited to `_balances` and pulled with `withdraw`.
///
/// INVARIANT (solvency): address(this).balance == sum(_balances) + sum(verifier stakes)
///   + sum(stakes of Open/Disputed claims) + sum(bonds of Voting disputes) + sum(task pools)
///   + unsettled confirmer fees of Accepted claims + unsettled majority-voter shares
///   + sum(sponsor bonds not yet returned or paid out).
///   Every write below moves value between exactly these buckets; none is created or lost.
/// INVARIANT (no double pay): a claim's stake leaves it exactly once (finalize or
///   resolveDispute makes it terminal first); a confirmer is paid once (settledMask bit); a
///   voter once (SETTLED flag); a balance is zeroed before it is sent.
contract TrainingLedger is ITrainingLedger, ReentrancyGuard {
    /// @notice Upper bound on a task's quorum: bounds the loops over confirmers.
    uint16 public constant MAX_QUORUM = 16;
    /// @notice Most segments one confirmation may list.
    uint256 public constant MAX_CONFIRM_SEGMENTS = 64;
    /// @notice Longest binary CID accepted for `codeCid`.
    uint256 public constant MAX_CID_BYTES = 128;
    /// @notice Longest report note.
    uint256 public constant MAX_NOTE_BYTES = 2048;

    uint8 private constant VOTE_UPHOLD = 1;
    uint8 private constant VOTE_DISMISS = 2;
    uint8 private constant VOTE_SETTLED = 4;

    /// @dev Grouped by the path that reads them: slot 0 reveal, slot 1 confirm/vote, slot 2
    /// finalize, slot 3 finalize/settle.
    struct Task {
        address sponsor;
        uint32 lastClaimId; // head of the task's claim list (newest first)
        uint32 revealWindow;
        uint32 challengeWindow;
        // slot 1
        uint96 minTrainerStake;
        uint96 minVerifierStake;
        uint8 quorum; // <= MAX_QUORUM
        uint32 votingWindow;
        uint24 claimCount;
        // slot 2
        uint96 pool;
        uint64 bestLoss;
        uint64 minImprovement;
        uint32 bestClaimId;
        // slot 3
        uint96 rewardPerImprovement;
        uint96 verifierFee;
        uint64 baselineLoss;
        // slot 4
        uint96 challengeBond;
        bool isSealed; // read by reveal and finalize: the rules of docs/sealed-evaluation.md apply
        // slot 5
        bytes32 specDigest;
    }

    struct Claim {
        address trainer;
        uint32 taskId;
        uint32 parentId;
        uint16 numSegments;
        ClaimState status; // never Finalizable
        uint8 confirmations;
        // slot 1
        bytes32 merkleRoot;
        // slot 2
        uint96 stake;
        uint64 claimedLoss;
        uint40 challengeDeadline;
        uint16 settledMask; // bit i: confirmer i settled
        uint32 prevInTask; // the task's previous claim (0 for the first): a list without extra slots
        // slot 3
        bytes32 seed;
    }

    struct Commitment {
        uint64 blockNumber;
        uint40 timestamp;
        bool revealed;
    }

    struct Dispute {
        uint32 claimId;
        ChallengeKind kind;
        uint16 segment;
        DisputeState status; // never Resolvable
        uint16 votesUphold;
        uint16 votesDismiss;
        uint40 openedAt;
        uint40 votingDeadline;
        // slot 1
        address challenger;
        uint96 perVoterShare;
    }

    /// @dev A sealed task's schedule: slot 0 openShard, slot 1 everything that asks for a round.
    struct Seal {
        bytes32 shardRoot;
        // slot 1
        uint40 start;
        uint32 roundLength;
        uint32 openGrace;
        uint16 rounds;
        uint96 bond; // what is left of the sponsor's bond: the shares of rounds not yet settled
        // slot 2
        uint96 bondPerRound; // each round's share: back to the sponsor when it opens, else to its claims
    }

    /// @dev One round of a sealed task: its shard once opened, and its claims for the bond's share.
    struct Round {
        bytes32 digest; // 0 while sealed
        // slot 1
        uint40 openedAt;
        uint32 claims; // revealed in the round (reveals end with the round: final when it is missed)
        uint32 paid; // of those, finalized after a missed opening
        bool released; // its bond share went back to the sponsor (opened, or missed with no claims)
    }

    /// @dev What a claim of a sealed task adds to its Claim, one slot.
    struct SealedClaim {
        uint16 round;
        bool scored;
        uint32 incumbentId;
        uint64 incumbentLoss;
    }

    struct Verifier {
        uint96 stake;
        uint32 bindings;
        bool registered;
    }

    uint32 private _taskCount;
    uint32 private _claimCount;
    mapping(uint32 taskId => Task) private _tasks;
    mapping(uint32 claimId => Claim) private _claims;
    mapping(uint32 claimId => mapping(uint256 index => address)) private _confirmers;
    mapping(uint32 claimId => bytes32) private _openDispute;
    mapping(bytes32 commitment => Commitment) private _commitments;
    mapping(bytes32 disputeId => Dispute) private _disputes;
    mapping(bytes32 disputeId => mapping(address voter => uint8)) private _votes;
    mapping(address => Verifier) private _verifiers;
    mapping(address => uint256) private _balances;
    mapping(uint32 taskId => Seal) private _seals;
    mapping(uint32 taskId => mapping(uint16 round => Round)) private _rounds;
    mapping(uint32 claimId => SealedClaim) private _sealedClaims;

    // ================================================================= tasks

    /// @inheritdoc ITrainingLedger
    function createTask(TaskParams calldata p) external payable returns (uint32 taskId) {
        taskId = _createTask(p, _toAmount(msg.value));
    }

    /// @inheritdoc ITrainingLedger
    function createSealedTask(TaskParams calldata p, SealParams calldata sp)
        external
        payable
        returns (uint32 taskId)
    {
        if (sp.shardRoot == bytes32(0)) revert LedgerInvalidTaskParam("shardRoot");
        if (sp.rounds == 0) revert LedgerInvalidTaskParam("rounds");
        if (sp.roundLength == 0) revert LedgerInvalidTaskParam("roundLength");
        if (sp.openGrace == 0) revert LedgerInvalidTaskParam("openGrace");
        if (msg.value < sp.sponsorBond) revert LedgerStakeTooLow(msg.sender, msg.value, sp.sponsorBond);
        // INVARIANT: a missed round pays its claims at least one minimum stake between them.
        uint96 bondPerRound = sp.sponsorBond / sp.rounds;
        if (bondPerRound < p.minTrainerStake) revert LedgerInvalidTaskParam("sponsorBond");
        uint96 bond = bondPerRound * sp.rounds; // the division's dust seeds the pool
        taskId = _createTask(p, _toAmount(msg.value - bond));
        _tasks[taskId].isSealed = true;
        uint40 start = uint40(block.timestamp);
        _seals[taskId] = Seal({
            shardRoot: sp.shardRoot,
            start: start,
            roundLength: sp.roundLength,
            openGrace: sp.openGrace,
            rounds: sp.rounds,
            bond: bond,
            bondPerRound: bondPerRound
        });
        emit SealedTaskCreated(taskId, sp, start);
    }

    function _createTask(TaskParams calldata p, uint96 pool) private returns (uint32 taskId) {
        _validateTaskParams(p);
        taskId = ++_taskCount;
        Task storage t = _tasks[taskId];
        t.sponsor = msg.sender;
        t.revealWindow = p.revealWindow;
        t.challengeWindow = p.challengeWindow;
        t.minTrainerStake = p.minTrainerStake;
        t.minVerifierStake = p.minVerifierStake;
        t.quorum = uint8(p.quorum);
        t.votingWindow = p.votingWindow;
        t.pool = pool;
        t.bestLoss = p.baselineLoss; // INVARIANT: the first best is the baseline
        t.minImprovement = p.minImprovement;
        t.rewardPerImprovement = p.rewardPerImprovement;
        t.verifierFee = p.verifierFee;
        t.baselineLoss = p.baselineLoss;
        t.challengeBond = p.challengeBond;
        t.specDigest = p.specDigest;
        emit TaskCreated(taskId, msg.sender, p, pool);
    }

    /// @inheritdoc ITrainingLedger
    function fundTask(uint32 taskId) external payable {
        Task storage t = _task(taskId);
        if (msg.value == 0) revert LedgerZeroValue();
        uint96 pool = _toAmount(uint256(t.pool) + msg.value);
        t.pool = pool;
        emit TaskFunded(taskId, msg.sender, msg.value, pool);
    }

    // ================================================================ claims

    /// @inheritdoc ITrainingLedger
    function commit(bytes32 commitment) external {
        if (commitment == bytes32(0)) revert LedgerInvalidField("commitment");
        Commitment storage c = _commitments[commitment];
        // INVARIANT: a commitment is written once and never cleared, so it can't be reused.
        if (c.blockNumber != 0) revert LedgerCommitmentExists(commitment);
        c.blockNumber = uint64(block.number);
        c.timestamp = uint40(block.timestamp);
        emit ClaimCommitted(commitment, msg.sender, block.number);
    }

    /// @inheritdoc ITrainingLedger
    function reveal(ClaimFields calldata f) external payable returns (uint32 claimId) {
        uint32 taskId = f.taskId;
        uint32 parentId = f.parentId;
        Task storage t = _task(taskId);
        bytes32 commitment = _commitmentOf(msg.sender, f);
        Commitment storage cm = _commitments[commitment];
        if (cm.blockNumber == 0) revert LedgerUnknownCommitment(commitment);
        if (cm.revealed) revert LedgerCommitmentRevealed(commitment);
        // INVARIANT: the commit is in an earlier block, so its contents were fixed before the
        // seed's block hash existed and before anyone could read the CIDs from this reveal.
        if (block.number <= cm.blockNumber) revert LedgerRevealTooEarly(commitment, cm.blockNumber);
        uint256 revealDeadline = uint256(cm.timestamp) + t.revealWindow;
        if (block.timestamp > revealDeadline) revert LedgerRevealWindowClosed(commitment, revealDeadline);
        if (f.codeCid.length == 0 || f.codeCid.length > MAX_CID_BYTES) revert LedgerInvalidField("codeCid");
        if (f.manifestDigest == bytes32(0)) revert LedgerInvalidField("manifestDigest");
        if (f.merkleRoot == bytes32(0)) revert LedgerInvalidField("merkleRoot");
        if (f.numSegments == 0) revert LedgerInvalidField("numSegments");
        bool isSealed = t.isSealed;
        if (isSealed) _checkSealedReveal(taskId, f, cm.timestamp);
        else if (f.round != 0) revert LedgerInvalidField("round");
        if (parentId != 0 && (parentId > _claimCount || _claims[parentId].taskId != taskId)) {
            revert LedgerInvalidParent(taskId, parentId);
        }
        if (msg.value < t.minTrainerStake) revert LedgerStakeTooLow(msg.sender, msg.value, t.minTrainerStake);
        uint96 stake = _toAmount(msg.value);

        cm.revealed = true;
        claimId = ++_claimCount;
        bytes32 seed = keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, claimId));
        // A sealed claim's challenge window starts when its loss is revealed (`score`).
        uint40 challengeDeadline = isSealed ? 0 : uint40(block.timestamp) + t.challengeWindow;
        // One struct literal: each slot is written once, packed.
        _claims[claimId] = Claim({
            trainer: msg.sender,
            taskId: taskId,
            parentId: parentId,
            numSegments: f.numSegments,
            status: isSealed ? ClaimState.Sealed : ClaimState.Open,
            confirmations: 0,
            merkleRoot: f.merkleRoot,
            stake: stake,
            claimedLoss: f.claimedLoss,
            challengeDeadline: challengeDeadline,
            settledMask: 0,
            prevInTask: t.lastClaimId,
            seed: seed
        });

        // The task's claims form a list through prevInTask (no extra slot per claim).
        t.lastClaimId = claimId;
        uint24 count = t.claimCount;
        if (count == type(uint24).max) revert LedgerInvalidField("claimCount");
        t.claimCount = count + 1;
        if (isSealed) {
            _sealedClaims[claimId].round = f.round;
            _rounds[taskId][f.round].claims += 1;
        }

        emit ClaimRevealed(
            claimId,
            taskId,
            msg.sender,
            parentId,
            f.codeCid,
            f.manifestDigest,
            f.merkleRoot,
            f.numSegments,
            f.claimedLoss,
            stake,
            seed,
            commitment,
            challengeDeadline
        );
    }

    /// @inheritdoc ITrainingLedger
    function score(uint32 claimId, uint64 claimedLoss, uint32 incumbentId, uint64 incumbentLoss) external {
        Claim storage c = _claim(claimId);
        if (msg.sender != c.trainer) revert LedgerNotTrainer(claimId, msg.sender);
        if (c.status != ClaimState.Sealed) revert LedgerWrongClaimState(claimId, _claimState(claimId, c), ClaimState.Sealed);
        if (claimedLoss == 0) revert LedgerInvalidField("claimedLoss");
        if (incumbentLoss == 0) revert LedgerInvalidField("incumbentLoss");
        uint32 taskId = c.taskId;
        SealedClaim storage sc = _sealedClaims[claimId];
        uint16 round = sc.round;
        uint40 openedAt = _rounds[taskId][round].openedAt;
        if (openedAt == 0) revert LedgerShardNotOpen(taskId, round);
        Task storage t = _tasks[taskId];
        uint256 deadline = uint256(openedAt) + t.revealWindow;
        if (block.timestamp > deadline) revert LedgerScoreWindowClosed(claimId, deadline);
        // The incumbent the trainer evaluated: the best when it looked (0: the baseline). A best that
        // changed meanwhile is taken as named, never a reason to refuse (that would be a race anyone
        // could start with a finalize): finalize compares only on one shard, whatever it names.
        if (incumbentId == claimId || (incumbentId != 0 && _claims[incumbentId].taskId != taskId)) {
            revert LedgerInvalidIncumbent(claimId, incumbentId);
        }
        sc.scored = true;
        sc.incumbentId = incumbentId;
        sc.incumbentLoss = incumbentLoss;
        uint40 challengeDeadline = uint40(block.timestamp) + t.challengeWindow;
        c.claimedLoss = claimedLoss;
        c.challengeDeadline = challengeDeadline;
        c.status = ClaimState.Open;
        emit ClaimScored(claimId, taskId, round, claimedLoss, incumbentId, incumbentLoss, challengeDeadline);
    }

    /// @inheritdoc ITrainingLedger
    function openShard(
        uint32 taskId,
        uint16 round,
        bytes32 shardDigest,
        bytes calldata shardCid,
        bytes32[] calldata proof
    ) external {
        Seal storage s = _sealOf(taskId);
        if (round >= s.rounds) revert LedgerInvalidField("round");
        if (shardCid.length == 0 || shardCid.length > MAX_CID_BYTES) revert LedgerInvalidField("shardCid");
        uint256 end = _roundEnd(s, round);
        if (block.timestamp < end) revert LedgerRoundNotClosed(taskId, round, end);
        if (block.timestamp > end + s.openGrace) revert LedgerShardLate(taskId, round, end + s.openGrace);
        Round storage r = _rounds[taskId][round];
        if (r.openedAt != 0) revert LedgerShardOpened(taskId, round);
        // INVARIANT: only the shard committed at task creation for this round can open it.
        if (shardDigest == bytes32(0) || !MerkleProof.verifyCalldata(proof, s.shardRoot, _leaf(round, shardDigest))) {
            revert LedgerInvalidShardProof(taskId, round);
        }
        r.digest = shardDigest;
        r.openedAt = uint40(block.timestamp);
        emit ShardOpened(taskId, round, shardDigest, shardCid);
        _releaseShare(taskId, s, r); // the sponsor did its part for this round: its share goes back
    }

    /// @inheritdoc ITrainingLedger
    function releaseRound(uint32 taskId, uint16 round) external returns (uint256 amount) {
        Seal storage s = _sealOf(taskId);
        if (round >= s.rounds) revert LedgerInvalidField("round");
        uint256 until = _roundEnd(s, round) + s.openGrace;
        if (block.timestamp <= until) revert LedgerBondLocked(taskId, until);
        Round storage r = _rounds[taskId][round];
        // A missed round with claims pays its share to them (finalize); an opened one paid it back.
        if (r.released || r.claims != 0) revert LedgerNothingToRelease(taskId, round);
        amount = _releaseShare(taskId, s, r);
    }

    function _releaseShare(uint32 taskId, Seal storage s, Round storage r) private returns (uint256 amount) {
        amount = s.bondPerRound;
        r.released = true;
        s.bond -= uint96(amount);
        address sponsor = _tasks[taskId].sponsor;
        _balances[sponsor] += amount;
        emit SponsorBondReleased(taskId, sponsor, amount);
    }

    /// @inheritdoc ITrainingLedger
    function confirm(uint32 claimId, uint16[] calldata segments, uint64 measuredLoss) external {
        Claim storage c = _claim(claimId);
        _expectClaimState(claimId, c, ClaimState.Open);
        if (msg.sender == c.trainer) revert LedgerConflictOfInterest(claimId, msg.sender);
        Task storage t = _tasks[c.taskId];
        Verifier storage v = _activeVerifier(msg.sender, t.minVerifierStake);
        uint8 n = c.confirmations;
        if (_confirmerIndex(claimId, n, msg.sender) < n) revert LedgerAlreadyConfirmed(claimId, msg.sender);
        uint16 quorum = t.quorum;
        if (n >= quorum) revert LedgerQuorumReached(claimId, quorum);
        uint256 count = segments.length;
        if (count == 0) revert LedgerInvalidField("segments");
        if (count > MAX_CONFIRM_SEGMENTS) revert LedgerTooManySegments(count, MAX_CONFIRM_SEGMENTS);
        uint16 numSegments = c.numSegments;
        for (uint256 i; i < count; ++i) {
            if (segments[i] >= numSegments) revert LedgerInvalidSegment(segments[i], numSegments);
        }
        _confirmers[claimId][n] = msg.sender;
        c.confirmations = n + 1;
        // INVARIANT: a confirmation binds the verifier until it settles this claim.
        v.bindings += 1;
        emit ClaimConfirmed(claimId, msg.sender, segments, measuredLoss, n + 1);
        if (n + 1 == quorum) emit ClaimQuorumReached(claimId, n + 1);
    }

    /// @inheritdoc ITrainingLedger
    function challenge(
        uint32 claimId,
        ChallengeKind kind,
        uint16 segment,
        bytes32 claimedStart,
        bytes32 claimedEnd,
        bytes32[] calldata startProof,
        bytes32[] calldata endProof,
        bytes32 observed
    ) external payable returns (bytes32 disputeId) {
        Claim storage c = _claim(claimId);
        _expectClaimState(claimId, c, ClaimState.Open);
        if (msg.sender == c.trainer) revert LedgerConflictOfInterest(claimId, msg.sender);
        Task storage t = _tasks[c.taskId];
        if (msg.value != t.challengeBond) revert LedgerWrongBond(msg.value, t.challengeBond);
        uint16 numSegments = c.numSegments;
        if (kind == ChallengeKind.Segment) {
            if (segment >= numSegments) revert LedgerInvalidSegment(segment, numSegments);
            bytes32 root = c.merkleRoot;
            // The dispute is about named values: both ends must be the trainer's own hashes.
            if (!MerkleProof.verifyCalldata(startProof, root, _leaf(segment, claimedStart))) {
                revert LedgerInvalidProof(claimId, segment);
            }
            if (!MerkleProof.verifyCalldata(endProof, root, _leaf(uint256(segment) + 1, claimedEnd))) {
                revert LedgerInvalidProof(claimId, uint256(segment) + 1);
            }
            if (observed == claimedEnd) revert LedgerNoMismatch(claimId, observed);
        } else if (kind == ChallengeKind.Artifact) {
            if (segment > numSegments) revert LedgerInvalidSegment(segment, numSegments);
        } else {
            // Segment 0: the claim's loss; 1 (sealed tasks): the incumbent's loss on the same shard.
            uint16 most = t.isSealed ? 1 : 0;
            if (segment > most) revert LedgerInvalidSegment(segment, most);
            if (uint256(observed) > type(uint64).max) revert LedgerInvalidField("observed");
            uint64 stated = segment == 0 ? c.claimedLoss : _sealedClaims[claimId].incumbentLoss;
            if (uint256(observed) == stated) revert LedgerNoMismatch(claimId, observed);
        }
        disputeId = _disputeIdOf(claimId, kind, segment);
        Dispute storage d = _disputes[disputeId];
        // INVARIANT: dispute ids are deterministic and never cleared: a dismissed
        // (claim, kind, segment) cannot be disputed again.
        if (d.claimId != 0) revert LedgerDisputeExists(disputeId);
        uint40 votingDeadline = uint40(block.timestamp) + _tasks[c.taskId].votingWindow;
        d.claimId = claimId;
        d.kind = kind;
        d.segment = segment;
        d.status = DisputeState.Voting;
        d.openedAt = uint40(block.timestamp);
        d.votingDeadline = votingDeadline;
        d.challenger = msg.sender;
        c.status = ClaimState.Disputed; // INVARIANT: one open dispute per claim
        _openDispute[claimId] = disputeId;
        emit ClaimChallenged(
            claimId, disputeId, msg.sender, kind, segment, claimedStart, claimedEnd, observed, votingDeadline
        );
    }

    /// @inheritdoc ITrainingLedger
    function vote(bytes32 disputeId, bool uphold) external {
        Dispute storage d = _dispute(disputeId);
        _expectDisputeState(disputeId, d, DisputeState.Voting);
        uint32 claimId = d.claimId;
        Claim storage c = _claims[claimId];
        if (
            msg.sender == c.trainer || msg.sender == d.challenger
                || _confirmerIndex(claimId, c.confirmations, msg.sender) < c.confirmations
        ) revert LedgerConflictOfInterest(claimId, msg.sender);
        Verifier storage v = _activeVerifier(msg.sender, _tasks[c.taskId].minVerifierStake);
        if (_votes[disputeId][msg.sender] != 0) revert LedgerAlreadyVoted(disputeId, msg.sender);
        _votes[disputeId][msg.sender] = uphold ? VOTE_UPHOLD : VOTE_DISMISS;
        if (uphold) d.votesUphold += 1;
        else d.votesDismiss += 1;
        v.bindings += 1; // INVARIANT: a vote binds the verifier until it settles this dispute
        emit DisputeVoted(disputeId, msg.sender, uphold, d.votesUphold, d.votesDismiss);
    }

    /// @inheritdoc ITrainingLedger
    function resolveDispute(bytes32 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        _expectDisputeState(disputeId, d, DisputeState.Resolvable);
        uint32 claimId = d.claimId;
        Claim storage c = _claims[claimId];
        Task storage t = _tasks[c.taskId];
        uint256 bond = t.challengeBond;
        uint16 up = d.votesUphold;
        uint16 down = d.votesDismiss;
        delete _openDispute[claimId];

        if (up > down) {
            // Upheld. INVARIANT: pot = trainer stake + confirmer slashes; half (+ dust) to the
            // challenger with its bond back, half split equally among the `up` majority voters.
            uint256 slashed = _slashConfirmers(claimId, c.confirmations, bond, disputeId);
            uint256 pot = uint256(c.stake) + slashed;
            uint256 perVoter = (pot / 2) / up;
            uint256 challengerPaid = pot - perVoter * up + bond;
            _balances[d.challenger] += challengerPaid;
            d.perVoterShare = uint96(perVoter);
            d.status = DisputeState.Upheld;
            c.status = ClaimState.Rejected;
            emit DisputeResolved(disputeId, claimId, DisputeState.Upheld, up, down, challengerPaid, 0, perVoter, slashed, 0);
            emit ClaimFinalized(claimId, c.taskId, ClaimState.Rejected, false, 0, 0);
        } else if (down > up) {
            // Dismissed. INVARIANT: bond split half (+ dust) to the trainer, half equally among
            // the `down` majority voters; the claim reopens for the time the dispute took.
            uint256 perVoter = (bond / 2) / down;
            uint256 trainerPaid = bond - perVoter * down;
            _balances[c.trainer] += trainerPaid;
            d.perVoterShare = uint96(perVoter);
            d.status = DisputeState.Dismissed;
            uint40 newDeadline = c.challengeDeadline + (uint40(block.timestamp) - d.openedAt);
            c.challengeDeadline = newDeadline;
            c.status = ClaimState.Open;
            emit DisputeResolved(
                disputeId, claimId, DisputeState.Dismissed, up, down, 0, trainerPaid, perVoter, 0, newDeadline
            );
        } else {
            // Inconclusive (tie or no votes). INVARIANT: nobody is slashed; the bond goes back
            // and the claim expires with its stake returned (an unverified claim never moves
            // the best pointer).
            uint256 stake = c.stake;
            _balances[d.challenger] += bond;
            _balances[c.trainer] += stake;
            d.status = DisputeState.Inconclusive;
            c.status = ClaimState.Expired;
            emit DisputeResolved(disputeId, claimId, DisputeState.Inconclusive, up, down, bond, stake, 0, 0, 0);
            emit ClaimFinalized(claimId, c.taskId, ClaimState.Expired, false, 0, stake);
        }
    }

    /// @inheritdoc ITrainingLedger
    function finalize(uint32 claimId) external {
        Claim storage c = _claim(claimId);
        _expectClaimState(claimId, c, ClaimState.Finalizable);
        uint32 taskId = c.taskId;
        Task storage t = _tasks[taskId];
        if (c.status == ClaimState.Sealed) return _finalizeUnscored(claimId, c, t);
        uint256 stake = c.stake;
        uint8 confirmations = c.confirmations;
        if (confirmations < t.quorum) {
            // INVARIANT: without quorum the claim expires and the whole stake goes back.
            c.status = ClaimState.Expired;
            _balances[c.trainer] += stake;
            emit ClaimFinalized(claimId, taskId, ClaimState.Expired, false, 0, stake);
            return;
        }
        c.status = ClaimState.Accepted;
        // INVARIANT: confirmers' fees (confirmations * verifierFee) are reserved here and pulled
        // by settle; they come from the pool for an improvement (the stake covers what the pool
        // can't), from the trainer's stake otherwise, so non-improving spam can't drain the pool.
        uint256 fees = uint256(confirmations) * t.verifierFee;
        uint64 claimedLoss = c.claimedLoss;
        uint64 bestLoss = t.bestLoss;
        bool improved;
        bool noRival; // beaten a loss that was none (an incumbent with no valid outputs): no reward
        if (t.isSealed) {
            // INVARIANT: head to head on one shard. Against the incumbent it was scored with while
            // that is still the best; else against a best scored on the same round's shard (the
            // round's better claim wins whichever finalizes first); never across shards.
            SealedClaim storage sc = _sealedClaims[claimId];
            uint32 best = t.bestClaimId;
            if (sc.incumbentId == best) {
                improved = uint256(claimedLoss) + t.minImprovement <= sc.incumbentLoss;
                noRival = sc.incumbentLoss == type(uint64).max;
            } else {
                improved = _sealedClaims[best].round == sc.round && uint256(claimedLoss) + t.minImprovement <= bestLoss;
            }
        } else {
            improved = uint256(claimedLoss) + t.minImprovement <= bestLoss;
        }
        uint256 reward;
        uint256 fromStake = fees;
        if (improved) {
            uint256 pool = t.pool;
            uint256 fromPool = fees <= pool ? fees : pool;
            fromStake = fees - fromPool;
            pool -= fromPool;
            reward = noRival ? 0 : t.rewardPerImprovement;
            if (reward > pool) reward = pool;
            t.pool = uint96(pool - reward);
            uint32 previousClaimId = t.bestClaimId;
            t.bestClaimId = claimId;
            t.bestLoss = claimedLoss;
            emit BestClaimChanged(taskId, claimId, claimedLoss, previousClaimId, bestLoss);
        }
        uint256 trainerPaid = stake - fromStake + reward; // minTrainerStake >= quorum * fee
        _balances[c.trainer] += trainerPaid;
        emit ClaimFinalized(claimId, taskId, ClaimState.Accepted, improved, reward, trainerPaid);
    }

    // ============================================================= verifiers

    /// @inheritdoc ITrainingLedger
    function registerVerifier() external payable {
        if (msg.value == 0) revert LedgerZeroValue();
        Verifier storage v = _verifiers[msg.sender];
        uint96 stake = _toAmount(uint256(v.stake) + msg.value);
        v.stake = stake;
        v.registered = true;
        emit VerifierRegistered(msg.sender, msg.value, stake);
    }

    /// @inheritdoc ITrainingLedger
    function unregisterVerifier() external {
        Verifier storage v = _verifiers[msg.sender];
        if (!v.registered) revert LedgerNotVerifier(msg.sender);
        if (v.bindings != 0) revert LedgerVerifierBound(msg.sender, v.bindings);
        uint256 stake = v.stake;
        v.stake = 0;
        v.registered = false;
        _balances[msg.sender] += stake;
        emit VerifierUnregistered(msg.sender, stake);
    }

    /// @inheritdoc ITrainingLedger
    function settle(uint32 claimId) external returns (uint256 amount) {
        Claim storage c = _claim(claimId);
        ClaimState status = c.status;
        if (status != ClaimState.Accepted && status != ClaimState.Rejected && status != ClaimState.Expired) {
            revert LedgerWrongClaimState(claimId, _claimState(claimId, c), ClaimState.Accepted);
        }
        uint8 n = c.confirmations;
        uint256 index = _confirmerIndex(claimId, n, msg.sender);
        if (index >= n) revert LedgerNotParticipant(bytes32(uint256(claimId)), msg.sender);
        uint16 mask = c.settledMask;
        uint16 bit = uint16(1) << uint16(index);
        if (mask & bit != 0) return 0; // INVARIANT: settled once; a repeat is a no-op
        c.settledMask = mask | bit;
        _verifiers[msg.sender].bindings -= 1;
        if (status == ClaimState.Accepted) {
            amount = _tasks[c.taskId].verifierFee;
            _balances[msg.sender] += amount;
        }
        emit Settled(claimId, msg.sender, amount);
    }

    /// @inheritdoc ITrainingLedger
    function settleVote(bytes32 disputeId) external returns (uint256 amount) {
        Dispute storage d = _dispute(disputeId);
        DisputeState status = d.status;
        if (status == DisputeState.Voting) {
            revert LedgerWrongDisputeState(disputeId, _disputeState(d), DisputeState.Upheld);
        }
        uint8 cast = _votes[disputeId][msg.sender];
        if (cast == 0) revert LedgerNotParticipant(disputeId, msg.sender);
        if (cast & VOTE_SETTLED != 0) return 0; // INVARIANT: settled once; a repeat is a no-op
        _votes[disputeId][msg.sender] = cast | VOTE_SETTLED;
        _verifiers[msg.sender].bindings -= 1;
        if (
            (status == DisputeState.Upheld && cast == VOTE_UPHOLD)
                || (status == DisputeState.Dismissed && cast == VOTE_DISMISS)
        ) {
            amount = d.perVoterShare;
            _balances[msg.sender] += amount;
        }
        emit VoteSettled(disputeId, msg.sender, amount);
    }

    /// @inheritdoc ITrainingLedger
    function withdraw() external nonReentrant returns (uint256 amount) {
        amount = _balances[msg.sender];
        if (amount == 0) revert LedgerNothingToWithdraw(msg.sender);
        _balances[msg.sender] = 0; // INVARIANT: checks-effects-interactions
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert LedgerTransferFailed(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // =============================================================== reports

    /// @inheritdoc ITrainingLedger
    function report(uint32 taskId, bytes calldata codeCid, bytes32 manifestDigest, uint64 loss, string calldata note)
        external
    {
        _task(taskId);
        if (codeCid.length == 0 || codeCid.length > MAX_CID_BYTES) revert LedgerInvalidField("codeCid");
        if (bytes(note).length > MAX_NOTE_BYTES) revert LedgerNoteTooLong(bytes(note).length, MAX_NOTE_BYTES);
        emit ExperimentReported(taskId, msg.sender, codeCid, manifestDigest, loss, note);
    }

    // ================================================================= views

    /// @inheritdoc ITrainingLedger
    function task(uint32 taskId) external view returns (TaskView memory view_) {
        Task storage t = _task(taskId);
        view_ = TaskView({
            sponsor: t.sponsor,
            specDigest: t.specDigest,
            pool: t.pool,
            rewardPerImprovement: t.rewardPerImprovement,
            verifierFee: t.verifierFee,
            minTrainerStake: t.minTrainerStake,
            minVerifierStake: t.minVerifierStake,
            challengeBond: t.challengeBond,
            quorum: t.quorum,
            revealWindow: t.revealWindow,
            challengeWindow: t.challengeWindow,
            votingWindow: t.votingWindow,
            minImprovement: t.minImprovement,
            baselineLoss: t.baselineLoss,
            bestClaimId: t.bestClaimId,
            bestLoss: t.bestLoss,
            claimCount: t.claimCount
        });
    }

    /// @inheritdoc ITrainingLedger
    function claim(uint32 claimId) external view returns (ClaimView memory view_) {
        Claim storage c = _claim(claimId);
        view_ = ClaimView({
            trainer: c.trainer,
            taskId: c.taskId,
            parentId: c.parentId,
            numSegments: c.numSegments,
            state: _claimState(claimId, c),
            confirmations: c.confirmations,
            merkleRoot: c.merkleRoot,
            stake: c.stake,
            claimedLoss: c.claimedLoss,
            challengeDeadline: c.challengeDeadline,
            seed: c.seed,
            openDispute: _openDispute[claimId]
        });
    }

    /// @inheritdoc ITrainingLedger
    function claimState(uint32 claimId) external view returns (ClaimState) {
        return _claimState(claimId, _claims[claimId]);
    }

    /// @inheritdoc ITrainingLedger
    function dispute(bytes32 disputeId) external view returns (DisputeView memory view_) {
        Dispute storage d = _dispute(disputeId);
        view_ = DisputeView({
            claimId: d.claimId,
            kind: d.kind,
            segment: d.segment,
            state: _disputeState(d),
            challenger: d.challenger,
            votesUphold: d.votesUphold,
            votesDismiss: d.votesDismiss,
            openedAt: d.openedAt,
            votingDeadline: d.votingDeadline,
            perVoterShare: d.perVoterShare
        });
    }

    /// @inheritdoc ITrainingLedger
    function disputeState(bytes32 disputeId) external view returns (DisputeState) {
        return _disputeState(_disputes[disputeId]);
    }

    /// @inheritdoc ITrainingLedger
    function bestClaim(uint32 taskId) external view returns (uint32 claimId, uint64 loss) {
        Task storage t = _task(taskId);
        return (t.bestClaimId, t.bestLoss);
    }

    /// @inheritdoc ITrainingLedger
    function taskClaims(uint32 taskId, uint256 offset, uint256 limit) external view returns (uint32[] memory ids) {
        uint256 n = _task(taskId).claimCount;
        if (offset >= n) return new uint32[](0);
        uint256 end = limit > n - offset ? n : offset + limit;
        ids = new uint32[](end - offset);
        // Walk the list from the newest claim (index n-1) down to index `offset`.
        uint32 id = _tasks[taskId].lastClaimId;
        for (uint256 i = n; i > offset; --i) {
            if (i <= end) ids[i - 1 - offset] = id;
            id = _claims[id].prevInTask;
        }
    }

    /// @inheritdoc ITrainingLedger
    function claimCount(uint32 taskId) external view returns (uint32) {
        return _task(taskId).claimCount;
    }

    /// @inheritdoc ITrainingLedger
    function taskCount() external view returns (uint32) {
        return _taskCount;
    }

    /// @inheritdoc ITrainingLedger
    function totalClaims() external view returns (uint32) {
        return _claimCount;
    }

    /// @inheritdoc ITrainingLedger
    function sampleSeed(uint32 claimId) external view returns (bytes32) {
        return _claim(claimId).seed;
    }

    /// @inheritdoc ITrainingLedger
    function verifierInfo(address account) external view returns (VerifierView memory) {
        Verifier storage v = _verifiers[account];
        return VerifierView({registered: v.registered, stake: v.stake, bindings: v.bindings});
    }

    /// @inheritdoc ITrainingLedger
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @inheritdoc ITrainingLedger
    function hasConfirmed(uint32 claimId, address account) external view returns (bool) {
        uint8 n = _claims[claimId].confirmations;
        return _confirmerIndex(claimId, n, account) < n;
    }

    /// @inheritdoc ITrainingLedger
    function hasVoted(bytes32 disputeId, address account) external view returns (bool) {
        return _votes[disputeId][account] != 0;
    }

    /// @inheritdoc ITrainingLedger
    function commitmentInfo(bytes32 commitment)
        external
        view
        returns (uint64 blockNumber, uint40 timestamp, bool revealed)
    {
        Commitment storage c = _commitments[commitment];
        return (c.blockNumber, c.timestamp, c.revealed);
    }

    /// @inheritdoc ITrainingLedger
    function commitmentOf(address trainer, ClaimFields calldata f) external pure returns (bytes32) {
        return _commitmentOf(trainer, f);
    }

    /// @inheritdoc ITrainingLedger
    function leafHash(uint256 index, bytes32 stateHash) external pure returns (bytes32) {
        return _leaf(index, stateHash);
    }

    /// @inheritdoc ITrainingLedger
    function verifyBoundary(uint32 claimId, uint256 index, bytes32 stateHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        Claim storage c = _claim(claimId);
        if (index > c.numSegments) return false;
        return MerkleProof.verifyCalldata(proof, c.merkleRoot, _leaf(index, stateHash));
    }

    /// @inheritdoc ITrainingLedger
    function seal(uint32 taskId) external view returns (SealView memory) {
        _task(taskId);
        Seal storage s = _seals[taskId];
        return SealView({
            shardRoot: s.shardRoot,
            start: s.start,
            roundLength: s.roundLength,
            openGrace: s.openGrace,
            rounds: s.rounds,
            bond: s.bond,
            bondPerRound: s.bondPerRound
        });
    }

    /// @inheritdoc ITrainingLedger
    function sealedRound(uint32 taskId, uint16 round) external view returns (RoundView memory) {
        Round storage r = _rounds[taskId][round];
        return RoundView({digest: r.digest, openedAt: r.openedAt, claims: r.claims, paid: r.paid, released: r.released});
    }

    /// @inheritdoc ITrainingLedger
    function claimSeal(uint32 claimId) external view returns (ClaimSealView memory) {
        _claim(claimId);
        SealedClaim storage sc = _sealedClaims[claimId];
        return ClaimSealView({
            round: sc.round,
            scored: sc.scored,
            incumbentId: sc.incumbentId,
            incumbentLoss: sc.incumbentLoss
        });
    }

    /// @inheritdoc ITrainingLedger
    function disputeIdOf(uint32 claimId, ChallengeKind kind, uint16 segment) external pure returns (bytes32) {
        return _disputeIdOf(claimId, kind, segment);
    }

    // ============================================================== internals

    function _validateTaskParams(TaskParams calldata p) private pure {
        if (p.specDigest == bytes32(0)) revert LedgerInvalidTaskParam("specDigest");
        if (p.quorum == 0 || p.quorum > MAX_QUORUM) revert LedgerInvalidTaskParam("quorum");
        if (p.revealWindow == 0) revert LedgerInvalidTaskParam("revealWindow");
        if (p.challengeWindow == 0) revert LedgerInvalidTaskParam("challengeWindow");
        if (p.votingWindow == 0) revert LedgerInvalidTaskParam("votingWindow");
        if (p.challengeBond == 0) revert LedgerInvalidTaskParam("challengeBond");
        if (p.minVerifierStake == 0) revert LedgerInvalidTaskParam("minVerifierStake");
        if (p.minTrainerStake == 0 || uint256(p.minTrainerStake) < uint256(p.quorum) * p.verifierFee) {
            revert LedgerInvalidTaskParam("minTrainerStake");
        }
        if (p.minImprovement == 0) revert LedgerInvalidTaskParam("minImprovement");
        if (p.baselineLoss == 0) revert LedgerInvalidTaskParam("baselineLoss");
    }

    function _task(uint32 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.sponsor == address(0)) revert LedgerUnknownTask(taskId);
    }

    function _claim(uint32 claimId) private view returns (Claim storage c) {
        c = _claims[claimId];
        if (c.trainer == address(0)) revert LedgerUnknownClaim(claimId);
    }

    function _dispute(bytes32 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.claimId == 0) revert LedgerUnknownDispute(disputeId);
    }

    function _claimState(uint32 claimId, Claim storage c) private view returns (ClaimState s) {
        s = c.status;
        if (s == ClaimState.Open && block.timestamp > c.challengeDeadline) s = ClaimState.Finalizable;
        if (s == ClaimState.Sealed && block.timestamp > _unscoredDeadline(claimId, c)) s = ClaimState.Finalizable;
    }

    /// @dev Until when a Sealed claim waits: its loss window if the shard is open, the round's
    /// opening deadline if not.
    function _unscoredDeadline(uint32 claimId, Claim storage c) private view returns (uint256) {
        uint32 taskId = c.taskId;
        uint16 round = _sealedClaims[claimId].round;
        uint40 openedAt = _rounds[taskId][round].openedAt;
        if (openedAt != 0) return uint256(openedAt) + _tasks[taskId].revealWindow;
        Seal storage s = _seals[taskId];
        return _roundEnd(s, round) + s.openGrace;
    }

    // ========================================================== sealed rounds

    function _sealOf(uint32 taskId) private view returns (Seal storage s) {
        if (!_task(taskId).isSealed) revert LedgerNotSealed(taskId);
        s = _seals[taskId];
    }

    function _roundEnd(Seal storage s, uint16 round) private view returns (uint256) {
        return uint256(s.start) + (uint256(round) + 1) * s.roundLength;
    }

    /// @dev A sealed reveal: the claim names the round its commit fell in, is revealed (stake and
    /// CIDs fixed) before that round closes, so before its shard can exist anywhere but with the
    /// sponsor, and states no loss yet.
    function _checkSealedReveal(uint32 taskId, ClaimFields calldata f, uint40 committedAt) private view {
        Seal storage s = _seals[taskId];
        if (committedAt < s.start) revert LedgerRoundsOver(taskId, committedAt);
        uint256 committedIn = (uint256(committedAt) - s.start) / s.roundLength;
        if (committedIn >= s.rounds) revert LedgerRoundsOver(taskId, committedAt);
        if (f.round != committedIn) revert LedgerWrongRound(taskId, f.round, uint16(committedIn));
        uint256 end = _roundEnd(s, f.round);
        if (block.timestamp >= end) revert LedgerRoundClosed(taskId, f.round, end);
        if (f.claimedLoss != 0) revert LedgerInvalidField("claimedLoss");
    }

    /// @dev A Sealed claim past its deadline. Shard open, loss never revealed: the stake goes to
    /// the pool (revealing only the claims that did well on the shard would be a free option).
    /// Shard never opened: the stake goes back with an equal part of the round's bond share (the
    /// last to finalize takes the division's dust). Both Expired.
    /// INVARIANT: a missed round's share is paid out exactly once, in `claims` parts.
    function _finalizeUnscored(uint32 claimId, Claim storage c, Task storage t) private {
        uint32 taskId = c.taskId;
        Round storage r = _rounds[taskId][_sealedClaims[claimId].round];
        uint256 stake = c.stake;
        c.status = ClaimState.Expired;
        if (r.openedAt != 0) {
            t.pool = _toAmount(uint256(t.pool) + stake);
            emit ClaimFinalized(claimId, taskId, ClaimState.Expired, false, 0, 0);
            return;
        }
        Seal storage s = _seals[taskId];
        uint32 claims = r.claims;
        uint32 paid = r.paid + 1;
        uint96 part = s.bondPerRound / claims;
        uint96 compensation = paid == claims ? s.bondPerRound - part * (claims - 1) : part;
        r.paid = paid;
        s.bond -= compensation;
        _balances[c.trainer] += stake + compensation;
        emit ClaimFinalized(claimId, taskId, ClaimState.Expired, false, compensation, stake + compensation);
    }

    function _disputeState(Dispute storage d) private view returns (DisputeState s) {
        s = d.status;
        if (s == DisputeState.Voting && block.timestamp > d.votingDeadline) s = DisputeState.Resolvable;
    }

    function _expectClaimState(uint32 claimId, Claim storage c, ClaimState expected) private view {
        ClaimState current = _claimState(claimId, c);
        if (current != expected) revert LedgerWrongClaimState(claimId, current, expected);
    }

    function _expectDisputeState(bytes32 disputeId, Dispute storage d, DisputeState expected) private view {
        DisputeState current = _disputeState(d);
        if (current != expected) revert LedgerWrongDisputeState(disputeId, current, expected);
    }

    /// @dev A registered verifier with at least `minStake`.
    function _activeVerifier(address account, uint96 minStake) private view returns (Verifier storage v) {
        v = _verifiers[account];
        if (!v.registered) revert LedgerNotVerifier(account);
        if (v.stake < minStake) revert LedgerStakeTooLow(account, v.stake, minStake);
    }

    /// @dev Index of `account` among the first `n` confirmers of a claim, or `n` if absent.
    function _confirmerIndex(uint32 claimId, uint256 n, address account) private view returns (uint256 i) {
        mapping(uint256 => address) storage list = _confirmers[claimId];
        for (; i < n; ++i) {
            if (list[i] == account) return i;
        }
    }

    /// @dev INVARIANT: each confirmer of an upheld claim loses min(bond, its stake) — a verifier
    /// that confirms without replaying is punished — and the total joins the dispute's pot.
    function _slashConfirmers(uint32 claimId, uint256 n, uint256 bond, bytes32 disputeId)
        private
        returns (uint256 slashed)
    {
        mapping(uint256 => address) storage list = _confirmers[claimId];
        for (uint256 i; i < n; ++i) {
            address account = list[i];
            Verifier storage v = _verifiers[account];
            uint256 amount = v.stake < bond ? v.stake : bond;
            v.stake -= uint96(amount);
            slashed += amount;
            emit VerifierSlashed(account, disputeId, amount);
        }
    }

    function _toAmount(uint256 amount) private pure returns (uint96) {
        if (amount > type(uint96).max) revert LedgerAmountTooLarge(amount);
        return uint96(amount);
    }

    function _leaf(uint256 index, bytes32 stateHash) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, stateHash))));
    }

    function _disputeIdOf(uint32 claimId, ChallengeKind kind, uint16 segment) private pure returns (bytes32) {
        return keccak256(abi.encode(claimId, kind, segment));
    }

    /// @dev The struct encodes itself: no second list of the fields to keep in step.
    function _commitmentOf(address trainer, ClaimFields calldata f) private pure returns (bytes32) {
        return keccak256(abi.encode(trainer, f));
    }
}
