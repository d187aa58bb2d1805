// 16-bit float conversion, seeded random numbers (lengths, page orders, noise) and error metrics
// for checks and benchmarks. Input tensors are drawn on the device (DeviceBatch.upload).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function toBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** float32 → IEEE half bits, round to nearest even, with subnormals and overflow to infinity. */
export function toF16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export type Dtype16 = "fp16" | "bf16";
export const encode16 = (dtype: Dtype16) => (dtype === "bf16" ? toBf16 : toF16);
export const decode16 = (dtype: Dtype16) => (dtype === "bf16" ? fromBf16 : fromF16);

/** Decode a 16-bit tensor to float32. */
export function toFloat32(bits: Uint16Array, dtype: Dtype16): Float32Array {
  const decode = decode16(dtype);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = decode(bits[i]!);
  return out;
}

/** An fp8 e4m3 byte as a number (bias 7, no infinities; 0x7f and 0xff are NaN). */
export function fromE4m3(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf, man = b & 7;
  if (exp === 15 && man === 7) return NaN;
  return sign * (exp === 0 ? man * 2 ** -9 : (1 + man / 8) * 2 ** (exp - 7));
}

/** K/V cache elements as fp32: 16-bit bits of the dtype, or fp8 e4m3 bytes (unscaled). */
export function kvToFloat32(elements: Uint16Array | Uint8Array, kvDtype: Dtype16 | "e4m3"): Float32Array {
  if (kvDtype === "e4m3") return Float32Array.from(elements, fromE4m3);
  return toFloat32(elements as Uint16Array, kvDtype);
}

/** A small seeded generator (mulberry32): the same seed gives the same numbers on every machine. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

export interface ErrorReport {
  /** ‖out − ref‖₂ / ‖ref‖₂ (Infinity when anything is not finite). */
  relativeL2: number;
  /** Elements of `out` that are NaN or infinite (unwritten poisoned outputs show up here). */
  nonFinite: number;
  maxAbs: number;
}

export function compare(out: ArrayLike<number>, ref: ArrayLike<number>): ErrorReport {
  if (out.length !== ref.length) throw new RangeError(`compare: ${out.length} outputs vs ${ref.length} reference values`);
  let num = 0;
  let den = 0;
  let nonFinite = 0;
  let maxAbs = 0;
  for (let i = 0; i < out.length; i++) {
    const o = out[i]!;
    const r = ref[i]!;
    if (!Number.isFinite(o)) {
      nonFinite++;
      continue;
    }
    const d = o - r;
    num += d * d;
    den += r * r;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const relativeL2 = nonFinite > 0 ? Infinity : den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  return { relativeL2, nonFinite, maxAbs };
}
