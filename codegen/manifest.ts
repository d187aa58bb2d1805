// `-Xptxas -v` output → per-kernel resource records, and the warnings a kernel author must see.
import { execFileSync } from "node:child_process";

export interface KernelResources {
  /** Mangled symbol as ptxas names it. */
  symbol: string;
  /** Demangled (c++filt) when available, else the symbol. */
  name: string;
  arch: string;
  registers: number;
  barriers: number;
  /** Static shared memory; the dynamic part is `smemBytes` in the manifest. */
  staticSharedBytes: number;
  stackBytes: number;
  spillStoreBytes: number;
  spillLoadBytes: number;
  /** ptxas's reason (code and text) when it serialized this kernel's wgmma instructions, else null. */
  wgmmaSerialized: string | null;
  /** Tile-loop kernels, where spills and local memory cost most. */
  hot: boolean;
}

const ENTRY = /ptxas info\s*: Compiling entry function '([^']+)' for '(\w+)'/;
const FRAME = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/;
const USAGE = /Used (\d+) registers(?:, used (\d+) barriers)?(?:, (\d+) bytes smem)?/;
// Printed apart from the entry's own lines (often before them), naming the function.
const SERIALIZED = /\((C\d+)\) Potential Performance Loss: (wgmma\S* instructions are serialized.*?) (?:for|in) the function '([^']+)'/;

/** Parse ptxas's verbose report. Entries appear as "Compiling entry", then frame, then usage. */
export function parsePtxasReport(text: string): KernelResources[] {
  const kernels: KernelResources[] = [];
  const serialized = new Map<string, string>();
  let current: KernelResources | undefined;
  for (const line of text.split("\n")) {
    const ser = SERIALIZED.exec(line);
    if (ser) serialized.set(ser[3]!, `${ser[1]}: ${ser[2]}`);
    const entry = ENTRY.exec(line);
    if (entry) {
      current = {
        symbol: entry[1]!,
        name: entry[1]!,
        arch: entry[2]!,
        registers: 0,
        barriers: 0,
        staticSharedBytes: 0,
        stackBytes: 0,
        spillStoreBytes: 0,
        spillLoadBytes: 0,
        wgmmaSerialized: null,
        hot: false,
      };
      kernels.push(current);
      continue;
    }
    if (!current) continue;
    const frame = FRAME.exec(line);
    if (frame) {
      current.stackBytes = Number(frame[1]);
      current.spillStoreBytes = Number(frame[2]);
      current.spillLoadBytes = Number(frame[3]);
    }
    const usage = USAGE.exec(line);
    if (usage) {
      current.registers = Number(usage[1]);
      current.barriers = Number(usage[2] ?? 0);
      current.staticSharedBytes = Number(usage[3] ?? 0);
    }
  }
  const names = demangle(kernels.map((k) => k.symbol));
  kernels.forEach((k, i) => {
    k.name = names[i] ?? k.symbol;
    k.wgmmaSerialized = serialized.get(k.symbol) ?? null;
    k.hot = !/reference/i.test(k.name);
  });
  return kernels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch.localeCompare(b.arch)));
}

function demangle(symbols: string[]): string[] {
  if (symbols.length === 0) return [];
  try {
    return execFileSync("c++filt", { input: symbols.join("\n"), encoding: "utf8" }).trimEnd().split("\n");
  } catch {
    return symbols;
  }
}

/**
 * Warnings for kernels that will run slower than their spec promises. `threads`: the CTA size,
 * or per kernel where kernels differ (roles: the prefill-only and decode-only kernels launch
 * just their role's threads).
 */
export function resourceWarnings(
  kernels: readonly KernelResources[],
  threads: number | ((kernel: KernelResources) => number),
  ctasPerSm: number,
  registersPerSm: number,
): string[] {
  const warnings: string[] = [];
  for (const k of kernels) {
    if (!k.hot) continue;
    const ctaThreads = typeof threads === "number" ? threads : threads(k);
    if (k.spillStoreBytes > 0 || k.spillLoadBytes > 0) {
      warnings.push(`${k.name} (${k.arch}) spills ${k.spillStoreBytes} bytes stored / ${k.spillLoadBytes} loaded to local memory`);
    }
    if (k.wgmmaSerialized) warnings.push(`${k.name} (${k.arch}): ptxas serialized its wgmma instructions (${k.wgmmaSerialized})`);
    if (k.stackBytes > 0) warnings.push(`${k.name} (${k.arch}) uses a ${k.stackBytes}-byte stack frame (local memory)`);
    if (k.registers * ctaThreads * ctasPerSm > registersPerSm) {
      warnings.push(
        `${k.name} (${k.arch}) uses ${k.registers} registers: ${ctaThreads} threads × ${ctasPerSm} CTAs/SM would need ${k.registers * ctaThreads * ctasPerSm} > ${registersPerSm}`,
      );
    }
  }
  return warnings;
}

/** The kernel a ptxas entry is, by its template's name: pod_<kind>_kernel. */
const kernelKind = (k: KernelResources) => /pod_(\w+?)_kernel\b/.exec(k.name)?.[1] ?? k.name;
const FUSED_KINDS = ["fused", "roles"];
const STANDALONE_KINDS = { prefill: ["prefill", "prefill_ws"], decode: ["decode"] } as const;

/**
 * Where and why each hot kernel spills, read from the same ptxas report: a fused kernel runs the
 * prefill-only and decode-only kernels' tile loops, so when those fit their registers without
 * spilling, the fused kernel's spill is the state it keeps live across both loops and the
 * scheduler; when one of them spills too, the spill is in that loop.
 */
export function spillReasons(kernels: readonly KernelResources[]): { kernel: string; arch: string; reason: string }[] {
  const describe = (k: KernelResources) => `${k.registers} registers, ${k.spillStoreBytes ? `spills ${k.spillStoreBytes} bytes` : "no spill"}`;
  return kernels
    .filter((k) => k.hot && (k.spillStoreBytes > 0 || k.spillLoadBytes > 0))
    .map((k) => {
      const spill = `${k.spillStoreBytes} bytes stored / ${k.spillLoadBytes} loaded at ${k.registers} registers`;
      const base = { kernel: kernelKind(k), arch: k.arch };
      if (!FUSED_KINDS.includes(kernelKind(k))) return { ...base, reason: `${spill}: its own tile loop needs more registers than it has` };
      const parts = Object.entries(STANDALONE_KINDS).flatMap(([part, kinds]) => {
        const alone = kernels.find((s) => s.arch === k.arch && (kinds as readonly string[]).includes(kernelKind(s)));
        return alone ? [{ part, alone }] : [];
      });
      const spilling = parts.filter((p) => p.alone.spillStoreBytes > 0);
      const alone = parts.map((p) => `the ${p.part}-only kernel: ${describe(p.alone)}`).join("; ");
      const reason = spilling.length > 0
        ? `${spill}; ${alone}: the spill is in the ${spilling.map((p) => p.part).join(" and ")} tile loop`
        : `${spill}; ${alone}: each tile loop fits alone, so the spill is the state the fused kernel keeps live across both loops and the scheduler`;
      return { ...base, reason };
    });
}
