// Command-line arguments the commands share the checks of.
import type { Command } from "commander";
import { UsageError } from "./usage-error.ts";

/** A command-line number that must be positive (an integer unless `integer` is false). */
export function positiveArg(name: string, v: string, integer = true): number {
  const n = Number(v);
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n <= 0) throw new UsageError(`${name} = ${v}: must be a positive ${integer ? "integer" : "number"}`);
  return n;
}

/** The options among `keys` (commander's camelCase names) given on the command line, as flags: `--plan-iters`. */
export function givenFlags(command: Command, keys: readonly string[]): string[] {
  return keys.filter((k) => command.getOptionValueSource(k) === "cli").map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
}
