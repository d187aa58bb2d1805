"""A Llama-3-8B-shaped decoder in plain PyTorch for the serving benchmark: random bf16 weights (seeded),
RMSNorm, rotary embeddings, GQA attention through a pluggable backend (serving/attention.py) over a
paged KV cache that every backend shares, SwiGLU MLP, the LM head on the rows that sample a token.
torch matmuls (cuBLAS) throughout, eager mode; the weights are random, so the tokens are too: a
step's token ids are a fixed function of (request, position) rather than fed back from sampling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attention import StepMeta
from model_shape import ModelShape
from scheduler import Step


class StepInputs:
    """What one step feeds the decoder, on the device: token ids, positions, cache rows to write,
    rows that sample a token; and the batch for attention (`meta`, host)."""

    def __init__(self, step: Step, page_size: int, vocab: int, device: torch.device):
        work = step.work
        self.meta = StepMeta([w.q_len for w in work], [w.kv_len for w in work],
                             [w.state.first_page for w in work], len(step.prefills), page_size)
        positions = [p for w in work for p in range(w.kv_len - w.q_len, w.kv_len)]
        first_rows = [w.state.first_page * page_size for w in work for _ in range(w.q_len)]
        ids = [w.state.request.id for w in work for _ in range(w.q_len)]
        # Rows whose token is sampled: a chunk that ends its prompt (its last row), and every decode.
        samples, end = [], -1
        for w in work:
            end += w.q_len
            if w.kv_len >= w.state.request.prompt_len:
                samples.append(end)
        to = lambda values: torch.tensor(values, dtype=torch.int64).to(device, non_blocking=True)  # noqa: E731
        self.positions = to(positions)
        self.cache_rows = to([f + p for f, p in zip(first_rows, positions)])
        self.token_ids = to([(i * 7919 + p * 104729) % vocab for i, p in zip(ids, positions)])
        self.sample_rows = to(samples)


class Decoder:
    def __init__(self, shape: ModelShape, num_pages: int, page_size: int, seed: int, device: torch.device):
        self.shape, self.page_size, self.device = shape, page_size, device
        g = torch.Generator(device=device).manual_seed(seed)
        bf16 = torch.bfloat16

        def weight(out_features: int, in_features: int, count: int = shape.layers) -> torch.Tensor:
            w = torch.empty(count, out_features, in_features, dtype=bf16, device=device)
            return w.normal_(0.0, 1.0 / math.sqrt(in_features), generator=g)

        s = shape
        q_width, kv_width = s.heads_q * s.head_dim, s.heads_kv * s.head_dim
        self.w_q = weight(q_width, s.hidden)
        self.w_kv = weight(2 * kv_width, s.hidden)
        self.w_o = weight(s.hidden, q_width)
        self.w_gate_up = weight(2 * s.ffn, s.hidden)
        self.w_down = weight(s.hidden, s.ffn)
        self.attn_norm = torch.ones(s.layers, s.hidden, dtype=bf16, device=device)
        self.mlp_norm = torch.ones(s.layers, s.hidden, dtype=bf16, device=device)
        self.final_norm = torch.ones(s.hidden, dtype=bf16, device=device)
        self.embedding = weight(s.vocab, s.hidden, 1)[0] * math.sqrt(s.hidden)  # rows of unit RMS
        self.lm_head = weight(s.vocab, s.hidden, 1)[0]
        cache_shape = (s.layers, num_pages, page_size, s.heads_kv, s.head_dim)
        self.k_caches = torch.zeros(cache_shape, dtype=bf16, device=device)
        self.v_caches = torch.zeros(cache_shape, dtype=bf16, device=device)
        half = s.head_dim // 2
        self.inv_freq = 1.0 / (s.rope_theta ** (torch.arange(half, dtype=torch.float32, device=device) / half))

    def rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding, rotate-half layout: x [tokens, heads, D]."""
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    def qkv(self, layer: int, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The layer's rotated q [tokens, Hq, D] and k, v [tokens, Hkv, D] of hidden states h."""
        s = self.shape
        x = F.rms_norm(h, (s.hidden,), self.attn_norm[layer], s.norm_eps)
        q = F.linear(x, self.w_q[layer]).view(-1, s.heads_q, s.head_dim)
        k, v = F.linear(x, self.w_kv[layer]).view(-1, 2, s.heads_kv, s.head_dim).unbind(1)
        return self.rope(q, cos, sin), self.rope(k, cos, sin), v

    def write_cache(self, layer: int, inputs: StepInputs, k: torch.Tensor, v: torch.Tensor) -> None:
        s = self.shape
        self.k_caches[layer].view(-1, s.heads_kv, s.head_dim).index_copy_(0, inputs.cache_rows, k)
        self.v_caches[layer].view(-1, s.heads_kv, s.head_dim).index_copy_(0, inputs.cache_rows, v.contiguous())

    def forward(self, inputs: StepInputs, attention, attention_events=None) -> torch.Tensor:
        """One step through every layer; returns the sampled token ids. attention_events: per layer a
        (start, end) pair of CUDA events recorded around the attention call."""
        s = self.shape
        h = self.embedding[inputs.token_ids]
        angles = inputs.positions[:, None].float() * self.inv_freq[None, :]  # [tokens, D/2], every layer's
        cos, sin = (f(angles)[:, None, :].to(torch.bfloat16) for f in (torch.cos, torch.sin))
        for layer in range(s.layers):
            q, k, v = self.qkv(layer, h, cos, sin)
            self.write_cache(layer, inputs, k, v)
            if attention_events is not None:
                attention_events[layer][0].record()
            o = attention.attend(layer, q)
            if attention_events is not None:
                attention_events[layer][1].record()
            h = h + F.linear(o.view(-1, s.heads_q * s.head_dim), self.w_o[layer])
            gate, up = F.linear(F.rms_norm(h, (s.hidden,), self.mlp_norm[layer], s.norm_eps), self.w_gate_up[layer]).chunk(2, dim=-1)
            h = h + F.linear(F.silu(gate) * up, self.w_down[layer])
        last = F.rms_norm(h[inputs.sample_rows], (s.hidden,), self.final_norm, s.norm_eps)
        return F.linear(last, self.lm_head).argmax(dim=-1)
