// Device, DeviceBuffer, Stream, Event, CUDA graphs and cubin kernels on top of runtime/cuda.ts.
//
// Everything runs in the device's *primary* context (cuDevicePrimaryCtxRetain), the context the
// CUDA runtime API inside built kernel libraries uses too, so device pointers and streams made
// here can be passed to them and back. Nothing that launches (Kernel.launch, GraphExec.launch)
// allocates device memory or synchronizes.
import { readFileSync } from "node:fs";
import {
  CU_EVENT_DEFAULT,
  CU_FUNC_ATTRIBUTE,
  CU_STREAM_CAPTURE_MODE,
  CU_STREAM_NON_BLOCKING,
  cuda,
  deviceInfo,
  type DeviceInfo,
  type DevicePtr,
  type Handle,
  type HostMemory,
} from "./cuda.ts";

/** What runtime functions accept as a stream: a Stream, a raw CUstream, or null/0n (default stream). */
export type StreamLike = Stream | Handle | null | undefined;

/** The raw CUstream of a StreamLike (0n: the legacy default stream). */
export function streamHandle(stream: StreamLike): Handle {
  if (stream === null || stream === undefined) return 0n;
  return typeof stream === "bigint" ? stream : stream.handle;
}

// ---------------------------------------------------------------------------------------------
// Device

export class Device {
  private static readonly open_ = new Map<number, Device>();
  private static current_: Device | undefined;

  /** CUcontext of the primary context. */
  readonly context: Handle;
  /** CUdevice. */
  readonly cuDevice: number;
  private released = false;

  private constructor(readonly info: DeviceInfo) {
    const d = cuda();
    this.cuDevice = d.device(info.ordinal);
    this.context = d.primaryCtxRetain(this.cuDevice);
    d.ctxSetCurrent(this.context);
  }

  /**
   * Retains device `ordinal`'s primary context and makes it current. Opening an ordinal twice
   * returns the same Device. Throws NoCudaDriverError / NoCudaDeviceError where there is no CUDA.
   */
  static open(ordinal = 0): Device {
    let dev = Device.open_.get(ordinal);
    if (!dev || dev.released) {
      dev = new Device(deviceInfo(ordinal));
      Device.open_.set(ordinal, dev);
    }
    dev.makeCurrent();
    return dev;
  }

  /** The device made current last (by open or makeCurrent); throws if none was opened. */
  static current(): Device {
    if (!Device.current_ || Device.current_.released) {
      throw new Error("no CUDA device is open: call Device.open() first");
    }
    return Device.current_;
  }

  get ordinal(): number { return this.info.ordinal; }
  get name(): string { return this.info.name; }
  get sms(): number { return this.info.sms; }
  get arch(): string { return this.info.arch; }

  makeCurrent(): void {
    this.assertOpen();
    cuda().ctxSetCurrent(this.context);
    Device.current_ = this;
  }

  /** Waits for all work in the context (cuCtxSynchronize). */
  synchronize(): void {
    this.assertOpen();
    cuda().ctxSynchronize();
  }

  memInfo(): { free: bigint; total: bigint } {
    this.assertOpen();
    return cuda().memGetInfo();
  }

  alloc(bytes: number, label?: string): DeviceBuffer {
    this.makeCurrent();
    return DeviceBuffer.alloc(bytes, label);
  }

  stream(flags = CU_STREAM_NON_BLOCKING): Stream {
    this.makeCurrent();
    return Stream.create(flags);
  }

  event(flags = CU_EVENT_DEFAULT): Event {
    this.makeCurrent();
    return Event.create(flags);
  }

  /** Loads a cubin / fatbin / PTX image given as bytes or a file path. */
  loadModule(image: HostMemory | string): Module {
    this.makeCurrent();
    return Module.load(image);
  }

  /** Releases the primary context (buffers, streams, modules of this device become invalid). */
  close(): void {
    if (this.released) return;
    this.released = true;
    Device.open_.delete(this.ordinal);
    if (Device.current_ === this) Device.current_ = undefined;
    cuda().primaryCtxRelease(this.cuDevice);
  }

  private assertOpen(): void {
    if (this.released) throw new Error(`CUDA device ${this.ordinal} (${this.name}) was closed`);
  }
}

// ---------------------------------------------------------------------------------------------
// DeviceBuffer

/** The byte a fresh buffer is poisoned with: 0xFF.. is NaN in fp32, fp16 and bf16. */
export const POISON_BYTE = 0xff;

/** A device allocation (cuMemAlloc) with checked uploads and downloads. */
export class DeviceBuffer {
  private ptr_: DevicePtr;

  private constructor(ptr: DevicePtr, readonly bytes: number, readonly label: string) {
    this.ptr_ = ptr;
  }

  /** Allocates `bytes` in the current device's context (Device.open first). */
  static alloc(bytes: number, label = "buffer"): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(`cannot allocate device buffer "${label}": ${bytes} is not a byte count`);
    }
    Device.current();
    // cuMemAlloc rejects 0 bytes; a zero-size buffer is a valid, empty one with a NULL pointer.
    const ptr = bytes === 0 ? 0n : cuda().memAlloc(bytes);
    return new DeviceBuffer(ptr, bytes, label);
  }

  /** Allocates a buffer that holds `data` and uploads it. */
  static from(data: HostMemory, label = "buffer"): DeviceBuffer {
    const buf = DeviceBuffer.alloc(data.byteLength, label);
    buf.upload(data);
    return buf;
  }

  /** The device address (CUdeviceptr). Throws after free(). */
  get ptr(): DevicePtr {
    if (this.freed) throw new Error(`device buffer "${this.label}" was freed`);
    return this.ptr_;
  }

  get freed(): boolean {
    return this.ptr_ < 0n;
  }

  /** Address of byte `offset` (checked against the size). */
  at(offset: number): DevicePtr {
    this.checkRange("address", offset, 0);
    return this.ptr + BigInt(offset);
  }

  /** Copies `src` to byte `offset` (synchronous, or ordered on `stream` when one is given). */
  upload(src: HostMemory, offset = 0, stream?: StreamLike): this {
    this.checkRange("upload", offset, src.byteLength);
    if (src.byteLength === 0) return this;
    const dst = this.ptr + BigInt(offset);
    if (stream === undefined) cuda().memcpyHtoD(dst, src, src.byteLength);
    else cuda().memcpyHtoDAsync(dst, src, src.byteLength, streamHandle(stream));
    return this;
  }

  /** Copies `into.byteLength` bytes from byte `offset` into `into` (synchronous); returns `into`. */
  download<T extends HostMemory>(into: T, offset = 0): T {
    this.checkRange("download", offset, into.byteLength);
    if (into.byteLength > 0) cuda().memcpyDtoH(into, this.ptr + BigInt(offset), into.byteLength);
    return into;
  }

  /** Downloads the whole buffer as a new typed array of `ctor`. */
  read<T extends HostMemory>(ctor: { new (length: number): T; BYTES_PER_ELEMENT: number }): T {
    if (this.bytes % ctor.BYTES_PER_ELEMENT !== 0) {
      throw new RangeError(
        `device buffer "${this.label}" holds ${this.bytes} bytes, not a whole number of ${ctor.BYTES_PER_ELEMENT}-byte elements`,
      );
    }
    return this.download(new ctor(this.bytes / ctor.BYTES_PER_ELEMENT));
  }

  /** Sets `bytes` bytes from `offset` to `byte` (cuMemsetD8; on `stream` when given). */
  fill(byte: number, offset = 0, bytes = this.bytes - offset, stream?: StreamLike): this {
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new RangeError(`fill byte ${byte} is not in 0..255`);
    this.checkRange("fill", offset, bytes);
    if (bytes === 0) return this;
    const dst = this.ptr + BigInt(offset);
    if (stream === undefined) cuda().memsetD8(dst, byte, bytes);
    else cuda().memsetD8Async(dst, byte, bytes, streamHandle(stream));
    return this;
  }

  /** Fills with 0xFF bytes: NaN in every float format, so unwritten outputs are caught. */
  poison(stream?: StreamLike): this {
    return this.fill(POISON_BYTE, 0, this.bytes, stream);
  }

  /** Copies `bytes` bytes from another device buffer. */
  copyFrom(src: DeviceBuffer, bytes = src.bytes, dstOffset = 0, srcOffset = 0): this {
    this.checkRange("copy into", dstOffset, bytes);
    src.checkRange("copy from", srcOffset, bytes);
    if (bytes > 0) cuda().memcpyDtoD(this.ptr + BigInt(dstOffset), src.ptr + BigInt(srcOffset), bytes);
    return this;
  }

  /** Frees the allocation (idempotent). */
  free(): void {
    if (this.freed) return;
    const ptr = this.ptr_;
    this.ptr_ = -1n;
    if (ptr !== 0n) cuda().memFree(ptr);
  }

  private checkRange(what: string, offset: number, bytes: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(bytes) || bytes < 0 || offset + bytes > this.bytes) {
      throw new RangeError(
        `${what} of ${bytes} bytes at offset ${offset} does not fit device buffer "${this.label}" of ${this.bytes} bytes`,
      );
    }
    if (this.freed) throw new Error(`${what}: device buffer "${this.label}" was freed`);
  }
}

// ---------------------------------------------------------------------------------------------
// Streams, events, graphs

export class Stream {
  private constructor(private handle_: Handle) {}

  /** A new stream in the current context (non-blocking w.r.t. the legacy default stream). */
  static create(flags = CU_STREAM_NON_BLOCKING): Stream {
    Device.current();
    return new Stream(cuda().streamCreate(flags));
  }

  get handle(): Handle {
    if (this.handle_ < 0n) throw new Error("stream was destroyed");
    return this.handle_;
  }

  synchronize(): void {
    cuda().streamSynchronize(this.handle);
  }

  /** Makes work enqueued on this stream from now on wait for `event`'s last record. */
  waitEvent(event: Event): this {
    cuda().streamWaitEvent(this.handle, event.handle);
    return this;
  }

  /**
   * Captures the work `body` enqueues on this stream into a CUDA graph and instantiates it.
   * Capture mode THREAD_LOCAL. The graph itself is destroyed once instantiated.
   */
  capture(body: (stream: Stream) => void): GraphExec {
    const d = cuda();
    d.streamBeginCapture(this.handle, CU_STREAM_CAPTURE_MODE.THREAD_LOCAL);
    let graph: Handle;
    try {
      body(this);
    } catch (err) {
      try {
        const g = d.streamEndCapture(this.handle);
        if (g !== 0n) d.graphDestroy(g);
      } catch {
        // the capture is already invalid; the original error matters
      }
      throw err;
    }
    graph = d.streamEndCapture(this.handle);
    try {
      return new GraphExec(d.graphInstantiate(graph));
    } finally {
      d.graphDestroy(graph);
    }
  }

  destroy(): void {
    if (this.handle_ < 0n) return;
    const h = this.handle_;
    this.handle_ = -1n;
    cuda().streamDestroy(h);
  }
}

/** An instantiated CUDA graph (cuGraphInstantiateWithFlags). */
export class GraphExec {
  constructor(private handle_: Handle) {}

  get handle(): Handle {
    if (this.handle_ < 0n) throw new Error("graph exec was destroyed");
    return this.handle_;
  }

  launch(stream?: StreamLike): void {
    cuda().graphLaunch(this.handle, streamHandle(stream));
  }

  destroy(): void {
    if (this.handle_ < 0n) return;
    const h = this.handle_;
    this.handle_ = -1n;
    cuda().graphExecDestroy(h);
  }
}

export class Event {
  private constructor(private handle_: Handle) {}

  static create(flags = CU_EVENT_DEFAULT): Event {
    Device.current();
    return new Event(cuda().eventCreate(flags));
  }

  get handle(): Handle {
    if (this.handle_ < 0n) throw new Error("event was destroyed");
    return this.handle_;
  }

  record(stream?: StreamLike): this {
    cuda().eventRecord(this.handle, streamHandle(stream));
    return this;
  }

  synchronize(): void {
    cuda().eventSynchronize(this.handle);
  }

  /** Milliseconds from `start` to this event; waits for this event first. */
  elapsedMs(start: Event): number {
    this.synchronize();
    return cuda().eventElapsedTime(start.handle, this.handle);
  }

  destroy(): void {
    if (this.handle_ < 0n) return;
    const h = this.handle_;
    this.handle_ = -1n;
    cuda().eventDestroy(h);
  }
}

/**
 * Times GPU work with a reusable pair of events: `time(stream, body)` records an event, runs
 * `body` (which enqueues work on `stream`), records a second event and returns the milliseconds
 * between them (synchronizing on the second). Warm up and take medians in the caller.
 */
export class EventTimer {
  private readonly start = Event.create();
  private readonly end = Event.create();

  time(stream: StreamLike, body: () => void): number {
    this.start.record(stream);
    body();
    this.end.record(stream);
    return this.end.elapsedMs(this.start);
  }

  /** Runs `body` `warmup` times, then times `repeats` runs; returns every time in ms. */
  sample(stream: StreamLike, body: () => void, repeats: number, warmup = 1): number[] {
    for (let i = 0; i < warmup; i++) body();
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) times.push(this.time(stream, body));
    return times;
  }

  destroy(): void {
    this.start.destroy();
    this.end.destroy();
  }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------------------------------------
// Modules and kernels

export class Module {
  private constructor(private handle_: Handle) {}

  /** cuModuleLoadData of a cubin / fatbin / PTX image, given as bytes or a file path. */
  static load(image: HostMemory | string): Module {
    Device.current();
    let bytes: HostMemory = typeof image === "string" ? readFileSync(image) : image;
    // PTX must be NUL-terminated; a cubin/fatbin ignores trailing bytes.
    if (typeof image === "string" && image.endsWith(".ptx")) bytes = Buffer.concat([bytes as Buffer, Buffer.alloc(1)]);
    return new Module(cuda().moduleLoadData(bytes));
  }

  get handle(): Handle {
    if (this.handle_ < 0n) throw new Error("module was unloaded");
    return this.handle_;
  }

  /** The `extern "C"` kernel `name` (CudaError CUDA_ERROR_NOT_FOUND if absent). */
  kernel(name: string): Kernel {
    return new Kernel(this, name, cuda().moduleGetFunction(this.handle, name));
  }

  unload(): void {
    if (this.handle_ < 0n) return;
    const h = this.handle_;
    this.handle_ = -1n;
    cuda().moduleUnload(h);
  }
}

/** One kernel parameter: its C type and value. */
export type KernelArg =
  | { type: "ptr"; value: DevicePtr | DeviceBuffer | null }
  | { type: "i32" | "u32" | "f32"; value: number }
  | { type: "i64" | "u64"; value: bigint | number }
  | { type: "f64"; value: number }
  | { type: "bytes"; value: HostMemory };

/** Constructors of typed kernel arguments: `kernel.launch(cfg, [arg.ptr(x), arg.i32(n)])`. */
export const arg = {
  ptr: (value: DevicePtr | DeviceBuffer | null): KernelArg => ({ type: "ptr", value }),
  i32: (value: number): KernelArg => ({ type: "i32", value }),
  u32: (value: number): KernelArg => ({ type: "u32", value }),
  f32: (value: number): KernelArg => ({ type: "f32", value }),
  f64: (value: number): KernelArg => ({ type: "f64", value }),
  i64: (value: bigint | number): KernelArg => ({ type: "i64", value }),
  u64: (value: bigint | number): KernelArg => ({ type: "u64", value }),
  /** A by-value struct: its bytes, laid out as the kernel expects. */
  bytes: (value: HostMemory): KernelArg => ({ type: "bytes", value }),
};

export interface LaunchConfig {
  grid: number | readonly [number, number?, number?];
  block: number | readonly [number, number?, number?];
  sharedMemBytes?: number;
  stream?: StreamLike;
}

export interface KernelAttributes {
  numRegs: number;
  localBytes: number;
  staticSharedBytes: number;
  maxThreadsPerBlock: number;
}

function dim3(d: LaunchConfig["grid"], what: string): [number, number, number] {
  const v: [number, number, number] = typeof d === "number" ? [d, 1, 1] : [d[0], d[1] ?? 1, d[2] ?? 1];
  for (const x of v) {
    if (!Number.isInteger(x) || x < 1 || x > 0xffffffff) throw new RangeError(`${what} dimension ${x} is not a positive 32-bit integer`);
  }
  return v;
}

/**
 * A kernel of a loaded module. launch() encodes the arguments into parameter slots this object
 * keeps between launches (host scratch only; no device allocation, no synchronization).
 */
export class Kernel {
  private slots: Uint8Array[] = [];
  private views: DataView[] = [];

  constructor(readonly module: Module, readonly name: string, readonly handle: Handle) {}

  attributes(): KernelAttributes {
    const d = cuda();
    const a = (x: number) => d.funcGetAttribute(this.handle, x);
    return {
      numRegs: a(CU_FUNC_ATTRIBUTE.NUM_REGS),
      localBytes: a(CU_FUNC_ATTRIBUTE.LOCAL_SIZE_BYTES),
      staticSharedBytes: a(CU_FUNC_ATTRIBUTE.SHARED_SIZE_BYTES),
      maxThreadsPerBlock: a(CU_FUNC_ATTRIBUTE.MAX_THREADS_PER_BLOCK),
    };
  }

  /** Allows dynamic shared memory above 48 KiB (cuFuncSetAttribute). */
  setMaxDynamicSharedMemory(bytes: number): void {
    cuda().funcSetAttribute(this.handle, CU_FUNC_ATTRIBUTE.MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
  }

  launch(config: LaunchConfig, args: readonly KernelArg[]): void {
    const grid = dim3(config.grid, `kernel ${this.name}: grid`);
    const block = dim3(config.block, `kernel ${this.name}: block`);
    if (this.slots.length !== args.length) {
      this.slots.length = args.length;
      this.views.length = args.length;
    }
    for (let i = 0; i < args.length; i++) this.encode(i, args[i]);
    cuda().launchKernel(this.handle, grid, block, config.sharedMemBytes ?? 0, streamHandle(config.stream), this.slots);
  }

  private slot(i: number, bytes: number): DataView {
    let s = this.slots[i];
    if (!s || s.byteLength !== bytes) {
      // 8-byte aligned backing store of exactly `bytes` visible bytes
      s = new Uint8Array(new ArrayBuffer(Math.max(8, (bytes + 7) & ~7)), 0, bytes);
      this.slots[i] = s;
      this.views[i] = new DataView(s.buffer, 0, bytes);
    }
    return this.views[i];
  }

  private encode(i: number, a: KernelArg): void {
    switch (a.type) {
      case "ptr": {
        const v = a.value === null ? 0n : typeof a.value === "bigint" ? a.value : a.value.ptr;
        this.slot(i, 8).setBigUint64(0, v, true);
        return;
      }
      case "i32": this.slot(i, 4).setInt32(0, a.value, true); return;
      case "u32": this.slot(i, 4).setUint32(0, a.value >>> 0, true); return;
      case "f32": this.slot(i, 4).setFloat32(0, a.value, true); return;
      case "f64": this.slot(i, 8).setFloat64(0, a.value, true); return;
      case "i64": this.slot(i, 8).setBigInt64(0, BigInt(a.value), true); return;
      case "u64": this.slot(i, 8).setBigUint64(0, BigInt(a.value), true); return;
      case "bytes": {
        const src = new Uint8Array(a.value.buffer, a.value.byteOffset, a.value.byteLength);
        this.slot(i, src.byteLength);
        this.slots[i].set(src);
        return;
      }
    }
  }
}
