// Resolve a CLI argument to kernel specs: a preset name, or a spec file (.ts/.js/.mjs/.json) whose
// default export is a spec (from pod.kernel) or an array of specs.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { familyPresetByName, FAMILY_PRESETS, isFamilySpec, normalizeFamily, normalizeSpec, presetByName, PRESETS, type FamilyInput, type FamilySpec, type KernelSpec } from "../dsl/index.ts";
import { UsageError } from "./errors.ts";

/**
 * The default export of a module file (.ts, .js, .mjs; spec and space files). TypeScript goes
 * through tsx's scoped loader so that a file in a project without `"type": "module"` still loads
 * as an ES module (import syntax, top-level await). Compiled as CommonJS (no "type": "module"
 * nearby), the export arrives wrapped once more, `{ default: value }`: `isValue` tells the value
 * itself (a spec has a name, a space a kind) from that wrapper.
 */
export async function importDefault(path: string, isValue: (v: object) => boolean): Promise<unknown> {
  if (!/\.[cm]?ts$/.test(path)) return ((await import(pathToFileURL(path).href)) as { default?: unknown }).default;
  const { tsImport } = await import("tsx/esm/api");
  const value = ((await tsImport(pathToFileURL(path).href, import.meta.url)) as { default?: unknown }).default;
  const wrapped = typeof value === "object" && value !== null && "default" in value && !isValue(value);
  return wrapped ? (value as { default?: unknown }).default : value;
}

export async function loadSpecs(args: readonly string[]): Promise<KernelSpec[]> {
  const specs: KernelSpec[] = [];
  for (const arg of args) specs.push(...(await loadSpec(arg)));
  return specs;
}

async function loadSpec(arg: string): Promise<KernelSpec[]> {
  const preset = presetByName(arg);
  if (preset) return [preset];
  const value = await loadValue(arg);
  if (isFamilySpec(value) || isFamilyInput(value)) throw new UsageError(`${arg} is a config family; this command takes kernel specs (\`podgen build\` and \`inspect\` take families)`);
  return (Array.isArray(value) ? value : [value]).map((v) => normalizeSpec(v));
}

async function loadValue(arg: string): Promise<unknown> {
  const path = resolve(arg);
  if (!existsSync(path)) {
    throw new UsageError(
      `"${arg}" is neither a preset (${PRESETS.map((p) => p.name).join(", ")}), a preset family (${FAMILY_PRESETS.map((f) => f.name).join(", ")}) nor an existing spec file`,
    );
  }
  const value: unknown = path.endsWith(".json")
    ? JSON.parse(readFileSync(path, "utf8"))
    : await importDefault(path, (v) => "name" in v);
  if (value === undefined) throw new UsageError(`${arg} has no default export (export default pod.kernel({...}) or pod.family({...}))`);
  return value;
}

/** A family's JSON form: what pod.family takes ({ name, base, members }). */
const isFamilyInput = (v: unknown): v is FamilyInput => typeof v === "object" && v !== null && "members" in v && "base" in v;

/** A CLI argument that names a config family (a preset family, or a file exporting pod.family / its JSON), else undefined. */
export async function loadFamily(arg: string): Promise<FamilySpec | undefined> {
  const preset = familyPresetByName(arg);
  if (preset) return preset;
  if (presetByName(arg) || !existsSync(resolve(arg))) return undefined;
  const value = await loadValue(arg);
  if (isFamilySpec(value)) return value;
  return isFamilyInput(value) ? normalizeFamily(value) : undefined;
}
