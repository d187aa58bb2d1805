"""Short requests through the ragged API: the decode path against the prefill path (issue #20).

Requests of 2 .. 16 query tokens (speculative-decoding verification, multi-token decode) can run on
the decode path (`decode_max_q_len` up to 16) or the prefill path (`decode_max_q_len=1`). This times
the same ragged batches both ways, one fused launch each, and checks that the two outputs agree;
it is what chose the default (`decode_max_q_len=0`: the requests that fit one decode tile).

    python3 bench/serving/short_requests.py --export DIR --out FILE [--iters 50]

DIR is a `podgen export` of a kernel with the Llama-3-8B attention shape (as run.py takes).
Timing: CUDA events around each launch after a warm-up, the median; the KV cache is larger than
the L2, and each batch's requests read disjoint pages.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark import BenchError, load_export  # noqa: E402
from model_shape import ModelShape  # noqa: E402
from torch_baselines import time_fn  # noqa: E402  (bench/: the PyTorch baselines' CUDA-event timer)

AGREEMENT = 2e-2  # relative L2 between the two paths' bf16 outputs (each within 1e-2 of fp32)


def batches():
    """(name, [(q_len, kv_len)] in request order). Speculative verification: n requests of q_len
    tokens over kv keys; mixed: a prefill chunk, short requests and decodes interleaved."""
    out = []
    for kv in (1024, 8192):
        for n in (32, 128):
            for q in (2, 4, 8, 16):
                out.append((f"{n} x q{q} kv{kv}", [(q, kv)] * n))
    mixed = [(512, 4096)] + [(4, 4096)] * 32 + [(1, 4096)] * 64
    g = torch.Generator().manual_seed(3)
    out.append(("chunk 512 + 32 x q4 + 64 decodes, kv4096", [mixed[i] for i in torch.randperm(len(mixed), generator=g).tolist()]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iters", type=int, default=50)
    args = parser.parse_args()
    if args.iters < 1:
        print(f"--iters={args.iters}: must be >= 1", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("short_requests.py: no CUDA device", file=sys.stderr)
        return 1
    shape = ModelShape()
    try:
        pod, export = load_export(args.export, shape)
    except BenchError as e:
        print(f"short_requests.py: {e}", file=sys.stderr)
        return 1
    page = pod.PAGE_SIZE
    hq, hkv, d = pod.NUM_HEADS_Q, pod.NUM_HEADS_KV, pod.HEAD_DIM
    plan = batches()
    max_pages = max(sum(-(-kv // page) for _, kv in reqs) for _, reqs in plan)
    g = torch.Generator(device="cuda").manual_seed(1)
    k = torch.randn(max_pages, page, hkv, d, generator=g, device="cuda").to(torch.bfloat16)
    v = torch.randn(max_pages, page, hkv, d, generator=g, device="cuda").to(torch.bfloat16)
    rows = []
    for name, reqs in plan:
        qo = torch.tensor([0] + torch.tensor([q for q, _ in reqs]).cumsum(0).tolist(), dtype=torch.int32)
        kv = torch.tensor([kv for _, kv in reqs], dtype=torch.int32)
        counts = [-(-kv_len // page) for _, kv_len in reqs]
        indptr = torch.tensor([0] + torch.tensor(counts).cumsum(0).tolist(), dtype=torch.int32)
        indices = torch.arange(int(indptr[-1]), dtype=torch.int32)
        q = torch.randn(int(qo[-1]), hq, d, generator=g, device="cuda").to(torch.bfloat16)
        indices_d = indices.cuda()
        result = {"name": name, "requests": len(reqs), "tokens": int(qo[-1])}
        outs = {}
        for path, limit in (("prefill_path", 1), ("decode_path", 16)):
            attn = pod.PodAttention(device="cuda")
            attn.plan_ragged(qo, kv, indptr, indices, max_pages, decode_max_q_len=limit)
            o = torch.empty_like(q)
            launch = lambda attn=attn, o=o: attn.run_ragged(q, k, v, indices_d, out=o)  # noqa: E731
            result[f"{path}_us"] = round(time_fn([launch], args.iters, warmup=10)[0] * 1000.0, 2)
            outs[path] = o.float()
        diff = ((outs["decode_path"] - outs["prefill_path"]).norm() / outs["prefill_path"].norm()).item()
        if not diff <= AGREEMENT:
            print(f"short_requests.py: {name}: the two paths differ by relative L2 {diff:.3e} > {AGREEMENT}", file=sys.stderr)
            return 1
        result["paths_relative_l2"] = diff
        result["decode_path_speedup"] = round(result["prefill_path_us"] / result["decode_path_us"], 3)
        rows.append(result)
        print(f"{name:44s} prefill path {result['prefill_path_us']:9.1f} us  decode path {result['decode_path_us']:9.1f} us"
              f"  x{result['decode_path_speedup']:.2f}", flush=True)
    props = torch.cuda.get_device_properties(0)
    report = {"gpu": props.name, "torch": torch.__version__, "export": export, "iters": args.iters, "batches": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
