// Where podgen's own files live, whatever the caller's working directory.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const TEMPLATES_DIR = join(PACKAGE_ROOT, "templates");
/** The CUDA headers every generated kernel includes (`#include "pod/..."`). */
export const KERNEL_HEADERS_DIR = join(TEMPLATES_DIR, "pod");
export const GENERATED_DIR = join(PACKAGE_ROOT, "generated");
/** Version of the C ABI in pod_attention.h; bump on any layout change of its structs. */
export const ABI_VERSION = 2;
