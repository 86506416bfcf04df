#!/usr/bin/python3
"""A plain PyTorch Glm4ForCausalLM (GLM_ARCHITECTURES.md section C), used to train the embedded
model. Tensor names are the Hugging Face ones, so state_dict() is what model.safetensors holds.

Also: a tiny safetensors reader/writer (the format is an 8-byte little-endian header length, a
JSON header, then the raw tensor bytes), since Debian 12 has no python3-safetensors.
Development tool only: nothing at run time needs Python.
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_tables(cfg, n_pos, device=None):
    """cos/sin [n_pos, R/2] for the interleaved partial rotary of section 0 / B.3."""
    d = cfg["head_dim"]
    r = int(d * cfg.get("partial_rotary_factor", 0.5))
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, r, 2, dtype=torch.float32, device=device) / r))
    pos = torch.arange(n_pos, dtype=torch.float32, device=device)
    a = torch.outer(pos, inv)
    return a.cos(), a.sin()


def apply_rope(x, cos, sin):
    """x [B, T, heads, d]; rotates pairs (2j, 2j+1) of the first R dims; the rest pass through."""
    r = cos.shape[-1] * 2
    rot, rest = x[..., :r], x[..., r:]
    x1, x2 = rot[..., 0::2], rot[..., 1::2]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    y1 = x1 * c - x2 * s
    y2 = x2 * c + x1 * s
    rot = torch.stack((y1, y2), dim=-1).flatten(-2)
    return torch.cat((rot, rest), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, d = cfg["hidden_size"], cfg["head_dim"]
        self.nh, self.nkv, self.d = cfg["num_attention_heads"], cfg["num_key_value_heads"], d
        bias = cfg.get("attention_bias", True)
        self.q_proj = nn.Linear(h, self.nh * d, bias=bias)
        self.k_proj = nn.Linear(h, self.nkv * d, bias=bias)
        self.v_proj = nn.Linear(h, self.nkv * d, bias=bias)
        self.o_proj = nn.Linear(self.nh * d, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.d)
        k = self.k_proj(x).view(b, t, self.nkv, self.d)
        v = self.v_proj(x).view(b, t, self.nkv, self.d)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = self.nh // self.nkv
        q = q.transpose(1, 2)                                     # [b, nh, t, d]
        k = k.transpose(1, 2).repeat_interleave(g, dim=1)         # head h uses kv head h // g
        v = v.transpose(1, 2).repeat_interleave(g, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.d) + mask
        p = torch.softmax(s.float(), dim=-1).to(q.dtype)
        o = (p @ v).transpose(1, 2).reshape(b, t, self.nh * self.d)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_up_proj = nn.Linear(h, 2 * i, bias=False)  # rows [0, I) gate, [I, 2I) up
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm = RMSNorm(h, eps)
        self.self_attn = Attention(cfg)
        self.post_self_attn_layernorm = RMSNorm(h, eps)
        self.post_attention_layernorm = RMSNorm(h, eps)  # the pre-MLP norm (C.1)
        self.mlp = MLP(cfg)
        self.post_mlp_layernorm = RMSNorm(h, eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.post_self_attn_layernorm(self.self_attn(self.input_layernorm(x), cos, sin, mask))
        return x + self.post_mlp_layernorm(self.mlp(self.post_attention_layernorm(x)))


class Body(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class Glm4ForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg.get("model_type") == "glm4", cfg.get("model_type")
        self.cfg = cfg
        self.model = Body(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        cos, sin = rope_tables(cfg, cfg["max_position_embeddings"])
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, std=0.02, seed=0):
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                    p.fill_(1.0)
                elif name.endswith(".bias"):
                    p.zero_()
                else:
                    s = std
                    if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                        s = std / math.sqrt(2 * self.cfg["num_hidden_layers"])
                    p.copy_(torch.randn(p.shape, generator=g) * s)

    def forward(self, ids):
        """ids [B, T] -> logits [B, T, V] (positions 0..T-1)."""
        t = ids.shape[1]
        x = self.model.embed_tokens(ids)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


# --- safetensors -------------------------------------------------------------------------------

_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, size = _DTYPES[info["dtype"]]
        a, b = info["data_offsets"]
        raw = bytearray(data[a:b])
        t = torch.frombuffer(raw, dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_safetensors(tensors, path, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def load_model(model_dir, dtype=torch.float32):
    cfg = json.load(open(f"{model_dir}/config.json"))
    m = Glm4ForCausalLM(cfg)
    sd = {k: v.to(dtype) for k, v in load_safetensors(f"{model_dir}/model.safetensors").items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{model_dir}: missing tensors {missing}, unexpected {unexpected}")
    return m.to(dtype)
