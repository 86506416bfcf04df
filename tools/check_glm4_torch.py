#!/usr/bin/python3
"""Checks tools/glm4_torch.py (the model definition the embedded model was trained with) against
the references. Run by ctest (tests/CMakeLists.txt); exits non-zero on any failure, including a
missing python3-torch or a missing fixture (a missing reference is a failure, not a skip).

    check_glm4_torch.py fixture DIR
        DIR = ../shared/fixtures/hf-tiny/glm4 ($AUTOGLM_FIXTURES/hf-tiny/glm4 when that is
        set): load its weights, compare the logits of its
        input_ids with expected.json's prefill_logits (transformers' Glm4ForCausalLM, fp32).
    check_glm4_torch.py engine AUTOGLM MODEL_DIR
        compare the logits of a few prompts through glm4_torch (weights as stored, bf16,
        computed in fp32) with `AUTOGLM logits --model MODEL_DIR --tokens ... --json
        --activations f32`.
"""
import json
import os
import subprocess
import sys

try:
    import torch
except ImportError:
    sys.exit("FAIL: python3-torch is not installed (apt-get install python3-torch; scripts/setup.sh "
             f"does it); {sys.executable} cannot import torch")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm4_torch  # noqa: E402

FIXTURE_TOL = 1e-4
ENGINE_TOL = 2e-3  # bf16 weights computed in fp32 on both sides; sums in different orders


def check_fixture(d):
    if os.environ.get("AUTOGLM_FIXTURES"):
        d = os.path.join(os.environ["AUTOGLM_FIXTURES"], "hf-tiny", "glm4")
    for f in ("config.json", "model.safetensors", "expected.json"):
        if not os.path.isfile(os.path.join(d, f)):
            sys.exit(f"FAIL: fixture file {os.path.join(d, f)} is missing (set AUTOGLM_FIXTURES or "
                     "put the shared fixtures at ../shared/fixtures)")
    model = glm4_torch.load_model(d).eval()
    exp = json.load(open(os.path.join(d, "expected.json")))
    with torch.no_grad():
        got = model(torch.tensor([exp["input_ids"]]))[0]
    ref = torch.tensor(exp["prefill_logits"])
    diff = (got - ref).abs().max().item()
    print(f"hf-tiny/glm4: {tuple(got.shape)} logits, max |python - transformers| = {diff:.3g}")
    if got.shape != ref.shape or not diff <= FIXTURE_TOL:
        sys.exit(f"FAIL: glm4_torch differs from transformers by {diff} (tolerance {FIXTURE_TOL})")


def check_engine(exe, d):
    if not os.path.isfile(os.path.join(d, "model.safetensors")):
        sys.exit(f"FAIL: {d}/model.safetensors is missing")
    model = glm4_torch.load_model(d).eval()
    cfg = model.cfg
    ids = {t["content"]: t["id"] for t in json.load(open(os.path.join(d, "tokenizer.json")))["added_tokens"]}
    prompts = [
        [ids["[gMASK]"], ids["<sop>"], ids["<|user|>"], 10, 300, 301, 302, 303, ids["<|assistant|>"]],
        [5, 17, 99, 1000, 2047, cfg["vocab_size"] - 1, 42],
        [ids["[gMASK]"], ids["<sop>"]] + [(i * 37) % 6000 for i in range(40)],
    ]
    worst = 0.0
    for p in prompts:
        # An f32 KV cache and f32 matmul inputs: this compares the architecture at f32 precision
        # (the f16 cache and the bf16 activations of the default add their own rounding, which
        # tests/models/hf_fixtures_test.cpp bounds separately).
        out = subprocess.run([exe, "logits", "--model", d, "--tokens", ",".join(map(str, p)), "--json",
                              "--kv-type", "f32", "--activations", "f32"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"FAIL: {exe} logits exited {out.returncode}: {out.stderr[-2000:]}")
        eng = torch.tensor(json.loads(out.stdout)["logits"])
        with torch.no_grad():
            ref = model(torch.tensor([p]))[0]
        if eng.shape != ref.shape:
            sys.exit(f"FAIL: engine logits {tuple(eng.shape)} vs python {tuple(ref.shape)}")
        diff = (eng - ref).abs().max().item()
        same_top = bool((eng.argmax(-1) == ref.argmax(-1)).all())
        print(f"{len(p)} tokens: max |engine - python| = {diff:.3g}, argmax equal: {same_top}")
        worst = max(worst, diff)
        if not diff <= ENGINE_TOL:
            sys.exit(f"FAIL: the engine's logits differ from glm4_torch by {diff} (tolerance {ENGINE_TOL})")
    print(f"OK: {d} agrees with glm4_torch (worst {worst:.3g})")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "fixture":
        check_fixture(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "engine":
        check_engine(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
