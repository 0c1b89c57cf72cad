#!/usr/bin/env python3
"""Reference chi-square tests and calibration fits for the bias statistics.

Writes Tests/EnsembleTests/Fixtures/calibration.json:
- `chisquare`: count vectors against expected shares, with scipy.stats.chisquare's
  statistic and p-value (f_exp = total * share; positions with share 0 left out).
- `calibration`: seeded random logits of 4- and 5-choice items whose gold answers lean
  to position 1, and the parameters scipy.optimize.minimize (BFGS, tight tolerance)
  finds for the same objective as Suneung's `fitCalibration`: the summed negative
  log-likelihood of softmax(a * logits + b) with b_1 = 0, plus 0.01 * sum(b^2); for
  `temperature` only a, for `prior` a and b_2..b_5. T = 1 / a.

Regenerate (from the repository root):  python3 scripts/reference/calibration_fixtures.py
Needs numpy and scipy.
"""
import json
import pathlib

import numpy as np
from scipy import optimize, stats

RIDGE = 0.01
out = pathlib.Path(__file__).resolve().parents[2] / "Tests/EnsembleTests/Fixtures/calibration.json"

chi = []
for observed, shares in [
    ([197, 1, 1, 1], [0.25, 0.25, 0.25, 0.25]),
    ([40, 30, 20, 10], [0.47, 0.18, 0.18, 0.17]),
    ([12, 9, 11, 8, 10], [0.2] * 5),
    ([5, 0, 3, 2], [0.5, 0.0, 0.3, 0.2]),
    ([300, 120, 110, 90, 40], [0.46, 0.15, 0.14, 0.13, 0.12]),
]:
    kept = [i for i, s in enumerate(shares) if s > 0]
    total = sum(observed)
    f_obs = np.array([observed[i] for i in kept], dtype=float)
    f_exp = np.array([shares[i] for i in kept], dtype=float)
    f_exp = total * f_exp / f_exp.sum()
    result = stats.chisquare(f_obs, f_exp)
    chi.append({"observed": observed, "shares": shares, "statistic": float(result.statistic), "df": len(kept) - 1, "p": float(result.pvalue)})

rng = np.random.default_rng(20261130)
items = []
for i in range(120):
    n = 4 if i % 3 else 5
    gold = 1 if rng.random() < 0.45 else int(rng.integers(1, n + 1))
    logits = rng.normal(0, 1.5, n)
    logits[gold - 1] += 1.2          # informative
    logits[0] += 0.8                 # and biased toward the first position
    items.append({"logits": [float(x) for x in logits], "gold": gold})


def nll(theta, prior):
    a = theta[0]
    total = 0.0
    for item in items:
        z = a * np.array(item["logits"])
        if prior:
            z[1:] += theta[1:len(z)]
        top = z.max()
        total += top + np.log(np.exp(z - top).sum()) - z[item["gold"] - 1]
    return total + RIDGE * float(np.sum(np.asarray(theta[1:]) ** 2))


fits = {}
for kind, k in [("temperature", 1), ("prior", 5)]:
    result = optimize.minimize(nll, x0=np.r_[1.0, np.zeros(k - 1)], args=(kind == "prior",), method="BFGS", options={"gtol": 1e-10})
    theta = result.x
    bias = [0.0] + [float(x) for x in theta[1:]] + [0.0] * (4 - (k - 1))
    fits[kind] = {"temperature": float(1 / theta[0]), "positionBias": bias, "loss": float(result.fun)}

out.write_text(json.dumps({"chisquare": chi, "items": items, "fits": fits}, indent=1) + "\n")
print(f"wrote {out}")
