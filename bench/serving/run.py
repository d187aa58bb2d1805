#!/usr/bin/env python3
"""End-to-end serving benchmark: a Llama-3-8B-shaped decoder served with Sarathi-style chunked prefill
on a seeded synthetic trace, attention by podgen fused, podgen prefill-then-decode, and PyTorch's
varlen flash (serving/attention.py), one JSON out. Needs a GPU, PyTorch and a podgen export of a
kernel of the model's heads (`podgen export llama3_8b DIR`); see bench/serving/README.md.

    python3 bench/serving/run.py --export DIR --out serving.json [--quick]
    python3 bench/serving/run.py --estimate [--quick]     # no GPU: predicted duration (cost_model.py)

Per backend and arrival rate, a fresh scheduler serves the same trace; each step's GPU time (CUDA
events from before the backend's per-step preparation to after the LM head) advances the simulated
clock. First, one layer's attention on one hybrid batch must agree between the backends and an fp32
reference, or nothing is benchmarked (exit 1).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cost_model  # noqa: E402
from model_shape import KV_HEADROOM_BYTES, ModelShape  # noqa: E402
from scheduler import Scheduler, Step, serving_metrics, simulate  # noqa: E402
from synthetic_trace import make_trace  # noqa: E402

BACKENDS = ("podgen_fused", "podgen_serial", "torch_flash")
H100_BYTES = 80 * 10**9  # what --estimate assumes
ESTIMATE_PAGE_SIZE = 16  # --estimate has no export to read the page size from; the KV pool size hardly depends on it
QUICK = {"requests": 8, "layers": 8}


def positive_int(flag: str, limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} must be an integer") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{flag}={value} must be in [1, {limit}]")
        return value
    return parse


def rates(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a number (requests per second)") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{value} must be > 0 and finite, requests per second "
                                             "(a rate far above the server's, e.g. 1000, sends every request at once)")
        out.append(value)
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, help="a podgen export folder (podgen export llama3_8b DIR); built with CMake if needed")
    p.add_argument("--out", type=Path, help="the JSON report to write")
    p.add_argument("--budget", type=positive_int("--budget", 65536), default=1024, help="tokens per step (default 1024)")
    p.add_argument("--rates", type=rates, default=[2.0, 8.0], help="arrival rates, requests/s, comma-separated (default 2,8)")
    p.add_argument("--requests", type=positive_int("--requests", 100000), help="requests in the trace (default 64; --quick 12)")
    p.add_argument("--seed", type=int, default=1, help="trace and weights seed (default 1)")
    p.add_argument("--layers", type=positive_int("--layers", 1024), help="decoder layers (default 32; --quick 8)")
    p.add_argument("--max-running", type=positive_int("--max-running", 65536), default=128,
                   help="requests running at once (default 128; at most --budget)")
    p.add_argument("--kv-gib", type=float, help="KV cache size (default: the free GPU memory less 12 GiB)")
    p.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated subset of {','.join(BACKENDS)}")
    p.add_argument("--torch-kv", choices=("auto", "in_place", "gather"), default="auto",
                   help="how torch_flash reads the paged cache (attention.py); auto: in_place if it passes the check, else gather")
    p.add_argument("--quick", action="store_true", help=f"a small run: {QUICK['requests']} requests, {QUICK['layers']} layers (unless given)")
    p.add_argument("--estimate", action="store_true", help="no GPU: print the predicted duration from cost_model.py and exit")
    a = p.parse_args(argv)
    a.requests = a.requests or (QUICK["requests"] if a.quick else 64)
    a.layers = a.layers or (QUICK["layers"] if a.quick else 32)
    if a.max_running > a.budget:
        p.error(f"--max-running={a.max_running} must be at most --budget={a.budget}: every running decode takes one token of the budget")
    a.backends = a.backends.split(",")
    unknown = [b for b in a.backends if b not in BACKENDS]
    if unknown:
        p.error(f"--backends: unknown {unknown}; expected a subset of {list(BACKENDS)}")
    if a.kv_gib is not None and not a.kv_gib > 0:
        p.error(f"--kv-gib={a.kv_gib} must be > 0")
    if not a.estimate and (a.export is None or a.out is None):
        p.error("--export and --out are required (or --estimate)")
    return a


def estimate(args: argparse.Namespace, shape: ModelShape) -> dict:
    """Runs the scheduler on cost_model's step times: the benchmark's duration on an H100, predicted."""
    kv_bytes = args.kv_gib * 2**30 if args.kv_gib else H100_BYTES - shape.weight_bytes - KV_HEADROOM_BYTES
    pages = shape.kv_pages(kv_bytes, ESTIMATE_PAGE_SIZE)
    per_rate = []
    for rate in args.rates:
        sched = Scheduler(make_trace(args.requests, rate, args.seed), args.budget, pages, ESTIMATE_PAGE_SIZE, args.max_running)
        totals = {"gpu_s": 0.0, "wall_s": 0.0}

        def step_seconds(step: Step) -> float:
            gpu, wall = cost_model.step_seconds(
                shape, [(w.q_len, w.kv_len) for w in step.prefills], [w.kv_len for w in step.decodes],
                sum(1 for w in step.work if w.kv_len >= w.state.request.prompt_len))
            totals["gpu_s"] += gpu
            totals["wall_s"] += wall
            return gpu

        metrics = serving_metrics(simulate(sched, step_seconds))
        per_rate.append({"rate": rate, "steps": sched.steps, **totals, "makespan_s": metrics["makespan_s"]})
    wall = len(args.backends) * sum(r["wall_s"] for r in per_rate)
    return {"kv_pages": pages, "per_backend_per_rate": per_rate, "benchmark_wall_s": wall}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    shape = ModelShape(layers=args.layers)
    if args.estimate:
        e = estimate(args, shape)
        for r in e["per_backend_per_rate"]:
            print(f"rate {r['rate']:g}/s: {r['steps']} steps, GPU {r['gpu_s']:.1f} s, wall >= {r['wall_s']:.1f} s, "
                  f"makespan {r['makespan_s']:.1f} s (simulated)")
        print(f"{len(args.backends)} backends x {len(args.rates)} rates: about {e['benchmark_wall_s']:.0f} s of steps "
              f"(plus start-up: weights, the check, warm-up), KV cache {e['kv_pages']} pages")
        return 0
    from benchmark import run_benchmark  # torch and the export load only here

    return run_benchmark(args, shape)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
