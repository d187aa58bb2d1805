// Errors the CLI reports without a stack trace, and the exit code each means: 2 for every kind of
// bad input (a spec, a search space, a case, workload or report file, arguments), 1 for failures.
import { SpaceError, SpecError } from "../dsl/index.ts";
import { BuildError } from "../codegen/build.ts";
import { JsonInputError } from "../codegen/json.ts";

import { UsageError } from "./usage-error.ts";

export { UsageError };

export const EXIT = { ok: 0, failure: 1, invalidInput: 2 } as const;

/** Bad input: the user's to fix, reported with its message alone. */
const isInputError = (error: unknown): error is Error =>
  error instanceof SpecError || error instanceof SpaceError || error instanceof UsageError || error instanceof JsonInputError;

export function exitCodeFor(error: unknown): number {
  return isInputError(error) ? EXIT.invalidInput : EXIT.failure;
}

export function describeError(error: unknown, debug: boolean): string {
  if (debug && error instanceof Error && error.stack) return error.stack;
  if (isInputError(error) || error instanceof BuildError) return error.message;
  if (error instanceof Error) return `${error.name === "Error" ? "error" : error.name}: ${error.message}`;
  return String(error);
}
