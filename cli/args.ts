// Command-line arguments the commands share the checks of, and paths as the user sees them.
import { join, relative } from "node:path";
import type { Command } from "commander";
import { CudaUnavailableError, Device } from "../runtime/index.ts";
import { PACKAGE_ROOT } from "../codegen/paths.ts";
import { UsageError } from "./usage-error.ts";

/** A path relative to the working directory, as messages and option defaults show it. */
export function shownPath(path: string): string {
  return relative(process.cwd(), path) || ".";
}

/** A file of podgen's own (`bench/workloads/paper.json`), as an option default shows it. */
export function packageFile(path: string): string {
  return shownPath(join(PACKAGE_ROOT, path));
}

/** A command-line number that must be positive (an integer unless `integer` is false). */
export function positiveArg(name: string, v: string, integer = true): number {
  const n = Number(v);
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n <= 0) throw new UsageError(`${name} = ${v}: must be a positive ${integer ? "integer" : "number"}`);
  return n;
}

/** A command-line integer that may be 0 (a count that can be none). */
export function nonNegativeArg(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} = ${v}: must be a non-negative integer`);
  return n;
}

/**
 * The options among `keys` (commander's camelCase names) given on the command line, as their flags:
 * `--plan-iters`, `--no-variants` (a negated option's key is `variants`).
 */
export function givenFlags(command: Command, keys: readonly string[]): string[] {
  const flag = (k: string) => command.options.find((o) => o.attributeName() === k)?.long ?? `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return keys.filter((k) => command.getOptionValueSource(k) === "cli").map(flag);
}

/**
 * GPU 0 for a command that needs one, opened before anything is compiled; without one, an error
 * that names the command and what it can do instead (`hint`).
 */
export function openGpu(command: string, hint: string): Device {
  try {
    return Device.open(0);
  } catch (e) {
    if (e instanceof CudaUnavailableError) throw new Error(`${command} needs a GPU: ${e.message} (${hint})`);
    throw e;
  }
}
