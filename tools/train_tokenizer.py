#!/usr/bin/python3
"""Byte-level BPE trainer and encoder for the embedded model; writes a Hugging Face tokenizer.json.

The file has the GLM-4-0414 layout (GLM_ARCHITECTURES.md G.2): Split with the cl100k regex, then
ByteLevel without its own regex; a BPE model with merges; the GLM special tokens as added tokens
after the learned vocabulary; a TemplateProcessing that puts [gMASK]<sop> in front of plain text.

    /usr/bin/python3 tools/train_tokenizer.py --turns build/embedded/turns.jsonl \
        --vocab-size 6144 --out models/autoglm-mini/tokenizer.json

Needs python3-regex (for \\p{L} in the pre-tokenizer pattern). Pure Python otherwise.
"""
import argparse
import heapq
import json
import sys
from collections import Counter

try:
    import regex
except ImportError:
    sys.exit("python3-regex is missing: apt-get install python3-regex")

# GLM-4's pre-tokenizer regex (cl100k), G.1/G.2.
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
           r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPLIT = regex.compile(PATTERN)

# G.1's special tokens in their order, then <think>/</think> (GLM-4.5 names).
SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
            "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>",
            "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>", "<think>", "</think>"]


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (what tokenizers' ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()


def pieces(text):
    return SPLIT.findall(text)


def train(texts, n_merges):
    words = Counter()
    for t in texts:
        words.update(pieces(t))
    word_list = [list(w.encode("utf-8")) for w in words]
    freqs = [words[w] for w in words]
    pair_count = Counter()
    where = {}
    for i, w in enumerate(word_list):
        for p in zip(w, w[1:]):
            pair_count[p] += freqs[i]
            where.setdefault(p, set()).add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []  # (left id, right id)
    next_id = 256
    while len(merges) < n_merges and heap:
        c, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -c or c == 0:
            continue
        new = next_id
        next_id += 1
        merges.append(p)
        for i in list(where.get(p, ())):
            w = word_list[i]
            f = freqs[i]
            for q in zip(w, w[1:]):
                pair_count[q] -= f
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == p[0] and w[j + 1] == p[1]:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            word_list[i] = out
            changed = set()
            for q in zip(out, out[1:]):
                pair_count[q] += f
                where.setdefault(q, set()).add(i)
                changed.add(q)
            for q in changed:
                heapq.heappush(heap, (-pair_count[q], q))
        del pair_count[p]
        where.pop(p, None)
    return merges


class Encoder:
    """Byte-level BPE with merges applied lowest rank first (tokenizers' BPE); specials by id."""

    def __init__(self, tokenizer_json):
        tj = json.load(open(tokenizer_json, encoding="utf-8"))
        self.vocab = tj["model"]["vocab"]
        self.ranks = {}
        for r, m in enumerate(tj["model"]["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = r
        self.special = {t["content"]: t["id"] for t in tj["added_tokens"]}
        self.id_to_piece = {i: p for p, i in self.vocab.items()}
        self.char_byte = {c: b for b, c in BYTE_CHAR.items()}
        self.cache = {}

    def _bpe(self, piece):
        syms = [BYTE_CHAR[b] for b in piece.encode("utf-8")]
        while len(syms) > 1:
            best, at = None, -1
            for k in range(len(syms) - 1):
                r = self.ranks.get((syms[k], syms[k + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, k
            if best is None:
                break
            syms[at:at + 2] = [syms[at] + syms[at + 1]]
        return [self.vocab[s] for s in syms]

    def encode(self, text):
        out = []
        for p in pieces(text):
            ids = self.cache.get(p)
            if ids is None:
                ids = self._bpe(p)
                self.cache[p] = ids
            out.extend(ids)
        return out

    def decode(self, ids):
        inv = {v: k for k, v in self.special.items()}
        data = bytearray()
        for i in ids:
            if i in inv:
                data += inv[i].encode()
            else:
                data += bytes(self.char_byte[c] for c in self.id_to_piece[i])
        return data.decode("utf-8", errors="replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", required=True)
    ap.add_argument("--vocab-size", type=int, default=6144)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    texts = []
    for line in open(args.turns, encoding="utf-8"):
        t = json.loads(line)
        texts += ["\n" + t["user"], "\n" + t["assistant"]]
    n_merges = args.vocab_size - 256 - len(SPECIALS)
    merges = train(texts, n_merges)
    piece = {b: BYTE_CHAR[b] for b in range(256)}
    vocab = {BYTE_CHAR[b]: b for b in range(256)}
    merge_strs = []
    for k, (a, b) in enumerate(merges):
        piece[256 + k] = piece[a] + piece[b]
        vocab[piece[256 + k]] = 256 + k
        merge_strs.append(f"{piece[a]} {piece[b]}")
    base = 256 + len(merges)
    added = [{"id": base + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for k, s in enumerate(SPECIALS)]
    ids = {s: base + k for k, s in enumerate(SPECIALS)}
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[gMASK]", "type_id": 0}},
                                      {"SpecialToken": {"id": "<sop>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[gMASK]", "type_id": 0}},
                                    {"SpecialToken": {"id": "<sop>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {s: {"id": s, "ids": [ids[s]], "tokens": [s]}
                                              for s in ("[gMASK]", "<sop>")}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merge_strs},
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(vocab)} pieces + {len(SPECIALS)} special tokens = {base + len(SPECIALS)} ids -> {args.out}")


if __name__ == "__main__":
    main()
