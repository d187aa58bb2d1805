// The batches a config family's cost model is fitted on and judged on (`podgen tune --family`,
// `podgen bench --family`):
//
//   paper    the workload file's batches of the family's model shape (bench/workloads/paper.json,
//            chosen as `podgen tune` chooses them): fitted on, and reported apart in the bench
//   fit      serving-like batches (bench/serving-batches.ts) drawn from the fit seed, then
//            light-decode ones (lightDecodeMix): few decodes beside a full prefill, where serial
//            can beat fused and a model fitted on the serving mix alone had few batches
//   heldout  serving-like batches drawn from another seed, never fitted on: what the bench judges
//            the model's choices by
//
// Each set follows from its seed alone (same seeds, same batches), and no held-out batch has the
// lengths of a batch the model was fitted on: a generated one that does is dropped.
import { canonicalJson, presetByName, type KernelSpec } from "../dsl/index.ts";
import { Rng, type BatchShape } from "../runtime/index.ts";
import { SERVING_MIXES, servingBatches, type ServingMix } from "./serving-batches.ts";
import { shapeKey } from "./tune/db.ts";

export const BATCH_SETS = ["paper", "fit", "heldout"] as const;
export type BatchSet = (typeof BATCH_SETS)[number];

export interface FamilyBatch {
  name: string;
  set: BatchSet;
  shape: BatchShape;
}

export const DEFAULT_FIT_SEED = 1;
export const DEFAULT_HELDOUT_SEED = 2;
export const DEFAULT_FIT_BATCHES = 20;
export const DEFAULT_LIGHT_DECODE_BATCHES = 6;
export const DEFAULT_HELDOUT_BATCHES = 20;

export type ServingMixName = keyof typeof SERVING_MIXES;
export const SERVING_MIX_NAMES = Object.keys(SERVING_MIXES) as ServingMixName[];

/** The serving mix whose model (a preset of the same name) has the spec's shape; undefined if none. */
export function servingMixFor(spec: KernelSpec): ServingMixName | undefined {
  return SERVING_MIX_NAMES.find((name) => {
    const preset = presetByName(name);
    return preset !== undefined && shapeKey(preset) === shapeKey(spec);
  });
}

/**
 * The mix with its fewest decodes (min to 3 x min a step) and their tokens given to prefill: the
 * batches near the fused/serial boundary. On stop 31's H100 runs the held-out batches that ran
 * fused where serial was 6-7% faster had 17 to 71 decodes beside ~4,000 prefill tokens, and the
 * serving mix draws few of those (llama3_8b: 4 of 20 fit batches with serial faster).
 */
export function lightDecodeMix(mix: ServingMix): ServingMix {
  return { ...mix, decodes: { min: mix.decodes.min, max: 3 * mix.decodes.min } };
}

/** The seed light-decode fit batches are drawn from: apart from the serving batches' stream of `seed`. */
const lightDecodeSeed = (seed: number) => seed + 0x10000;

/**
 * `count` serving-like batches of the mix from the fit seed, named `fit-s<seed>-<i>`, then
 * `lightDecode` batches of lightDecodeMix, named `fit-light-s<seed>-<i>`.
 */
export function fitBatches(mix: ServingMix, seed: number, count: number, lightDecode = 0): FamilyBatch[] {
  return [
    ...servingBatches(mix, seed, count, `fit-s${seed}`),
    ...servingBatches(lightDecodeMix(mix), lightDecodeSeed(seed), lightDecode, `fit-light-s${seed}`),
  ].map((b) => ({ name: b.name, set: "fit", shape: b.shape }));
}

const lengthsKey = (shape: BatchShape) => canonicalJson(shape);

/**
 * `count` serving-like batches of the mix from the held-out seed, named `heldout-s<seed>-<i>`,
 * none with the lengths of a batch in `fitted` (one that has them is skipped; `i` counts the
 * generator's batches, so a name always means the same lengths).
 */
export function heldOutBatches(mix: ServingMix, seed: number, count: number, fitted: readonly FamilyBatch[]): FamilyBatch[] {
  const seen = new Set(fitted.map((b) => lengthsKey(b.shape)));
  // Collisions need equal lengths of every request of a batch: drawing twice as many is plenty.
  const drawn = servingBatches(mix, seed, 2 * count, `heldout-s${seed}`).filter((b) => !seen.has(lengthsKey(b.shape)));
  if (drawn.length < count) throw new RangeError(`held-out seed ${seed}: only ${drawn.length} of ${2 * count} batches differ from the fit set; choose another seed`);
  return drawn.slice(0, count).map((b) => ({ name: b.name, set: "heldout", shape: b.shape }));
}

/**
 * The paper's first batch, a 1024-token chunk over 4096 keys + 32 decodes of 4096 on Llama-3-8B
 * (32/8 heads), for a model of the spec's heads: the same chunk and 8 x group decodes of 4096 (32 at
 * the 8B's group of 4). A chunk's FLOPs grow with the query heads and a decode's KV bytes with the KV
 * heads (both with D), so the decodes' bytes per prefill FLOP stay the paper's: the balance of the
 * two ops that fusion overlaps. Named `paper-style p1024x4096+d<n>x4096`.
 */
export function paperStyleBatch(spec: Pick<KernelSpec, "heads">): FamilyBatch {
  const decodes = 8 * Math.max(1, Math.floor(spec.heads.q / spec.heads.kv));
  return {
    name: `paper-style p1024x4096+d${decodes}x4096`,
    set: "paper",
    shape: { prefills: [{ qLen: 1024, kvLen: 4096 }], decodes: Array.from({ length: decodes }, () => 4096) },
  };
}

/** Whether two batches have the same lengths (the same work for every kernel). */
export const sameLengths = (a: BatchShape, b: BatchShape) => lengthsKey(a) === lengthsKey(b);

/** A batch's lengths as the reports store them: [qLen, kvLen] per prefill, kvLen per decode. */
export function batchLengths(shape: BatchShape): { prefills: [number, number][]; decodes: number[] } {
  return { prefills: shape.prefills.map((p): [number, number] => [p.qLen, p.kvLen]), decodes: [...shape.decodes] };
}

/** A one-line description of a batch's lengths, for tables and logs. */
export function describeShape(shape: BatchShape): string {
  const chunks = shape.prefills.map((p) => `${p.qLen}/${p.kvLen}`).join(" ") || "no prefill";
  const kvs = shape.decodes;
  const decodes = kvs.length === 0 ? "no decodes" : `${kvs.length} decodes (kv ${Math.min(...kvs)}..${Math.max(...kvs)})`;
  return `prefills ${chunks}, ${decodes}`;
}

/**
 * The batch `podgen bench --family` times the host planner on: 256 requests, 4 prefill chunks
 * (512 tokens over 2K to 16K keys) and 252 decodes of 1 to 16K keys drawn from a fixed seed.
 */
export function planTimeShape(): BatchShape {
  const rng = new Rng(0x5eed);
  return {
    prefills: [2048, 4096, 8192, 16384].map((kvLen) => ({ qLen: 512, kvLen })),
    decodes: Array.from({ length: 252 }, () => rng.int(1, 16384)),
  };
}
