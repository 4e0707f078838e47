"""The verification benchmark runs end to end on a tiny budget and reports sane figures.

Real parts throughout: a charlm run in the embedded store, ClaimChecker's rebuild of
checkpoint 0, replays (FLOPs counted) and the harness's final evaluation (with the
causality check) in the sandbox, a warm zygote pool, a forged-jump run, the adaptive
adversary's forged runs, and a VerifierNode on a real anvil.
"""

from bench import verify_bench


def test_tiny_bench_detects_a_forged_jump_and_reports_every_figure(capsys):
    r = verify_bench.run(trials=30, runs_per_attack=1, steps=40, segment_steps=10, attacks=("forged_jump",),
                         confirm_misses=False, latency=True, poll_interval=0.5, adversary=True, adversary_quick=True)
    assert (r["steps"], r["segments"], r["verifiers"]) == (40, 4, 3)
    assert r["sampling"] == {"random_segments": 1, "suspicious_segments": 1, "suspicion": "growth"}

    c = r["cost"]
    assert c["replays"] == 2 and len(c["segments_replayed"]) == 2  # 1 random + 1 suspicious
    assert all(f and f > 0 for f in r["replay_flops_counted"]), "every replay counted its FLOPs"
    assert r["cost_per_verifier"] == c["check_s"] / c["train_s"] > 0
    assert c["replay_s"] >= c["replay_startup_s"] > 0
    assert 0 < c["warm"]["replay_startup_s"] and 0 < c["replay_startup_s"]
    assert c["start_s"] > 0 and c["warm"]["start_s"] > 0, "checkpoint 0 is rebuilt from the seed"
    # a fresh checker starts its zygotes in its first requests (the rebuild, then the harness's);
    # a warm pool has paid that already
    assert c["start_s"] + c["eval_s"] > c["warm"]["start_s"] + c["warm"]["eval_s"] + 1.0
    assert c["eval_s"] > 0 and c["warm"]["eval_s"] >= c["warm"]["eval_harness_s"] > 0
    assert c["causality"]["checked"] > 0 and c["causality"]["violations"] == 0, c["causality"]

    d = r["detection"]["forged_jump"]
    assert d["trials"] == 30 and r["detect_forged_jump"] == d["rate"] == 1.0
    forged = d["runs"][0]["forged"]
    assert d["runs"][0]["forged_norm_ranks"] == [1], "a 3x jump has the largest update"
    conf = d["confirmation"]
    assert conf["hits_checked"] == conf["hits_challenged"] == 1
    assert conf["checks"][0]["decision"] == "challenge" and conf["checks"][0]["challenged_segment"] in forged

    a = r["adversary"]
    families = {row["family"] for row in a["curves"]}
    assert families == {"forged_jump", "spread_jump", "data_substitution"}
    assert all(0 <= row["p_adaptive"] <= row["p_naive"] <= 1 for row in a["curves"])
    assert any(row["gain"] > 0 for row in a["curves"]), "forgeries buy a lower loss"
    # 3 verifiers x 2 picks on 4 segments, spread: every segment is covered, whatever the adversary does
    assert a["min_p_adaptive"] == 1.0 and a["every_ev_negative"] is True
    assert {e["family"] for e in a["ev"]} >= {"training inside build()", "a start that is not the seed's"}
    assert [(t["random"], t["suspicious"]) for t in a["tradeoff"]] == [
        (x, y) for x, y in __import__("bench.adversary", fromlist=["POLICIES"]).POLICIES]

    lat = r["latency"]
    assert lat["action"] == "confirm" and lat["claim_id"] >= 1
    assert lat["reveal_to_action_s"] > lat["replay_eval_s"] > 0
    assert r["latency_s"] == lat["latency_s"]
    assert set(r["meets"]) == {"cost_per_verifier_warm", "detect_forged_jump", "adversary_min_p", "latency_s"}
    second = c["second_check"]
    assert r["cost_per_verifier_warm"] == second["total"] / c["train_s"] < r["cost_per_verifier"]
    assert r["meets"]["detect_forged_jump"] is True

    assert [(x["random"], x["suspicious"]) for x in r["alternatives"]] == list(verify_bench.ALTERNATIVE_POLICIES)
    verify_bench.print_report(r)
    out = capsys.readouterr().out
    assert "detection forged_jump" in out and "PASS" in out and "verifier latency" in out
    assert "expected value for the cheater" in out and "sampling trade-off" in out
