// Errors the CLI reports without a stack trace, and the exit code each means.
import { SpecError } from "../dsl/index.ts";
import { BuildError } from "../codegen/build.ts";
import { JsonInputError } from "../codegen/json.ts";

import { UsageError } from "./usage-error.ts";

export { UsageError };

export const EXIT = { ok: 0, failure: 1, invalidInput: 2 } as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof SpecError || error instanceof UsageError || error instanceof JsonInputError) return EXIT.invalidInput;
  return EXIT.failure;
}

export function describeError(error: unknown, debug: boolean): string {
  if (debug && error instanceof Error && error.stack) return error.stack;
  if (error instanceof SpecError || error instanceof UsageError || error instanceof JsonInputError || error instanceof BuildError) return error.message;
  if (error instanceof Error) return `${error.name === "Error" ? "error" : error.name}: ${error.message}`;
  return String(error);
}
