import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkSpec, formatIssue, pod, PRESETS, resourceModel, SpecError, type KernelInput } from "../dsl/index.ts";

const base: KernelInput = { name: "t", heads: { q: 32, kv: 8 }, headDim: 128 };
const withBase = (patch: Record<string, unknown>) => ({ ...base, ...patch });

// Each bad spec, the field its message must name, and a fragment the message must contain.
const BAD: [string, unknown, string, string][] = [
  ["name with capitals", withBase({ name: "Llama" }), "name", "lower_snake_case"],
  ["missing name", { heads: { q: 32, kv: 8 }, headDim: 128 }, "name", "(missing)"],
  ["unknown target", withBase({ target: "sm_75" }), "target", '"sm_90a"'],
  ["unknown dtype", withBase({ dtype: "fp8" }), "dtype", '"bf16"'],
  ["fractional heads", withBase({ heads: { q: 32.5, kv: 8 } }), "heads.q", "integer"],
  ["zero kv heads", withBase({ heads: { q: 32, kv: 0 } }), "heads.kv", "at least 1"],
  ["heads not a group multiple", withBase({ heads: { q: 32, kv: 6 } }), "heads.q", "multiple of heads.kv=6"],
  ["head dim 80", withBase({ headDim: 80 }), "headDim", "one of 64, 96, 128, 256"],
  ["head dim 96 on wgmma", withBase({ headDim: 96, prefill: { engine: "wgmma", tile: { q: 64, kv: 32 } } }), "prefill.engine", "64-column blocks"],
  ["head dim 96 warp-specialized", withBase({ headDim: 96, ctasPerSm: 1, prefill: { engine: "warp-specialized", tile: { q: 64, kv: 32 } } }), "prefill.engine", "leave prefill.engine out"],
  ["head dim 256 with two fragments a warp", withBase({ headDim: 256, prefill: { tile: { q: 128, kv: 16 }, stages: 1 }, decode: { tile: { q: 16, kv: 32 }, stages: 1, virtualCtas: 1 } }), "prefill.tile.q", "272 fp32 accumulator registers"],
  ["head dim 256 with 8-warp CTAs", withBase({ headDim: 256, prefill: { tile: { q: 128, kv: 16 }, warps: 8, stages: 1 }, decode: { tile: { q: 16, kv: 32 }, warps: 8, stages: 1, virtualCtas: 1 } }), "prefill.warps", "get 128 a thread"],
  ["head dim 256 decode beside two-warpgroup prefill", withBase({ headDim: 256, prefill: { tile: { q: 128, kv: 16 }, warps: 8, stages: 1 }, decode: { tile: { q: 16, kv: 32 }, warps: 8, stages: 1, virtualCtas: 1 } }), "decode.warps", "132 fp32 accumulator registers"],
  ["head dim 256 warp-specialized with two consumer warpgroups", withBase({ headDim: 256, ctasPerSm: 1, prefill: { engine: "warp-specialized", tile: { q: 128, kv: 16 }, warps: 8, stages: 2 }, decode: { tile: { q: 16, kv: 32 }, warps: 4, virtualCtas: 1, stages: 1 } }), "prefill.warps", "512 threads get 128"],
  ["head dim 256 tiles beyond shared memory", withBase({ headDim: 256, prefill: { tile: { q: 64, kv: 64 } } }), "prefill.tile", "at D=256 needs 160 KiB"],
  ["head dim as string", withBase({ headDim: "128" }), "headDim", "a number"],
  ["page size 0", withBase({ kvCache: { kind: "paged", pageSize: 0 } }), "kvCache.pageSize", "at least 1"],
  ["page size missing", withBase({ kvCache: { kind: "paged" } }), "kvCache.pageSize", "(missing)"],
  ["unknown kv cache kind", withBase({ kvCache: { kind: "radix" } }), "kvCache.kind", "documented"],
  ["prefill tile not a warp multiple", withBase({ prefill: { tile: { q: 96, kv: 64 } } }), "prefill.tile.q", "multiple of 64"],
  ["prefill kv tile not 16-aligned", withBase({ prefill: { tile: { q: 128, kv: 40 } } }), "prefill.tile.kv", "multiple of 16"],
  ["prefill tile too large for smem", withBase({ prefill: { tile: { q: 256, kv: 128 } } }), "prefill.tile", "113 KiB"],
  ["prefill warps 3", withBase({ prefill: { warps: 3 } }), "prefill.warps", "one of 1, 2, 4, 8"],
  ["prefill stages 0", withBase({ prefill: { stages: 0 } }), "prefill.stages", "at least 1"],
  ["prefill maxSplits 0", withBase({ prefill: { maxSplits: 0 } }), "prefill.maxSplits", "at least 1"],
  ["waves 0", withBase({ prefill: { maxSplits: { kind: "waves", waves: 0 } } }), "prefill.maxSplits.waves", "at least 1"],
  ["decode QSL 8", withBase({ decode: { tile: { q: 8 } } }), "decode.tile.q", "at least 16"],
  ["decode QSL 32", withBase({ decode: { tile: { q: 32, kv: 32 } } }), "decode.tile.q", "QSL = 16"],
  ["decode warps differ", withBase({ decode: { warps: 8 } }), "decode.warps", "equal to prefill.warps=4"],
  ["virtual CTAs 3", withBase({ decode: { virtualCtas: 3 } }), "decode.virtualCtas", "one of 1, 2, 4"],
  ["virtual CTAs exceed warps", withBase({ prefill: { tile: { q: 64, kv: 64 }, warps: 2 }, decode: { virtualCtas: 4 } }), "decode.virtualCtas", "divisor of decode.warps=2"],
  ["decode kv tile not a warp multiple", withBase({ decode: { tile: { q: 16, kv: 16 } } }), "decode.tile.kv", "multiple of 32"],
  ["decode tiles too large for smem", withBase({ decode: { tile: { q: 16, kv: 128 }, stages: 3 } }), "decode.tile", "shared memory"],
  ["decode maxSplits 0", withBase({ decode: { maxSplits: 0 } }), "decode.maxSplits", "at least 1"],
  ["ctasPerSm 3", withBase({ ctasPerSm: 3 }), "ctasPerSm", "one of 1, 2, 4"],
  ["roles with the proportional policy", withBase({ ctasPerSm: 1, schedule: { kind: "proportional" } }), "schedule", "fifty-fifty"],
  ["roles with two decode warps per virtual CTA of a 16-key tile", withBase({ ctasPerSm: 1, decode: { tile: { q: 16, kv: 16 } } }), "decode.tile.kv", "multiple of 32"],
  ["roles too large for smem", withBase({ ctasPerSm: 1, prefill: { tile: { q: 128, kv: 128 }, stages: 3, warps: 8 }, decode: { warps: 4 } }), "prefill.tile", "both roles' tiles"],
  ["ctasPerSm 4 with large tiles", withBase({ ctasPerSm: 4 }), "prefill.tile", "ctasPerSm=4 on sm_90a (H100) allows 56 KiB"],
  ["unknown schedule", withBase({ schedule: { kind: "greedy" } }), "schedule.kind", "documented"],
  ["misspelled field", withBase({ prefil: { warps: 4 } }), "prefil", "unknown field"],
  ["misspelled nested field", withBase({ prefill: { tiles: { q: 128 } } }), "prefill.tiles", "unknown field"],
  ["sm_86 smem smaller", withBase({ target: "sm_86" }), "prefill.tile", "sm_86"],
  ["window 0", withBase({ window: 0 }), "window", "at least 1"],
  ["fractional window", withBase({ window: 4095.5 }), "window", "an integer"],
  ["window as string", withBase({ window: "4096" }), "window", "a number"],
  ["soft-cap 0", withBase({ logitsSoftCap: 0 }), "logitsSoftCap", "more than 0"],
  ["negative soft-cap", withBase({ logitsSoftCap: -50 }), "logitsSoftCap", "more than 0"],
  ["soft-cap beyond an fp32 constant's use", withBase({ logitsSoftCap: 1e30 }), "logitsSoftCap", "at most 1000000"],
  ["sinks as a number", withBase({ sinks: 1 }), "sinks", "a boolean"],
  ["unknown KV dtype", withBase({ kvDtype: "e5m2" }), "kvDtype", '"e4m3"'],
  ["16-bit KV dtype other than dtype", withBase({ kvDtype: "fp16" }), "kvDtype", '"bf16" (the dtype) or "e4m3"'],
  ["fp8 KV on sm_80", withBase({ target: "sm_80", kvDtype: "e4m3", prefill: { tile: { q: 64, kv: 32 } } }), "kvDtype", "fp8 KV needs sm_89 or sm_90a"],
  ["fp8 KV on sm_86", withBase({ target: "sm_86", kvDtype: "e4m3" }), "kvDtype", "sm_86 (RTX 3090 / A10) cannot convert fp8"],
  ["fp8 KV with the warp-specialized engine", withBase({ kvDtype: "e4m3", ctasPerSm: 1, prefill: { engine: "warp-specialized", warps: 8, tile: { q: 128, kv: 64 } }, decode: { warps: 4, tile: { q: 16, kv: 64 } } }), "prefill.engine", "warp-specialized engine's bulk copies"],
  ["KV scales without an fp8 cache", withBase({ kvScale: "head" }), "kvScale", "this spec's KV cache is bf16"],
  ["unknown KV scale granularity", withBase({ kvDtype: "e4m3", kvScale: "channel" }), "kvScale", '"tensor", "head"'],
  ["fp8 staging beyond shared memory", withBase({ kvDtype: "e4m3", prefill: { tile: { q: 128, kv: 64 }, stages: 2 }, decode: { tile: { q: 16, kv: 32 } }, ctasPerSm: 2, heads: { q: 32, kv: 8 }, headDim: 128, target: "sm_89" }), "prefill.tile", "1 fp8 staging"],
];

for (const [title, input, field, fragment] of BAD) {
  test(`rejects: ${title}`, () => {
    const result = checkSpec(input);
    assert.is(result.ok, false, "spec should be rejected");
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === field);
    assert.ok(issue, `expected an issue for ${field}, got: ${result.issues.map((i) => i.path).join(", ")}`);
    const message = formatIssue(issue!);
    assert.ok(message.includes(fragment), `"${message}" should mention "${fragment}"`);
    assert.ok(message.startsWith(`${field} = `), "message starts with the field and its value");
  });
}

test("pod.kernel throws a SpecError listing every problem", () => {
  try {
    // @ts-expect-error headDim is 64, 96, 128 or 256 (and this test checks the message at run time too)
    pod.kernel({ name: "x", heads: { q: 32, kv: 6 }, headDim: 80 });
    assert.unreachable("should throw");
  } catch (e) {
    assert.instance(e, SpecError);
    const err = e as SpecError;
    assert.equal(err.issues.map((i) => i.path).sort(), ["headDim", "heads.q"]);
    assert.match(err.message, /invalid kernel spec "x" \(2 problems\)/);
  }
});

test("defaults fill a minimal spec", () => {
  const spec = pod.kernel(base);
  assert.is(spec.target, "sm_90a");
  assert.is(spec.dtype, "bf16");
  assert.equal(spec.kvCache, { kind: "paged", pageSize: 16 });
  assert.is(spec.decode.warps, spec.prefill.warps);
  assert.equal(spec.prefill.maxSplits, { kind: "waves", waves: 2 });
});

test("specs are deeply frozen", () => {
  const spec = pod.kernel(base);
  assert.ok(Object.isFrozen(spec) && Object.isFrozen(spec.prefill) && Object.isFrozen(spec.prefill.tile));
});

test("hash is stable under key order and defaults, and changes with any field", () => {
  const a = pod.kernel(base);
  const b = pod.kernel({ headDim: 128, heads: { kv: 8, q: 32 }, name: "t", dtype: "bf16", ctasPerSm: 2 });
  assert.is(a.hash, b.hash);
  assert.match(a.hash, /^[0-9a-f]{16}$/);
  const variants: KernelInput[] = [
    { ...base, name: "u" },
    { ...base, dtype: "fp16" },
    { ...base, heads: { q: 32, kv: 4 } },
    { ...base, kvCache: pod.paged({ pageSize: 32 }) },
    { ...base, kvCache: pod.contiguous() },
    { ...base, schedule: pod.fiftyFifty() },
    { ...base, prefill: { maxSplits: pod.waves(1) } },
    { ...base, decode: { maxSplits: 8 } },
  ];
  const hashes = new Set([a.hash, ...variants.map((v) => pod.kernel(v).hash)]);
  assert.is(hashes.size, variants.length + 1);
});

test("resource model: shared memory formula and per-target limit", () => {
  const m = resourceModel(pod.kernel(base));
  assert.is(m.smem.prefillTile, (128 + 2 * 2 * 64) * 128 * 2);
  assert.is(m.smem.decodeTiles, 2 * (16 + 2 * 2 * 32) * 128 * 2);
  assert.is(m.smem.perCtaLimit, (228 * 1024) / 2 - 1024);
  assert.is(m.threads, 128);
  assert.equal(m.standaloneThreads, { prefill: 128, decode: 128 });
  assert.is(m.decodeWarpsPerVirtualCta, 2);
  const four = resourceModel(
    pod.kernel({ ...base, ctasPerSm: 4, prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 32 }, stages: 1 } }),
  );
  assert.is(four.smem.perCtaLimit, (228 * 1024) / 4 - 1024);
  assert.ok(four.registers.budgetPerThread <= 128);
});

test("resource model: roles (ctasPerSm 1) add the decode role's warps and bytes and move registers to prefill", () => {
  const spec = pod.kernel({ ...base, ctasPerSm: 1, prefill: { tile: { q: 128, kv: 64 }, warps: 8 }, decode: { warps: 4, virtualCtas: 2 } });
  const m = resourceModel(spec);
  assert.is(m.roles, true);
  assert.is(m.threads, (8 + 4) * 32);
  assert.is(m.smem.perCta, m.smem.prefillTile + m.smem.decodeTiles + 16);
  assert.is(m.registers.budgetPerThread, 168);
  // setmaxnreg only moves what the CTA holds at launch: 168 x 384 registers.
  assert.equal(m.registers.roles, { prefill: 184, decode: 136 });
  const held = m.registers.budgetPerThread * m.threads;
  assert.ok(m.registers.roles!.prefill * 8 * 32 + m.registers.roles!.decode * 4 * 32 <= held, "the split fits what the CTA holds");
  assert.equal(m.standaloneThreads, { prefill: 256, decode: 128 });
  assert.is(m.prefillSubBlockKeys, 64, "184 registers: 64-key sub-blocks");
  assert.is(resourceModel(pod.kernel({ ...base, prefill: { warps: 8 }, decode: { tile: { q: 16, kv: 64 }, stages: 1 } })).prefillSubBlockKeys, 32, "128 registers: 32");
  // Without wgmma (sm_80) or without whole warpgroups the roles keep the launch's even share.
  assert.is(resourceModel(pod.kernel({ ...base, target: "sm_80", ctasPerSm: 1, prefill: { tile: { q: 64, kv: 64 }, stages: 1 }, decode: { warps: 4 } })).registers.roles, null);
  assert.is(resourceModel(pod.kernel({ ...base, ctasPerSm: 1, decode: { warps: 2, virtualCtas: 1, tile: { q: 16, kv: 32 } } })).registers.roles, null);
  // Defaults with ctasPerSm 1: a decode warpgroup, fifty-fifty.
  const d = pod.kernel({ ...base, ctasPerSm: 1, prefill: { warps: 8 } });
  assert.equal([d.decode.warps, d.schedule.kind], [4, "fifty-fifty"]);
  // Two or four CTAs per SM: decode.warps must still equal prefill.warps.
  assert.throws(() => pod.kernel({ ...base, decode: { warps: 8 } }), /ctasPerSm=1/);
});

test("warp-specialized prefill: the resource model adds a producer warpgroup, reserves its barriers and splits the registers", () => {
  const spec = pod.kernel({
    ...base,
    ctasPerSm: 1,
    prefill: { engine: "warp-specialized", tile: { q: 128, kv: 128 }, warps: 8, stages: 2 },
    decode: { warps: 4, virtualCtas: 1, tile: { q: 16, kv: 64 }, stages: 1 },
  });
  const m = resourceModel(spec);
  assert.is(m.prefillEngine, "warp-specialized");
  assert.is(m.prefillThreads, (8 + 4) * 32, "two consumer warpgroups and a producer warpgroup");
  assert.is(m.threads, (8 + 4 + 4) * 32, "and the decode role");
  const tiles = (128 + 2 * 2 * 128) * 128 * 2;
  assert.ok(m.smem.prefillTile > tiles && m.smem.prefillTile % 1024 === 0, "tiles + barriers, whole KiB (the decode role starts there)");
  // Prefill-only: 384 threads start with 168 registers; the producer keeps few, the consumers the rest.
  const ws = m.registers.warpSpecialized!;
  assert.equal(ws, { atLaunch: 168, producer: 56, consumers: 224 });
  assert.ok(128 * ws.producer + 256 * ws.consumers <= 168 * 384, "setmaxnreg moves only what the CTA holds");
  // Fused (roles): 512 threads start with 128; producer, consumers and decode share 65536.
  const roles = m.registers.roles!;
  assert.is(m.registers.budgetPerThread, 128);
  assert.equal(roles, { prefill: 160, decode: 136 }, "the decode role takes more than the launch's 128");
  assert.ok(128 * ws.producer + 256 * roles.prefill + 128 * roles.decode <= 65536);
  // The consumers hold the next step's scores, P and O: whole 128-key steps only with 200+ registers
  // (the prefill-only kernel's 224), 64-key steps with 160 (beside the decode role).
  assert.is(m.prefillAlone.subBlockKeys, 128);
  assert.is(m.prefillSubBlockKeys, 64);
  // The default engine follows the target: wgmma on sm_90a with whole warpgroups, else mma.sync.
  assert.is(resourceModel(pod.kernel({ ...base })).prefillEngine, "wgmma");
  assert.is(resourceModel(pod.kernel({ ...base, prefill: { warps: 2, tile: { q: 64, kv: 32 } }, decode: { warps: 2 } })).prefillEngine, "mma");
  assert.is(resourceModel(pod.kernel({ ...base, target: "sm_80", prefill: { tile: { q: 64, kv: 64 } } })).prefillEngine, "mma");
});

test("warp-specialized prefill: misuse is refused naming the field, the value and the limit", () => {
  const ws = { engine: "warp-specialized", tile: { q: 128, kv: 128 }, warps: 8, stages: 2 } as const;
  const decode = { warps: 4, virtualCtas: 1, tile: { q: 16, kv: 64 }, stages: 1 } as const;
  const issues = (input: object) => {
    const r = checkSpec({ ...base, ...input });
    return r.ok ? [] : r.issues.map(formatIssue);
  };
  assert.equal(issues({ ctasPerSm: 1, prefill: ws, decode }), []);
  assert.match(issues({ prefill: ws }).join("\n"), /ctasPerSm = 2: must be 1 .*fills an SM/);
  assert.match(issues({ ctasPerSm: 1, target: "sm_80", prefill: ws, decode }).join("\n"), /prefill\.engine = "warp-specialized": must be mma .*sm_80/);
  assert.match(issues({ ctasPerSm: 1, prefill: { ...ws, tile: { q: 64, kv: 128 } }, decode }).join("\n"), /prefill\.tile\.q = 64: must be 128 .*64-row block/);
  assert.match(issues({ ctasPerSm: 1, prefill: { ...ws, stages: 1 }, decode }).join("\n"), /prefill\.stages = 1: must be at least 2/);
  assert.match(issues({ ctasPerSm: 1, prefill: { ...ws, warps: 2, tile: { q: 32, kv: 128 } }, decode }).join("\n"), /prefill\.warps = 2: must be 4 or 8 .*whole warpgroups/);
  assert.match(issues({ prefill: { engine: "tma" } }).join("\n"), /prefill\.engine = "tma": must be one of "mma", "wgmma", "warp-specialized"/);
  // 128x128 tiles in 3 stages and a decode role do not fit one SM's shared memory.
  assert.match(issues({ ctasPerSm: 1, prefill: { ...ws, stages: 3 }, decode }).join("\n"), /prefill\.tile = .*needs .* per CTA/);
});

test("warp-specialized prefill: the prefill-only kernel takes prefill.standalone's tile and stages, within one CTA's shared memory", () => {
  const ws = { engine: "warp-specialized", tile: { q: 128, kv: 64 }, warps: 8, stages: 2 } as const;
  const decode = { warps: 4, virtualCtas: 1, tile: { q: 16, kv: 64 }, stages: 2 } as const;
  type Prefill = NonNullable<KernelInput["prefill"]>;
  const spec = (standalone?: Prefill["standalone"], prefill: Prefill = ws): KernelInput => ({ ...base, ctasPerSm: 1, prefill: { ...prefill, ...(standalone && { standalone }) }, decode });
  const same = resourceModel(pod.kernel(spec()));
  assert.equal([same.prefillAlone.tileKv, same.prefillAlone.stages, same.prefillAlone.smem], [64, 2, same.smem.prefillTile], "absent: the fused kernel's tile");
  const own = resourceModel(pod.kernel(spec({ tileKv: 128, stages: 3 })));
  // Q (128 rows) and 3 stages of 128-key K and V at D = 128, plus the barriers, to whole KiB: it has the SM alone.
  assert.equal(own.prefillAlone, { tileKv: 128, stages: 3, subBlockKeys: 128, smem: (128 + 3 * 2 * 128) * 128 * 2 + 1024 });
  assert.ok(own.prefillAlone.smem <= own.smem.aloneLimit && own.prefillAlone.smem + own.smem.decodeTiles > own.smem.perCtaLimit, "alone it fits; beside the decode role it would not");
  assert.is(own.smem.prefillTile, same.smem.prefillTile, "the fused kernel's tiles do not change");
  const issues = (input: KernelInput) => {
    const r = checkSpec(input);
    return r.ok ? "" : r.issues.map(formatIssue).join("\n");
  };
  assert.is(issues(spec({ tileKv: 128, stages: 3 })), "");
  assert.match(issues(spec({ tileKv: 96, stages: 2 })), /prefill\.standalone\.tileKv = 96: must be a multiple of prefill\.tile\.kv \(64\)/);
  assert.match(issues(spec({ tileKv: 256, stages: 2 })), /prefill\.standalone = .*: must be at most 227 KiB .*needs 289 KiB/);
  assert.match(issues(spec({ tileKv: 128, stages: 2 }, { ...ws, engine: "wgmma" })), /prefill\.standalone = .*: must be absent .*engine is wgmma/);
  assert.match(issues(spec({ tileKv: 128, stages: 1 })), /prefill\.standalone\.stages = 1: must be at least 2/);
});

test("fp8 KV: kvDtype equal to dtype is the default (same hash); e4m3 defaults to per-tensor scales and adds staging to the model", () => {
  const plain = pod.kernel(base);
  assert.is(pod.kernel({ ...base, kvDtype: "bf16" }).hash, plain.hash);
  assert.ok(!("kvDtype" in pod.kernel({ ...base, kvDtype: "bf16" })) && !("kvScale" in plain));
  const fp8 = pod.kernel({ ...base, kvDtype: "e4m3" });
  assert.equal([fp8.kvDtype, fp8.kvScale], ["e4m3", "tensor"]);
  assert.is.not(pod.kernel({ ...base, kvDtype: "e4m3", kvScale: "head" }).hash, fp8.hash);
  const m = resourceModel(fp8);
  // Prefill staging: one fp8 K and V tile per tile in flight (stages - 1, at least 1), one byte an element.
  assert.equal(m.kvStaging, { prefill: 1, decode: 2 });
  assert.is(m.smem.prefillTile, (128 + 2 * 2 * 64) * 128 * 2 + 2 * 1 * 64 * 128);
  // The decode loop reads fp8 tiles straight into fragments: every stage fp8, rows of 128 bytes, no 16-bit stage.
  assert.is(m.decodeKvBuffers, 0);
  assert.is(m.smem.decodeTiles, 2 * (16 * 128 * 2 + 2 * 2 * 32 * 128));
  // One stage of few keys is smaller than the warps' merge scratch, which the virtual CTA must hold.
  const one = resourceModel(pod.kernel({ ...base, kvDtype: "e4m3", decode: { stages: 1, tile: { q: 16, kv: 32 } } }));
  assert.is(one.smem.decodeTiles, 2 * (2 * 16 * (2 + 128) * 4), "2 virtual CTAs of 2 warps");
  const d64 = resourceModel(pod.kernel({ ...base, headDim: 64, kvDtype: "e4m3" }));
  assert.is(d64.smem.decodeTiles, 2 * (16 * 64 * 2 + 2 * 2 * 32 * 128), "D = 64 fp8 decode rows are padded to 128 bytes");
  const deep = resourceModel(pod.kernel({ ...base, kvDtype: "e4m3", prefill: { tile: { q: 64, kv: 32 }, stages: 3 }, decode: { stages: 1 } }));
  assert.equal(deep.kvStaging, { prefill: 2, decode: 1 });
  assert.equal([resourceModel(plain).kvStaging, resourceModel(plain).decodeKvBuffers], [{ prefill: 0, decode: 0 }, 2]);
  // The mma engine takes fp8 on sm_89.
  assert.ok(checkSpec({ ...base, target: "sm_89", kvDtype: "e4m3", prefill: { warps: 2, tile: { q: 64, kv: 32 }, stages: 1 }, decode: { warps: 2, tile: { q: 16, kv: 32 }, virtualCtas: 1 } }).ok);
  const preset = PRESETS.find((p) => p.name === "llama3_8b_fp8")!;
  assert.equal([preset.kvDtype, preset.kvScale, preset.heads, resourceModel(preset).prefillEngine], ["e4m3", "head", { q: 32, kv: 8 }, "wgmma"]);
  // fp8 staging rows are unpadded: D = 96 and 256 have no fp8 path.
  const d96 = checkSpec({ ...base, headDim: 96, kvDtype: "e4m3", prefill: { engine: "mma" } });
  assert.match(d96.ok ? "" : d96.issues.map(formatIssue).join("\n"), /headDim = 96: must be 64 or 128 with kvDtype "e4m3"/);
});

test("head dims 96 and 256: padded shared-memory rows, the engine D=96 gets, registers of wide heads", () => {
  const d96 = resourceModel(pod.kernel({ ...base, headDim: 96 }));
  // Rows padded to whole 64-column swizzle blocks: a D=96 tile costs what a D=128 tile does.
  assert.is(d96.smemHeadDim, 128);
  assert.equal(d96.smem, resourceModel(pod.kernel(base)).smem);
  assert.is(d96.prefillEngine, "mma", "wgmma needs whole 64-column blocks: D=96 defaults to mma.sync on sm_90a");
  assert.is(resourceModel(pod.kernel({ ...base, headDim: 256, prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, stages: 1, virtualCtas: 1 } })).smemHeadDim, 256);
  const smem = checkSpec({ ...base, headDim: 96, target: "sm_80" });
  assert.match(smem.ok ? "" : smem.issues.map(formatIssue).join("\n"), /at D=96 \(rows padded to 128 columns\) needs 96 KiB/);
  // O of a 16-row fragment is D/2 fp32 registers a thread: 128 at D=256, beside the scores of a step.
  const wide: KernelInput = { ...base, headDim: 256, prefill: { tile: { q: 64, kv: 32 } }, decode: { tile: { q: 16, kv: 64 }, stages: 1, virtualCtas: 1 } };
  const m = resourceModel(pod.kernel(wide));
  assert.equal(m.registers.accumulators, { prefill: 128 + 16, decode: 128 + 8 });
  assert.equal(m.registers.budgets, { prefill: 255, decode: 255 });
  // With roles the D=256 decode warpgroup keeps its wider O (136 + 64 = 200); one consumer
  // warpgroup of the warp-specialized prefill takes the rest.
  const ws = resourceModel(pod.kernel({ ...wide, ctasPerSm: 1, schedule: pod.fiftyFifty(), prefill: { engine: "warp-specialized", warps: 4, tile: { q: 64, kv: 32 }, stages: 2 }, decode: { warps: 4, tile: { q: 16, kv: 64 }, stages: 1, virtualCtas: 1 } }));
  assert.equal(ws.registers.roles, { prefill: 248, decode: 200 });
  assert.ok(128 * 56 + 128 * ws.registers.roles!.prefill + 128 * ws.registers.roles!.decode <= ws.registers.budgetPerThread * ws.threads);
  // Below D=128 nothing moves: the decode role keeps 136.
  assert.is(resourceModel(pod.kernel({ ...base, headDim: 64, ctasPerSm: 1, prefill: { warps: 8 } })).registers.roles!.decode, 136);
});

test("presets are valid and distinct", () => {
  assert.ok(PRESETS.length >= 5);
  assert.is(new Set(PRESETS.map((p) => p.hash)).size, PRESETS.length);
  for (const name of ["llama3_8b", "llama2_7b", "yi_6b", "llama3_70b_tp8"]) assert.ok(PRESETS.some((p) => p.name === name), name);
  assert.ok(PRESETS.some((p) => p.headDim === 64));
});

test("attention variants: optional fields that leave other specs (and their hashes) as they were", () => {
  const plain = pod.kernel(base);
  assert.is(pod.kernel({ ...base, window: undefined, logitsSoftCap: undefined, sinks: undefined }).hash, plain.hash);
  const variant = pod.kernel({ ...base, window: 4096, logitsSoftCap: 50, sinks: true });
  assert.equal([variant.window, variant.logitsSoftCap, variant.sinks], [4096, 50, true]);
  assert.is.not(variant.hash, plain.hash);
  assert.ok(!("window" in plain) && !("logitsSoftCap" in plain) && !("sinks" in plain));
  // A variant costs no shared memory or threads.
  assert.equal(resourceModel(variant).smem, resourceModel(plain).smem);
  const byName = (name: string) => PRESETS.find((p) => p.name === name)!;
  assert.equal([byName("mistral_7b").window, byName("mistral_7b").heads, byName("mistral_7b").headDim], [4096, { q: 32, kv: 8 }, 128]);
  assert.equal([byName("gpt_oss_20b").window, byName("gpt_oss_20b").sinks, byName("gpt_oss_20b").heads.q, byName("gpt_oss_20b").headDim], [128, true, 64, 64]);
  assert.equal([byName("gpt_oss_20b_global").window, byName("gpt_oss_20b_global").sinks], [undefined, true]);
  assert.equal([byName("phi3_mini").headDim, byName("phi3_mini").heads, resourceModel(byName("phi3_mini")).prefillEngine], [96, { q: 32, kv: 32 }, "mma"]);
  for (const name of ["gemma2_9b", "gemma2_9b_local"]) {
    const g = byName(name);
    assert.equal([g.headDim, g.heads, g.logitsSoftCap, g.target, resourceModel(g).prefillEngine], [256, { q: 16, kv: 8 }, 50, "sm_90a", "wgmma"], name);
  }
  assert.equal([byName("gemma2_9b").window, byName("gemma2_9b_local").window], [undefined, 4096]);
});

test.run();
