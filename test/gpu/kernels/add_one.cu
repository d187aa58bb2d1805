// The GPU suite's smoke-test kernel: x[i] += 1 for i < n. Built by scripts/gpu-bundle.ts into
// .gpu/artifacts/add_one.sm_90a.cubin and launched through cuModuleLoadData / cuLaunchKernel.
extern "C" __global__ void add_one(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}

// A by-value struct parameter, to check how runtime/device.ts passes arg.bytes().
struct Axpb {
  float a;
  float b;
  int n;
};

extern "C" __global__ void axpb(const float* __restrict__ x, float* __restrict__ y, Axpb p) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.n) y[i] = p.a * x[i] + p.b;
}
