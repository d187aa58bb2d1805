// podgen device code: everything a generated kernel.cu needs after it defines its Traits.
// Read in this order: contract.h (the data), primitives.cuh (mma/ldmatrix/cp.async), wgmma.cuh
// (Hopper warpgroup MMA), softmax.cuh, kv_fp8.cuh (fp8 KV dequantization), tile_io.cuh, variants.cuh (sliding window, soft-cap, sinks),
// prefill_tile.cuh (what the prefill mainloops share), prefill.cuh (which mainloop runs a tile),
// prefill_mma.cuh and prefill_wgmma.cuh (the mainloops of the CTA's cp.async pipeline),
// mbarrier.cuh and tensor_maps.cuh (the warp-specialized pipeline and the bulk copy engine),
// prefill_ws.cuh (the warp-specialized mainloop), decode.cuh, combine.cuh, scheduler.cuh (the
// kernels), reference.cuh, launch.cuh (host launchers), planner.h (host planner).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "contract.h"
#include "primitives.cuh"
#include "wgmma.cuh"
#include "softmax.cuh"
#include "tile_io.cuh"
#include "prefill.cuh"
#include "decode.cuh"
#include "combine.cuh"
#include "scheduler.cuh"
#include "reference.cuh"
#include "launch.cuh"
#include "planner.h"  // needs pod_attention.h (PODGEN_ABI_VERSION) included first
