// Spec overrides (dsl/overrides.ts): one merge for verify case files, bench workload variants and
// the tune space's points, so the same override gives the same kernel wherever it is written.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  enumerateSpace,
  kernelFieldsSpec,
  presetByName,
  space,
  specFields,
  SpecError,
  withOverrides,
  type KernelSpec,
  type SpecOverrides,
} from "../dsl/index.ts";
import { casesFrom } from "../cli/verify-cases.ts";
import { parseWorkloads } from "../bench/workloads.ts";

// The merge's mechanics on the paper-shaped preset (2 CTAs/SM: tiles, stages and CTAs per SM are
// free to change there); kernel fields without a spec start from the default preset.
const base = presetByName("llama3_8b_2cta")!;
const fieldsOf = (s: KernelSpec) => {
  const { name: _name, ...rest } = specFields(s);
  return rest;
};

test("no overrides: the base itself", () => {
  assert.is(withOverrides(base, {}), base);
  assert.is(withOverrides(base, { dtype: undefined }), base);
});

test("sections and tiles merge field by field; everything else is replaced whole", () => {
  const s = withOverrides(base, { prefill: { tile: { q: 64 } }, kvCache: { kind: "contiguous" }, decode: { stages: 1 } });
  assert.equal(s.prefill.tile, { q: 64, kv: base.prefill.tile.kv });
  assert.is(s.prefill.stages, base.prefill.stages);
  assert.equal(s.kvCache, { kind: "contiguous" });
  assert.equal([s.decode.stages, s.decode.tile, s.decode.virtualCtas], [1, base.decode.tile, base.decode.virtualCtas]);
  assert.equal(s.heads, base.heads);
});

test("null removes an optional field: the kernel without it, as if the base never had it", () => {
  const gemma = presetByName("gemma2_9b")!;
  const plain = withOverrides(gemma, { logitsSoftCap: null });
  assert.is(plain.logitsSoftCap, undefined);
  assert.equal({ ...fieldsOf(plain), logitsSoftCap: gemma.logitsSoftCap }, fieldsOf(gemma));
  const mistral = presetByName("mistral_7b")!;
  assert.equal(fieldsOf(withOverrides(mistral, { window: null })), fieldsOf(base), "mistral_7b without its window is llama3_8b_2cta");
  // A required field cannot be removed: the schema names it.
  assert.throws(() => withOverrides(base, { heads: null }), /heads/);
  // The JSON form (a bench variant's kernel fields) takes it too.
  assert.is(kernelFieldsSpec({ spec: "gpt_oss_20b_global", kernel: { sinks: null } }).sinks, undefined);
  // Inside a section as well: llama3_8b whose prefill-only kernel runs the fused kernel's tile.
  const ws = presetByName("llama3_8b")!;
  const fusedTile = withOverrides(ws, { prefill: { standalone: null } });
  assert.ok(ws.prefill.standalone !== undefined && fusedTile.prefill.standalone === undefined);
  assert.equal({ ...fusedTile.prefill, standalone: ws.prefill.standalone }, ws.prefill, "nothing else in the section moves");
});

test("named after the base and the overrides: same overrides, same name and hash, whatever the key order", () => {
  const a = withOverrides(base, { ctasPerSm: 4, prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, stages: 1, virtualCtas: 1 } });
  const b = withOverrides(base, { decode: { virtualCtas: 1, stages: 1, tile: { kv: 64, q: 16 } }, prefill: { tile: { kv: 32, q: 64 } }, ctasPerSm: 4 });
  assert.match(a.name, /^llama3_8b_2cta_[0-9a-f]{8}$/);
  assert.equal([a.name, a.hash], [b.name, b.hash]);
  assert.is(withOverrides(base, { dtype: "fp16" }, { name: "mine" }).name, "mine");
});

test("a bad override is a SpecError naming the field; a name is not an override", () => {
  try {
    withOverrides(base, { prefill: { tile: { q: 96 } } });
    assert.unreachable("should throw");
  } catch (e) {
    assert.instance(e, SpecError);
    assert.equal((e as SpecError).issues.map((i) => i.path), ["prefill.tile.q"]);
  }
  assert.throws(() => withOverrides(base, { name: "x" } as SpecOverrides), /name = "x": must be absent/);
  assert.throws(() => withOverrides(base, { prefil: { stages: 1 } } as SpecOverrides), /prefil = .*unknown field/);
});

test("kernel fields: the shorthands stand for the spec fields they name; an unknown preset is named", () => {
  const short = kernelFieldsSpec({ spec: "llama2_7b", policy: "fifty-fifty", virtualCtas: 1, pageSize: "contiguous", kernel: { decode: { tile: { q: 16, kv: 64 } } } });
  const long = withOverrides(presetByName("llama2_7b")!, { decode: { tile: { q: 16, kv: 64 }, virtualCtas: 1 }, schedule: { kind: "fifty-fifty" }, kvCache: { kind: "contiguous" } });
  assert.equal([short.name, short.hash], [long.name, long.hash]);
  assert.is(kernelFieldsSpec({}), presetByName("llama3_8b")!, "the default preset");
  assert.throws(() => kernelFieldsSpec({ spec: "llama9" }), /spec = "llama9": must be one of "llama3_8b", /);
});

test("a verify case, a bench variant and a tune point with the same overrides run the same kernel", () => {
  const fields = { spec: "llama3_8b_2cta", policy: "proportional", ctasPerSm: 4, virtualCtas: 1, kernel: { prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, stages: 1 } } };
  const [fromCase] = casesFrom({ cases: [{ seed: 1, decodes: [1], ...fields }] });
  const [workload] = parseWorkloads({ variants: [{ name: "v", ...fields }], workloads: [{ name: "w", prefills: [[1, 1]], decodes: [1], variants: true }] });
  const variant = workload!.configs[1]!.spec;
  assert.equal([fromCase!.spec.name, fromCase!.spec.hash], [variant.name, variant.hash]);
  const point = enumerateSpace(
    base,
    space({ prefill: { tile: { q: [64], kv: [32] } }, decode: { tile: { kv: [64] }, stages: [1], virtualCtas: [1] }, ctasPerSm: [4], schedule: [{ kind: "proportional" }] }),
  ).candidates.find((c) => !c.isBase)!;
  assert.equal(fieldsOf(point.spec), fieldsOf(variant));
});

test("case files name the case whose kernel is invalid", () => {
  assert.throws(
    () => casesFrom({ cases: [{ seed: 1, decodes: [1] }, { name: "wide", seed: 2, decodes: [1], kernel: { prefill: { tile: { q: 96, kv: 64 } } } }] }, "my-cases.json"),
    /^my-cases\.json: cases\.1 \(wide\): invalid kernel spec .*\n\s+- prefill\.tile\.q = 96/,
  );
});

test.run();
