"""A FLOPs/bytes model of one serving step on an H100, for `run.py --estimate` (no GPU): how long the
benchmark will take at given flags, and nothing else (the benchmark itself measures every step).

A step's GPU time is the decoder's matmuls at LINEAR_FLOPS or their weight reads at HBM_BYTES,
whichever is slower, plus the prefill chunks' causal attention at ATTENTION_FLOPS plus the decodes'
K/V reads at HBM_BYTES (serial: an upper bound of the fused kernel). Its wall time is at least the
host's kernel launches (LAUNCHES_PER_LAYER per layer at LAUNCH_S each, eager PyTorch) and the
per-step synchronisation and planning (STEP_HOST_S). The constants are round numbers from this
repository's H100 measurements (bench/NOTES.md: cuBLAS bf16 GEMMs ~600 TFLOP/s at these shapes,
attention prefill 330-540 TFLOP/s, decode 2.8-3.0 TB/s).
"""
from __future__ import annotations

from model_shape import BYTES_PER_ELEMENT, ModelShape

LINEAR_FLOPS = 600e12
ATTENTION_FLOPS = 350e12
HBM_BYTES = 2.8e12
LAUNCH_S = 6e-6
LAUNCHES_PER_LAYER = 32
STEP_HOST_S = 1.5e-3


def step_seconds(shape: ModelShape, prefills: list[tuple[int, int]], decode_kv_lens: list[int], sampled_rows: int) -> tuple[float, float]:
    """(GPU seconds, wall seconds) of one step: prefills as (q_len, kv_len), decodes by KV length."""
    tokens = sum(q for q, _ in prefills) + len(decode_kv_lens)
    params = shape.layers * shape.layer_params
    linear = max(2 * tokens * params / LINEAR_FLOPS, params * BYTES_PER_ELEMENT / HBM_BYTES)
    head = 2 * sampled_rows * shape.hidden * shape.vocab / LINEAR_FLOPS
    pairs = sum(q * kv - q * (q - 1) // 2 for q, kv in prefills)  # (query, key) pairs under the causal mask
    prefill_attention = shape.layers * 4 * shape.head_dim * shape.heads_q * pairs / ATTENTION_FLOPS
    decode_attention = sum(decode_kv_lens) * shape.kv_bytes_per_token / HBM_BYTES
    gpu = linear + head + prefill_attention + decode_attention
    host = shape.layers * LAUNCHES_PER_LAYER * LAUNCH_S + STEP_HOST_S
    return gpu, max(gpu, host)
