"""Segment sampling: deterministic from chain data, distinct per verifier, suspicious first."""

import pytest

from arverifier.sampling import (SamplingPolicy, most_suspicious, sample_segments, suspicion_scores,
                                 verifier_seed)

SEED = bytes(range(32))
A = "0x" + "aa" * 20
B = "0x" + "bb" * 20


def test_same_inputs_same_sample_and_different_verifiers_differ():
    one = sample_segments(7, A, SEED, 16, policy=SamplingPolicy(3, 0))
    assert one == sample_segments(7, A, SEED, 16, policy=SamplingPolicy(3, 0))
    others = {sample_segments(7, f"0x{i:040x}", SEED, 16, policy=SamplingPolicy(3, 0)).segments
              for i in range(1, 30)}
    assert len(others) > 20  # picks really depend on the verifier
    assert len(one.segments) == 3 and all(0 <= s < 16 for s in one.segments)


def test_seed_and_claim_change_the_sample():
    base = verifier_seed(1, A, SEED)
    assert base != verifier_seed(2, A, SEED)
    assert base != verifier_seed(1, B, SEED)
    assert base != verifier_seed(1, A, bytes(32))


def test_largest_update_is_always_sampled_and_disjoint_from_random():
    norms = [0.1] * 10
    norms[6] = 0.9
    for i in range(1, 40):
        s = sample_segments(3, f"0x{i:040x}", SEED, 10, norms, SamplingPolicy(2, 1))
        assert s.suspicious == (6,)
        assert 6 not in s.random and len(s.segments) == 3


def test_cannot_sample_more_than_exists():
    s = sample_segments(1, A, SEED, 2, [0.5, 0.4], SamplingPolicy(5, 1))
    assert s.segments == (0, 1)


def test_late_jump_beats_the_naturally_large_first_segments():
    # Measured on the demo's charlm runs (8 segments of 25 steps): relative updates
    # shrink as training settles; the cheater's last segment trained 4x the steps.
    honest = [0.0868, 0.0577, 0.0472, 0.0405, 0.0382, 0.0360, 0.0351, 0.0339]
    forged = [0.0870, 0.0597, 0.0479, 0.0406, 0.0378, 0.0339, 0.0338, 0.0820]
    assert most_suspicious(forged, 1) == [7]
    assert max(suspicion_scores(honest)) < 1.03 < suspicion_scores(forged)[7]  # honest: smooth decay
    for i in range(1, 20):
        assert 7 in sample_segments(9, f"0x{i:040x}", SEED, 8, forged).segments


def test_segment0_is_scored_against_the_extrapolated_decay():
    honest = [0.0868, 0.0577, 0.0472, 0.0405, 0.0382, 0.0360, 0.0351, 0.0339]  # charlm, 16 x 25 steps
    jump0 = [0.1386, 0.0408, 0.0355, 0.0368, 0.0346, 0.0339, 0.0344, 0.0345]  # 3x the steps in segment 0
    jump2 = [0.0555, 0.0316, 0.0671, 0.0223]  # forged segment 2 must not inflate segment 0
    assert suspicion_scores(honest)[0] < 1.0 < suspicion_scores(jump0)[0]
    assert max(range(8), key=lambda i: suspicion_scores(jump0)[i]) == 0
    assert max(range(4), key=lambda i: suspicion_scores(jump2)[i]) == 2
    assert suspicion_scores([0.1, 0.05])[0] == 0.0, "fewer than 3 segments: no extrapolation"


# charlm, 16 x 25 (a data-substituted segment 3: growth alone missed it, its bump is 1.08)
DSUB3 = [0.0861, 0.0527, 0.0473, 0.047, 0.0399, 0.036, 0.0339, 0.0327, 0.0329, 0.0335, 0.0342, 0.0358, 0.037,
         0.0367, 0.0374, 0.0392]


def test_later_verifiers_spread_around_what_earlier_confirmations_listed():
    norms = [0.1] * 16
    norms[6], norms[11], norms[2] = 0.9, 0.5, 0.3  # growth ranks: 6, then 11 (jump after 10), then 2
    pol = SamplingPolicy(random_segments=2, suspicious_segments=1)
    first = sample_segments(3, A, SEED, 16, norms, pol)
    assert first.suspicious == (6,) and len(first.segments) == 3
    second = sample_segments(3, B, SEED, 16, norms, pol, covered=first.segments)
    assert second.suspicious != (6,) and not set(second.segments) & set(first.segments)
    assert second.covered == first.segments
    third = sample_segments(3, "0x" + "cc" * 20, SEED, 16, norms, pol, covered=first.segments + second.segments)
    assert len(set(first.segments) | set(second.segments) | set(third.segments)) == 9, "9 distinct segments"
    # everything covered: the picks fall back on all segments (the top one first again)
    full = sample_segments(3, B, SEED, 4, [0.1, 0.1, 0.9, 0.1], SamplingPolicy(2, 1), covered=range(4))
    assert full.suspicious == (2,) and len(full.segments) == 3


HIDDEN = 6  # a segment no score ranks high (a forgery the scores do not see is found by random picks only)


def test_bump_ranks_a_substituted_segment_growth_missed():
    s = suspicion_scores(DSUB3)
    assert DSUB3[3] < DSUB3[2] and max(range(16), key=lambda i: s[i]) == 3
    assert sorted(range(16), key=lambda i: -s[i]).index(HIDDEN) > 3


def test_three_spread_verifiers_catch_a_growth_invisible_segment_more_often_than_independent_ones():
    who = [f"0x{i:040x}" for i in (1, 2, 3)]
    pol = SamplingPolicy(random_segments=2, suspicious_segments=1)
    hits = {"spread": 0, "independent": 0}
    trials = 300
    for t in range(trials):
        seed = t.to_bytes(32, "big")
        covered: tuple = ()
        spread, alone = set(), set()
        for v in who:
            s = sample_segments(9, v, seed, 16, DSUB3, pol, covered=covered)
            covered += s.segments
            spread |= set(s.segments)
            alone |= set(sample_segments(9, v, seed, 16, DSUB3, pol).segments)
        hits["spread"] += HIDDEN in spread
        hits["independent"] += HIDDEN in alone
    # spread: 9 distinct segments of 16 always (7 random among the 15 non-top): ~0.47+; independent overlap
    assert len(spread) == 9
    assert hits["spread"] > hits["independent"], hits
    assert hits["spread"] / trials > 0.4, hits


def test_legacy_probe_and_fused_settings_only_add_random_picks():
    pol = SamplingPolicy(random_segments=1, suspicious_segments=1, probe_segments=1, suspicion="fused")
    s = sample_segments(7, A, SEED, 16, DSUB3, pol)
    assert len(s.random) == 2 and s.suspicious == sample_segments(7, A, SEED, 16, DSUB3, SamplingPolicy(0, 1)).suspicious
    with pytest.raises(ValueError, match="suspicion: 'loss'"):
        SamplingPolicy(suspicion="loss")


# charlm 16 x 25, seed 1 (measured with ClaimChecker.update_stats): the cosines of a run whose
# segment 5 was trained on the validation split, and of the honest run; the norms are the honest
# run's (the substituted segment barely changes the update sizes), but the next segment turns away
D5_NORMS = [0.0868, 0.0577, 0.0472, 0.0405, 0.0382, 0.036, 0.0351, 0.0339, 0.0342, 0.0359, 0.037, 0.0385,
            0.0376, 0.0385, 0.0389, 0.0381]
D5_COS = [0.233, 0.485, 0.479, 0.425, 0.289, 0.147, 0.219, 0.252, 0.232, 0.225, 0.255, 0.275, 0.267, 0.238, 0.233]
HONEST_COS = [0.233, 0.485, 0.479, 0.425, 0.312, 0.304, 0.258, 0.242, 0.225, 0.23, 0.256, 0.27, 0.259, 0.229, 0.21]


def test_the_turn_after_a_substituted_segment_ranks_it_first():
    from arverifier.sampling import fused_scores, turn_scores

    t = turn_scores(D5_COS, 16)
    assert t[0] == t[15] == 1.0, "segment 0 (the init's turn) and the last (no turn after it) are not scored"
    assert max(range(16), key=lambda i: t[i]) == 5 and t[5] > 1.6 > max(turn_scores(HONEST_COS, 16))
    fused = fused_scores(D5_NORMS, D5_COS)
    assert max(range(16), key=lambda i: fused[i]) == 5
    assert sample_segments(4, A, SEED, 16, D5_NORMS, SamplingPolicy(0, 1), cosines=D5_COS).suspicious == (5,)
    with pytest.raises(ValueError, match="3 update cosines for 16 segments"):
        sample_segments(4, A, SEED, 16, D5_NORMS, cosines=[0.1] * 3)
    # below 8 segments the turn is not used: growth and bump only
    assert fused_scores(D5_NORMS[:6], D5_COS[:5]) == suspicion_scores(D5_NORMS[:6])
