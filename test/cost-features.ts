// Random cost-model features for the fit tests (test/family.test.ts, test/family-bench.test.ts), in
// COST_FEATURES' order, with prefill_crowding the product templates/family/select.h makes.
import type { Rng } from "../runtime/index.ts";

/** One batch's features: one, prefill_gflop, decode_gb, prefill_waves, tiles_per_sm, prefill_crowding. */
export function randomFeatures(rng: Rng): number[] {
  const [gflop, tilesPerSm] = [rng.next() * 100, rng.next() * 20];
  return [1, gflop, rng.next() * 2, rng.int(1, 4), tilesPerSm, gflop * tilesPerSm];
}
