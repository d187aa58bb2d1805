// Atomic writes: write a sibling temp file, then rename over the target (atomic on one filesystem),
// so a reader or a concurrent writer never sees a half-written file.
import { randomBytes } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export function writeFileAtomic(path: string, contents: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}
