#!/usr/bin/env python3
"""An independent reference for the TinyStories checkpoint in its ORIGINAL llama2.c formats.

Reads `stories260K.bin` (llama2.c checkpoint: 7 int32 header fields, then float32 weights) and
`tok512.bin` (llama2.c tokenizer: max token length, then per token a float score, an int32 length and
the bytes), encodes a prompt the way llama2.c does (BOS, a dummy space prefix, code points looked up
or byte fallback, then greedy highest-score pair merges), and runs the Llama forward pass in pure
Python (no numpy) with greedy sampling. Nothing here is shared with the C++ engine, which reads the
GGUF conversion of the same model: equal tokens from both is the end-to-end check.

Usage: llama2c_reference.py MODEL.bin TOKENIZER.bin "prompt" STEPS
Prints two lines: the generated ids (prompt excluded, space separated) and the decoded text.
"""
import math
import struct
import sys


def read_checkpoint(path):
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack_from("<7i", data, 0)
    shared = vocab > 0
    vocab = abs(vocab)
    floats = struct.unpack_from("<%df" % ((len(data) - 28) // 4), data, 28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = 1
        for s in shape:
            n *= s
        block = floats[pos:pos + n]
        pos += n
        return block

    head = dim // n_heads
    kv_dim = head * n_kv_heads
    w = {
        "embed": take(vocab, dim),
        "rms_att": take(n_layers, dim),
        "wq": take(n_layers, dim, dim),
        "wk": take(n_layers, kv_dim, dim),
        "wv": take(n_layers, kv_dim, dim),
        "wo": take(n_layers, dim, dim),
        "rms_ffn": take(n_layers, dim),
        "w1": take(n_layers, hidden, dim),
        "w2": take(n_layers, dim, hidden),
        "w3": take(n_layers, hidden, dim),
        "rms_final": take(dim),
    }
    take(seq_len, head // 2)  # freq_cis_real (unused: recomputed)
    take(seq_len, head // 2)  # freq_cis_imag
    w["cls"] = w["embed"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
               vocab=vocab, seq_len=seq_len, head=head, kv_dim=kv_dim)
    return cfg, w


def read_tokenizer(path, vocab):
    with open(path, "rb") as f:
        data = f.read()
    off = 4  # max_token_length
    pieces, scores = [], []
    for _ in range(vocab):
        score, length = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + length])
        off += length
        scores.append(score)
    return pieces, scores


def encode(text, pieces, scores):
    index = {p: i for i, p in enumerate(pieces)}
    ids = [1]  # BOS
    if text:
        ids.append(index[b" "])  # llama2.c's dummy prefix
    for ch in text:
        b = ch.encode("utf-8")
        if b in index:
            ids.append(index[b])
        else:
            ids.extend(byte + 3 for byte in b)  # byte fallback: <0x00> is id 3
    body = ids[1:]
    while True:
        best, best_i, best_id = -1e10, -1, -1
        for i in range(len(body) - 1):
            merged = pieces[body[i]] + pieces[body[i + 1]]
            j = index.get(merged)
            if j is not None and scores[j] > best:
                best, best_i, best_id = scores[j], i, j
        if best_i < 0:
            break
        body[best_i:best_i + 2] = [best_id]
    return [1] + body


def decode_piece(prev, token, pieces):
    p = pieces[token]
    if prev == 1 and p.startswith(b" "):
        p = p[1:]
    if p.startswith(b"<0x") and p.endswith(b">") and len(p) == 6:
        return bytes([int(p[3:5], 16)])
    return p


def rmsnorm(x, w, off):
    ss = sum(v * v for v in x) / len(x) + 1e-5
    s = 1.0 / math.sqrt(ss)
    return [w[off + i] * x[i] * s for i in range(len(x))]


def matvec(w, off, x, rows, cols):
    out = []
    for r in range(rows):
        base = off + r * cols
        out.append(sum(w[base + c] * x[c] for c in range(cols)))
    return out


def forward(cfg, w, token, pos, kcache, vcache):
    dim, hidden, head, kv_dim = cfg["dim"], cfg["hidden"], cfg["head"], cfg["kv_dim"]
    n_heads, group = cfg["n_heads"], cfg["n_heads"] // cfg["n_kv_heads"]
    x = list(w["embed"][token * dim:(token + 1) * dim])
    for l in range(cfg["n_layers"]):
        xb = rmsnorm(x, w["rms_att"], l * dim)
        q = matvec(w["wq"], l * dim * dim, xb, dim, dim)
        k = matvec(w["wk"], l * kv_dim * dim, xb, kv_dim, dim)
        v = matvec(w["wv"], l * kv_dim * dim, xb, kv_dim, dim)
        for i in range(0, dim, 2):  # RoPE on adjacent pairs, frequencies per head dimension
            freq = 1.0 / (10000.0 ** ((i % head) / head))
            c, s = math.cos(pos * freq), math.sin(pos * freq)
            for vec in ((q, k) if i < kv_dim else (q,)):
                a, b = vec[i], vec[i + 1]
                vec[i], vec[i + 1] = a * c - b * s, a * s + b * c
        kcache[l].append(k)
        vcache[l].append(v)
        att_out = [0.0] * dim
        for h in range(n_heads):
            kh = (h // group) * head
            qh = q[h * head:(h + 1) * head]
            scores = [sum(qh[d] * kk[kh + d] for d in range(head)) / math.sqrt(head) for kk in kcache[l]]
            m = max(scores)
            e = [math.exp(s_ - m) for s_ in scores]
            z = sum(e)
            for t, vv in enumerate(vcache[l]):
                a = e[t] / z
                for d in range(head):
                    att_out[h * head + d] += a * vv[kh + d]
        o = matvec(w["wo"], l * dim * dim, att_out, dim, dim)
        x = [x[i] + o[i] for i in range(dim)]
        xb = rmsnorm(x, w["rms_ffn"], l * dim)
        h1 = matvec(w["w1"], l * hidden * dim, xb, hidden, dim)
        h3 = matvec(w["w3"], l * hidden * dim, xb, hidden, dim)
        hb = [h1[i] / (1.0 + math.exp(-h1[i])) * h3[i] for i in range(hidden)]
        f = matvec(w["w2"], l * dim * hidden, hb, dim, hidden)
        x = [x[i] + f[i] for i in range(dim)]
    x = rmsnorm(x, w["rms_final"], 0)
    return matvec(w["cls"], 0, x, cfg["vocab"], dim)


def main():
    model, tok, prompt, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfg, w = read_checkpoint(model)
    pieces, scores = read_tokenizer(tok, cfg["vocab"])
    ids = encode(prompt, pieces, scores)
    kcache = [[] for _ in range(cfg["n_layers"])]
    vcache = [[] for _ in range(cfg["n_layers"])]
    generated, text = [], b""
    token = ids[0]
    for pos in range(len(ids) + steps - 1):
        logits = forward(cfg, w, token, pos, kcache, vcache)
        if pos + 1 < len(ids):
            nxt = ids[pos + 1]
        else:
            nxt = max(range(len(logits)), key=lambda i: logits[i])
            if nxt == 1:  # BOS ends a llama2.c story
                break
            generated.append(nxt)
        text += decode_piece(token, nxt, pieces)
        token = nxt
    print(" ".join(str(i) for i in ids) + " | " + " ".join(str(i) for i in generated))
    print(text.decode("utf-8", errors="replace"))


if __name__ == "__main__":
    main()
