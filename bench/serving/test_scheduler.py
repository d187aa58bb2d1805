"""CPU-only tests of the serving benchmark's trace generator and scheduler (no torch, no GPU):

    python3 -m unittest discover -s bench/serving -p 'test_*.py'

(test/serving.test.ts runs them inside `npm test` where python3 exists.)
"""
from __future__ import annotations

import math
import statistics
import unittest

from scheduler import PagePool, Scheduler, Step, pages_for, percentile, serving_metrics, simulate
from synthetic_trace import OUTPUT_RANGE, PROMPT_RANGE, make_trace


def step_time(step: Step) -> float:
    """A made-up cost: a fixed part, per token, and per key read by the decodes."""
    return 2e-3 + 2e-5 * step.tokens + 1e-8 * sum(w.kv_len for w in step.decodes)


class Recorder:
    """simulate's on_step hook: keeps every step and checks what must hold after each."""

    def __init__(self, test: unittest.TestCase):
        self.test, self.steps, self.admitted = test, [], []

    def __call__(self, sched: Scheduler, step: Step, seconds: float) -> None:
        self.steps.append(step)
        for w in step.prefills:
            if w.kv_len == w.q_len:  # a prompt's first chunk: the request was admitted for this step
                self.admitted.append(w.state.request.id)
        live = sorted((s.first_page, s.num_pages) for s in sched.running)
        for (a, n), (b, _) in zip(live, live[1:]):
            self.test.assertLessEqual(a + n, b, "two running requests share a page")
        self.test.assertEqual(sched.pool.free_pages + sum(n for _, n in live), sched.pool.num_pages, "pages leaked")
        self.test.assertLessEqual(len(sched.running), sched.max_running)


def run(trace, budget=1024, num_pages=20000, page_size=16, max_running=64, test=None):
    sched = Scheduler(trace, budget, num_pages, page_size, max_running)
    rec = Recorder(test) if test else None
    done = simulate(sched, step_time, rec)
    return sched, done, rec


class TraceTest(unittest.TestCase):
    def test_lengths_in_range_and_arrivals_ordered(self):
        trace = make_trace(500, 4.0, seed=3)
        self.assertEqual([r.id for r in trace], list(range(500)))
        self.assertEqual(trace[0].arrival_s, 0.0)
        for r in trace:
            self.assertTrue(PROMPT_RANGE[0] <= r.prompt_len <= PROMPT_RANGE[1], r)
            self.assertTrue(OUTPUT_RANGE[0] <= r.output_len <= OUTPUT_RANGE[1], r)
        self.assertTrue(all(a.arrival_s <= b.arrival_s for a, b in zip(trace, trace[1:])))

    def test_long_tailed_prompts_and_poisson_rate(self):
        trace = make_trace(4000, 8.0, seed=5)
        prompts = [r.prompt_len for r in trace]
        # A long tail: the mean well above the median, and some prompts near the top of the range.
        self.assertGreater(statistics.mean(prompts), 1.3 * statistics.median(prompts))
        self.assertGreater(sum(p > 12000 for p in prompts), 40)
        # Poisson arrivals at 8/s: mean gap 1/8 s, and gaps about as spread as they are long (exponential).
        gaps = [b.arrival_s - a.arrival_s for a, b in zip(trace, trace[1:])]
        self.assertAlmostEqual(statistics.mean(gaps), 1 / 8, delta=0.01)
        self.assertAlmostEqual(statistics.stdev(gaps) / statistics.mean(gaps), 1.0, delta=0.1)

    def test_seeded(self):
        self.assertEqual(make_trace(50, 2.0, seed=7), make_trace(50, 2.0, seed=7))
        self.assertNotEqual(make_trace(50, 2.0, seed=7), make_trace(50, 2.0, seed=8))

    def test_rates_change_arrivals_only(self):
        slow, fast = make_trace(40, 1.0, seed=2), make_trace(40, 4.0, seed=2)
        self.assertEqual([(r.prompt_len, r.output_len) for r in slow], [(r.prompt_len, r.output_len) for r in fast])
        for s, f in zip(slow, fast):
            self.assertAlmostEqual(s.arrival_s, 4 * f.arrival_s)
        self.assertTrue(all(r.arrival_s == 0 for r in make_trace(10, math.inf, seed=2)))

    def test_bad_inputs_name_the_field(self):
        with self.assertRaisesRegex(ValueError, "num_requests=0"):
            make_trace(0, 1.0, seed=1)
        with self.assertRaisesRegex(ValueError, "rate=0"):
            make_trace(5, 0.0, seed=1)
        with self.assertRaisesRegex(ValueError, "prompt_range"):
            make_trace(5, 1.0, seed=1, prompt_range=(10, 5))


class SchedulerTest(unittest.TestCase):
    def test_budget_never_exceeded_and_every_request_finishes(self):
        trace = make_trace(60, 6.0, seed=11)
        for budget in (256, 1024):
            sched, done, rec = run(trace, budget=budget, test=self)
            self.assertTrue(all(0 < step.tokens <= budget for step in rec.steps))
            self.assertEqual(sorted(s.request.id for s in done), list(range(60)))
            for s in done:
                self.assertEqual(s.prefilled, s.request.prompt_len)
                self.assertEqual(len(s.token_times), s.request.output_len)
            self.assertFalse(sched.running or sched.waiting)
            self.assertEqual(sched.pool.free_runs, [(0, sched.pool.num_pages)])
            # Every prompt token is prefilled once, every output token but the first decoded once.
            self.assertEqual(sum(w.q_len for step in rec.steps for w in step.prefills), sum(r.prompt_len for r in trace))
            self.assertEqual(sum(len(step.decodes) for step in rec.steps), sum(r.output_len - 1 for r in trace))

    def test_fcfs_admission_and_chunking(self):
        trace = make_trace(60, 20.0, seed=12)  # overloaded: a queue forms
        _, _, rec = run(trace, budget=512, test=self)
        self.assertEqual(rec.admitted, list(range(60)), "requests admitted out of arrival order")
        for step in rec.steps:
            ids = [w.state.request.id for w in step.prefills]
            self.assertEqual(ids, sorted(ids), "prefill chunks out of FCFS order")
            # Only the last chunk of a step may stop short of its prompt's end (it ran out of budget).
            for w in step.prefills[:-1]:
                self.assertEqual(w.kv_len, w.state.request.prompt_len)
            if step.prefills and step.prefills[-1].kv_len < step.prefills[-1].state.request.prompt_len:
                self.assertEqual(step.tokens, 512, "a chunk was cut short with budget left")

    def test_decodes_every_step_and_first_token_after_prompt(self):
        trace = make_trace(30, 3.0, seed=13)
        _, done, rec = run(trace, test=self)
        for s in done:
            r = s.request
            # Output tokens come one step apart: the request decoded in every step from its first token on.
            steps_in = [i for i, step in enumerate(rec.steps) if any(w.state is s for w in step.work)]
            last_prefill = max(i for i in steps_in if any(w.state is s for w in rec.steps[i].prefills))
            decode_steps = [i for i in steps_in if i > last_prefill]
            self.assertEqual(decode_steps, list(range(last_prefill + 1, last_prefill + r.output_len)))
            self.assertGreaterEqual(s.token_times[0], r.arrival_s)
            for i in decode_steps:
                w = next(w for w in rec.steps[i].decodes if w.state is s)
                self.assertEqual(w.q_len, 1)
                self.assertLessEqual(w.kv_len, s.num_pages * 16, "a decode reads past its page run")

    def test_deterministic_given_step_times(self):
        trace = make_trace(40, 5.0, seed=14)
        _, a, _ = run(trace)
        _, b, _ = run(trace)
        self.assertEqual([(s.request.id, s.token_times) for s in a], [(s.request.id, s.token_times) for s in b])
        # Other step times give another schedule from the same trace.
        other = Scheduler(trace, 1024, 20000, 16, 64)
        c = simulate(other, lambda step: 2 * step_time(step))
        self.assertNotEqual([s.token_times for s in a], [s.token_times for s in c])

    def test_kv_pages_limit_admission(self):
        trace = make_trace(20, math.inf, seed=15)
        per_request = max(pages_for(r.prompt_len + r.output_len - 1, 16) for r in trace)
        sched, done, rec = run(trace, num_pages=per_request + 10, test=self)  # room for about one at a time
        self.assertEqual(len(done), 20)
        self.assertEqual(rec.admitted, list(range(20)))

    def test_idle_until_next_arrival(self):
        trace = make_trace(3, 0.01, seed=16)  # ~100 s apart: each request finishes before the next comes
        _, done, _ = run(trace)
        for s in done:
            self.assertGreater(s.token_times[0], s.request.arrival_s)
            self.assertLess(s.token_times[0] - s.request.arrival_s, 5.0, "the clock did not jump to the arrival")

    def test_bad_configuration(self):
        trace = make_trace(5, 1.0, seed=17)
        with self.assertRaisesRegex(ValueError, "max_running=65 must be in \\[1, budget=64\\]"):
            Scheduler(trace, 64, 20000, 16, 65)
        with self.assertRaisesRegex(ValueError, "budget=0"):
            Scheduler(trace, 0, 20000, 16, 1)
        with self.assertRaisesRegex(ValueError, "needs \\d+ pages of 16 tokens but the KV cache has num_pages=10"):
            Scheduler(trace, 1024, 10, 16, 8)
        with self.assertRaisesRegex(ValueError, "step time nan"):
            sched = Scheduler(trace, 1024, 20000, 16, 8)
            sched.finish_step(sched.next_step(), float("nan"))


class PagePoolTest(unittest.TestCase):
    def test_first_fit_and_merging(self):
        pool = PagePool(10)
        a, b, c = pool.alloc(3), pool.alloc(3), pool.alloc(3)
        self.assertEqual((a, b, c), (0, 3, 6))
        self.assertIsNone(pool.alloc(2))
        pool.free(b, 3)
        self.assertIsNone(pool.alloc(4))
        pool.free(a, 3)
        self.assertEqual(pool.alloc(5), 0)  # the two freed runs merged
        pool.free(0, 5)
        pool.free(c, 3)
        self.assertEqual(pool.free_runs, [(0, 10)])


class MetricsTest(unittest.TestCase):
    def test_percentile(self):
        self.assertEqual(percentile([3, 1, 2, 4], 50), 2.5)
        self.assertEqual(percentile([5], 99), 5)
        self.assertAlmostEqual(percentile(list(range(101)), 99), 99.0)
        self.assertIsNone(percentile([], 50))

    def test_serving_metrics(self):
        trace = make_trace(20, 4.0, seed=18)
        _, done, _ = run(trace)
        m = serving_metrics(done)
        self.assertEqual(m["requests"], 20)
        self.assertAlmostEqual(m["output_tokens_per_s"] * m["makespan_s"], sum(r.output_len for r in trace))
        self.assertAlmostEqual(m["requests_per_s"] * m["makespan_s"], 20)
        self.assertLessEqual(m["ttft_ms"]["p50"], m["ttft_ms"]["p99"])
        self.assertLessEqual(m["tbt_ms"]["p50"], m["tbt_ms"]["p99"])
        self.assertGreaterEqual(m["tbt_ms"]["p50"], 1e3 * 2e-3)  # no step is faster than step_time's fixed part


if __name__ == "__main__":
    unittest.main()
