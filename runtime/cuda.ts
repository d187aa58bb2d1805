// koffi bindings to the CUDA driver API (libcuda.so.1).
//
// Representation (one rule everywhere in runtime/):
// - CUdeviceptr is a 64-bit integer: a `bigint` in TypeScript, declared `uint64_t` to koffi.
// - Opaque handles (CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUgraph, CUgraphExec)
//   are pointers, which koffi 3 represents as `bigint` too; `0n` (or null) is the NULL handle,
//   e.g. the legacy default stream.
// - Output parameters are 1-element typed arrays owned by the driver object (BigUint64Array for
//   pointers and handles, Int32Array for ints), so a call allocates nothing on the C side.
// - Host memory is passed as a TypedArray / Buffer; koffi hands C a pointer to its bytes for the
//   duration of the call only (so the async copies below must not outlive their host array).
//
// Loading is lazy: importing this module loads neither koffi's native module nor libcuda. The
// first call of `cuda()` loads libcuda.so.1 and runs cuInit(0); failures become NoCudaDriverError
// ("no CUDA driver: …") or NoCudaDeviceError ("no CUDA device …"), never a crash. Every driver
// call's CUresult is checked and a failure throws CudaError naming the CUDA error
// ("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)").
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import type KoffiModule from "koffi";

export type Koffi = typeof KoffiModule;
type KoffiFunction = ReturnType<ReturnType<Koffi["load"]>["func"]>;

/** A CUDA handle or device pointer: koffi 3 pointers and CUdeviceptr are both bigint. */
export type Handle = bigint;
export type DevicePtr = bigint;
/** Host memory koffi can pass as `const void *` / `void *`. */
export type HostMemory = ArrayBufferView;

// ---------------------------------------------------------------------------------------------
// Errors

/** Base class of "there is no usable CUDA here" errors; tests use it to decide to skip. */
export class CudaUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** libcuda.so.1 could not be loaded (no NVIDIA driver on this machine). */
export class NoCudaDriverError extends CudaUnavailableError {}

/** The driver loaded but reports no usable device. */
export class NoCudaDeviceError extends CudaUnavailableError {}

/** koffi's native module could not be loaded, so no C library can be called. */
export class NoFfiError extends CudaUnavailableError {}

/** A CUDA driver call returned a non-zero CUresult. */
export class CudaError extends Error {
  constructor(
    /** The driver function, e.g. "cuMemAlloc_v2". */
    readonly call: string,
    /** The CUresult value. */
    readonly code: number,
    /** e.g. "CUDA_ERROR_OUT_OF_MEMORY". */
    readonly errorName: string,
    /** e.g. "out of memory". */
    readonly errorString: string,
    context?: string,
  ) {
    super(`${call} failed: ${errorName} (${errorString})${context ? ` [${context}]` : ""}`);
    this.name = "CudaError";
  }
}

// ---------------------------------------------------------------------------------------------
// koffi, loaded on first use

let koffiCache: Koffi | Error | undefined;

/** koffi, loaded on first use. Throws NoFfiError if its native module is missing. */
export function loadKoffi(): Koffi {
  if (koffiCache === undefined) {
    try {
      const require = createRequire(import.meta.url);
      koffiCache = require("koffi") as Koffi;
    } catch (err) {
      koffiCache = new NoFfiError(`no FFI: the koffi native module could not be loaded (${errorText(err)})`);
    }
  }
  if (koffiCache instanceof Error) throw koffiCache;
  return koffiCache;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Constants (values from cuda.h)

export const CU_DEVICE_ATTRIBUTE = {
  CLOCK_RATE: 13,
  MULTIPROCESSOR_COUNT: 16,
  MEMORY_CLOCK_RATE: 36,
  GLOBAL_MEMORY_BUS_WIDTH: 37,
  L2_CACHE_SIZE: 38,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: 81,
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
} as const;

export const CU_FUNC_ATTRIBUTE = {
  MAX_THREADS_PER_BLOCK: 0,
  SHARED_SIZE_BYTES: 1,
  CONST_SIZE_BYTES: 2,
  LOCAL_SIZE_BYTES: 3,
  NUM_REGS: 4,
  MAX_DYNAMIC_SHARED_SIZE_BYTES: 8,
} as const;

export const CU_STREAM_DEFAULT = 0;
export const CU_STREAM_NON_BLOCKING = 1;
export const CU_EVENT_DEFAULT = 0;
export const CU_EVENT_DISABLE_TIMING = 2;
export const CU_STREAM_CAPTURE_MODE = { GLOBAL: 0, THREAD_LOCAL: 1, RELAXED: 2 } as const;

const CUDA_SUCCESS = 0;
const CUDA_ERROR_NO_DEVICE = 100;

const LIBCUDA = "libcuda.so.1";

/**
 * Where libcuda is looked for: $PODGEN_LIBCUDA if set, else the loader's search path, then the
 * places container runtimes mount the driver when they do not register it with ldconfig.
 */
function libcudaCandidates(): string[] {
  const override = process.env.PODGEN_LIBCUDA;
  if (override) return [override];
  return [
    LIBCUDA,
    "/usr/local/nvidia/lib64/libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",
    "/usr/lib/wsl/lib/libcuda.so.1",
  ];
}

// ---------------------------------------------------------------------------------------------
// Prototypes. Names are the exported (versioned) symbols; the cuda.h macros map the plain names
// onto these. Where a name changed between driver generations, alternatives are listed in order.

const PROTOTYPES = {
  cuGetErrorName: "int cuGetErrorName(int error, _Out_ const char **pStr)",
  cuGetErrorString: "int cuGetErrorString(int error, _Out_ const char **pStr)",
  cuInit: "int cuInit(uint32_t flags)",
  cuDriverGetVersion: "int cuDriverGetVersion(int32_t *version)",
  cuDeviceGetCount: "int cuDeviceGetCount(int32_t *count)",
  cuDeviceGet: "int cuDeviceGet(int32_t *device, int ordinal)",
  cuDeviceGetName: "int cuDeviceGetName(uint8_t *name, int len, int device)",
  cuDeviceGetAttribute: "int cuDeviceGetAttribute(int32_t *value, int attrib, int device)",
  cuDeviceTotalMem_v2: "int cuDeviceTotalMem_v2(uint64_t *bytes, int device)",
  cuDevicePrimaryCtxRetain: "int cuDevicePrimaryCtxRetain(void *pctx, int device)",
  cuDevicePrimaryCtxRelease_v2: "int cuDevicePrimaryCtxRelease_v2(int device)",
  cuCtxSetCurrent: "int cuCtxSetCurrent(void *ctx)",
  cuCtxGetCurrent: "int cuCtxGetCurrent(void *pctx)",
  cuCtxSynchronize: "int cuCtxSynchronize()",
  cuMemGetInfo_v2: "int cuMemGetInfo_v2(uint64_t *free, uint64_t *total)",
  cuMemAlloc_v2: "int cuMemAlloc_v2(uint64_t *dptr, size_t bytes)",
  cuMemFree_v2: "int cuMemFree_v2(uint64_t dptr)",
  cuMemcpyHtoD_v2: "int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)",
  cuMemcpyDtoH_v2: "int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes)",
  cuMemcpyDtoD_v2: "int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes)",
  cuMemcpyHtoDAsync_v2: "int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)",
  cuMemcpyDtoHAsync_v2: "int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t bytes, void *stream)",
  cuMemsetD8_v2: "int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t count)",
  cuMemsetD16_v2: "int cuMemsetD16_v2(uint64_t dst, uint16_t value, size_t count)",
  cuMemsetD32_v2: "int cuMemsetD32_v2(uint64_t dst, uint32_t value, size_t count)",
  cuMemsetD8Async: "int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t count, void *stream)",
  cuStreamCreate: "int cuStreamCreate(void *pstream, uint32_t flags)",
  cuStreamDestroy_v2: "int cuStreamDestroy_v2(void *stream)",
  cuStreamSynchronize: "int cuStreamSynchronize(void *stream)",
  cuStreamWaitEvent: "int cuStreamWaitEvent(void *stream, void *event, uint32_t flags)",
  cuStreamBeginCapture_v2: "int cuStreamBeginCapture_v2(void *stream, int mode)",
  cuStreamEndCapture: "int cuStreamEndCapture(void *stream, void *pgraph)",
  cuGraphInstantiateWithFlags: "int cuGraphInstantiateWithFlags(void *pexec, void *graph, uint64_t flags)",
  cuGraphLaunch: "int cuGraphLaunch(void *exec, void *stream)",
  cuGraphExecDestroy: "int cuGraphExecDestroy(void *exec)",
  cuGraphDestroy: "int cuGraphDestroy(void *graph)",
  cuEventCreate: "int cuEventCreate(void *pevent, uint32_t flags)",
  cuEventRecord: "int cuEventRecord(void *event, void *stream)",
  cuEventSynchronize: "int cuEventSynchronize(void *event)",
  cuEventElapsedTime: "int cuEventElapsedTime(float *ms, void *start, void *end)",
  cuEventDestroy_v2: "int cuEventDestroy_v2(void *event)",
  cuModuleLoadData: "int cuModuleLoadData(void *pmodule, const void *image)",
  cuModuleUnload: "int cuModuleUnload(void *module)",
  cuModuleGetFunction: "int cuModuleGetFunction(void *pfunc, void *module, const char *name)",
  cuFuncGetAttribute: "int cuFuncGetAttribute(int32_t *value, int attrib, void *func)",
  cuFuncSetAttribute: "int cuFuncSetAttribute(void *func, int attrib, int value)",
  cuLaunchKernel:
    "int cuLaunchKernel(void *func, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t bx, uint32_t by, uint32_t bz, " +
    "uint32_t sharedMemBytes, void *stream, void **kernelParams, void **extra)",
} as const;

/** Symbols tried in order when the first is missing from an older or newer driver. */
const ALTERNATIVES: Partial<Record<keyof typeof PROTOTYPES, string[]>> = {
  // CUDA 12.8+ headers map cuEventElapsedTime to _v2 (same signature); older drivers lack it.
  cuEventElapsedTime: ["cuEventElapsedTime_v2", "cuEventElapsedTime"],
};

type FnName = keyof typeof PROTOTYPES;

// ---------------------------------------------------------------------------------------------
// The driver

export interface DeviceInfo {
  ordinal: number;
  name: string;
  /** Multiprocessors. */
  sms: number;
  ccMajor: number;
  ccMinor: number;
  /** "sm_90" style name of the compute capability. */
  arch: string;
  maxSharedMemoryPerBlockOptin: number;
  maxSharedMemoryPerSm: number;
  l2Bytes: number;
  totalMemoryBytes: bigint;
  /** cuDriverGetVersion, e.g. 13000. */
  cudaDriverVersion: number;
  /** The same as "13.0". */
  cudaVersion: string;
  /** Kernel-module driver version from /proc/driver/nvidia/version, e.g. "580.95.05"; "" if unreadable. */
  driverVersion: string;
}

/**
 * Typed wrappers of the driver API. Get the process-wide instance with `cuda()`.
 * Every method throws CudaError on a non-zero CUresult.
 */
export class CudaDriver {
  private readonly fns: Record<FnName, KoffiFunction>;
  /** The exported symbol each function is bound to (named in error messages). */
  private readonly symbols = {} as Record<FnName, string>;
  private readonly outPtr = new BigUint64Array(1);
  private readonly outPtr2 = new BigUint64Array(1);
  private readonly outInt = new Int32Array(1);
  private readonly outFloat = new Float32Array(1);
  private readonly outStr: (string | null)[] = [null];

  /** @internal use cuda() */
  constructor(readonly koffi: Koffi, private readonly lib: ReturnType<Koffi["load"]>) {
    const fns = {} as Record<FnName, KoffiFunction>;
    for (const name of Object.keys(PROTOTYPES) as FnName[]) {
      fns[name] = this.bind(name);
    }
    this.fns = fns;
  }

  private bind(name: FnName): KoffiFunction {
    const proto = PROTOTYPES[name];
    const symbols = ALTERNATIVES[name] ?? [name];
    let lastErr: unknown;
    for (const sym of symbols) {
      try {
        const fn = this.lib.func(proto.replace(` ${name}(`, ` ${sym}(`));
        this.symbols[name] = sym;
        return fn;
      } catch (err) {
        lastErr = err;
      }
    }
    // A symbol this driver lacks: fail when (and only if) it is called.
    const reason = errorText(lastErr);
    const missing = (() => {
      throw new CudaError(name, -1, "CUDA_ERROR_NOT_SUPPORTED", `the driver does not export ${symbols.join(" or ")}: ${reason}`);
    }) as unknown as KoffiFunction;
    return missing;
  }

  /** Throws CudaError if `status` is not CUDA_SUCCESS. */
  check(call: string, status: number, context?: string): void {
    if (status !== CUDA_SUCCESS) {
      throw new CudaError(call, status, this.errorName(status), this.errorString(status), context);
    }
  }

  private call(name: FnName, ...args: unknown[]): void {
    this.check(this.symbols[name] ?? name, this.fns[name](...args) as number);
  }

  /** "CUDA_ERROR_OUT_OF_MEMORY" for 2; "CUDA_ERROR_<code>" where the driver does not know it. */
  errorName(code: number): string {
    this.outStr[0] = null;
    const ok = (this.fns.cuGetErrorName(code, this.outStr) as number) === CUDA_SUCCESS;
    return ok && this.outStr[0] ? this.outStr[0] : `CUDA_ERROR_${code}`;
  }

  errorString(code: number): string {
    this.outStr[0] = null;
    const ok = (this.fns.cuGetErrorString(code, this.outStr) as number) === CUDA_SUCCESS;
    return ok && this.outStr[0] ? this.outStr[0] : "unknown error";
  }

  // --- init, version, devices ---

  /** @internal cuInit(0); raw status so the caller can map "no device". */
  initStatus(): number {
    return this.fns.cuInit(0) as number;
  }

  driverVersion(): number {
    this.call("cuDriverGetVersion", this.outInt);
    return this.outInt[0];
  }

  deviceCount(): number {
    this.call("cuDeviceGetCount", this.outInt);
    return this.outInt[0];
  }

  /** CUdevice (an int) of an ordinal. */
  device(ordinal: number): number {
    this.call("cuDeviceGet", this.outInt, ordinal);
    return this.outInt[0];
  }

  deviceName(device: number): string {
    const buf = Buffer.alloc(256);
    this.call("cuDeviceGetName", buf, buf.length, device);
    const end = buf.indexOf(0);
    return buf.toString("utf8", 0, end < 0 ? buf.length : end);
  }

  deviceAttribute(device: number, attribute: number): number {
    this.call("cuDeviceGetAttribute", this.outInt, attribute, device);
    return this.outInt[0];
  }

  deviceTotalMem(device: number): bigint {
    this.call("cuDeviceTotalMem_v2", this.outPtr, device);
    return this.outPtr[0];
  }

  // --- contexts ---

  /** Retains the device's primary context (the one the CUDA runtime API uses). */
  primaryCtxRetain(device: number): Handle {
    this.call("cuDevicePrimaryCtxRetain", this.outPtr, device);
    return this.outPtr[0];
  }

  primaryCtxRelease(device: number): void {
    this.call("cuDevicePrimaryCtxRelease_v2", device);
  }

  ctxSetCurrent(ctx: Handle): void {
    this.call("cuCtxSetCurrent", ctx);
  }

  ctxGetCurrent(): Handle {
    this.call("cuCtxGetCurrent", this.outPtr);
    return this.outPtr[0];
  }

  ctxSynchronize(): void {
    this.call("cuCtxSynchronize");
  }

  // --- memory ---

  memGetInfo(): { free: bigint; total: bigint } {
    this.call("cuMemGetInfo_v2", this.outPtr, this.outPtr2);
    return { free: this.outPtr[0], total: this.outPtr2[0] };
  }

  memAlloc(bytes: number | bigint): DevicePtr {
    this.call("cuMemAlloc_v2", this.outPtr, bytes);
    return this.outPtr[0];
  }

  memFree(ptr: DevicePtr): void {
    this.call("cuMemFree_v2", ptr);
  }

  memcpyHtoD(dst: DevicePtr, src: HostMemory, bytes: number = src.byteLength): void {
    hostRange("cuMemcpyHtoD_v2", src, bytes);
    this.call("cuMemcpyHtoD_v2", dst, src, bytes);
  }

  memcpyDtoH(dst: HostMemory, src: DevicePtr, bytes: number = dst.byteLength): void {
    hostRange("cuMemcpyDtoH_v2", dst, bytes);
    this.call("cuMemcpyDtoH_v2", dst, src, bytes);
  }

  memcpyDtoD(dst: DevicePtr, src: DevicePtr, bytes: number | bigint): void {
    this.call("cuMemcpyDtoD_v2", dst, src, bytes);
  }

  /**
   * Asynchronous copies. The host array must stay alive and unchanged until the stream has
   * passed the copy (JS memory is pageable, so the driver may stage it; still, keep it alive).
   */
  memcpyHtoDAsync(dst: DevicePtr, src: HostMemory, bytes: number, stream: Handle | null): void {
    hostRange("cuMemcpyHtoDAsync_v2", src, bytes);
    this.call("cuMemcpyHtoDAsync_v2", dst, src, bytes, stream);
  }

  memcpyDtoHAsync(dst: HostMemory, src: DevicePtr, bytes: number, stream: Handle | null): void {
    hostRange("cuMemcpyDtoHAsync_v2", dst, bytes);
    this.call("cuMemcpyDtoHAsync_v2", dst, src, bytes, stream);
  }

  memsetD8(dst: DevicePtr, value: number, count: number | bigint): void {
    this.call("cuMemsetD8_v2", dst, value, count);
  }

  memsetD16(dst: DevicePtr, value: number, count: number | bigint): void {
    this.call("cuMemsetD16_v2", dst, value, count);
  }

  memsetD32(dst: DevicePtr, value: number, count: number | bigint): void {
    this.call("cuMemsetD32_v2", dst, value, count);
  }

  memsetD8Async(dst: DevicePtr, value: number, count: number | bigint, stream: Handle | null): void {
    this.call("cuMemsetD8Async", dst, value, count, stream);
  }

  // --- streams, graphs, events ---

  streamCreate(flags: number = CU_STREAM_NON_BLOCKING): Handle {
    this.call("cuStreamCreate", this.outPtr, flags);
    return this.outPtr[0];
  }

  streamDestroy(stream: Handle): void {
    this.call("cuStreamDestroy_v2", stream);
  }

  streamSynchronize(stream: Handle | null): void {
    this.call("cuStreamSynchronize", stream);
  }

  /** Makes future work on `stream` wait for the last record of `event` (cuStreamWaitEvent). */
  streamWaitEvent(stream: Handle | null, event: Handle): void {
    this.call("cuStreamWaitEvent", stream, event, 0);
  }

  streamBeginCapture(stream: Handle, mode: number = CU_STREAM_CAPTURE_MODE.THREAD_LOCAL): void {
    this.call("cuStreamBeginCapture_v2", stream, mode);
  }

  /** Ends a capture and returns the captured CUgraph. */
  streamEndCapture(stream: Handle): Handle {
    this.call("cuStreamEndCapture", stream, this.outPtr);
    return this.outPtr[0];
  }

  graphInstantiate(graph: Handle, flags: number = 0): Handle {
    this.call("cuGraphInstantiateWithFlags", this.outPtr, graph, flags);
    return this.outPtr[0];
  }

  graphLaunch(exec: Handle, stream: Handle | null): void {
    this.call("cuGraphLaunch", exec, stream);
  }

  graphExecDestroy(exec: Handle): void {
    this.call("cuGraphExecDestroy", exec);
  }

  graphDestroy(graph: Handle): void {
    this.call("cuGraphDestroy", graph);
  }

  eventCreate(flags: number = CU_EVENT_DEFAULT): Handle {
    this.call("cuEventCreate", this.outPtr, flags);
    return this.outPtr[0];
  }

  eventRecord(event: Handle, stream: Handle | null): void {
    this.call("cuEventRecord", event, stream);
  }

  eventSynchronize(event: Handle): void {
    this.call("cuEventSynchronize", event);
  }

  /** Milliseconds between two recorded, completed events. */
  eventElapsedTime(start: Handle, end: Handle): number {
    this.call("cuEventElapsedTime", this.outFloat, start, end);
    return this.outFloat[0];
  }

  eventDestroy(event: Handle): void {
    this.call("cuEventDestroy_v2", event);
  }

  // --- modules and launches ---

  /** Loads a cubin, fatbin or NUL-terminated PTX image. */
  moduleLoadData(image: HostMemory): Handle {
    this.call("cuModuleLoadData", this.outPtr, image);
    return this.outPtr[0];
  }

  moduleUnload(module: Handle): void {
    this.call("cuModuleUnload", module);
  }

  moduleGetFunction(module: Handle, name: string): Handle {
    const status = this.fns.cuModuleGetFunction(this.outPtr, module, name) as number;
    this.check("cuModuleGetFunction", status, `kernel "${name}"`);
    return this.outPtr[0];
  }

  funcGetAttribute(func: Handle, attribute: number): number {
    this.call("cuFuncGetAttribute", this.outInt, attribute, func);
    return this.outInt[0];
  }

  funcSetAttribute(func: Handle, attribute: number, value: number): void {
    this.call("cuFuncSetAttribute", func, attribute, value);
  }

  /**
   * cuLaunchKernel. `params` holds one host array per kernel parameter, each holding that
   * parameter's bytes (e.g. a BigUint64Array [ptr] for a pointer, an Int32Array [n] for an int,
   * a Uint8Array with a struct's bytes); koffi passes the array of their addresses as void**.
   */
  launchKernel(
    func: Handle,
    grid: readonly [number, number, number],
    block: readonly [number, number, number],
    sharedMemBytes: number,
    stream: Handle | null,
    params: readonly HostMemory[],
  ): void {
    this.call(
      "cuLaunchKernel",
      func,
      grid[0], grid[1], grid[2],
      block[0], block[1], block[2],
      sharedMemBytes,
      stream,
      params.length > 0 ? params : null,
      null,
    );
  }
}

function hostRange(call: string, host: HostMemory, bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > host.byteLength) {
    throw new RangeError(`${call}: ${bytes} bytes requested but the host array holds ${host.byteLength} bytes`);
  }
}

// ---------------------------------------------------------------------------------------------
// Process-wide instance

let driverCache: CudaDriver | Error | undefined;

/**
 * The process-wide driver: loads libcuda.so.1 and runs cuInit(0) on the first call.
 * Throws NoFfiError, NoCudaDriverError, NoCudaDeviceError or CudaError (cached: later calls
 * throw the same error without retrying).
 */
export function cuda(): CudaDriver {
  if (driverCache === undefined) driverCache = openDriver();
  if (driverCache instanceof Error) throw driverCache;
  return driverCache;
}

function openDriver(): CudaDriver | Error {
  let koffi: Koffi;
  try {
    koffi = loadKoffi();
  } catch (err) {
    return err as Error;
  }
  let lib: ReturnType<Koffi["load"]> | undefined;
  let firstErr: unknown;
  for (const candidate of libcudaCandidates()) {
    try {
      lib = koffi.load(candidate);
      break;
    } catch (err) {
      firstErr ??= err;
    }
  }
  if (!lib) return new NoCudaDriverError(`no CUDA driver: ${LIBCUDA} could not be loaded (${errorText(firstErr)})`);
  try {
    const driver = new CudaDriver(koffi, lib);
    const status = driver.initStatus();
    if (status === CUDA_ERROR_NO_DEVICE) {
      return new NoCudaDeviceError(`no CUDA device: cuInit returned ${driver.errorName(status)} (${driver.errorString(status)})`);
    }
    driver.check("cuInit", status);
    if (driver.deviceCount() === 0) return new NoCudaDeviceError("no CUDA device: cuDeviceGetCount returned 0");
    return driver;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** "580.95.05" from /proc/driver/nvidia/version, or "" where unreadable. */
export function nvidiaKernelDriverVersion(): string {
  try {
    const text = readFileSync("/proc/driver/nvidia/version", "utf8");
    return /Kernel Module(?: for [^ ]+)?\s+([0-9][0-9.]+)/.exec(text)?.[1] ?? "";
  } catch {
    return "";
  }
}

/** Reads the facts about one device that podgen uses (no context needed). */
export function deviceInfo(ordinal = 0): DeviceInfo {
  const d = cuda();
  const count = d.deviceCount();
  if (ordinal < 0 || ordinal >= count || !Number.isInteger(ordinal)) {
    throw new NoCudaDeviceError(`no CUDA device ${ordinal}: the driver reports ${count} device(s)`);
  }
  const dev = d.device(ordinal);
  const attr = (a: number) => d.deviceAttribute(dev, a);
  const ccMajor = attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MAJOR);
  const ccMinor = attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MINOR);
  const version = d.driverVersion();
  return {
    ordinal,
    name: d.deviceName(dev),
    sms: attr(CU_DEVICE_ATTRIBUTE.MULTIPROCESSOR_COUNT),
    ccMajor,
    ccMinor,
    arch: `sm_${ccMajor}${ccMinor}`,
    maxSharedMemoryPerBlockOptin: attr(CU_DEVICE_ATTRIBUTE.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
    maxSharedMemoryPerSm: attr(CU_DEVICE_ATTRIBUTE.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR),
    l2Bytes: attr(CU_DEVICE_ATTRIBUTE.L2_CACHE_SIZE),
    totalMemoryBytes: d.deviceTotalMem(dev),
    cudaDriverVersion: version,
    cudaVersion: `${Math.floor(version / 1000)}.${Math.floor((version % 1000) / 10)}`,
    driverVersion: nvidiaKernelDriverVersion(),
  };
}

export type CudaAvailability = { ok: true; device: DeviceInfo } | { ok: false; reason: string };

/**
 * Whether CUDA can be used here, with device 0's facts; never throws. Tests use it to skip.
 */
export function cudaAvailable(ordinal = 0): CudaAvailability {
  try {
    return { ok: true, device: deviceInfo(ordinal) };
  } catch (err) {
    return { ok: false, reason: errorText(err) };
  }
}
