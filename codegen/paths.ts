// Where podgen's own files live, whatever the caller's working directory.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const TEMPLATES_DIR = join(PACKAGE_ROOT, "templates");
/** The CUDA headers every generated kernel includes (`#include "pod/..."`). */
export const KERNEL_HEADERS_DIR = join(TEMPLATES_DIR, "pod");
export const GENERATED_DIR = join(PACKAGE_ROOT, "generated");
/** Version of the C ABI in pod_attention.h; bump on any layout change of its structs. */
export const ABI_VERSION = 3;
/** Version of the family C ABI in pod_family.h; bump on any layout change of its structs. */
export const FAMILY_ABI_VERSION = 2;
/** The headers of a family library's own translation unit (`#include "family/..."`). */
export const FAMILY_HEADERS_DIR = join(TEMPLATES_DIR, "family");
/**
 * The golden plans (test/plan-golden.test.ts keeps them equal to what the planner plans): part of a
 * family's timing key (codegen/family.ts), so a planner change that plans differently re-keys its
 * cost models and one that only plans faster keeps them.
 */
export const PLAN_GOLDEN_FILE = join(PACKAGE_ROOT, "test", "fixtures", "plan-golden.txt");
/** The cost model's features, in the order of templates/family/select.h (kFeatureNames). */
export const COST_FEATURES = ["one", "prefill_gflop", "decode_gb", "prefill_waves", "tiles_per_sm", "prefill_crowding"] as const;
