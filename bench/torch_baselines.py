#!/usr/bin/env python3
"""PyTorch baselines for `podgen bench`, timed on the same GPU in the same device command.

    python3 bench/torch_baselines.py RESOLVED.json OUT.json [--iters N] [--warmup N]

RESOLVED.json is what bench/run.ts writes before it runs (`resolvedWorkloads`): per workload its
name, prefills [[qLen, kvLen], ...], decodes [kvLen, ...], heads_q, heads_kv, head_dim, dtype,
window (null: full causal attention), logits_soft_cap (0: none) and sinks.

Sliding window W (mistral_7b, gpt_oss_20b): a query sees its last W keys, itself included. Varlen
flash takes it natively (window_size_left = W - 1, right = 0), the masked SDPA backends fold it into
their mask, per-request SDPA decodes read only the last W keys of each cache; the lower-right
causal bias has no window, so those backends are left out. Attention sinks (gpt-oss) are not
PyTorch's: its time is of the same attention without them (one term more per row in ours). Logit
soft-capping (Gemma 2) is not in these backends either, and changes every logit: a workload with it
gets no baseline (errors.workload says why) rather than a figure for other attention.

Contiguous KV (no paging). Prefill: varlen flash (torch.ops.aten._flash_attention_forward, causal
aligned bottom-right, i.e. query t of a chunk sees kvLen - qLen + t + 1 keys), and SDPA with a
lower-right causal bias / mask per chunk (flash, efficient, cuDNN; whichever this build accepts).
Decode: varlen flash with one query per request (cu_seqlens_k = the requests' cumulative KV
lengths, so mixed lengths are measured unpadded), and SDPA flash / efficient / cuDNN with
enable_gqa on [B, Hkv, L, D] caches, which only exist when every decode has the same KV length.
"Best serial" runs the fastest prefill backend then the fastest decode backend back to back; a
workload for which one of its two parts has no backend gets no best serial (errors.best_serial).

Also, outside the best-of (it is not the causal computation the others do): SDPA forced to cuDNN
with is_causal=False on each prefill chunk's full q x kv, every chunk in one timed closure
(prefill_cudnn_noncausal_ms; bench/run.ts adds the fastest decode of the run to it for its
"Hopper serial" figure). GQA heads go to cuDNN through enable_gqa, or, where this build rejects
that, as K/V expanded to Hq heads with repeat_interleave before timing
(prefill_cudnn_noncausal_gqa says which).

CUDA events around each iteration, warm-up first, median of --iters; inputs rotate among enough
copies that the 50 MB L2 holds none of them from the previous iteration.

Every backend runs inside try/except: one that this torch build rejects is reported with its error
and left out of the best-of.
"""
import json
import math
import statistics
import sys
import time
import traceback
import warnings

import torch
import torch.nn.functional as F

L2_FLUSH_BYTES = 160 * 2**20  # rotate until this much distinct data separates two uses of one copy
MAX_COPIES = 8


def copies_for(bytes_per_copy):
    return max(2, min(MAX_COPIES, math.ceil(L2_FLUSH_BYTES / max(bytes_per_copy, 1)) + 1))


def time_fn(fns, iters, warmup):
    """fns: one closure per input copy. Returns the median ms and all samples."""
    n = len(fns)
    for i in range(warmup):
        fns[i % n]()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        starts[i].record()
        fns[(i + warmup) % n]()
        ends[i].record()
    torch.cuda.synchronize()
    ms = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    return statistics.median(ms), ms


def randn(shape, dtype):
    return torch.randn(shape, device="cuda", dtype=dtype)


def lower_right_mask(q_len, kv_len, window=None):
    # query t sees keys j <= kv_len - q_len + t (and, with a window W, j > kv_len - q_len + t - W)
    t = torch.arange(q_len, device="cuda").unsqueeze(1)
    j = torch.arange(kv_len, device="cuda").unsqueeze(0)
    last = kv_len - q_len + t
    return (j <= last) & (j > last - window) if window else j <= last


def window_args(window):
    """flash's local attention for a window of W keys, itself included: W - 1 keys left, none right."""
    return {"window_size_left": window - 1, "window_size_right": 0} if window else {}


def prefill_inputs(w, dtype):
    hq, hkv, d = w["heads_q"], w["heads_kv"], w["head_dim"]
    q_lens = [p[0] for p in w["prefills"]]
    kv_lens = [p[1] for p in w["prefills"]]
    tq, tk = sum(q_lens), sum(kv_lens)
    cu_q = torch.tensor([0] + list(accumulate(q_lens)), device="cuda", dtype=torch.int32)
    cu_k = torch.tensor([0] + list(accumulate(kv_lens)), device="cuda", dtype=torch.int32)
    return dict(
        q=randn((tq, hq, d), dtype), k=randn((tk, hkv, d), dtype), v=randn((tk, hkv, d), dtype),
        cu_q=cu_q, cu_k=cu_k, max_q=max(q_lens), max_k=max(kv_lens), q_lens=q_lens, kv_lens=kv_lens,
        bytes=(tq * hq * d * 2 * 2) + 2 * tk * hkv * d * 2,
    )


def accumulate(xs):
    s = 0
    for x in xs:
        s += x
        yield s


def flash_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, window=None):
    return torch.ops.aten._flash_attention_forward(q, k, v, cu_q, cu_k, max_q, max_k, 0.0, causal, False, **window_args(window))[0]


def prefill_chunks(x):
    """(qLen, kvLen, q, k, v) per chunk: [1, H, L, D] views of the varlen tensors, transposed (no copies)."""
    chunks = []
    oq = ok = 0
    for ql, kl in zip(x["q_lens"], x["kv_lens"]):
        q = x["q"][oq:oq + ql].transpose(0, 1).unsqueeze(0)
        k = x["k"][ok:ok + kl].transpose(0, 1).unsqueeze(0)
        v = x["v"][ok:ok + kl].transpose(0, 1).unsqueeze(0)
        chunks.append((ql, kl, q, k, v))
        oq += ql
        ok += kl
    return chunks


def prefill_backends(w, dtype):
    """name -> factory(inputs) -> closure."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    window = w.get("window")

    def varlen(x):
        return lambda: flash_varlen(x["q"], x["k"], x["v"], x["cu_q"], x["cu_k"], x["max_q"], x["max_k"], True, window)

    def per_chunk(backend, use_bias):
        def make(x):
            if use_bias and window:
                raise ValueError(f"window={window}: the lower-right causal bias has no window")
            chunks = []
            for ql, kl, q, k, v in prefill_chunks(x):
                if use_bias:
                    from torch.nn.attention.bias import causal_lower_right
                    mask = causal_lower_right(ql, kl)
                else:
                    mask = lower_right_mask(ql, kl, window)
                chunks.append((q, k, v, mask))

            def run():
                with sdpa_kernel([backend]):
                    return [F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True) for q, k, v, mask in chunks]
            return run
        return make

    return {
        "flash_varlen": varlen,
        "sdpa_flash_lower_right": per_chunk(SDPBackend.FLASH_ATTENTION, True),
        "sdpa_efficient_lower_right": per_chunk(SDPBackend.EFFICIENT_ATTENTION, True),
        "sdpa_cudnn_mask": per_chunk(SDPBackend.CUDNN_ATTENTION, False),
    }


# How the non-causal cuDNN prefill gets GQA heads to cuDNN, in the order tried: SDPA's enable_gqa,
# else K/V expanded to Hq heads (the same head mapping SDPA's enable_gqa uses).
CUDNN_NONCAUSAL_GQA = ("enable_gqa", "repeat_interleave")


def cudnn_noncausal_prefill(gqa):
    """Factory (inputs -> closure): SDPA forced to cuDNN, is_causal=False, on every chunk's full q x kv
    (q [1, Hq, qLen, D]; k, v [1, Hkv or Hq, kvLen, D]), all chunks in one closure, one call each.
    With gqa "repeat_interleave" the expanded K/V are made here, once per input copy, not timed."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    use_gqa = gqa == "enable_gqa"

    def make(x):
        group = x["q"].shape[1] // x["k"].shape[1]
        chunks = []
        for _ql, _kl, q, k, v in prefill_chunks(x):
            if not use_gqa:
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            chunks.append((q, k, v))

        def run():
            with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
                return [F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=use_gqa) for q, k, v in chunks]
        return run
    return make


def decode_inputs(w, dtype):
    hq, hkv, d = w["heads_q"], w["heads_kv"], w["head_dim"]
    lens = w["decodes"]
    b, lmax = len(lens), max(lens)
    x = dict(
        q=randn((b, hq, 1, d), dtype), lens=lens, lmax=lmax, uniform=len(set(lens)) == 1,
        cu_k=torch.tensor([0] + list(accumulate(lens)), device="cuda", dtype=torch.int32),
        bytes=2 * sum(lens) * hkv * d * 2 + 2 * b * hq * d * 2,  # what one backend reads: K, V, q, o
    )
    if x["uniform"]:
        # [B, Hkv, L, D] for per-request SDPA, and the same values packed [B*L, Hkv, D] (the layout
        # varlen flash reads) as separate contiguous copies, so both kinds of backend see one batch.
        x["k"], x["v"] = randn((b, hkv, lmax, d), dtype), randn((b, hkv, lmax, d), dtype)
        x["kt"] = x["k"].transpose(1, 2).contiguous().reshape(b * lmax, hkv, d)
        x["vt"] = x["v"].transpose(1, 2).contiguous().reshape(b * lmax, hkv, d)
    else:
        # Mixed lengths: only the packed [sum(lens), Hkv, D] layout; padding them to lmax for SDPA
        # would time keys the batch does not have.
        x["kt"], x["vt"] = randn((sum(lens), hkv, d), dtype), randn((sum(lens), hkv, d), dtype)
    return x


def decode_backends(w, dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    window = w.get("window")

    def sdpa(backend):
        def make(x):
            if not x["uniform"]:
                raise ValueError("decode lengths differ: per-request SDPA would need padded caches; varlen flash measures this batch")
            q, k, v = x["q"], x["k"], x["v"]
            if window:  # the one query sees the last W keys of its cache
                k, v = k[:, :, -window:], v[:, :, -window:]

            def run():
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            return run
        return make

    def varlen(x):
        # One query per request, K/V packed [sum(lens), Hkv, D] with Hkv < Hq taken natively (as the
        # prefill's varlen call); not causal: the one query sees every key of its request.
        b, hq, _, d = x["q"].shape
        q = x["q"].reshape(b, hq, d)
        cu_q = torch.arange(0, b + 1, device="cuda", dtype=torch.int32)
        return lambda: flash_varlen(q, x["kt"], x["vt"], cu_q, x["cu_k"], 1, x["lmax"], False, window)

    return {
        "sdpa_flash": sdpa(SDPBackend.FLASH_ATTENTION),
        "sdpa_cudnn": sdpa(SDPBackend.CUDNN_ATTENTION),
        "sdpa_efficient": sdpa(SDPBackend.EFFICIENT_ATTENTION),
        "flash_varlen": varlen,
    }


def as_rows(out, hq, d):
    """Any backend's output as [tokens, Hq, D] (prefill chunks concatenated; decodes one row each)."""
    if isinstance(out, (list, tuple)):
        return torch.cat([o.squeeze(0).transpose(0, 1) for o in out], 0)
    if out.dim() == 4:  # [B, Hq, 1, D]
        return out.squeeze(2)
    return out.reshape(-1, hq, d)


def reference_error(part, x, out, hq, hkv, d, causal=True, window=None):
    """Relative L2 error of sampled rows against fp32 math: bottom-right causal visibility for prefill
    (every key of the chunk with causal=False), every key of its request for a decode; with a window,
    only a query's last `window` keys."""
    rows = as_rows(out, hq, d).float()
    errs_num = errs_den = 0.0
    if part == "prefill":
        oq = ok = 0
        for ql, kl in zip(x["q_lens"], x["kv_lens"]):
            idx = sorted(set([0, ql // 2] + list(range(max(0, ql - 16), ql))))
            q = x["q"][oq:oq + ql][idx].float()
            k = x["k"][ok:ok + kl].float().repeat_interleave(hq // hkv, dim=1)
            v = x["v"][ok:ok + kl].float().repeat_interleave(hq // hkv, dim=1)
            vis = torch.tensor([kl - ql + t + 1 if causal else kl for t in idx], device="cuda")
            first = vis - window if window and causal else torch.zeros_like(vis)
            keys = torch.arange(kl, device="cuda")[None, None, :]
            s = torch.einsum("nhd,lhd->nhl", q, k) / math.sqrt(d)
            s = s.masked_fill((keys >= vis[:, None, None]) | (keys < first[:, None, None]), float("-inf"))
            ref = torch.einsum("nhl,lhd->nhd", torch.softmax(s, -1), v)
            got = rows[oq:oq + ql][idx]
            errs_num += float((got - ref).pow(2).sum())
            errs_den += float(ref.pow(2).sum())
            oq += ql
            ok += kl
    else:
        lens = x["lens"]
        cu = [0] + list(accumulate(lens))
        # The first requests, and the shortest and the longest (mixed lengths).
        for r in sorted(set(list(range(min(4, len(lens)))) + [lens.index(min(lens)), lens.index(max(lens))])):
            q = x["q"][r, :, 0].float()  # [Hq, D]
            # Packed rows of request r, [L, Hkv, D] -> [Hq, L, D] (equal to x["k"][r] where that exists)
            first = max(cu[r], cu[r + 1] - window) if window else cu[r]
            k = x["kt"][first:cu[r + 1]].float().transpose(0, 1).repeat_interleave(hq // hkv, dim=0)
            v = x["vt"][first:cu[r + 1]].float().transpose(0, 1).repeat_interleave(hq // hkv, dim=0)
            p = torch.softmax(torch.einsum("hd,hld->hl", q, k) / math.sqrt(d), -1)
            ref = torch.einsum("hl,hld->hd", p, v)
            errs_num += float((rows[r] - ref).pow(2).sum())
            errs_den += float(ref.pow(2).sum())
    return math.sqrt(errs_num / max(errs_den, 1e-30))


def check_and_time(entry, key, part, fns, x, w, iters, warmup, causal=True):
    """Checks fns[0]'s output against fp32 math (rel_error[key]), then times fns; raises when wrong."""
    out0 = fns[0]()
    try:
        err = reference_error(part, x, out0, w["heads_q"], w["heads_kv"], w["head_dim"], causal, w.get("window"))
    except Exception as e:  # noqa: BLE001 - the check itself failed: time anyway, say so
        err = None
        entry["errors"][f"{key}.check"] = f"{type(e).__name__}: {str(e)[:200]}"
    del out0
    entry.setdefault("rel_error", {})[key] = err
    if err is not None and not err < 2e-2:
        raise RuntimeError(f"wrong result: relative L2 error {err:.2e} against fp32 math")
    ms, _ = time_fn(fns, iters, warmup)
    return ms


def error_line(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"


def time_cudnn_noncausal_prefill(entry, inputs, w, iters, warmup):
    """prefill_cudnn_noncausal_ms and _gqa: the first way of CUDNN_NONCAUSAL_GQA that this build runs."""
    for gqa in CUDNN_NONCAUSAL_GQA:
        key = f"prefill_cudnn_noncausal.{gqa}"
        try:
            fns = [cudnn_noncausal_prefill(gqa)(x) for x in inputs]
            ms = check_and_time(entry, key, "prefill", fns, inputs[0], w, iters, warmup, causal=False)
            entry["prefill_cudnn_noncausal_ms"] = ms
            entry["prefill_cudnn_noncausal_gqa"] = gqa
            return
        except Exception as e:  # noqa: BLE001 - e.g. this cuDNN path rejects enable_gqa: try the next way
            entry["errors"][key] = error_line(e)
            torch.cuda.synchronize()
        finally:
            fns = None  # the expanded K/V of a failed way go before the next is made


def main():
    warnings.filterwarnings("ignore", category=UserWarning)
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    src, dst = args[0], args[1]
    iters = int(args[args.index("--iters") + 1]) if "--iters" in args else 40
    warmup = int(args[args.index("--warmup") + 1]) if "--warmup" in args else 5
    resolved = json.load(open(src))
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    report = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "gpu": props.name,
        "iters": iters,
        "warmup": warmup,
        "workloads": [],
    }
    t_start = time.time()
    for w in resolved["workloads"]:
        dtype = torch.bfloat16 if w["dtype"] == "bf16" else torch.float16
        entry = {"name": w["name"], "prefill": {}, "decode": {}, "errors": {}}
        if w.get("logits_soft_cap"):
            entry["errors"]["workload"] = f"no PyTorch baseline: the backends here have no logit soft-cap (logits_soft_cap={w['logits_soft_cap']})"
            report["workloads"].append(entry)
            print(f"torch {w['name']}: skipped ({entry['errors']['workload']})", flush=True)
            continue
        try:
            fns_best = {}
            for part, make_inputs, backends in (
                ("prefill", prefill_inputs, prefill_backends),
                ("decode", decode_inputs, decode_backends),
            ):
                if (part == "prefill" and not w["prefills"]) or (part == "decode" and not w["decodes"]):
                    continue
                first = make_inputs(w, dtype)
                inputs = [first] + [make_inputs(w, dtype) for _ in range(copies_for(first["bytes"]) - 1)]
                entry[f"{part}_copies"] = len(inputs)
                best = None
                for name, factory in backends(w, dtype).items():
                    try:
                        fns = [factory(x) for x in inputs]
                        ms = check_and_time(entry, f"{part}.{name}", part, fns, inputs[0], w, iters, warmup)
                        entry[part][name] = ms
                        if best is None or ms < best[1]:
                            best = (name, ms, fns)
                    except Exception as e:  # noqa: BLE001 - a backend this build rejects
                        entry["errors"][f"{part}.{name}"] = error_line(e)
                        torch.cuda.synchronize()
                    fns = None
                if best:
                    entry[f"best_{part}"] = {"backend": best[0], "ms": best[1]}
                    fns_best[part] = best[2]
                if part == "prefill":
                    time_cudnn_noncausal_prefill(entry, inputs, w, iters, warmup)
            # A serial baseline must run every op the workload has: without one of them it is no
            # figure to set against the fused kernel, which runs both.
            lacking = [part for part in ("prefill", "decode") if w[f"{part}s"] and part not in fns_best]
            if lacking:
                entry["errors"]["best_serial"] = f"no {' or '.join(lacking)} backend ran: no serial baseline"
            elif fns_best:
                pf = fns_best.get("prefill", [])
                df = fns_best.get("decode", [])
                n = max(len(pf), len(df))

                def serial(i):
                    def run():
                        if pf:
                            pf[i % len(pf)]()
                        if df:
                            df[i % len(df)]()
                    return run
                ms, _ = time_fn([serial(i) for i in range(n)], iters, warmup)
                entry["best_serial_ms"] = ms
                entry["best_serial_backends"] = [entry.get("best_prefill", {}).get("backend"), entry.get("best_decode", {}).get("backend")]
        except Exception as e:  # noqa: BLE001
            entry["errors"]["workload"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        finally:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        report["workloads"].append(entry)
        bp = entry.get("best_prefill", {})
        bd = entry.get("best_decode", {})
        print(f"torch {w['name']}: prefill {bp.get('backend')} {bp.get('ms', float('nan')):.3f} ms, "
              f"decode {bd.get('backend')} {bd.get('ms', float('nan')):.3f} ms, serial {entry.get('best_serial_ms', float('nan')):.3f} ms, "
              f"cuDNN non-causal prefill ({entry.get('prefill_cudnn_noncausal_gqa')}) {entry.get('prefill_cudnn_noncausal_ms', float('nan')):.3f} ms"
              + (f"; errors: {list(entry['errors'])}" if entry["errors"] else ""), flush=True)
        json.dump(report, open(dst, "w"), indent=1)
    report["seconds"] = time.time() - t_start
    json.dump(report, open(dst, "w"), indent=1)


if __name__ == "__main__":
    main()
