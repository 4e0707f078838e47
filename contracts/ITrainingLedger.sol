// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITrainingLedger — the external interface of the proof-of-training ledger.
/// @notice Trainers commit and reveal staked claims about seeded, segmented training runs;
/// registered verifiers replay sampled segments and confirm or challenge; disputes are voted
/// on by other verifiers; only a claim that survives with a quorum moves a task's best pointer.
/// @dev Ids: tasks and claims are sequential from 1 (0 = none); disputes are
/// keccak256(abi.encode(claimId, kind, segment)). Amounts are wei (uint96 in storage),
/// losses are fixed-point micro-units (uint64), times are unix seconds.
/// Money only moves by pull payments: every payout is credited to `balanceOf` and paid by
/// `withdraw`. See docs/contract.md for the lifecycle, the economics and the invariants.
interface ITrainingLedger {
    // ------------------------------------------------------------------ enums

    /// @notice Claim state as seen by `claimState`. `Finalizable` is derived (Open after the
    /// challenge deadline; Sealed after its loss window or its round's missed opening) and never
    /// stored. `Sealed`: a claim of a sealed task, staked, whose loss on its round's shard is not
    /// revealed yet (docs/sealed-evaluation.md).
    enum ClaimState {
        None,
        Open,
        Disputed,
        Finalizable,
        Accepted,
        Rejected,
        Expired,
        Sealed
    }

    /// @notice What a challenge disputes.
    /// Segment: replaying segment `segment` from the claimed start does not give the claimed end.
    /// Artifact: an artifact (boundary `segment`'s checkpoint, the manifest or the code; see
    /// docs/contract.md) is unavailable or inconsistent with the manifest.
    /// FinalEvaluation: re-evaluating the final weights gives another loss (in `observed`);
    /// on a sealed task, segment 1 disputes the incumbent's loss on the same shard instead.
    enum ChallengeKind {
        Segment,
        Artifact,
        FinalEvaluation
    }

    /// @notice Dispute state as seen by `disputeState`. `Resolvable` is derived (Voting after the
    /// voting deadline) and never stored.
    enum DisputeState {
        None,
        Voting,
        Resolvable,
        Upheld,
        Dismissed,
        Inconclusive
    }

    // ---------------------------------------------------------------- structs

    /// @notice Parameters of a task, fixed at creation (only the pool can grow, by `fundTask`).
    struct TaskParams {
        bytes32 specDigest; // sha256 of the TaskSpec JSON (CID = CIDv1 raw sha2-256 of it)
        uint96 rewardPerImprovement; // paid (capped by the pool) for each accepted improvement
        uint96 verifierFee; // per confirming verifier of an accepted claim
        uint96 minTrainerStake; // >= quorum * verifierFee
        uint96 minVerifierStake; // a verifier needs this much stake to confirm or vote
        uint96 challengeBond; // exact msg.value of a challenge
        uint16 quorum; // confirmations needed (1..MAX_QUORUM)
        uint32 revealWindow; // seconds between commit and the latest reveal
        uint32 challengeWindow; // seconds after reveal for confirmations and challenges
        uint32 votingWindow; // seconds a dispute is open for votes
        uint64 minImprovement; // epsilon: improved iff claimedLoss + minImprovement <= bestLoss (>= 1)
        uint64 baselineLoss; // the best loss before any claim
    }

    /// @notice What a claim commits to and then reveals: the one list of its fields (with the
    /// trainer, msg.sender, they make the commitment: `commitmentOf`).
    struct ClaimFields {
        uint32 taskId;
        uint32 parentId; // 0 = builds on the task's baseline
        bytes codeCid; // binary CIDv1 of the code (any codec); bound by the commitment, emitted only
        bytes32 manifestDigest; // sha256 of the manifest JSON; emitted only
        bytes32 merkleRoot; // root over the boundary leaves (i, h_i), i = 0..numSegments
        uint16 numSegments;
        uint64 claimedLoss; // micro-units of the task's metric; 0 on a sealed task (see `score`)
        bytes32 salt; // keeps the commitment unguessable until the reveal
        uint16 round; // a sealed task's round the claim was committed in; 0 otherwise
    }

    /// @notice What makes a task sealed (`createSealedTask`): the sponsor's commitment to one
    /// private evaluation shard per round, opened (`openShard`) after its round closes.
    struct SealParams {
        bytes32 shardRoot; // Merkle root over leafHash(round, shardDigest), round = 0..rounds-1
        uint16 rounds; // how many rounds (and shards); round r is [start + r*len, start + (r+1)*len)
        uint32 roundLength; // seconds
        uint32 openGrace; // seconds after a round closes within which its shard must be opened
        uint96 sponsorBond; // part of msg.value held against missed openings (not the pool): an equal
        // share per round (>= minTrainerStake each), back to the sponsor when the round's shard opens,
        // else split among the round's claims
    }

    /// @notice A sealed task's schedule and bond as returned by `seal` (rounds = 0: not sealed).
    struct SealView {
        bytes32 shardRoot;
        uint40 start;
        uint32 roundLength;
        uint32 openGrace;
        uint16 rounds;
        uint96 bond; // what is left of the sponsor's bond
        uint96 bondPerRound;
    }

    /// @notice One round of a sealed task as returned by `sealedRound`.
    struct RoundView {
        bytes32 digest; // the opened shard's sha256 (0 while sealed)
        uint40 openedAt; // 0 while sealed
        uint32 claims; // revealed in the round
        uint32 paid; // of those, finalized after a missed opening
        bool released; // its bond share went back to the sponsor
    }

    /// @notice What a claim of a sealed task adds (`claimSeal`).
    struct ClaimSealView {
        uint16 round;
        bool scored; // its losses on the round's shard are revealed
        uint32 incumbentId; // the best claim when it was scored (0 = the task's baseline weights)
        uint64 incumbentLoss; // the incumbent's loss on the same shard, as the trainer revealed it
    }

    /// @notice A task as returned by `task`.
    struct TaskView {
        address sponsor;
        bytes32 specDigest;
        uint96 pool;
        uint96 rewardPerImprovement;
        uint96 verifierFee;
        uint96 minTrainerStake;
        uint96 minVerifierStake;
        uint96 challengeBond;
        uint16 quorum;
        uint32 revealWindow;
        uint32 challengeWindow;
        uint32 votingWindow;
        uint64 minImprovement;
        uint64 baselineLoss;
        uint32 bestClaimId; // 0 while the baseline is the best
        uint64 bestLoss;
        uint32 claimCount;
    }

    /// @notice A claim as returned by `claim`. The code CID, the manifest digest and the reveal
    /// time are not stored (gas): they are carried by `ClaimRevealed` (and its block).
    struct ClaimView {
        address trainer;
        uint32 taskId;
        uint32 parentId;
        uint16 numSegments;
        ClaimState state;
        uint8 confirmations;
        bytes32 merkleRoot;
        uint96 stake;
        uint64 claimedLoss;
        uint40 challengeDeadline;
        bytes32 seed;
        bytes32 openDispute; // 0 when none
    }

    /// @notice A dispute as returned by `dispute`.
    struct DisputeView {
        uint32 claimId;
        ChallengeKind kind;
        uint16 segment;
        DisputeState state;
        address challenger;
        uint16 votesUphold;
        uint16 votesDismiss;
        uint40 openedAt;
        uint40 votingDeadline;
        uint96 perVoterShare; // what each majority voter pulls with settleVote (after resolution)
    }

    /// @notice A verifier as returned by `verifierInfo`.
    struct VerifierView {
        bool registered;
        uint96 stake;
        uint32 bindings; // open confirmations and votes not yet settled
    }

    // ----------------------------------------------------------------- errors

    /// @notice A TaskParams field is invalid; `field` names it.
    error LedgerInvalidTaskParam(string field);
    /// @notice A reveal/report/challenge argument is invalid; `field` names it.
    error LedgerInvalidField(string field);
    error LedgerUnknownTask(uint32 taskId);
    error LedgerUnknownClaim(uint32 claimId);
    error LedgerUnknownDispute(bytes32 disputeId);
    /// @notice msg.value must be nonzero (funding, registering).
    error LedgerZeroValue();
    /// @notice An amount does not fit the uint96 storage of stakes and pools.
    error LedgerAmountTooLarge(uint256 amount);
    /// @notice msg.value of a challenge must equal the task's challenge bond.
    error LedgerWrongBond(uint256 sent, uint256 required);
    error LedgerStakeTooLow(address account, uint256 stake, uint256 required);
    error LedgerCommitmentExists(bytes32 commitment);
    error LedgerUnknownCommitment(bytes32 commitment);
    error LedgerCommitmentRevealed(bytes32 commitment);
    /// @notice Reveal must come in a later block than its commit.
    error LedgerRevealTooEarly(bytes32 commitment, uint256 commitBlock);
    error LedgerRevealWindowClosed(bytes32 commitment, uint256 deadline);
    /// @notice The parent is neither 0 nor a claim of the same task.
    error LedgerInvalidParent(uint32 taskId, uint32 parentId);
    error LedgerWrongClaimState(uint32 claimId, ClaimState current, ClaimState expected);
    error LedgerWrongDisputeState(bytes32 disputeId, DisputeState current, DisputeState expected);
    error LedgerNotVerifier(address account);
    /// @notice The caller is a party (trainer, challenger or confirmer) and may not do this.
    error LedgerConflictOfInterest(uint32 claimId, address account);
    error LedgerAlreadyConfirmed(uint32 claimId, address verifier);
    error LedgerQuorumReached(uint32 claimId, uint16 quorum);
    error LedgerInvalidSegment(uint16 segment, uint16 numSegments);
    error LedgerTooManySegments(uint256 count, uint256 max);
    /// @notice A boundary hash is not proven against the claim's Merkle root.
    error LedgerInvalidProof(uint32 claimId, uint256 index);
    /// @notice A segment challenge whose observed end equals the claimed end.
    error LedgerNoMismatch(uint32 claimId, bytes32 observed);
    error LedgerDisputeExists(bytes32 disputeId);
    error LedgerAlreadyVoted(bytes32 disputeId, address voter);
    /// @notice The verifier still has open confirmations or votes to settle.
    error LedgerVerifierBound(address verifier, uint32 bindings);
    /// @notice The caller did not confirm the claim / vote on the dispute.
    error LedgerNotParticipant(bytes32 ref, address account);
    error LedgerNothingToWithdraw(address account);
    error LedgerTransferFailed(address account, uint256 amount);
    error LedgerNoteTooLong(uint256 length, uint256 max);
    /// @notice The task has no sealed evaluation (`openShard`, `releaseRound`).
    error LedgerNotSealed(uint32 taskId);
    /// @notice A sealed claim names another round than the one its commit fell in.
    error LedgerWrongRound(uint32 taskId, uint16 named, uint16 committedIn);
    /// @notice The commit fell after the task's last round.
    error LedgerRoundsOver(uint32 taskId, uint256 committedAt);
    /// @notice The round closed (reveal) or has not closed yet (openShard) at `end`.
    error LedgerRoundClosed(uint32 taskId, uint16 round, uint256 end);
    error LedgerRoundNotClosed(uint32 taskId, uint16 round, uint256 end);
    /// @notice The shard was opened already, opened too late, or is not open yet.
    error LedgerShardOpened(uint32 taskId, uint16 round);
    error LedgerShardLate(uint32 taskId, uint16 round, uint256 deadline);
    error LedgerShardNotOpen(uint32 taskId, uint16 round);
    /// @notice The shard digest is not the one committed for the round.
    error LedgerInvalidShardProof(uint32 taskId, uint16 round);
    /// @notice Only the claim's trainer reveals its losses.
    error LedgerNotTrainer(uint32 claimId, address account);
    /// @notice The named incumbent is the claim itself or a claim of another task.
    error LedgerInvalidIncumbent(uint32 claimId, uint32 incumbentId);
    /// @notice The losses came after the claim's loss window.
    error LedgerScoreWindowClosed(uint32 claimId, uint256 deadline);
    /// @notice A round's bond share is released only after its opening deadline...
    error LedgerBondLocked(uint32 taskId, uint256 until);
    /// @notice ...and only when the round was missed with no claims (else it was paid already).
    error LedgerNothingToRelease(uint32 taskId, uint16 round);

    // ----------------------------------------------------------------- events

    event TaskCreated(uint32 indexed taskId, address indexed sponsor, TaskParams params, uint256 pool);
    event SealedTaskCreated(uint32 indexed taskId, SealParams seal, uint40 start);
    event ShardOpened(uint32 indexed taskId, uint16 indexed round, bytes32 shardDigest, bytes shardCid);
    /// @notice A sealed claim's losses on its round's shard; its challenge window starts now.
    event ClaimScored(
        uint32 indexed claimId,
        uint32 indexed taskId,
        uint16 round,
        uint64 claimedLoss,
        uint32 incumbentId,
        uint64 incumbentLoss,
        uint40 challengeDeadline
    );
    event SponsorBondReleased(uint32 indexed taskId, address indexed sponsor, uint256 amount);
    event TaskFunded(uint32 indexed taskId, address indexed funder, uint256 amount, uint256 pool);
    event ClaimCommitted(bytes32 indexed commitment, address indexed trainer, uint256 blockNumber);
    event ClaimRevealed(
        uint32 indexed claimId,
        uint32 indexed taskId,
        address indexed trainer,
        uint32 parentId,
        bytes codeCid,
        bytes32 manifestDigest,
        bytes32 merkleRoot,
        uint16 numSegments,
        uint64 claimedLoss,
        uint256 stake,
        bytes32 seed,
        bytes32 commitment,
        uint40 challengeDeadline
    );
    event ClaimConfirmed(
        uint32 indexed claimId, address indexed verifier, uint16[] segments, uint64 measuredLoss, uint8 confirmations
    );
    event ClaimQuorumReached(uint32 indexed claimId, uint8 confirmations);
    event ClaimChallenged(
        uint32 indexed claimId,
        bytes32 indexed disputeId,
        address indexed challenger,
        ChallengeKind kind,
        uint16 segment,
        bytes32 claimedStart,
        bytes32 claimedEnd,
        bytes32 observed,
        uint40 votingDeadline
    );
    event DisputeVoted(
        bytes32 indexed disputeId, address indexed voter, bool uphold, uint16 votesUphold, uint16 votesDismiss
    );
    /// @notice challengerPaid/trainerPaid are credited to balances at once; voters pull
    /// perVoterShare with settleVote. `slashed` is what the confirmers lost (Upheld only).
    event DisputeResolved(
        bytes32 indexed disputeId,
        uint32 indexed claimId,
        DisputeState outcome,
        uint16 votesUphold,
        uint16 votesDismiss,
        uint256 challengerPaid,
        uint256 trainerPaid,
        uint256 perVoterShare,
        uint256 slashed,
        uint40 newChallengeDeadline
    );
    event VerifierSlashed(address indexed verifier, bytes32 indexed disputeId, uint256 amount);
    /// @notice Terminal state of a claim (Accepted, Rejected or Expired), by finalize or resolveDispute.
    event ClaimFinalized(
        uint32 indexed claimId,
        uint32 indexed taskId,
        ClaimState outcome,
        bool improved,
        uint256 reward,
        uint256 trainerPaid
    );
    event BestClaimChanged(
        uint32 indexed taskId, uint32 indexed claimId, uint64 loss, uint32 previousClaimId, uint64 previousLoss
    );
    event VerifierRegistered(address indexed verifier, uint256 added, uint256 stake);
    event VerifierUnregistered(address indexed verifier, uint256 stakeReturned);
    /// @notice A confirmer settled its claim (amount may be 0: expired or rejected claim).
    event Settled(uint32 indexed claimId, address indexed verifier, uint256 amount);
    /// @notice A voter settled its vote (amount 0 for the minority or an inconclusive dispute).
    event VoteSettled(bytes32 indexed disputeId, address indexed voter, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event ExperimentReported(
        uint32 indexed taskId, address indexed reporter, bytes codeCid, bytes32 manifestDigest, uint64 loss, string note
    );

    // ------------------------------------------------------------------ tasks

    /// @notice Create a task; msg.value seeds its reward pool (may be 0).
    /// @param params see TaskParams; validated (LedgerInvalidTaskParam names the field).
    /// @return taskId sequential from 1.
    function createTask(TaskParams calldata params) external payable returns (uint32 taskId);

    /// @notice Create a sealed task: as `createTask`, with `seal.sponsorBond` of msg.value held as
    /// the sponsor's bond (the rest seeds the pool). Rounds start now. A claim moves the best
    /// pointer only by beating the best by minImprovement on its own round's shard: the incumbent
    /// it was scored against while that is still the best, else a best of the same round.
    function createSealedTask(TaskParams calldata params, SealParams calldata seal)
        external
        payable
        returns (uint32 taskId);

    /// @notice Open round `round`'s shard (anyone holding it; in practice the sponsor): after the
    /// round closes, within openGrace. `proof` proves leafHash(round, shardDigest) against the
    /// task's shardRoot; `shardCid` (emitted only) is where the shard is pinned.
    function openShard(uint32 taskId, uint16 round, bytes32 shardDigest, bytes calldata shardCid,
        bytes32[] calldata proof) external;

    /// @notice Reveal a sealed claim's loss and its incumbent's on its round's shard, once the shard
    /// is open and within revealWindow of the opening (trainer only). `incumbentId`: the best claim
    /// when the trainer evaluated (0: the baseline's weights); a claim of this task, not itself.
    /// `incumbentLoss` = type(uint64).max: the incumbent has no valid outputs on the shard (a win
    /// over it moves the pointer but earns no reward). Starts the challenge window.
    function score(uint32 claimId, uint64 claimedLoss, uint32 incumbentId, uint64 incumbentLoss) external;

    /// @notice Credit a round's bond share to the sponsor when the round was missed with no claims
    /// (after its opening deadline). An opened round's share goes back at `openShard`.
    function releaseRound(uint32 taskId, uint16 round) external returns (uint256 amount);

    /// @notice Add msg.value (> 0) to a task's reward pool. Anyone may fund.
    function fundTask(uint32 taskId) external payable;

    // ----------------------------------------------------------------- claims

    /// @notice Commit to a claim before revealing it, binding it to msg.sender.
    /// @param commitment commitmentOf(msg.sender, fields); each commitment can be used once.
    function commit(bytes32 commitment) external;

    /// @notice Reveal a committed claim with its stake (msg.value >= task.minTrainerStake), in a
    /// later block than the commit and within the task's reveal window. On a sealed task: before
    /// the round of the commit closes, naming that round, with claimedLoss 0 (the claim is
    /// Sealed until `score`).
    /// @param f the committed fields (`ClaimFields`).
    /// @return claimId sequential from 1.
    function reveal(ClaimFields calldata f) external payable returns (uint32 claimId);

    /// @notice Confirm an open claim after replaying `segments` and measuring `measuredLoss`.
    /// Registered verifiers with enough stake, not the trainer, once per claim, at most quorum.
    function confirm(uint32 claimId, uint16[] calldata segments, uint64 measuredLoss) external;

    /// @notice Challenge an open claim with exactly task.challengeBond. For Segment the claimed
    /// start (boundary `segment`) and end (boundary `segment + 1`) are proven against the root
    /// and `observed` must differ from the claimed end. For FinalEvaluation `observed` holds the
    /// loss (uint64 micro-units, right-aligned) and `segment` must be 0.
    /// @return disputeId keccak256(abi.encode(claimId, kind, segment)).
    function challenge(
        uint32 claimId,
        ChallengeKind kind,
        uint16 segment,
        bytes32 claimedStart,
        bytes32 claimedEnd,
        bytes32[] calldata startProof,
        bytes32[] calldata endProof,
        bytes32 observed
    ) external payable returns (bytes32 disputeId);

    /// @notice Vote on a dispute within its voting window. Registered verifiers with enough stake
    /// except the trainer, the challenger and the claim's confirmers; once each.
    function vote(bytes32 disputeId, bool uphold) external;

    /// @notice Resolve a dispute after its voting window (anyone). Majority decides; a tie or no
    /// votes is Inconclusive.
    function resolveDispute(bytes32 disputeId) external;

    /// @notice Finalize an open claim after its challenge deadline (anyone): Accepted with a
    /// quorum (best pointer and reward if it improves), Expired otherwise.
    function finalize(uint32 claimId) external;

    // -------------------------------------------------------------- verifiers

    /// @notice Register as a verifier, or top up the stake, with msg.value (> 0).
    function registerVerifier() external payable;

    /// @notice Leave: the whole stake is credited to the withdrawable balance. Refused while
    /// bound to an unsettled confirmation or vote.
    function unregisterVerifier() external;

    /// @notice Pull a confirmer's outcome for a terminal claim: the fee if Accepted (0 otherwise),
    /// and release the binding. A second call is a no-op returning 0.
    function settle(uint32 claimId) external returns (uint256 amount);

    /// @notice Pull a voter's share of a resolved dispute (majority only) and release the
    /// binding. A second call is a no-op returning 0.
    function settleVote(bytes32 disputeId) external returns (uint256 amount);

    /// @notice Pay the caller's whole balance.
    function withdraw() external returns (uint256 amount);

    // ---------------------------------------------------------------- reports

    /// @notice Publish an unstaked experiment report (event only), e.g. a failed run.
    function report(uint32 taskId, bytes calldata codeCid, bytes32 manifestDigest, uint64 loss, string calldata note)
        external;

    // ------------------------------------------------------------------ views

    function task(uint32 taskId) external view returns (TaskView memory);

    function claim(uint32 claimId) external view returns (ClaimView memory);

    function claimState(uint32 claimId) external view returns (ClaimState);

    function dispute(bytes32 disputeId) external view returns (DisputeView memory);

    function disputeState(bytes32 disputeId) external view returns (DisputeState);

    /// @notice The current best of a task: (0, baselineLoss) until a claim improves on it.
    function bestClaim(uint32 taskId) external view returns (uint32 claimId, uint64 loss);

    /// @notice Claim ids of a task in reveal order, `limit` at most from `offset`.
    function taskClaims(uint32 taskId, uint256 offset, uint256 limit) external view returns (uint32[] memory);

    function claimCount(uint32 taskId) external view returns (uint32);

    function taskCount() external view returns (uint32);

    function totalClaims() external view returns (uint32);

    /// @notice keccak256(abi.encode(blockhash(revealBlock - 1), prevrandao, claimId)).
    function sampleSeed(uint32 claimId) external view returns (bytes32);

    function verifierInfo(address account) external view returns (VerifierView memory);

    function balanceOf(address account) external view returns (uint256);

    function hasConfirmed(uint32 claimId, address account) external view returns (bool);

    function hasVoted(bytes32 disputeId, address account) external view returns (bool);

    /// @notice (block number, timestamp, revealed) of a commitment; block 0 = unknown.
    function commitmentInfo(bytes32 commitment)
        external
        view
        returns (uint64 blockNumber, uint40 timestamp, bool revealed);

    /// @notice The commitment a trainer must commit for these claim fields:
    /// keccak256(abi.encode(trainer, f)).
    function commitmentOf(address trainer, ClaimFields calldata f) external pure returns (bytes32);

    /// @notice The Merkle leaf of boundary `index` with state hash `stateHash`:
    /// keccak256(bytes.concat(keccak256(abi.encode(index, stateHash)))).
    function leafHash(uint256 index, bytes32 stateHash) external pure returns (bytes32);

    /// @notice Whether (index, stateHash) is proven against the claim's Merkle root.
    function verifyBoundary(uint32 claimId, uint256 index, bytes32 stateHash, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice A task's sealed schedule (rounds = 0 for an open task).
    function seal(uint32 taskId) external view returns (SealView memory);

    /// @notice Round `round` of a sealed task: its opened shard (digest, time), claims, bond share.
    function sealedRound(uint32 taskId, uint16 round) external view returns (RoundView memory);

    function claimSeal(uint32 claimId) external view returns (ClaimSealView memory);

    /// @notice Deterministic dispute id.
    function disputeIdOf(uint32 claimId, ChallengeKind kind, uint16 segment) external pure returns (bytes32);
}
