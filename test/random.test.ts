// The random inputs' generator (templates/pod/reference.cuh): its C++ compiled for the host with
// nvcc (Random123's known-answer vectors, moments, determinism: test/native/test_random.cu), and
// the TypeScript restatement the GPU suite compares the fill kernel with (test/random.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { pod } from "../dsl/index.ts";
import { renderHeader } from "../codegen/render.ts";
import { TEMPLATES_DIR } from "../codegen/paths.ts";
import { philox4x32_10, randomNormals } from "./random.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-random-"));
writeFileSync(join(work, "pod_attention.h"), renderHeader(pod.kernel({ name: "test", heads: { q: 32, kv: 8 }, headDim: 128 })));

test("Philox4x32-10 in TypeScript matches Random123's known-answer vectors", () => {
  assert.equal(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  assert.equal(philox4x32_10([~0, ~0, ~0, ~0], [~0, ~0]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  assert.equal(
    philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  );
});

test("the C++ generator (host build): known answers, moments, no zeros; its values equal the TypeScript ones", async () => {
  const exe = join(work, "test_random");
  const native = join(dirname(fileURLToPath(import.meta.url)), "native", "test_random.cu");
  await execa("nvcc", ["-std=c++17", `-I${work}`, `-I${TEMPLATES_DIR}`, native, "-o", exe]);
  // A seed above 2^32 and a partial last group of four.
  const seed = 0x1234_5678_9abcn;
  const count = 4099;
  const r = await execa(exe, [`0x${seed.toString(16)}`, "3", String(count)], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
  assert.match(r.all ?? "", /\d+ checks, 0 failures/);
  const cpp = (/^VALUES (.*)$/m.exec(r.stdout)?.[1] ?? "").split(" ").map(parseHexFloat);
  const ts = randomNormals(seed, 3, count);
  assert.is(cpp.length, count);
  // The host C++ takes logf in float and sin/cos in double; TypeScript all in double.
  const worst = Math.max(...cpp.map((x, i) => Math.abs(x - ts[i]!) / Math.max(1, Math.abs(x))));
  assert.ok(worst < 1e-6, `largest difference ${worst}`);
});

test("same seed and tensor give the same values; another seed or tensor other values", () => {
  const a = randomNormals(42n, 2, 1000);
  assert.equal(randomNormals(42n, 2, 1000), a);
  const differing = (b: Float32Array) => b.filter((x, i) => x !== a[i]).length;
  assert.is(differing(randomNormals(43n, 2, 1000)), 1000);
  assert.is(differing(randomNormals(42n, 3, 1000)), 1000);
  // Values depend on the index only: a prefix of a longer draw, or a draw from an offset.
  assert.equal(randomNormals(42n, 2, 1003).subarray(0, 1000), a);
  assert.equal(randomNormals(42n, 2, 7, 993), a.subarray(993));
});

/** C's %a format (e.g. -0x1.1d3fe2p-2) as a number. */
function parseHexFloat(s: string): number {
  const m = /^(-?)0x([01])\.?([0-9a-f]*)p([+-]\d+)$/.exec(s);
  if (!m) throw new Error(`not a hex float: ${s}`);
  const mantissa = Number.parseInt(m[2]! + (m[3] ?? ""), 16) / 16 ** (m[3] ?? "").length;
  return (m[1] ? -1 : 1) * mantissa * 2 ** Number(m[4]);
}

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
