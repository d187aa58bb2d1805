// GPU-suite cases for the boundary between runtime/ (driver API, primary context) and CUDA
// runtime-API host code in a shared library loaded with koffi, as built kernel libraries are.
// The stand-in library is test/gpu/kernels/interop.cu, bundled as artifacts/libinterop.so.
import { cuda, DeviceBuffer, loadKoffi } from "../../../runtime/index.ts";
import { gpuCase, hostCase, type SuiteContext } from "../harness.ts";

const LIB = "libinterop.so";

type Fn = (...args: unknown[]) => unknown;
interface Interop {
  version: Fn;
  errorName: Fn;
  add: Fn;
  malloc: Fn;
  free: Fn;
  isDevicePointer: Fn;
}

let cached: Interop | undefined;
function interop(ctx: SuiteContext): Interop {
  if (cached) return cached;
  const koffi = loadKoffi();
  const lib = koffi.load(ctx.artifact(LIB));
  cached = {
    version: lib.func("int interop_version()") as Fn,
    errorName: lib.func("const char *interop_error_name(int status)") as Fn,
    add: lib.func("int interop_add(uint64_t x, int n, float v, void *stream)") as Fn,
    malloc: lib.func("int interop_malloc(uint64_t *out, uint64_t bytes)") as Fn,
    free: lib.func("int interop_free(uint64_t p)") as Fn,
    isDevicePointer: lib.func("int interop_is_device_pointer(uint64_t p)") as Fn,
  };
  return cached;
}

function check(lib: Interop, what: string, status: unknown): void {
  if (status !== 0) throw new Error(`${what} failed: ${String(lib.errorName(status))} (${String(status)})`);
}

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

function sameAfterAdds(host: Float32Array, got: Float32Array, adds: number[]): void {
  for (let i = 0; i < host.length; i++) {
    let want = host[i];
    for (const v of adds) want = Math.fround(want + v);
    if (got[i] !== want) throw new Error(`element ${i}: ${got[i]} != ${want}`);
  }
}

hostCase("interop: a static-cudart library loads through koffi (no GPU needed)", (ctx) => {
  const lib = interop(ctx);
  assert(lib.version() === 1, "interop_version() == 1");
  return "dlopen + call without touching CUDA";
});

gpuCase("interop: driver-API pointers and streams in CUDA-runtime code (primary context)", (ctx) => {
  const lib = interop(ctx);
  const n = 65_537;
  const host = new Float32Array(n).map(() => Math.random());
  const x = DeviceBuffer.from(host, "interop-x");
  const stream = ctx.device.stream();
  try {
    // runtime-API code sees our cuMemAlloc pointer as device memory of the current device
    const isDev = lib.isDevicePointer(x.ptr);
    assert(isDev === 1, `cudaPointerGetAttributes on a cuMemAlloc pointer returned ${String(isDev)}`);
    // a <<<>>> launch on our CUstream
    check(lib, "interop_add", lib.add(x.ptr, n, 2, stream.handle));
    stream.synchronize();
    sameAfterAdds(host, x.read(Float32Array), [2]);
    // cudaMalloc memory used through the driver API: upload, add (runtime), download
    const out = new BigUint64Array(1);
    check(lib, "interop_malloc", lib.malloc(out, host.byteLength));
    const p = out[0];
    try {
      cuda().memcpyHtoD(p, host);
      check(lib, "interop_add", lib.add(p, n, 3, stream.handle));
      stream.synchronize();
      const got = new Float32Array(n);
      cuda().memcpyDtoH(got, p);
      sameAfterAdds(host, got, [3]);
    } finally {
      check(lib, "interop_free", lib.free(p));
    }
    return "cuMemAlloc pointer and CUstream used by cudart code, cudaMalloc pointer used by the driver; results exact";
  } finally {
    stream.destroy();
    x.free();
  }
});

gpuCase("interop: CUDA-runtime launches captured in a graph on a driver-API stream", (ctx) => {
  const lib = interop(ctx);
  const n = 10_001;
  const host = new Float32Array(n).map(() => Math.random());
  const x = DeviceBuffer.from(host, "interop-graph-x");
  const stream = ctx.device.stream();
  try {
    const exec = stream.capture((s) => {
      check(lib, "interop_add (captured)", lib.add(x.ptr, n, 1, s.handle));
      check(lib, "interop_add (captured)", lib.add(x.ptr, n, 0.5, s.handle));
    });
    for (let r = 0; r < 4; r++) exec.launch(stream);
    stream.synchronize();
    exec.destroy();
    sameAfterAdds(host, x.read(Float32Array), [1, 0.5, 1, 0.5, 1, 0.5, 1, 0.5]);
    return "4 replays of 2 captured <<<>>> launches";
  } finally {
    stream.destroy();
    x.free();
  }
});
