"""The attention backends of the serving benchmark. Each computes, for one step's hybrid batch (prefill
chunks first, then one token per decode), causal attention of q [tokens, Hq, D] over the paged KV
cache [num_pages, page_size, Hkv, D] of one layer, bottom-right aligned (query t of a chunk of q_len
over kv_len keys sees keys j <= kv_len - q_len + t), softmax scale 1/sqrt(D):

  podgen_fused    the exported podgen op, one fused launch for prefills and decodes together;
  podgen_serial   the same library and plan, the prefill-only kernel then the decode-only kernel;
  torch_flash     PyTorch's varlen flash attention (aten._flash_attention_forward, bottom-right causal),
                  one launch for the whole hybrid batch. Varlen flash was PyTorch's fastest prefill on
                  the H100 and its only kernel for decodes of mixed lengths (bench/NOTES.md); cuDNN SDPA
                  takes one request per call and contiguous K/V, which a paged cache does not have.
                  How it reads the paged cache (kv_access):
                    "in_place": each request's pages are one contiguous run (the scheduler allocates
                                them so), so the flattened cache [num_pages * page_size, Hkv, D] holds
                                request r's keys at rows first_page[r] * page_size + [0, kv_len):
                                cu_seqlens_k gives those starts and seqused_k the lengths. No copy.
                    "gather":   the fallback: every step, per layer, the batch's K and V rows are
                                copied (index_select) into packed [sum(kv_len), Hkv, D] tensors first;
                                the copies are timed as attention.
                  A PyTorch-only engine without a paged kernel would have to reserve such runs (or
                  gather); "in_place" is the most favourable reading for PyTorch.

`prepare(meta)` runs once per step, inside the step's timed region (the podgen plan on the host and
its upload; PyTorch's cu_seqlens), `attend(layer, q, out=None)` once per layer; it returns the
output [tokens, Hq, D] (written into `out` when given: the check passes a NaN-poisoned one).
"""
from __future__ import annotations

from typing import Optional

import torch

KV_ACCESS = ("in_place", "gather")


class StepMeta:
    """A step's batch for attention, on the host, requests numbered prefills first: the lengths, each
    request's first page (its pages are one contiguous run), and the CSR page table of the pages its
    keys use. Built before the step's timed region: it is the engine's bookkeeping, which any paged
    backend needs; what a backend derives from it per step is timed (its `prepare`)."""

    def __init__(self, q_lens: list[int], kv_lens: list[int], first_pages: list[int], num_prefills: int, page_size: int):
        self.q_lens, self.kv_lens, self.first_pages = q_lens, kv_lens, first_pages
        self.num_prefills, self.page_size = num_prefills, page_size
        self.prefill_tokens = sum(q_lens[:num_prefills])
        self.tokens = sum(q_lens)
        counts = [-(-kv // page_size) for kv in kv_lens]
        self.page_indptr = torch.tensor([0] + counts, dtype=torch.int32).cumsum(0, dtype=torch.int32)
        self.page_indices = torch.tensor([p for f, c in zip(first_pages, counts) for p in range(f, f + c)], dtype=torch.int32)

    def cache_rows(self) -> torch.Tensor:
        """Every key's row in the flattened cache [num_pages * page_size, Hkv, D], request after request."""
        return torch.tensor([row for f, kv in zip(self.first_pages, self.kv_lens)
                             for row in range(f * self.page_size, f * self.page_size + kv)], dtype=torch.int64)


class PodgenAttention:
    """The exported podgen op, planned once per step: fused (one launch per layer) or serial (the
    prefill-only kernel, then the decode-only kernel)."""

    def __init__(self, pod, k_caches: torch.Tensor, v_caches: torch.Tensor, fused: bool):
        self.name = "podgen_fused" if fused else "podgen_serial"
        self.fused = fused
        self.k_caches, self.v_caches = k_caches, v_caches  # [layers, num_pages, page_size, Hkv, D]
        self.attn = pod.PodAttention(device=k_caches.device)

    def prepare(self, meta: StepMeta) -> None:
        qo = torch.tensor([0] + meta.q_lens[: meta.num_prefills], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        self.attn.plan(qo, torch.tensor(meta.kv_lens, dtype=torch.int32), meta.page_indptr, meta.page_indices, self.k_caches.shape[1])
        self.pages = meta.page_indices.to(self.k_caches.device, non_blocking=True)
        self.prefill_tokens = meta.prefill_tokens

    def attend(self, layer: int, q: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        p = self.prefill_tokens
        has_prefills, has_decodes = p > 0, p < q.shape[0]
        q_p, q_d = (q[:p] if has_prefills else None), (q[p:] if has_decodes else None)
        out = torch.empty_like(q) if out is None else out
        o_p, o_d = (out[:p] if has_prefills else None), (out[p:] if has_decodes else None)
        k, v = self.k_caches[layer], self.v_caches[layer]
        if self.fused:
            self.attn.run(q_p, q_d, k, v, self.pages, o_prefill=o_p, o_decode=o_d)
            return out
        if has_prefills:
            self.attn.run(q_p, None, k, v, self.pages, o_prefill=o_p, mode="prefill")
        if has_decodes:
            self.attn.run(None, q_d, k, v, self.pages, o_decode=o_d, mode="decode")
        return out


class TorchFlashAttention:
    """PyTorch's varlen flash attention over the hybrid batch, in one launch per layer."""

    def __init__(self, k_caches: torch.Tensor, v_caches: torch.Tensor, kv_access: str):
        if kv_access not in KV_ACCESS:
            raise ValueError(f"kv_access={kv_access!r} must be one of {KV_ACCESS}")
        self.name = "torch_flash"
        self.kv_access = kv_access
        self.k_caches, self.v_caches = k_caches, v_caches

    def prepare(self, meta: StepMeta) -> None:
        device = self.k_caches.device
        as_device = lambda values: torch.tensor(values, dtype=torch.int32).to(device, non_blocking=True)  # noqa: E731
        self.cu_q = as_device([0] + meta.q_lens).cumsum(0, dtype=torch.int32)
        self.max_q, self.max_k = max(meta.q_lens), max(meta.kv_lens)
        if self.kv_access == "in_place":
            rows = self.k_caches.shape[1] * meta.page_size
            # Starts need not increase: the kernel reads request r at cu_seqlens_k[r], seqused_k[r] rows.
            self.cu_k = as_device([f * meta.page_size for f in meta.first_pages] + [rows])
            self.seqused_k = as_device(meta.kv_lens)
        else:
            self.rows = meta.cache_rows().to(device, non_blocking=True)
            self.cu_k = as_device([0] + meta.kv_lens).cumsum(0, dtype=torch.int32)
            self.seqused_k = None

    def attend(self, layer: int, q: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        heads_kv, head_dim = self.k_caches.shape[-2:]
        k = self.k_caches[layer].view(-1, heads_kv, head_dim)
        v = self.v_caches[layer].view(-1, heads_kv, head_dim)
        if self.kv_access == "gather":
            k, v = k.index_select(0, self.rows), v.index_select(0, self.rows)
        o = torch.ops.aten._flash_attention_forward(
            q, k, v, self.cu_q, self.cu_k, self.max_q, self.max_k, 0.0, True, False, seqused_k=self.seqused_k)[0]
        return o if out is None else out.copy_(o)  # flash allocates its output; `out` is for the check
