// The fp8 (e4m3) KV cache's conversions: the dequantization of templates/pod/kv_fp8.cuh compiled for
// the host with nvcc (every byte pair, exact in fp16 and bf16: test/native/test_kv_fp8.cu), and the
// TypeScript decoding the GPU suite reads fp8 caches with (runtime/numerics.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { TEMPLATES_DIR } from "../codegen/paths.ts";
import { fromE4m3, kvToFloat32 } from "../runtime/index.ts";

const work = mkdtempSync(join(tmpdir(), "podgen-kv-fp8-"));

test("the tile loops' e4m3 -> fp16 / bf16 pair conversion (host build) is exact for every byte pair", async () => {
  const exe = join(work, "test_kv_fp8");
  const native = join(dirname(fileURLToPath(import.meta.url)), "native", "test_kv_fp8.cu");
  await execa("nvcc", ["-std=c++17", `-I${TEMPLATES_DIR}`, native, "-o", exe]);
  const r = await execa(exe, [], { reject: false, all: true });
  assert.is(r.exitCode, 0, r.all);
  assert.match(r.all ?? "", /129032 checks, 0 failures/);
});

test("fromE4m3 decodes e4m3 bytes: normals, subnormals, signed zeros, the largest finite, NaN", () => {
  const cases: [number, number][] = [
    [0x38, 1], [0xb8, -1], [0x3c, 1.5], [0x40, 2], [0x7e, 448], [0xfe, -448],
    [0x08, 2 ** -6], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x81, -(2 ** -9)],
  ];
  for (const [byte, value] of cases) assert.is(fromE4m3(byte), value, `byte 0x${byte.toString(16)}`);
  assert.ok(Object.is(fromE4m3(0x00), 0) && Object.is(fromE4m3(0x80), -0));
  assert.ok(Number.isNaN(fromE4m3(0x7f)) && Number.isNaN(fromE4m3(0xff)));
  // Monotonic over the positive bytes: each a step up from the last.
  for (let b = 1; b < 0x7f; b++) assert.ok(fromE4m3(b) > fromE4m3(b - 1), `byte 0x${b.toString(16)}`);
  assert.equal([...kvToFloat32(new Uint8Array([0x38, 0xc0]), "e4m3")], [1, -2]);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
