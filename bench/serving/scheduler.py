"""A Sarathi-style chunked-prefill scheduler on a simulated clock: pure Python, no GPU.

Each iteration (a "step") every running request past its prompt decodes one token, and chunks of the
prompts still being prefilled fill the rest of a token budget, first come first served: the oldest
prefill gets as much as it needs, then the next, then newly admitted requests. A request is admitted
(FCFS, never skipping the head of the queue) when it has arrived, fewer than `max_running` requests
are running, the step still has budget for its first chunk, and the KV cache has a free run of pages
for its whole life (prompt + output); it leaves, freeing them, after its last output token.

The clock is the sum of the step times the caller measures (`finish_step`), plus idle gaps when
nothing runs until the next arrival, so a schedule is a deterministic function of the trace and
those times. The first output token of a request comes at the end of the step that prefills its
last prompt token (TTFT); each later one at the end of a decode step (TBT: the gap between two).

Pages: every request holds one contiguous run of pages (first fit). The podgen kernels take any page
list; a contiguous run is what lets PyTorch's varlen flash read the same paged cache in place
(serving.attention says why), so every backend sees one cache layout and one schedule policy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from synthetic_trace import Request


class PagePool:
    """First-fit allocator of contiguous page runs over pages [0, num_pages)."""

    def __init__(self, num_pages: int):
        if num_pages < 1:
            raise ValueError(f"num_pages={num_pages} must be at least 1")
        self.num_pages = num_pages
        self.free_runs: list[tuple[int, int]] = [(0, num_pages)]  # (first, count), sorted by first

    def alloc(self, count: int) -> Optional[int]:
        for i, (first, n) in enumerate(self.free_runs):
            if n >= count:
                self.free_runs[i:i + 1] = [(first + count, n - count)] if n > count else []
                return first
        return None

    def free(self, first: int, count: int) -> None:
        runs = sorted(self.free_runs + [(first, count)])
        merged: list[tuple[int, int]] = []
        for f, n in runs:
            if merged and merged[-1][0] + merged[-1][1] == f:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((f, n))
        self.free_runs = merged

    @property
    def free_pages(self) -> int:
        return sum(n for _, n in self.free_runs)


@dataclass
class RequestState:
    request: Request
    first_page: int
    num_pages: int
    admitted_s: float
    prefilled: int = 0  # prompt tokens in the cache
    token_times: list[float] = field(default_factory=list)  # when each output token came out

    @property
    def decoding(self) -> bool:
        return self.prefilled == self.request.prompt_len

    @property
    def finished(self) -> bool:
        return len(self.token_times) == self.request.output_len


@dataclass(frozen=True)
class Work:
    """One request's share of a step: q_len new tokens, after which its cache holds kv_len."""
    state: RequestState
    q_len: int
    kv_len: int


@dataclass(frozen=True)
class Step:
    """The batch of one iteration: prefill chunks (FCFS) first, then one token per decode."""
    prefills: list[Work]
    decodes: list[Work]

    @property
    def work(self) -> list[Work]:
        return self.prefills + self.decodes

    @property
    def tokens(self) -> int:
        return sum(w.q_len for w in self.work)


def pages_for(tokens: int, page_size: int) -> int:
    return -(-tokens // page_size)


class Scheduler:
    def __init__(self, trace: Iterable[Request], budget: int, num_pages: int, page_size: int, max_running: int):
        self.trace = sorted(trace, key=lambda r: (r.arrival_s, r.id))
        if budget < 1:
            raise ValueError(f"budget={budget} must be at least 1 token per step")
        if not 1 <= max_running <= budget:
            raise ValueError(f"max_running={max_running} must be in [1, budget={budget}]: every running decode "
                             "takes one token of the budget")
        self.budget, self.page_size, self.max_running = budget, page_size, max_running
        self.pool = PagePool(num_pages)
        for r in self.trace:
            need = self.reservation(r)
            if need > num_pages:
                raise ValueError(f"request {r.id} (prompt {r.prompt_len} + output {r.output_len} tokens) needs {need} "
                                 f"pages of {page_size} tokens but the KV cache has num_pages={num_pages}")
        self.waiting = list(self.trace)  # FCFS queue, arrival order
        self.running: list[RequestState] = []  # admission order
        self.done: list[RequestState] = []
        self.now = 0.0
        self.steps = 0

    def reservation(self, r: Request) -> int:
        """Pages a request holds from admission to its end: its cache's largest size, the prompt and
        every output token but the last (which is sampled, never fed back)."""
        return pages_for(r.prompt_len + r.output_len - 1, self.page_size)

    def next_step(self) -> Optional[Step]:
        """The next step's batch, or None when every request has finished."""
        if not self.running and not self.waiting:
            return None
        if not self.running and self.waiting[0].arrival_s > self.now:
            self.now = self.waiting[0].arrival_s  # idle until the next arrival
        decodes = [Work(s, 1, s.request.prompt_len + len(s.token_times)) for s in self.running if s.decoding]
        left = self.budget - len(decodes)
        prefills = []
        for s in self.running:
            if left == 0:
                break
            if not s.decoding:
                prefills.append(self._chunk(s, left))
                left -= prefills[-1].q_len
        while left > 0 and self.waiting and self.waiting[0].arrival_s <= self.now and len(self.running) < self.max_running:
            r = self.waiting[0]
            first = self.pool.alloc(self.reservation(r))
            if first is None:
                break  # FCFS: the head waits for pages; nobody overtakes it
            self.waiting.pop(0)
            s = RequestState(r, first, self.reservation(r), self.now)
            self.running.append(s)
            prefills.append(self._chunk(s, left))
            left -= prefills[-1].q_len
        return Step(prefills, decodes)

    def _chunk(self, s: RequestState, left: int) -> Work:
        q_len = min(left, s.request.prompt_len - s.prefilled)
        return Work(s, q_len, s.prefilled + q_len)

    def finish_step(self, step: Step, seconds: float) -> None:
        """Advance the clock by the step's measured time and apply its tokens."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"step time {seconds} s must be finite and >= 0")
        self.now += seconds
        self.steps += 1
        for w in step.work:
            s = w.state
            if s.decoding:
                s.token_times.append(self.now)
            else:
                s.prefilled += w.q_len
                if s.decoding:
                    s.token_times.append(self.now)  # the prompt's last chunk samples the first token
        for s in [s for s in self.running if s.finished]:
            self.running.remove(s)
            self.pool.free(s.first_page, s.num_pages)
            self.done.append(s)


def simulate(scheduler: Scheduler, step_seconds: Callable[[Step], float],
             on_step: Optional[Callable[[Scheduler, Step, float], None]] = None) -> list[RequestState]:
    """Runs the scheduler to the end, timing each step with step_seconds(step); returns the finished
    requests in finishing order."""
    while (step := scheduler.next_step()) is not None:
        seconds = step_seconds(step)
        scheduler.finish_step(step, seconds)
        if on_step is not None:
            on_step(scheduler, step, seconds)
    return scheduler.done


def percentile(values: list[float], p: float) -> Optional[float]:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    v = sorted(values)
    x = (len(v) - 1) * p / 100.0
    lo = math.floor(x)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (x - lo)


def serving_metrics(done: list[RequestState]) -> dict:
    """Throughput and latency of a finished run; the clock starts at 0 (the first arrival)."""
    makespan = max(s.token_times[-1] for s in done)
    ttft = [s.token_times[0] - s.request.arrival_s for s in done]
    tbt = [b - a for s in done for a, b in zip(s.token_times, s.token_times[1:])]
    out_tokens = sum(s.request.output_len for s in done)
    prompt_tokens = sum(s.request.prompt_len for s in done)
    ms = lambda x: None if x is None else 1e3 * x  # noqa: E731
    return {
        "requests": len(done),
        "makespan_s": makespan,
        "output_tokens_per_s": out_tokens / makespan,
        "total_tokens_per_s": (out_tokens + prompt_tokens) / makespan,
        "requests_per_s": len(done) / makespan,
        "ttft_ms": {"p50": ms(percentile(ttft, 50)), "p99": ms(percentile(ttft, 99)), "mean": ms(sum(ttft) / len(ttft))},
        "tbt_ms": {"p50": ms(percentile(tbt, 50)), "p99": ms(percentile(tbt, 99)), "mean": ms(sum(tbt) / len(tbt)) if tbt else None},
    }
