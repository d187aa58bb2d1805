// The folders' layering: dsl < codegen < runtime < bench < cli. A module imports only from its own
// folder and the folders below it, so that, e.g., the bench harness never reaches back up into the
// command line (what bench needs from there belongs below it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { PACKAGE_ROOT } from "../codegen/paths.ts";

const LAYERS = ["dsl", "codegen", "runtime", "bench", "cli"] as const;

function sources(dir: string): string[] {
  return readdirSync(join(PACKAGE_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.[cm]?ts$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative specifiers of a module's static and dynamic imports and re-exports. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]!);
}

test("each folder imports only from itself and the folders below it (nothing under bench/ from cli/)", () => {
  const wrong: string[] = [];
  for (const [rank, layer] of LAYERS.entries()) {
    for (const file of sources(layer)) {
      for (const spec of imports(file)) {
        const target = relative(PACKAGE_ROOT, resolve(dirname(file), spec)).split("/")[0]!;
        const targetRank = LAYERS.indexOf(target as (typeof LAYERS)[number]);
        if (targetRank > rank) wrong.push(`${relative(PACKAGE_ROOT, file)} imports ${spec}`);
      }
    }
  }
  assert.equal(wrong, []);
});

test("every module the package ships (package.json files) imports only modules it ships", () => {
  const files = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { files: string[] }).files;
  const shipped = (path: string) => files.some((f) => path === f || path.startsWith(`${f}/`));
  const missing: string[] = [];
  for (const entry of files) {
    const modules = statSync(join(PACKAGE_ROOT, entry)).isDirectory() ? sources(entry) : [join(PACKAGE_ROOT, entry)];
    for (const file of modules.filter((f) => /\.[cm]?ts$/.test(f))) {
      for (const spec of imports(file)) {
        const target = relative(PACKAGE_ROOT, resolve(dirname(file), spec));
        if (!shipped(target)) missing.push(`${relative(PACKAGE_ROOT, file)} imports ${target}`);
      }
    }
  }
  assert.equal(missing, []);
});

test.run();
