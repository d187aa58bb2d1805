// A stand-in for a built podgen kernel library: host code on the CUDA *runtime* API, linked
// with the static CUDA runtime (which loads libcuda lazily). The GPU suite calls it through
// koffi to check that pointers and streams made by runtime/ (driver API, primary context) work
// in runtime-API code and back, also inside a CUDA-graph capture.
// Built by scripts/gpu-bundle.ts: nvcc -shared -Xcompiler -fPIC -cudart static ... -o libinterop.so
#include <cuda_runtime.h>
#include <stdint.h>

__global__ void interop_add_kernel(float* x, int n, float v) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += v;
}

extern "C" {

int interop_version(void) { return 1; }

const char* interop_error_name(int status) { return cudaGetErrorName((cudaError_t)status); }

// x[i] += v on `stream` (a CUstream from the driver API); returns the launch's cudaError_t.
int interop_add(float* x, int n, float v, void* stream) {
  interop_add_kernel<<<(n + 255) / 256, 256, 0, (cudaStream_t)stream>>>(x, n, v);
  return (int)cudaGetLastError();
}

int interop_malloc(void** out, uint64_t bytes) { return (int)cudaMalloc(out, (size_t)bytes); }

int interop_free(void* p) { return (int)cudaFree(p); }

// 1 if `p` is device memory of the current device, 0 if not, -status on error.
int interop_is_device_pointer(const void* p) {
  cudaPointerAttributes a;
  cudaError_t e = cudaPointerGetAttributes(&a, p);
  if (e != cudaSuccess) return -(int)e;
  int dev = -1;
  cudaGetDevice(&dev);
  return a.type == cudaMemoryTypeDevice && a.device == dev ? 1 : 0;
}

}  // extern "C"
