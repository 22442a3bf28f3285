"""The seed's claims: verdicts computed from an evaluation summary (tools/pipeline/claims.py)."""

from __future__ import annotations

import math

from pipeline.claims import claims_markdown, fitting_claims, sampling_claims

NS = (1, 4, 5, 10, 16, 25, 64, 256, 1024, 4096)


def summary(*, slope=-3.0, trainset_gap=10.0, kmeans_gap=2.0, gauss=True, noise=None):
    """A summary in evaluate_regression's keys: the model's best-of-n linear in log2 n."""
    values = {}
    for metric, base in (("mpjpe", 90.0), ("pa_mpjpe", 60.0)):
        for n in NS:
            best = base + slope * math.log2(n) + (noise(n) if noise else 0.0)
            values[f"best{n}_{metric}"] = best
            values[f"trainset_best{n}_{metric}"] = best + trainset_gap
            if gauss:
                for sigma in (1, 10, 20):
                    # the Gaussian baseline's first sample is the mode: a tie at n = 1
                    gap = 0.0 if n == 1 else 1.0 + sigma / 10
                    values[f"gauss{sigma}cm_best{n}_{metric}"] = best + gap
        for k in (5, 10, 25):
            values[f"kmeans{k}_{metric}"] = values[f"best{k}_{metric}"] - kmeans_gap
        values[f"mode_{metric}"] = values[f"best1_{metric}"]
    return values


def verdicts(claims):
    return {(claim.number, claim.metric): claim.verdict for claim in claims}


def test_every_claim_holds_on_numbers_that_show_it():
    claims = sampling_claims(summary())
    assert len(claims) == 8
    assert set(verdicts(claims).values()) == {"holds"}
    first = claims[0]
    assert first.metric == "PA-MPJPE"
    assert "slope -3.00 mm per doubling of n" in first.evidence
    assert "R² 1.000" in first.evidence


def test_each_claim_fails_on_its_own_counter_example():
    # training poses better at large n only: claim 3 fails, the others hold
    def trainset_wins_late(values):
        for metric in ("mpjpe", "pa_mpjpe"):
            values[f"trainset_best4096_{metric}"] = values[f"best4096_{metric}"] - 1.0
        return values

    found = verdicts(sampling_claims(trainset_wins_late(summary())))
    assert found[(3, "PA-MPJPE")] == found[(3, "MPJPE")] == "fails"
    assert found[(1, "MPJPE")] == found[(2, "MPJPE")] == found[(4, "MPJPE")] == "holds"
    # k-means worse than random samples at one n
    values = summary()
    values["kmeans25_pa_mpjpe"] = values["best25_pa_mpjpe"] + 0.5
    found = verdicts(sampling_claims(values))
    assert found[(4, "PA-MPJPE")] == "fails" and found[(4, "MPJPE")] == "holds"
    # no gain from sampling: a flat curve is not a fall in log n
    assert verdicts(sampling_claims(summary(slope=0.0)))[(1, "PA-MPJPE")] == "fails"
    # a curve far from a line (R² below 0.9)
    bumpy = summary(slope=-0.5, noise=lambda n: 8.0 * (n % 2))
    assert verdicts(sampling_claims(bumpy))[(1, "MPJPE")] == "fails"
    # a Gaussian baseline as good as the model at one n > 1
    values = summary()
    values["gauss10cm_best64_mpjpe"] = values["best64_mpjpe"]
    assert verdicts(sampling_claims(values))[(2, "MPJPE")] == "fails"


def test_missing_numbers_are_not_measured():
    values = {k: v for k, v in summary(gauss=False).items() if "trainset" not in k}
    values = {k: v for k, v in values.items() if not k.startswith("kmeans")}
    found = verdicts(sampling_claims(values))
    for number in (2, 3, 4):
        assert found[(number, "PA-MPJPE")] == "not measured"
    assert found[(1, "PA-MPJPE")] == "holds"
    only_mode = {"best1_mpjpe": 1.0, "best1_pa_mpjpe": 1.0}
    assert verdicts(sampling_claims(only_mode))[(1, "MPJPE")] == "not measured"


def test_fitting_and_multiview_claims():
    fitting = {"prohmr_fit_pa_mpjpe": 50.0, "smplify_pa_mpjpe": 55.0}
    fitting |= {"prohmr_fit_mpjpe": 80.0, "smplify_mpjpe": 70.0}
    multiview = {"refined_pa_mpjpe": 40.0, "mode_pa_mpjpe": 45.0}
    multiview |= {"refined_mpjpe": 60.0, "mode_mpjpe": 61.0}
    claims = fitting_claims(fitting, multiview)
    assert [(c.number, c.metric, c.verdict) for c in claims] == [
        (5, "PA-MPJPE", "holds"),
        (5, "PA-MPJPE", "holds"),
        (5, "MPJPE", "fails"),
        (5, "MPJPE", "holds"),
    ]
    assert "prohmr_fit 80.0 mm vs smplify 70.0 mm (+10.0 mm)" in claims[2].evidence
    assert {c.verdict for c in fitting_claims(None, None)} == {"not measured"}
    table = claims_markdown(claims)
    assert table.count("\n") == len(claims) + 1 and "**fails**" in table
