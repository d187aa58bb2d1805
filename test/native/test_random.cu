// Host-only tests of the random inputs' generator in templates/pod/reference.cuh (the functions
// the fill kernel runs, compiled for the host): Philox4x32-10 against Random123's known-answer
// vectors, and the moments of a few million values. Prints "VALUES seed tensor" and the first
// values as hex floats, which test/random.test.ts compares with its own implementation.
// Built with nvcc and run by test/random.test.ts (no GPU needed).
#include "pod_attention.h"
#include "pod/reference.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    ++checks;                                                         \
    if (!(cond)) {                                                    \
      ++failures;                                                     \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fprintf(stderr, "\n");                                          \
    }                                                                 \
  } while (0)

int main(int argc, char** argv) {
  // Random123 1.14, tests/kat_vectors: counter, key, expected.
  const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
       0x5001e420, 0x24126ea1},
  };
  for (const auto& v : kat) {
    uint32_t ctr[4] = {v[0], v[1], v[2], v[3]};
    pod::philox4x32_10(ctr, v[4], v[5]);
    CHECK(ctr[0] == v[6] && ctr[1] == v[7] && ctr[2] == v[8] && ctr[3] == v[9],
          "philox4x32_10(%08x ..) = %08x %08x %08x %08x", v[0], ctr[0], ctr[1], ctr[2], ctr[3]);
  }

  // Moments of 2^22 values of one tensor (the standard errors are ~5e-4 for the mean and ~7e-4
  // for the variance: the bounds are ten of them), the tail beyond 3 sigma (0.27%), no zeros.
  const uint64_t groups = 1u << 20;
  double sum = 0, sum2 = 0;
  uint64_t beyond3 = 0, tiny = 0;
  float smallest = INFINITY;
  for (uint64_t c = 0; c < groups; ++c) {
    float v[4];
    pod::random_normal4(0x5eed, 2, c, v);
    for (float x : v) {
      sum += x;
      sum2 += (double)x * x;
      beyond3 += fabsf(x) > 3.f;
      tiny += fabsf(x) < pod::kRandomMinMagnitude;
      smallest = fminf(smallest, fabsf(x));
    }
  }
  const double n = 4.0 * groups, mean = sum / n, var = sum2 / n - mean * mean;
  CHECK(fabs(mean) < 5e-3, "mean %g", mean);
  CHECK(fabs(var - 1) < 7e-3, "variance %g", var);
  CHECK(fabs(beyond3 / n - 0.0027) < 3e-4, "fraction beyond 3 sigma %g", beyond3 / n);
  CHECK(tiny == 0 && smallest > 0, "%llu values below 2^-24, smallest magnitude %g", (unsigned long long)tiny, smallest);

  // Same arguments, same values; another seed or tensor, other values.
  float a[4], b[4], other_seed[4], other_tensor[4];
  pod::random_normal4(1, 0, 12345, a);
  pod::random_normal4(1, 0, 12345, b);
  pod::random_normal4(2, 0, 12345, other_seed);
  pod::random_normal4(1, 1, 12345, other_tensor);
  for (int j = 0; j < 4; ++j) {
    CHECK(a[j] == b[j], "element %d differs between two calls", j);
    CHECK(a[j] != other_seed[j] && a[j] != other_tensor[j], "element %d equal across seeds or tensors", j);
  }

  // Values for the caller's check of its own implementation: argv = seed tensor count.
  if (argc == 4) {
    const uint64_t seed = strtoull(argv[1], nullptr, 0), count = strtoull(argv[3], nullptr, 0);
    const uint32_t tensor = (uint32_t)strtoul(argv[2], nullptr, 0);
    printf("VALUES");
    for (uint64_t c = 0; c < (count + 3) / 4; ++c) {
      float v[4];
      pod::random_normal4(seed, tensor, c, v);
      for (int j = 0; j < 4 && 4 * c + j < count; ++j) printf(" %a", v[j]);
    }
    printf("\n");
  }
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
