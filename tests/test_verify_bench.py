"""The verification benchmark runs end to end on a tiny budget and reports sane figures.

Real parts throughout: a charlm run in the embedded store, ClaimChecker replays and the
harness's final evaluation (with the causality check) in the sandbox, a warm zygote pool,
a forged-jump run, and a VerifierNode on a real anvil.
"""

from bench import verify_bench


def test_tiny_bench_detects_a_forged_jump_and_reports_every_figure(capsys):
    r = verify_bench.run(trials=30, runs_per_attack=1, steps=40, segment_steps=10, attacks=("forged_jump",),
                         confirm_misses=False, latency=True, poll_interval=0.5)
    assert (r["steps"], r["segments"], r["verifiers"]) == (40, 4, 3)
    assert r["sampling"] == {"random_segments": 1, "suspicious_segments": 1, "probe_segments": 0,
                             "suspicion": "fused"}

    c = r["cost"]
    assert c["replays"] == 2 and len(c["segments_replayed"]) == 2  # 1 random + 1 suspicious (fused)
    assert c["probe_s"] == 0 < c["warm"]["probe_s"], "4 segments: fused suspicion is growth only, no probe run"
    assert len(r["honest_probe_scores"]) == 4, "charlm has a probe: one score per segment"
    assert r["cost_per_verifier"] == c["check_s"] / c["train_s"] > 0
    assert c["replay_s"] >= c["replay_startup_s"] > 0
    assert 0 < c["warm"]["replay_startup_s"] and 0 < c["replay_startup_s"]
    # a fresh checker starts its zygotes (claim code's, the harness's) in its first requests, the
    # harness's verdict before any replay; a warm pool has paid that already
    assert c["eval_s"] > c["warm"]["eval_s"] + 1.0, "the warm pool skips the zygotes' start-up"
    # the final evaluation is in the cost: harness inputs, the claim's predictions, scoring and the
    # causality check on inputs spliced after the verifier's own cuts (one per eval row)
    assert c["eval_s"] > 0 and c["warm"]["eval_s"] >= c["warm"]["eval_harness_s"] > 0
    assert c["causality"]["checked"] > 0 and c["causality"]["violations"] == 0, c["causality"]

    d = r["detection"]["forged_jump"]
    assert d["trials"] == 30 and r["detect_forged_jump"] == d["rate"] == 1.0
    forged = d["runs"][0]["forged"]
    assert d["runs"][0]["forged_norm_ranks"] == [1], "a 3x jump has the largest update"
    conf = d["confirmation"]
    assert conf["hits_checked"] == conf["hits_challenged"] == 1
    assert conf["checks"][0]["decision"] == "challenge" and conf["checks"][0]["challenged_segment"] in forged

    lat = r["latency"]
    assert lat["action"] == "confirm" and lat["claim_id"] >= 1
    assert lat["reveal_to_action_s"] > lat["replay_eval_s"] > 0
    assert r["latency_s"] == lat["latency_s"]
    assert set(r["meets"]) == {"cost_per_verifier", "detect_forged_jump", "latency_s"}
    assert r["meets"]["detect_forged_jump"] is True

    assert [(a["random"], a["suspicious"], a["probe"], a["suspicion"]) for a in r["alternatives"]] == list(
        verify_bench.ALTERNATIVE_POLICIES)
    verify_bench.print_report(r)
    out = capsys.readouterr().out
    assert "detection forged_jump" in out and "PASS" in out and "verifier latency" in out
