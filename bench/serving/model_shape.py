"""The decoder's shape: Llama-3-8B unless told otherwise (only the layer count is a flag)."""
from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_ELEMENT = 2  # bf16 weights, activations and KV cache
KV_HEADROOM_BYTES = 12 * 2**30  # GPU memory left beside weights and KV cache: activations, torch_flash's gathered K/V


@dataclass(frozen=True)
class ModelShape:
    """Llama-3-8B by default (32 layers, hidden 4096, 32 query / 8 KV heads of 128, SwiGLU 14336)."""
    layers: int = 32
    hidden: int = 4096
    heads_q: int = 32
    heads_kv: int = 8
    head_dim: int = 128
    ffn: int = 14336
    vocab: int = 128256
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5

    @property
    def layer_params(self) -> int:
        q_o = 2 * self.hidden * self.heads_q * self.head_dim
        k_v = 2 * self.hidden * self.heads_kv * self.head_dim
        return q_o + k_v + 3 * self.hidden * self.ffn

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V of one token in every layer."""
        return 2 * self.layers * self.heads_kv * self.head_dim * BYTES_PER_ELEMENT

    @property
    def weight_bytes(self) -> int:
        """Every layer's matrices, the embedding and the LM head (norm weights are negligible)."""
        return BYTES_PER_ELEMENT * (self.layers * self.layer_params + 2 * self.vocab * self.hidden)

    def kv_pages(self, kv_bytes: float, page_size: int) -> int:
        """Pages of page_size tokens (every layer's K and V) that fit in kv_bytes."""
        return max(0, int(kv_bytes // (page_size * self.kv_bytes_per_token)))
