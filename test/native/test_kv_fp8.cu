// Host-only test of the fp8 KV dequantization in templates/pod/kv_fp8.cuh: every pair of e4m3
// bytes (NaN excepted) converts to exactly its value in fp16 and in bf16, element 0 in the low half.
// Built with nvcc and run by test/kv-fp8.test.ts (no GPU needed).
#include "pod/kv_fp8.cuh"

#include <math.h>
#include <stdio.h>
#include <string.h>

// The value of an e4m3 byte from its definition: bias 7, subnormals at exponent 0, no infinities.
static float e4m3_value(int b) {
  const float sign = (b & 0x80) ? -1.f : 1.f;
  const int e = (b >> 3) & 15, m = b & 7;
  return sign * (e == 0 ? ldexpf((float)m, -9) : ldexpf(1.f + m / 8.f, e - 7));
}

static float half_bits(uint16_t h) {
  __half_raw r;
  r.x = h;
  return __half2float(__half(r));
}
static float bf16_bits(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int main() {
  int checks = 0, failures = 0;
  for (int lo = 0; lo < 256; ++lo) {
    for (int hi = 0; hi < 256; ++hi) {
      if ((lo & 0x7f) == 0x7f || (hi & 0x7f) == 0x7f) continue;  // NaN
      const uint16_t two = (uint16_t)(lo | (hi << 8));
      const uint32_t h = pod::e4m3x2_to<half>(two), b = pod::e4m3x2_to<__nv_bfloat16>(two);
      const float want[2] = {e4m3_value(lo), e4m3_value(hi)};
      const float got_h[2] = {half_bits((uint16_t)h), half_bits((uint16_t)(h >> 16))};
      const float got_b[2] = {bf16_bits((uint16_t)b), bf16_bits((uint16_t)(b >> 16))};
      for (int i = 0; i < 2; ++i) {
        ++checks;
        // Exact, sign of zero included.
        if (got_h[i] != want[i] || got_b[i] != want[i] || signbit(got_h[i]) != signbit(want[i]) ||
            signbit(got_b[i]) != signbit(want[i])) {
          if (++failures <= 10)
            fprintf(stderr, "FAIL bytes %02x %02x element %d: want %a, fp16 %a, bf16 %a\n", lo, hi, i, want[i],
                    got_h[i], got_b[i]);
        }
      }
    }
  }
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
