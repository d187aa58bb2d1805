"""The GPU side of run.py: loads the podgen export, checks the attention backends against each other and
an fp32 reference, serves the trace once per (rate, backend) and writes the JSON report."""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from attention import KV_ACCESS, PodgenAttention, StepMeta, TorchFlashAttention
from model import Decoder, StepInputs
from model_shape import KV_HEADROOM_BYTES, ModelShape
from scheduler import PagePool, Scheduler, Step, pages_for, serving_metrics, simulate
from synthetic_trace import OUTPUT_RANGE, PROMPT_RANGE, PROMPT_SHAPE, make_trace

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-2  # relative L2 against fp32 math: bf16 inputs and outputs (the GPU suite's bound)
WARMUP_STEPS = 2


class BenchError(Exception):
    """A problem with the inputs or the environment, reported as one line (exit 1)."""


def load_export(export: Path, shape: ModelShape):
    """The export's Python package, its library built with CMake first if missing; checks that its
    kernel fits the model (heads, head dim, bf16, paged)."""
    try:
        name = json.loads((export / "podgen-export.json").read_text())["name"]
        spec = json.loads((export / "spec.json").read_text())["spec"]
    except (OSError, KeyError, ValueError) as e:
        raise BenchError(f"--export {export}: not a podgen export folder ({e}); make one with `podgen export llama3_8b DIR`") from None
    fields = {"heads.q": (spec["heads"]["q"], shape.heads_q), "heads.kv": (spec["heads"]["kv"], shape.heads_kv),
              "headDim": (spec["headDim"], shape.head_dim), "dtype": (spec["dtype"], "bf16"),
              "kvCache.kind": (spec["kvCache"]["kind"], "paged")}
    wrong = [f"{k}={got!r} (the model needs {need!r})" for k, (got, need) in fields.items() if got != need]
    if wrong:
        raise BenchError(f"--export {export}: kernel {name!r} does not fit the Llama-3-8B decoder: {', '.join(wrong)}")
    prefix = f"pod_{name}"
    lib_dir = Path(os.environ.get(f"PODGEN_{name.upper()}_LIB_DIR", export / "build"))
    if not any(lib_dir.glob(f"lib{prefix}.so*")):
        print(f"building {export / 'build'} with CMake (once)", flush=True)
        build = export / "build"
        subprocess.run(["cmake", "-S", str(export), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "-j"], check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(export / "python"))
    pod = importlib.import_module(prefix)
    pod.load()  # compiles the torch op on first use (cached by torch.utils.cpp_extension)
    library_page_size = pod.ops().info()[4]
    if library_page_size != pod.PAGE_SIZE:
        raise BenchError(f"--export {export}: the Python package says page size {pod.PAGE_SIZE}, the library {library_page_size}")
    return pod, {"name": name, "spec_hash": json.loads((export / "podgen-export.json").read_text())["specHash"],
                 "page_size": pod.PAGE_SIZE, "spec": spec}


def make_backends(names: list[str], pod, decoder: Decoder, torch_kv: str) -> dict:
    makers = {
        "podgen_fused": lambda: PodgenAttention(pod, decoder.k_caches, decoder.v_caches, fused=True),
        "podgen_serial": lambda: PodgenAttention(pod, decoder.k_caches, decoder.v_caches, fused=False),
        "torch_flash": lambda: TorchFlashAttention(decoder.k_caches, decoder.v_caches, torch_kv),
    }
    return {n: makers[n]() for n in names}


# ---- the correctness check -----------------------------------------------------------------------

def check_batch(page_size: int, seed: int) -> tuple[list[tuple[int, int]], list[int]]:
    """One hybrid batch: prefill chunks (q_len, kv_len) — a first chunk, a later chunk, a short chunk
    over a long context — and 40 decodes of odd and page-edge lengths."""
    g = torch.Generator().manual_seed(seed)
    prefills = [(517, 517), (300, 1300), (64, 4160)]
    decodes = [1, page_size - 1, page_size, page_size + 1, 4097] + torch.randint(2, 6000, (35,), generator=g).tolist()
    return prefills, decodes


def reference(q: torch.Tensor, k_rows: torch.Tensor, v_rows: torch.Tensor, meta: StepMeta) -> torch.Tensor:
    """fp32 attention per request from the cache rows ([rows, Hkv, D] of one layer)."""
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
    group = q.shape[1] // k_rows.shape[1]
    row = 0
    for q_len, kv, first in zip(meta.q_lens, meta.kv_lens, meta.first_pages):
        base = first * meta.page_size
        k = k_rows[base:base + kv].float().repeat_interleave(group, dim=1).transpose(0, 1)  # [Hq, kv, D]
        v = v_rows[base:base + kv].float().repeat_interleave(group, dim=1).transpose(0, 1)
        qr = q[row:row + q_len].float().transpose(0, 1)  # [Hq, q_len, D]
        s = qr @ k.transpose(1, 2) / math.sqrt(q.shape[2])
        visible = torch.arange(kv, device=q.device)[None, :] <= (kv - q_len + torch.arange(q_len, device=q.device))[:, None]
        out[row:row + q_len] = (torch.softmax(s.masked_fill(~visible, float("-inf")), -1) @ v).transpose(0, 1)
        row += q_len
    return out


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def check_attention(backends: dict, decoder: Decoder, page_size: int, seed: int, torch_kv: str) -> dict:
    """Layer 0's attention on one hybrid batch through every backend, outputs poisoned with NaN first,
    against fp32 math; torch_flash with torch_kv "auto" tries "in_place", then "gather". Raises
    BenchError unless every backend is within TOLERANCE."""
    s = decoder.shape
    prefills, decodes = check_batch(page_size, seed)
    pool = PagePool(decoder.k_caches.shape[1])
    lens = [(q, kv) for q, kv in prefills] + [(1, kv) for kv in decodes]
    firsts = [pool.alloc(pages_for(kv, page_size)) for _, kv in lens]
    if None in firsts:
        raise BenchError(f"the KV cache ({decoder.k_caches.shape[1]} pages) is too small for the check batch")
    meta = StepMeta([q for q, _ in lens], [kv for _, kv in lens], firsts, len(prefills), page_size)
    g = torch.Generator(device=decoder.device).manual_seed(seed)
    k_rows = decoder.k_caches[0].view(-1, s.heads_kv, s.head_dim)
    v_rows = decoder.v_caches[0].view(-1, s.heads_kv, s.head_dim)
    rows = meta.cache_rows().to(decoder.device)
    for cache in (k_rows, v_rows):
        cache.index_copy_(0, rows, torch.randn(len(rows), s.heads_kv, s.head_dim, generator=g, device=decoder.device, dtype=torch.bfloat16))
    q = torch.randn(meta.tokens, s.heads_q, s.head_dim, generator=g, device=decoder.device, dtype=torch.bfloat16)
    ref = reference(q, k_rows, v_rows, meta)

    def output_of(backend) -> tuple[torch.Tensor | None, str | None]:
        out = torch.full_like(q, float("nan"))
        try:
            backend.prepare(meta)
            backend.attend(0, q, out=out)
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001 - reported; the backend fails the check
            return None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        if not bool(torch.isfinite(out).all()):
            return None, "output has NaN/Inf rows (unwritten or overflowed)"
        err = rel_l2(out, ref)
        return out, None if err <= TOLERANCE else f"relative L2 error {err:.2e} > {TOLERANCE:g} against fp32"

    report = {"batch": {"prefills": prefills, "decodes": decodes}, "tolerance": TOLERANCE, "rel_l2": {}, "errors": {}}
    outputs, failed = {}, []
    for name, backend in backends.items():
        kv_accesses = KV_ACCESS if name == "torch_flash" and torch_kv == "auto" else (None,)
        for kv_access in kv_accesses:
            if kv_access is not None:
                backend.kv_access = kv_access
            key = name if kv_access is None else f"{name}.{kv_access}"
            out, why = output_of(backend)
            if out is not None:
                report["rel_l2"][key] = rel_l2(out, ref)
            if why is None:
                outputs[name] = out
                break
            report["errors"][key] = why
        else:
            failed.append(name)
    if failed:
        raise BenchError(f"attention check failed for {failed}, nothing benchmarked: {report['errors']}")
    names = list(outputs)
    report["pairwise_rel_l2"] = {f"{a} vs {b}": rel_l2(outputs[a], outputs[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    if "torch_flash" in backends:
        report["torch_kv_access"] = backends["torch_flash"].kv_access
    return report


# ---- serving -------------------------------------------------------------------------------------

def serve(decoder: Decoder, backend, args: argparse.Namespace, rate: float, num_pages: int, page_size: int) -> dict:
    """Serves the trace at `rate` with one attention backend; the simulated clock advances by each
    step's GPU time, from before the backend's per-step preparation to after the LM head."""
    sched = Scheduler(make_trace(args.requests, rate, args.seed), args.budget, num_pages, page_size, args.max_running)
    event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
    step_start, step_end = event(), event()
    attention_events = [(event(), event()) for _ in range(decoder.shape.layers)]
    totals = {"gpu_s": 0.0, "attention_s": 0.0, "prepare_host_s": 0.0, "prefill_tokens": 0, "decodes": 0}

    def step_seconds(step: Step) -> float:
        inputs = StepInputs(step, page_size, decoder.shape.vocab, decoder.device)
        if sched.steps == 0:  # warm-up on the first batch, untimed (it rewrites the same cache rows)
            for _ in range(WARMUP_STEPS):
                backend.prepare(inputs.meta)
                decoder.forward(inputs, backend)
            torch.cuda.synchronize()
        step_start.record()
        t0 = time.perf_counter()
        backend.prepare(inputs.meta)
        totals["prepare_host_s"] += time.perf_counter() - t0
        decoder.forward(inputs, backend, attention_events)
        step_end.record()
        step_end.synchronize()
        seconds = step_start.elapsed_time(step_end) / 1e3
        totals["gpu_s"] += seconds
        totals["attention_s"] += sum(a.elapsed_time(b) for a, b in attention_events) / 1e3
        totals["prefill_tokens"] += inputs.meta.prefill_tokens
        totals["decodes"] += len(step.decodes)
        return seconds

    wall = time.perf_counter()
    done = simulate(sched, step_seconds)
    steps = sched.steps
    return {
        "backend": backend.name,
        "rate": rate,
        **serving_metrics(done),
        "steps": steps,
        "gpu_s": totals["gpu_s"],
        "attention_s": totals["attention_s"],
        "attention_share": totals["attention_s"] / totals["gpu_s"],
        "mean_step_ms": 1e3 * totals["gpu_s"] / steps,
        "mean_prepare_host_ms": 1e3 * totals["prepare_host_s"] / steps,
        "mean_prefill_tokens": totals["prefill_tokens"] / steps,
        "mean_decodes": totals["decodes"] / steps,
        "wall_s": time.perf_counter() - wall,
    }


# ---- the report ----------------------------------------------------------------------------------

def commit() -> str:
    """$PODGEN_COMMIT, else git's HEAD, else the commit .gpu/bundle.json was built from (the GPU machine
    gets the working tree without .git), else "unknown"."""
    if os.environ.get("PODGEN_COMMIT"):
        return os.environ["PODGEN_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        return json.loads((REPO / ".gpu" / "bundle.json").read_text())["commit"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0].strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)


def run_benchmark(args: argparse.Namespace, shape: ModelShape) -> int:
    started = time.perf_counter()
    try:
        if not torch.cuda.is_available():
            raise BenchError("no CUDA device: the serving benchmark runs on a GPU (--estimate needs none)")
        device = torch.device("cuda")
        t0 = time.perf_counter()
        pod, export = load_export(args.export.resolve(), shape)
        load_s = time.perf_counter() - t0
        page_size = export["page_size"]
        free = torch.cuda.mem_get_info()[0]
        kv_bytes = args.kv_gib * 2**30 if args.kv_gib else free - shape.weight_bytes - KV_HEADROOM_BYTES
        num_pages = shape.kv_pages(kv_bytes, page_size)
        if num_pages < 1:
            raise BenchError(f"no room for a KV cache: {free / 2**30:.1f} GiB free, weights {shape.weight_bytes / 2**30:.1f} GiB")
        torch.manual_seed(args.seed)
        decoder = Decoder(shape, num_pages, page_size, args.seed, device)
        backends = make_backends(args.backends, pod, decoder, "in_place" if args.torch_kv == "auto" else args.torch_kv)
        check = check_attention(backends, decoder, page_size, args.seed, args.torch_kv)
        print(f"check passed: rel. L2 {check['rel_l2']}", flush=True)
        props = torch.cuda.get_device_properties(device)
        report = {
            "kind": "serving-bench",
            "version": 1,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit(),
            "gpu": props.name,
            "sms": props.multi_processor_count,
            "driver": driver_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "export": {k: export[k] for k in ("name", "spec_hash", "page_size")},
            "config": {
                "budget": args.budget, "rates": args.rates, "requests": args.requests, "seed": args.seed,
                "layers": shape.layers, "max_running": args.max_running, "quick": args.quick,
                "kv_pages": num_pages, "kv_gib": num_pages * page_size * shape.kv_bytes_per_token / 2**30,
                "trace": {"prompt_range": PROMPT_RANGE, "prompt_pareto_shape": PROMPT_SHAPE, "output_range": OUTPUT_RANGE,
                          "arrivals": "poisson"},
                "model": {k: getattr(shape, k) for k in ("layers", "hidden", "heads_q", "heads_kv", "head_dim", "ffn", "vocab")},
                "warmup_steps": WARMUP_STEPS,
            },
            "attention": {
                "podgen_fused": "the exported op, one fused launch per layer (plan once per step on the host, timed)",
                "podgen_serial": "the same library and plan: the prefill-only kernel, then the decode-only kernel",
                "torch_flash": (f"aten._flash_attention_forward (varlen, bottom-right causal), one launch per layer; "
                                f"kv_access={check.get('torch_kv_access')}: "
                                + ("reads each request's contiguous page run in place (cu_seqlens_k = run starts, seqused_k = "
                                   "lengths), no copy" if check.get("torch_kv_access") == "in_place" else
                                   "gathers the batch's K/V rows per layer (index_select), the copies timed as attention")),
            },
            "load_s": load_s,
            "check": check,
            "runs": [],
        }
        for rate in args.rates:
            for name, backend in backends.items():
                result = serve(decoder, backend, args, rate, num_pages, page_size)
                report["runs"].append(result)
                print(f"rate {rate:g}/s {name}: {result['output_tokens_per_s']:.0f} output tok/s, "
                      f"{result['requests_per_s']:.2f} req/s, TTFT p50 {result['ttft_ms']['p50']:.0f} ms, "
                      f"TBT p50/p99 {result['tbt_ms']['p50']:.1f}/{result['tbt_ms']['p99']:.1f} ms, "
                      f"attention {100 * result['attention_share']:.0f}% ({result['steps']} steps, {result['wall_s']:.0f} s)", flush=True)
                report["seconds"] = time.perf_counter() - started
                write_json(args.out, report)
    except (BenchError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0
