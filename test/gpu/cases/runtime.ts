// GPU-suite cases for runtime/: driver facts, buffers, memset poison, a cubin kernel launched
// through cuModuleLoadData / cuLaunchKernel, CUDA-graph replay, event timing and error names.
import { readFileSync } from "node:fs";
import { arg, CudaError, cuda, DeviceBuffer, EventTimer, median, Module } from "../../../runtime/index.ts";
import { gpuCase, skip, type SuiteContext } from "../harness.ts";

const ADD_ONE_CUBIN = "add_one.sm_90a.cubin";

function randomFloats(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

function expectThrows(fn: () => unknown, fragment: string): string {
  try {
    fn();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    assert(msg.includes(fragment), `expected an error containing "${fragment}", got: ${msg}`);
    return msg;
  }
  throw new Error(`expected an error containing "${fragment}", but nothing was thrown`);
}

function loadAddOne(ctx: SuiteContext): Module {
  const info = ctx.cuda.ok ? ctx.cuda.device : undefined;
  if (info && `${info.ccMajor}${info.ccMinor}` !== "90") skip(`${ADD_ONE_CUBIN} is built for sm_90a; this device is ${info.arch}`);
  return Module.load(readFileSync(ctx.artifact(ADD_ONE_CUBIN)));
}

gpuCase("cuda: device facts", (ctx) => {
  const d = ctx.device.info;
  assert(d.sms > 0, `SM count ${d.sms}`);
  assert(d.ccMajor >= 7, `compute capability ${d.ccMajor}.${d.ccMinor}`);
  assert(d.maxSharedMemoryPerBlockOptin >= 48 * 1024, `smem opt-in ${d.maxSharedMemoryPerBlockOptin}`);
  const mem = ctx.device.memInfo();
  assert(mem.total > 0n && mem.free <= mem.total, `memGetInfo ${mem.free}/${mem.total}`);
  assert(cuda().ctxGetCurrent() === ctx.device.context, "the primary context is current");
  return `${d.name}, ${d.arch}, ${d.sms} SMs, L2 ${d.l2Bytes} B, smem opt-in ${d.maxSharedMemoryPerBlockOptin} B, ` +
    `${(Number(mem.free) / 2 ** 30).toFixed(1)} of ${(Number(mem.total) / 2 ** 30).toFixed(1)} GiB free, CUDA ${d.cudaVersion}, driver ${d.driverVersion}`;
});

gpuCase("runtime: alloc / upload / download round trip", (ctx) => {
  const n = (1 << 20) + 13; // odd size
  const host = randomFloats(n);
  const buf = ctx.device.alloc(host.byteLength, "roundtrip");
  try {
    buf.poison();
    buf.upload(host);
    const back = buf.read(Float32Array);
    for (let i = 0; i < n; i++) if (back[i] !== host[i]) throw new Error(`element ${i}: ${back[i]} != ${host[i]}`);
    // partial upload / download at an offset
    const part = randomFloats(1000);
    buf.upload(part, 4 * 777);
    const got = buf.download(new Float32Array(1000), 4 * 777);
    for (let i = 0; i < 1000; i++) if (got[i] !== part[i]) throw new Error(`offset element ${i}: ${got[i]} != ${part[i]}`);
    // device-to-device copy
    const copy = DeviceBuffer.alloc(buf.bytes, "copy");
    try {
      copy.copyFrom(buf);
      const c = copy.read(Float32Array);
      assert(c[0] === host[0] && c[777] === part[0] && c[n - 1] === host[n - 1], "device-to-device copy");
    } finally {
      copy.free();
    }
    // size checks name the buffer and the sizes
    expectThrows(() => buf.upload(new Float32Array(n + 1)), `does not fit device buffer "roundtrip" of ${host.byteLength} bytes`);
    expectThrows(() => buf.download(new Uint8Array(16), host.byteLength - 8), "does not fit");
  } finally {
    buf.free();
  }
  expectThrows(() => buf.ptr, 'device buffer "roundtrip" was freed');
  return `${n} floats round-tripped; offset copies, DtoD copy and size errors checked`;
});

gpuCase("runtime: memset fill / poison", (ctx) => {
  const buf = ctx.device.alloc(4099, "memset");
  try {
    buf.upload(new Uint8Array(4099).fill(7));
    buf.poison();
    const a = buf.read(Uint8Array);
    assert(a.every((x) => x === 0xff), "poison writes 0xFF everywhere");
    buf.fill(0x3c, 100, 50);
    const b = buf.read(Uint8Array);
    assert(b[99] === 0xff && b[100] === 0x3c && b[149] === 0x3c && b[150] === 0xff, "ranged fill");
    buf.poison();
    const asFloat = new Float32Array(buf.download(new Uint8Array(4096)).buffer);
    assert(asFloat.every((x) => Number.isNaN(x)), "poisoned floats read as NaN");
  } finally {
    buf.free();
  }
});

gpuCase("runtime: cubin kernel via cuModuleLoadData (add_one, axpb)", (ctx) => {
  const mod = loadAddOne(ctx);
  try {
    const addOne = mod.kernel("add_one");
    const attrs = addOne.attributes();
    const n = 100_003;
    const host = randomFloats(n);
    const x = DeviceBuffer.from(host, "x");
    const y = DeviceBuffer.alloc(host.byteLength, "y");
    try {
      const stream = ctx.device.stream();
      addOne.launch({ grid: Math.ceil(n / 256), block: 256, stream }, [arg.ptr(x), arg.i32(n)]);
      stream.synchronize();
      const got = x.read(Float32Array);
      for (let i = 0; i < n; i++) {
        if (got[i] !== Math.fround(host[i] + 1)) throw new Error(`add_one element ${i}: ${got[i]} != ${host[i]} + 1`);
      }
      // by-value struct parameter {float a; float b; int n;}
      const axpb = mod.kernel("axpb");
      const params = new DataView(new ArrayBuffer(12));
      params.setFloat32(0, 2.5, true);
      params.setFloat32(4, -1, true);
      params.setInt32(8, n - 5, true);
      y.poison();
      axpb.launch({ grid: Math.ceil(n / 128), block: 128, stream }, [arg.ptr(x), arg.ptr(y), arg.bytes(params)]);
      stream.synchronize();
      const yy = y.read(Float32Array);
      for (let i = 0; i < n - 5; i++) {
        const want = Math.fround(Math.fround(2.5 * got[i]) - 1);
        if (Math.abs(yy[i] - want) > 1e-6) throw new Error(`axpb element ${i}: ${yy[i]} != ${want}`);
      }
      for (let i = n - 5; i < n; i++) assert(Number.isNaN(yy[i]), `axpb wrote element ${i} past n`);
      stream.destroy();
      return `add_one over ${n} floats and axpb (struct by value) exact; add_one uses ${attrs.numRegs} registers, ${attrs.localBytes} B local`;
    } finally {
      x.free();
      y.free();
    }
  } finally {
    mod.unload();
  }
});

gpuCase("runtime: CUDA graph capture and replay", (ctx) => {
  const mod = loadAddOne(ctx);
  const n = 4097;
  const host = randomFloats(n);
  const x = DeviceBuffer.from(host, "graph-x");
  const stream = ctx.device.stream();
  try {
    const k = mod.kernel("add_one");
    const exec = stream.capture((s) => {
      k.launch({ grid: Math.ceil(n / 256), block: 256, stream: s }, [arg.ptr(x), arg.i32(n)]);
      k.launch({ grid: Math.ceil(n / 256), block: 256, stream: s }, [arg.ptr(x), arg.i32(n)]);
    });
    // capture enqueues nothing: x is unchanged until the graph is launched
    stream.synchronize();
    const before = x.read(Float32Array);
    assert(before[0] === host[0] && before[n - 1] === host[n - 1], "capture ran no work");
    const replays = 3;
    for (let r = 0; r < replays; r++) exec.launch(stream);
    stream.synchronize();
    const got = x.read(Float32Array);
    for (let i = 0; i < n; i++) {
      let want = host[i];
      for (let r = 0; r < 2 * replays; r++) want = Math.fround(want + 1);
      if (got[i] !== want) throw new Error(`element ${i}: ${got[i]} != ${want}`);
    }
    exec.destroy();
    return `${replays} replays of a 2-launch graph`;
  } finally {
    stream.destroy();
    x.free();
    mod.unload();
  }
});

gpuCase("runtime: event timing", (ctx) => {
  const mod = loadAddOne(ctx);
  const n = 1 << 24;
  const x = ctx.device.alloc(n * 4, "timing-x");
  const stream = ctx.device.stream();
  const timer = new EventTimer();
  try {
    x.upload(randomFloats(n));
    const k = mod.kernel("add_one");
    const times = timer.sample(stream, () => k.launch({ grid: n / 256, block: 256, stream }, [arg.ptr(x), arg.i32(n)]), 10, 3);
    const med = median(times);
    assert(times.every((t) => t > 0 && Number.isFinite(t)), `event times ${times.join(", ")}`);
    const gbps = (2 * 4 * n) / (med * 1e-3) / 1e9;
    return `add_one over ${n} floats: median ${med.toFixed(4)} ms (${gbps.toFixed(0)} GB/s read+write)`;
  } finally {
    timer.destroy();
    stream.destroy();
    x.free();
    mod.unload();
  }
});

gpuCase("runtime: CUDA errors carry their names", (ctx) => {
  const oom = expectThrows(() => ctx.device.alloc(2 ** 50, "huge"), "cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY");
  let notFound = "(no module)";
  try {
    const mod = loadAddOne(ctx);
    try {
      notFound = expectThrows(() => mod.kernel("no_such_kernel"), "CUDA_ERROR_NOT_FOUND");
    } finally {
      mod.unload();
    }
  } catch (err) {
    if (!(err instanceof Error) || err.name !== "Skip") throw err;
  }
  const bad = expectThrows(() => Module.load(Buffer.from("not a cubin\0")), "cuModuleLoadData failed: CUDA_ERROR_");
  try {
    cuda().memFree(0xdead0000n);
  } catch (err) {
    assert(err instanceof CudaError && err.errorName.startsWith("CUDA_ERROR_"), `memFree of a bad pointer: ${String(err)}`);
  }
  // the context is still usable after these errors
  const ok = ctx.device.alloc(16, "after-errors");
  ok.free();
  return [oom, notFound, bad].join(" | ");
});
