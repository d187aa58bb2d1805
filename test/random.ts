// The random inputs' definition (templates/pod/reference.cuh, random_normal4) written again in
// TypeScript, for tests only: the CPU test checks it against Random123's vectors and the C++
// compiled for the host, the GPU suite checks the fill kernel's output against it.

const MASK32 = 0xffffffffn;

/** Philox4x32-10 of a counter (4 words) under a key (2 words). */
export function philox4x32_10(ctr: readonly number[], key: readonly [number, number]): number[] {
  let [c0, c1, c2, c3] = ctr.map((x) => BigInt(x >>> 0)) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map((x) => BigInt(x >>> 0)) as [bigint, bigint];
  for (let round = 0; round < 10; round++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32n) ^ c3 ^ k1, p0 & MASK32];
    k0 = (k0 + 0x9e3779b9n) & MASK32;
    k1 = (k1 + 0xbb67ae85n) & MASK32;
  }
  return [c0, c1, c2, c3].map(Number);
}

const openUnit = (word: number) => Math.fround((Math.floor(word / 256) + 0.5) * 2 ** -24);
const MIN_MAGNITUDE = 2 ** -24;
const awayFromZero = (x: number) => (Math.abs(x) < MIN_MAGNITUDE ? Math.sign(x || 1) * MIN_MAGNITUDE : x);

/** Elements first .. first+count-1 of the tensor numbered `tensor` drawn with `seed` (as fp32 values). */
export function randomNormals(seed: bigint, tensor: number, count: number, first = 0): Float32Array {
  const out = new Float32Array(count);
  const key: [number, number] = [Number(seed & MASK32), Number((seed >> 32n) & MASK32)];
  for (let c = Math.floor(first / 4); 4 * c < first + count; c++) {
    const w = philox4x32_10([c % 2 ** 32, Math.floor(c / 2 ** 32), tensor, 0], key);
    for (let pair = 0; pair < 2; pair++) {
      const r = Math.sqrt(-2 * Math.log(openUnit(w[2 * pair]!)));
      const turn = 2 * Math.PI * openUnit(w[2 * pair + 1]!);
      const values = [r * Math.cos(turn), r * Math.sin(turn)];
      for (let j = 0; j < 2; j++) {
        const i = 4 * c + 2 * pair + j - first;
        if (i >= 0 && i < count) out[i] = awayFromZero(values[j]!);
      }
    }
  }
  return out;
}
