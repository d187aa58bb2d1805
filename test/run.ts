// Runs every test/*.test.ts with uvu and ends with one line: "N passed, N failed, N skipped".
// Usage: npx tsx test/run.ts [pattern]   (pattern filters file names)
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = dirname(fileURLToPath(import.meta.url));
const pattern = new RegExp(process.argv[2] ?? ".");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts") && pattern.test(f))
  .sort();

// uvu prints "Total: / Passed: / Skipped:" at the end; keep a copy of the output to count them.
let output = "";
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
  output += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
  return write(chunk, ...rest);
}) as typeof process.stdout.write;

const { run } = (await import("uvu/run" as string)) as {
  run: (suites: { name: string; file: string }[], opts: object) => Promise<void>;
};
await run(files.map((f) => ({ name: f, file: join(dir, f) })), {});

const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
const count = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? 0);
const total = count("Total");
const passed = count("Passed");
const skipped = count("Skipped");
const failed = total - passed;
process.stdout.write = write;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0 || total === 0) process.exitCode = 1;
