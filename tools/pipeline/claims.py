"""The seed's claims, tested on one run's numbers (the reports' "The seed's claims" section).

ProHMR's paper makes five claims that its evaluation protocols can test. Each function here
takes the summary dict of an evaluation (``prohmr_model.evaluation``'s keys: ``best{n}_*``,
``kmeans{n}_*``, ``gauss{σ}cm_best{n}_*``, ``trainset_best{n}_*``; eval_fitting's and
eval_multiview's summaries) and returns, per claim and metric, the numbers that test it and a
verdict computed from them:

1. best-of-n error falls roughly linearly in log n: least-squares line of the error against
   log2 n over the best-of-n values measured (at least three, from n = 1); holds when the slope
   is negative and R² >= ``LINEAR_R2``;
2. the learned posterior beats N(θ*, σI) for σ = 1, 10, 20 cm: best-of-n of the model below the
   Gaussian baseline's at every measured n > 1 and σ (the baseline's first sample is the mode,
   so at n = 1 both are the mode);
3. it beats the same number of training poses: below the training-set baseline at every n;
4. k-means quantisation of all the samples to n hypotheses beats n random samples: ``kmeans{n}``
   below ``best{n}`` at every k-means n;
5. keypoint fitting with the learned prior beats SMPLify from the same start, and multiview
   refinement beats single-view regression.

A claim whose numbers are missing (no baselines asked for, no fitting run) is "not measured".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import linregress

__all__ = [
    "LINEAR_R2",
    "Claim",
    "claims_json",
    "claims_markdown",
    "fitting_claims",
    "sampling_claims",
]

LINEAR_R2 = 0.9  # "roughly linear": the line explains at least 90% of the variance
METRICS = {"pa_mpjpe": "PA-MPJPE", "mpjpe": "MPJPE"}
HOLDS, FAILS, NOT_MEASURED = "holds", "fails", "not measured"


@dataclass(frozen=True)
class Claim:
    """One claim tested on one metric: the numbers (``evidence``) and the verdict."""

    number: int
    statement: str
    metric: str
    evidence: str
    verdict: str  # "holds", "fails" or "not measured"


def _ns(summary: Mapping[str, float], pattern: str) -> list[int]:
    found = (re.fullmatch(pattern, key) for key in summary)
    return sorted({int(match["n"]) for match in found if match is not None})


def _beats(
    ours: Mapping[int, float],
    theirs: Mapping[int, float],
    label: str,
    *,
    from_n: int = 1,
    subject: str = "",
) -> tuple[str, str]:
    """(evidence, verdict) of "ours (``subject``) below theirs at every shared n >= from_n"."""
    shared = sorted(n for n in set(ours) & set(theirs) if n >= from_n)
    if not shared:
        return f"no {label} numbers", NOT_MEASURED
    margins = {n: theirs[n] - ours[n] for n in shared}
    wins = sum(margin > 0 for margin in margins.values())
    worst = min(shared, key=lambda n: margins[n])
    evidence = (
        f"{subject}below {label} at {wins}/{len(shared)} n; smallest margin "
        f"{margins[worst]:+.1f} mm at n={worst} ({ours[worst]:.1f} vs {theirs[worst]:.1f})"
    )
    return evidence, HOLDS if wins == len(shared) else FAILS


def sampling_claims(summary: Mapping[str, float]) -> list[Claim]:
    """Claims 1-4 for each metric, from an evaluation summary (regression or lifting)."""
    claims = []
    for metric, name in METRICS.items():
        best = {n: summary[f"best{n}_{metric}"] for n in _ns(summary, rf"best(?P<n>\d+)_{metric}")}
        # claim 1
        ns = sorted(best)
        if len(ns) >= 3 and ns[0] == 1:
            fit = linregress(np.log2(ns), [best[n] for n in ns])
            slope, r2 = fit.slope, fit.rvalue**2  # mm per doubling of n
            evidence = (
                f"n = {ns[0]}…{ns[-1]}: {best[ns[0]]:.1f} → {best[ns[-1]]:.1f} mm; "
                f"slope {slope:+.2f} mm per doubling of n, R² {r2:.3f}"
            )
            verdict = HOLDS if slope < 0 and r2 >= LINEAR_R2 else FAILS
        else:
            evidence, verdict = f"best-of-n measured only at n = {ns}", NOT_MEASURED
        claims.append(
            Claim(1, "best-of-n error falls roughly linearly in log n", name, evidence, verdict)
        )
        # claim 2: every σ at every n
        sigmas = sorted(
            {int(m["s"]) for k in summary if (m := re.fullmatch(r"gauss(?P<s>\d+)cm_.*", k))}
        )
        parts, verdicts = [], []
        for sigma in sigmas:
            gauss = {
                n: summary[f"gauss{sigma}cm_best{n}_{metric}"]
                for n in _ns(summary, rf"gauss{sigma}cm_best(?P<n>\d+)_{metric}")
            }
            # the Gaussian baseline's first sample is the mode itself: n = 1 ties by design
            evidence, verdict = _beats(best, gauss, f"N(θ*, {sigma} cm)", from_n=2)
            parts.append(evidence)
            verdicts.append(verdict)
        if not sigmas:
            parts, verdicts = ["no Gaussian baselines measured"], [NOT_MEASURED]
        verdict = (
            NOT_MEASURED
            if NOT_MEASURED in verdicts
            else (HOLDS if set(verdicts) == {HOLDS} else FAILS)
        )
        claims.append(
            Claim(
                2,
                "the learned posterior beats N(θ*, sigma I), sigma = 1, 10, 20 cm, at every n",
                name,
                "; ".join(parts),
                verdict,
            )
        )
        # claim 3
        trainset = {
            n: summary[f"trainset_best{n}_{metric}"]
            for n in _ns(summary, rf"trainset_best(?P<n>\d+)_{metric}")
        }
        evidence, verdict = _beats(best, trainset, "training poses")
        claims.append(
            Claim(
                3,
                "the learned posterior beats as many poses drawn from the training set",
                name,
                evidence,
                verdict,
            )
        )
        # claim 4
        kmeans = {
            n: summary[f"kmeans{n}_{metric}"] for n in _ns(summary, rf"kmeans(?P<n>\d+)_{metric}")
        }
        evidence, verdict = _beats(kmeans, best, "n random samples", subject="k-means ")
        claims.append(
            Claim(
                4,
                "k-means quantisation of all samples to n hypotheses beats n random samples",
                name,
                evidence,
                verdict,
            )
        )
    return claims


def fitting_claims(
    fitting: Mapping[str, float] | None, multiview: Mapping[str, float] | None
) -> list[Claim]:
    """Claim 5 for each metric: eval_fitting's summary (``prohmr_fit_*`` vs ``smplify_*``) and
    eval_multiview's (``refined_*`` vs ``mode_*``); None = not run."""
    claims = []
    for metric, name in METRICS.items():
        for summary, ours, theirs, statement in (
            (
                fitting,
                "prohmr_fit",
                "smplify",
                "keypoint fitting with the learned prior beats SMPLify from the same start",
            ),
            (multiview, "refined", "mode", "multiview refinement beats single-view regression"),
        ):
            keys = (f"{ours}_{metric}", f"{theirs}_{metric}")
            if summary is None or not all(key in summary for key in keys):
                claims.append(Claim(5, statement, name, "not run", NOT_MEASURED))
                continue
            a, b = (summary[key] for key in keys)
            evidence = f"{ours} {a:.1f} mm vs {theirs} {b:.1f} mm ({a - b:+.1f} mm)"
            claims.append(Claim(5, statement, name, evidence, HOLDS if a < b else FAILS))
    return claims


def claims_markdown(claims: Sequence[Claim]) -> str:
    """The claims as a markdown table (one row per claim and metric)."""
    lines = ["| # | claim | metric | numbers | verdict |", "|---|---|---|---|---|"]
    for claim in claims:
        lines.append(
            f"| {claim.number} | {claim.statement} | {claim.metric} | {claim.evidence} | "
            f"**{claim.verdict}** |"
        )
    return "\n".join(lines)


def claims_json(claims: Sequence[Claim]) -> list[dict[str, object]]:
    """The claims as JSON-ready dicts."""
    return [asdict(claim) for claim in claims]
