"""The synthetic request trace of the serving benchmark: pure Python, seeded, no GPU.

Prompt lengths are long-tailed (a Pareto law of shape PROMPT_SHAPE truncated to [1k, 16k] tokens:
most prompts are a few thousand tokens, a few are long), output lengths log-uniform in [128, 1024],
arrivals a Poisson process of `rate` requests per second. The lengths come from one random stream and
the arrival gaps from another, both seeded by `seed`: every rate serves the same requests, and
only their arrival times scale (gap / rate), so rates differ in load alone.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

PROMPT_RANGE = (1024, 16384)
OUTPUT_RANGE = (128, 1024)
PROMPT_SHAPE = 1.0  # Pareto shape: P(prompt > x) ~ 1/x inside the range; mean about 3k tokens


@dataclass(frozen=True)
class Request:
    id: int
    arrival_s: float
    prompt_len: int
    output_len: int


def _truncated_pareto(rng: random.Random, lo: int, hi: int, shape: float) -> int:
    """Inverse-CDF draw of a Pareto(shape, scale=lo) law conditioned on [lo, hi]."""
    u = rng.random()
    tail = (lo / hi) ** shape  # P(X > hi) of the untruncated law
    return min(hi, int(lo / (1.0 - u * (1.0 - tail)) ** (1.0 / shape)))


def _log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def make_trace(num_requests: int, rate: float, seed: int,
               prompt_range: tuple[int, int] = PROMPT_RANGE,
               output_range: tuple[int, int] = OUTPUT_RANGE) -> list[Request]:
    """num_requests requests in arrival order; the first arrives at t = 0. rate: requests per second
    (math.inf: every request at t = 0, an offline batch)."""
    if num_requests < 1:
        raise ValueError(f"num_requests={num_requests} must be at least 1")
    if not rate > 0:
        raise ValueError(f"rate={rate} must be > 0 requests per second (math.inf for all at t = 0)")
    for name, (lo, hi) in (("prompt_range", prompt_range), ("output_range", output_range)):
        if not 1 <= lo <= hi:
            raise ValueError(f"{name}={(lo, hi)} must satisfy 1 <= lo <= hi")
    lengths = random.Random(f"serving-trace lengths {seed}")
    gaps = random.Random(f"serving-trace arrivals {seed}")
    requests, t = [], 0.0
    for i in range(num_requests):
        prompt = _truncated_pareto(lengths, *prompt_range, PROMPT_SHAPE)
        output = _log_uniform(lengths, *output_range)
        requests.append(Request(i, t, prompt, output))
        t += gaps.expovariate(1.0) / rate
    return requests
