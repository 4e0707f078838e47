"""Segment sampling: deterministic from chain data, distinct per verifier, suspicious first."""

from arverifier.sampling import SamplingPolicy, sample_segments, verifier_seed

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
