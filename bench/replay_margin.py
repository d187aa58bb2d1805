#!/usr/bin/env python3
"""Replays a config family's planner choices from recorded times, under other serial-margin quantiles.

Each batch of a `tune --family` or `bench --family` result records every candidate's features (as
the plan computed them) and measured time. This script refits the cost model from a tune file's
records as bench/tune/cost-model.ts does (weighted least squares, weights 1/t^2; bounds = quantiles
of the relative residuals), recomputes the planner's choice (templates/family/select.h: the lowest
prediction, then the serial margin) and reports, per quantile, the chosen candidate's measured time
over the fastest candidate's: on a bench file's held-out batches, and leave-one-batch-out on the
tune file's own. Offline only: it judges choices among recorded times, it measures nothing.

  python3 bench/replay_margin.py TUNE.json BENCH.json [QUANTILE...]   (default 0.5 0.6 0.7 0.8 0.9)
"""
import json
import sys

import numpy as np


def records(batches):
    return [(b["name"], c["member"], c["mode"], np.array(c["features"], float), c["us"])
            for b in batches for c in b["candidates"] if c.get("us") and np.isfinite(c["us"])]


def fit(recs, q):
    model = {}
    for key in {(r[1], r[2]) for r in recs}:
        rs = [r for r in recs if (r[1], r[2]) == key]
        x = np.array([r[3] for r in rs])
        y = np.array([r[4] for r in rs])
        w = 1 / y**2
        a = (x * w[:, None]).T @ x
        s = np.sqrt(np.maximum(np.diag(a), 1e-300))
        c = np.linalg.solve(a / np.outer(s, s) + 1e-12 * np.eye(len(s)), ((x * w[:, None]).T @ y) / s) / s
        res = (y - x @ c) / (x @ c)
        model[key] = (c, np.quantile(res, 1 - q, method="inverted_cdf"), np.quantile(res, q, method="inverted_cdf"))
    return model


def choose(model, cands):
    pred = [(model[(c[1], c[2])][0] @ c[3], c) for c in cands if (c[1], c[2]) in model]
    p, pick = min(pred, key=lambda t: t[0])
    if pick[2] == "fused":
        serial = [t for t in pred if t[1][2] == "serial"]
        if serial:
            sp, sc = min(serial, key=lambda t: t[0])
            if not p * (1 + model[(pick[1], "fused")][2]) < sp * (1 + model[(sc[1], "serial")][1]):
                pick = sc
    return pick


def ratios(model, recs):
    by = {}
    for r in recs:
        by.setdefault(r[0], []).append(r)
    return np.array([choose(model, cs)[4] / min(c[4] for c in cs) for cs in by.values()])


def main():
    tune, bench = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
    quantiles = [float(q) for q in sys.argv[3:]] or [0.5, 0.6, 0.7, 0.8, 0.9]
    fit_recs = records(tune["batches"])
    held = records([b for b in bench["batches"] if b["set"] != "paper"])
    names = sorted({r[0] for r in fit_recs})
    gm = lambda v: float(np.exp(np.log(v).mean()))
    print(f"{tune['family']}: pick / fastest, geomean and worst")
    for q in quantiles:
        h = ratios(fit(fit_recs, q), held)
        loo = np.array([ratios(fit([r for r in fit_recs if r[0] != n], q), [r for r in fit_recs if r[0] == n])[0] for n in names])
        print(f"  quantile {q:.2f}: held-out {gm(h):.3f} / {h.max():.3f}   leave-one-out on the fit set {gm(loo):.3f} / {loo.max():.3f}")


if __name__ == "__main__":
    main()
