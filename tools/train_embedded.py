#!/usr/bin/python3
"""Trains the embedded model (models/autoglm-mini) on the chat turns of tools/embedded_corpus.py
and exports it as a Hugging Face glm4 directory (config.json, bf16 model.safetensors,
generation_config.json, tokenizer_config.json; tokenizer.json comes from tools/train_tokenizer.py).

Every training sequence is a GLM-4-0414 conversation of packed turns:
  [gMASK]<sop><|user|>\\n{q1}<|assistant|>\\n{a1}<|user|>\\n{q2}<|assistant|>\\n{a2}<|endoftext|>
and the loss is on the assistant text and the token that ends it (<|user|> or <|endoftext|>, both
stop tokens of the engine). 3% of the turns are held out for the perplexity in the model card.

    /usr/bin/python3 tools/train_embedded.py --turns build/embedded/turns.jsonl \\
        --tokenizer models/autoglm-mini/tokenizer.json --work build/embedded --out models/autoglm-mini

Checkpoints go to WORK/ckpt.pt every --ckpt-minutes; --resume continues from there. CPU only,
torch threads = --threads (2 on the project's build machine).
"""
import argparse
import json
import math
import os
import random
import sys
import time

# OpenMP threads that spin while waiting lose badly when the 2 cores are shared (a compiler running
# next to the training made steps 5-10x slower); passive waiting costs nothing when they are not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm4_torch  # noqa: E402
from train_tokenizer import Encoder  # noqa: E402


def model_config(args, vocab_size, ids):
    return {
        "architectures": ["Glm4ForCausalLM"],
        "model_type": "glm4",
        "attention_bias": True,
        "attention_dropout": 0.0,
        "head_dim": args.head_dim,
        "hidden_act": "silu",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.inter,
        "max_position_embeddings": args.ctx,
        "num_attention_heads": args.hidden // args.head_dim,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "partial_rotary_factor": 0.5,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": vocab_size,
        "pad_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|endoftext|>"], ids["<|user|>"], ids["<|observation|>"]],
    }


def encode_turns(enc, turns, ctx):
    sp = enc.special
    out = []
    for t in turns:
        u = [sp["<|user|>"]] + enc.encode("\n" + t["user"]) + [sp["<|assistant|>"]]
        a = enc.encode("\n" + t["assistant"])
        room = ctx - 3 - len(u)  # [gMASK]<sop> in front, a terminator after
        if room < 8:
            continue
        out.append((u, a[:room]))
    return out


def pack(turns, ctx, sp, rng):
    """Blocks of (ids, labels) with labels -100 where there is no loss; ctx + 1 ids each."""
    order = list(range(len(turns)))
    rng.shuffle(order)
    blocks, cur, lab = [], None, None

    def close():
        if cur is None:
            return
        cur.append(sp["<|endoftext|>"])
        lab.append(sp["<|endoftext|>"])
        pad = ctx + 1 - len(cur)
        blocks.append((cur + [sp["<|endoftext|>"]] * pad, lab + [-100] * pad))

    for i in order:
        u, a = turns[i]
        need = len(u) + len(a)
        if cur is not None and len(cur) + need + 1 > ctx + 1:
            close()
            cur = None
        if cur is None:
            cur, lab = [sp["[gMASK]"], sp["<sop>"]], [-100, -100]
        # the token that ends the previous turn's reply is this <|user|>: it gets a label
        lab.extend([u[0] if len(cur) > 2 else -100] + [-100] * (len(u) - 1))
        cur.extend(u)
        cur.extend(a)
        lab.extend(a)
    close()
    # labels are the targets of the next position: shift so that ids[:-1] predicts labels[1:]
    return [(torch.tensor(ids), torch.tensor(lb)) for ids, lb in blocks]


def batches(blocks, batch, rng):
    order = list(range(len(blocks)))
    rng.shuffle(order)
    for k in range(0, len(order) - batch + 1, batch):
        sel = [blocks[i] for i in order[k:k + batch]]
        yield torch.stack([s[0] for s in sel]), torch.stack([s[1] for s in sel])


def loss_of(model, ids, labels):
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=-100, reduction="sum"), (labels[:, 1:] != -100).sum()


@torch.no_grad()
def evaluate(model, blocks, batch):
    model.eval()
    total, n = 0.0, 0
    for k in range(0, len(blocks), batch):
        sel = blocks[k:k + batch]
        ids = torch.stack([s[0] for s in sel])
        lab = torch.stack([s[1] for s in sel])
        l, c = loss_of(model, ids, lab)
        total += l.item()
        n += c.item()
    model.train()
    return total / max(n, 1), n


def export(model, cfg, ids, args, info):
    os.makedirs(args.out, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
    glm4_torch.save_safetensors(sd, os.path.join(args.out, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    gen = {"_from_model_config": True, "eos_token_id": cfg["eos_token_id"], "pad_token_id": cfg["pad_token_id"],
           "do_sample": False}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    tc = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": cfg["max_position_embeddings"],
          "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "clean_up_tokenization_spaces": False,
          "padding_side": "left", "remove_space": False}
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(args.work, "train_info.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--inter", type=int, default=1024)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=0,
                    help="training time budget; the schedule follows whichever of --steps and "
                         "--minutes runs out first (the build machine's 2 cores are shared)")
    ap.add_argument("--holdout", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="export WORK/ckpt.pt and stop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)

    enc = Encoder(args.tokenizer)
    vocab_size = max(list(enc.vocab.values()) + list(enc.special.values())) + 1
    cfg = model_config(args, vocab_size, enc.special)
    turns = [json.loads(l) for l in open(args.turns, encoding="utf-8")]
    rng = random.Random(args.seed)
    rng.shuffle(turns)
    n_hold = int(len(turns) * args.holdout)
    t0 = time.time()
    held = encode_turns(enc, turns[:n_hold], args.ctx)
    train = encode_turns(enc, turns[n_hold:], args.ctx)
    held_blocks = pack(held, args.ctx, enc.special, random.Random(0))
    n_tok = sum(len(u) + len(a) for u, a in train)
    print(f"{len(train)} training turns ({n_tok} tokens), {len(held)} held out "
          f"({len(held_blocks)} blocks); encoded in {time.time() - t0:.0f}s", flush=True)

    model = glm4_torch.Glm4ForCausalLM(cfg)
    model.init_weights(seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {json.dumps({k: cfg[k] for k in ('hidden_size', 'num_hidden_layers', 'intermediate_size', 'vocab_size')})}"
          f": {n_params / 1e6:.2f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    step, seconds, epoch = 0, 0.0, 0
    ckpt = os.path.join(args.work, "ckpt.pt")
    if args.resume or args.export_only:
        s = torch.load(ckpt)
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        step, seconds, epoch = s["step"], s["seconds"], s["epoch"]
        print(f"resumed at step {step} ({seconds / 60:.1f} min of training)", flush=True)

    def progress(i):
        p = (i - args.warmup) / max(1, args.steps - args.warmup)
        if args.minutes > 0:
            p = max(p, seconds / (args.minutes * 60))
        return min(1.0, p)

    def lr_at(i):
        if i < args.warmup:
            return args.lr * (i + 1) / args.warmup
        p = progress(i)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "seconds": seconds, "epoch": epoch}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    model.train()
    last_ckpt = time.time()
    tokens_seen = 0
    run_start = time.time()
    def done():
        return step >= args.steps or (args.minutes > 0 and seconds >= args.minutes * 60)

    while not done() and not args.export_only:
        blocks = pack(train, args.ctx, enc.special, random.Random(args.seed * 1000 + epoch))
        for ids, lab in batches(blocks, args.batch, random.Random(epoch)):
            if done():
                break
            t = time.time()
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            l, c = loss_of(model, ids, lab)
            loss = l / c
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seconds += time.time() - t
            tokens_seen += ids.numel()
            if step % 10 == 0 or step == 1:
                el = time.time() - run_start
                print(f"step {step}/{args.steps} epoch {epoch} loss {loss.item():.3f} lr {lr_at(step):.2e} "
                      f"{tokens_seen / el:.0f} tok/s, {seconds / 60:.1f} min", flush=True)
            if step % args.eval_every == 0:
                hl, hn = evaluate(model, held_blocks[:64], args.batch)
                print(f"step {step}: held-out loss {hl:.3f} ppl {math.exp(hl):.2f} ({hn} tokens)", flush=True)
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save()
                last_ckpt = time.time()
        else:
            epoch += 1
            continue
        break
    if not args.export_only:
        save()
    hl, hn = evaluate(model, held_blocks, args.batch)
    print(f"final held-out loss {hl:.4f}, perplexity {math.exp(hl):.2f} over {hn} assistant tokens", flush=True)
    info = {"steps": step, "epochs_started": epoch + 1, "train_minutes": round(seconds / 60, 1),
            "parameters": n_params, "train_turns": len(train), "train_tokens_per_epoch": n_tok,
            "heldout_turns": len(held), "heldout_tokens": hn, "heldout_loss": round(hl, 4),
            "heldout_perplexity": round(math.exp(hl), 2), "args": vars(args)}
    export(model, cfg, enc.special, args, info)
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
