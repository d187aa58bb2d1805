// Per-architecture limits: the one place podgen learns what a GPU generation allows.
// Numbers from the CUDA C++ Programming Guide, "Technical Specifications per Compute Capability".

export const TARGETS = ["sm_80", "sm_86", "sm_89", "sm_90a"] as const;
export type Target = (typeof TARGETS)[number];

export interface TargetLimits {
  /** Marketing name of a representative GPU, for messages. */
  gpu: string;
  /**
   * `-gencode` for nvcc: virtual architecture and real architecture; `ptx` also embeds the PTX, so
   * newer GPUs can run the build (the driver compiles it at load), e.g. an sm_80 build on an H100.
   */
  gencode: { arch: string; code: string; ptx: boolean };
  /** Shared memory per SM usable by CTAs, bytes. */
  smemPerSm: number;
  /** Largest dynamic shared memory one CTA may opt into, bytes. */
  smemPerCtaMax: number;
  /** Shared memory the driver reserves per resident CTA, bytes. */
  smemReservedPerCta: number;
  registersPerSm: number;
  registersPerThreadMax: number;
  threadsPerSm: number;
  /** Most CTAs resident on one SM, whatever their size (not the spec's ctasPerSm). */
  maxResidentCtas: number;
  /** Warpgroup MMA (wgmma) and setmaxnreg: the sm_90a feature set. */
  wgmma: boolean;
  /** Conversions of fp8 (e4m3) pairs to 16-bit floats (cvt.rn.f16x2.e4m3x2): sm_89 and later. */
  fp8: boolean;
}

const KiB = 1024;

export const TARGET_LIMITS: Readonly<Record<Target, TargetLimits>> = {
  sm_80: {
    gpu: "A100",
    gencode: { arch: "compute_80", code: "sm_80", ptx: true },
    smemPerSm: 164 * KiB,
    smemPerCtaMax: 163 * KiB,
    smemReservedPerCta: 1 * KiB,
    registersPerSm: 65536,
    registersPerThreadMax: 255,
    threadsPerSm: 2048,
    maxResidentCtas: 32,
    wgmma: false,
    fp8: false,
  },
  sm_86: {
    gpu: "RTX 3090 / A10",
    gencode: { arch: "compute_86", code: "sm_86", ptx: true },
    smemPerSm: 100 * KiB,
    smemPerCtaMax: 99 * KiB,
    smemReservedPerCta: 1 * KiB,
    registersPerSm: 65536,
    registersPerThreadMax: 255,
    threadsPerSm: 1536,
    maxResidentCtas: 16,
    wgmma: false,
    fp8: false,
  },
  sm_89: {
    gpu: "L4 / RTX 4090",
    gencode: { arch: "compute_89", code: "sm_89", ptx: true },
    smemPerSm: 100 * KiB,
    smemPerCtaMax: 99 * KiB,
    smemReservedPerCta: 1 * KiB,
    registersPerSm: 65536,
    registersPerThreadMax: 255,
    threadsPerSm: 1536,
    maxResidentCtas: 24,
    wgmma: false,
    fp8: true,
  },
  sm_90a: {
    gpu: "H100",
    gencode: { arch: "compute_90a", code: "sm_90a", ptx: false },
    smemPerSm: 228 * KiB,
    smemPerCtaMax: 227 * KiB,
    smemReservedPerCta: 1 * KiB,
    registersPerSm: 65536,
    registersPerThreadMax: 255,
    threadsPerSm: 2048,
    maxResidentCtas: 32,
    wgmma: true,
    fp8: true,
  },
};
