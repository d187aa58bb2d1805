// Which commit a result was measured at: git HEAD, with "-dirty" when tracked files differ from it,
// or "unknown" outside a checkout. Every recorded result (bench, GPU suite, bundle) names one.
// $PODGEN_COMMIT overrides it: the GPU bundle's scripts set it to the commit they were built from.
import { execFileSync } from "node:child_process";

export function gitCommit(cwd: string): string {
  if (process.env.PODGEN_COMMIT) return process.env.PODGEN_COMMIT;
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  try {
    const head = git("rev-parse", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") ? `${head}-dirty` : head;
  } catch {
    return "unknown";
  }
}
