// DSL misuse that TypeScript rejects: each line below is a type error (`npx tsc -p .` fails if one
// of them type-checks, since @ts-expect-error then has nothing to expect), and the same spec
// written in untyped JSON is rejected at run time, which this test checks.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { enumerateSpace, pod, presetByName, SpaceError, SpecError, withOverrides, type KernelInput } from "../dsl/index.ts";

const base: KernelInput = { name: "t", heads: { q: 32, kv: 8 }, headDim: 128 };
const llama = presetByName("llama3_8b")!;

const MISUSE: [string, () => unknown][] = [
  // @ts-expect-error q, k, v and o are fp16 or bf16
  ["dtype fp8", () => pod.kernel({ ...base, dtype: "fp8" })],
  // @ts-expect-error head dims are 64, 96, 128 and 256
  ["headDim 80", () => pod.kernel({ ...base, headDim: 80 })],
  // @ts-expect-error 1, 2 or 4 CTAs per SM
  ["ctasPerSm 3", () => pod.kernel({ ...base, ctasPerSm: 3 })],
  // @ts-expect-error warps per CTA are 1, 2, 4 or 8
  ["prefill warps 3", () => pod.kernel({ ...base, prefill: { warps: 3 } })],
  // @ts-expect-error 1, 2 or 4 virtual decode CTAs
  ["virtualCtas 3", () => pod.kernel({ ...base, decode: { virtualCtas: 3 } })],
  // @ts-expect-error not a target podgen generates code for
  ["target sm_75", () => pod.kernel({ ...base, target: "sm_75" })],
  // @ts-expect-error schedules are fifty-fifty and proportional
  ["schedule greedy", () => pod.kernel({ ...base, schedule: { kind: "greedy" } })],
  // @ts-expect-error a paged cache needs its page size
  ["paged without a page size", () => pod.kernel({ ...base, kvCache: pod.paged({}) })],
  // @ts-expect-error misspelled field
  ["misspelled field", () => pod.kernel({ ...base, prefil: { warps: 4 } })],
  // @ts-expect-error a tile's sizes are numbers
  ["tile size as a string", () => pod.kernel({ ...base, prefill: { tile: { q: "128" } } })],
  // @ts-expect-error every spec has a name
  ["no name", () => pod.kernel({ heads: { q: 32, kv: 8 }, headDim: 128 })],
  // @ts-expect-error headDim is not a tunable field
  ["space over headDim", () => pod.space({ headDim: [64, 128] })],
  // @ts-expect-error an overridden spec is named after its base and overrides (options.name sets one)
  ["override the name", () => withOverrides(llama, { name: "mine" })],
  // @ts-expect-error overrides take the spec's types
  ["override with a bad dtype", () => withOverrides(llama, { dtype: "fp32" })],
];

for (const [title, misuse] of MISUSE) {
  test(`a type error, and rejected at run time: ${title}`, () => {
    assert.throws(misuse, (e: unknown) => e instanceof SpecError || e instanceof SpaceError);
  });
}

test("a space whose every choice is invalid type-checks no more than it runs: nothing but the base", () => {
  // @ts-expect-error 1, 2 or 4 CTAs per SM
  const e = enumerateSpace(llama, pod.space({ ctasPerSm: [3] }));
  assert.equal([e.candidates.length, e.pruned.length], [1, 1]);
});

test.run();
