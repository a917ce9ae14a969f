#!/usr/bin/env python3
"""Train a small character-level GPT on corpus.txt and export it with torch.onnx (opset 17).

A dev-time script (torch 2.5.1, pinned in requirements.txt; the project does not install
torch): its outputs are committed, and `scripts/check_gpt.py` re-checks without torch what can
be checked without it (the ONNX file's reference outputs and the prompts' argmax).

The model, nanoGPT's shape at a small size: token and position embeddings, 2 pre-LN blocks
(d = 64, 4 heads, a causal mask by masked_fill with -inf, a 4x MLP with erf-GELU), a final
LayerNorm and an untied head that reads the last position: the input is 32 token ids, the
output the next-token logits.

Writes, next to this script: model.onnx, vocab.json, input.json (one prompt), calibration.json
(64 windows of the training text), expected.json (onnx.reference's logits for input.json), prompts.json (100 prompts
from the held-out tail of the corpus, with torch's float argmax for each).

Deterministic: fixed seeds, one thread, a fixed number of steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
SEQ, DIM, HEADS, BLOCKS = 32, 64, 4, 2
STEPS, BATCH, LR = 1500, 32, 3e-3
PROMPTS = 100
CALIBRATION = 64


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(DIM)
        self.c_attn = nn.Linear(DIM, 3 * DIM)
        self.c_proj = nn.Linear(DIM, DIM)
        self.ln_2 = nn.LayerNorm(DIM)
        self.fc = nn.Linear(DIM, 4 * DIM)
        self.proj = nn.Linear(4 * DIM, DIM)
        self.register_buffer("causal", torch.tril(torch.ones(SEQ, SEQ)).view(1, 1, SEQ, SEQ))

    def attn(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(DIM, dim=2)
        q = q.view(b, t, HEADS, c // HEADS).transpose(1, 2)
        k = k.view(b, t, HEADS, c // HEADS).transpose(1, 2)
        v = v.view(b, t, HEADS, c // HEADS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // HEADS))
        att = att.masked_fill(self.causal[:, :, :t, :t] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, DIM)
        self.wpe = nn.Embedding(SEQ, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, vocab, bias=False)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Next-token logits: the last position only (the proof's public outputs).
        return self.head(self.hidden(ids)[:, -1, :])

    def all_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(ids))


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj) + "\n")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    text = (HERE / "corpus.txt").read_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(data))
    train, held = data[:split], data[split:]

    model = GPT(len(chars))
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        ix = torch.randint(len(train) - SEQ - 1, (BATCH,), generator=gen)
        x = torch.stack([train[i : i + SEQ] for i in ix])
        y = torch.stack([train[i + 1 : i + SEQ + 1] for i in ix])
        logits = model.all_logits(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {loss.item():.3f}")
    model.eval()

    # 100 prompts and the sample from the held-out text, evenly spaced; calibration from the
    # training text (what the model saw), enough windows that the function tables' ranges
    # (taken from calibration) cover what held-out prompts reach.
    starts = np.linspace(0, len(held) - SEQ - 1, PROMPTS + 1).astype(int)
    windows = [held[s : s + SEQ] for s in starts]
    prompts, sample = windows[:PROMPTS], windows[-1]
    calib = [train[s : s + SEQ] for s in np.linspace(0, len(train) - SEQ - 1, CALIBRATION).astype(int)]
    with torch.no_grad():
        float_logits = model(torch.stack(prompts))
    write_json(HERE / "prompts.json", {
        "input_data": [[float(v) for p in prompts for v in p.tolist()]],
        "argmax": float_logits.argmax(-1).tolist(),
    })
    write_json(HERE / "calibration.json", {"input_data": [[float(v) for p in calib for v in p.tolist()]]})
    write_json(HERE / "input.json", {"input_data": [[float(v) for v in sample.tolist()]]})
    write_json(HERE / "vocab.json", {"chars": "".join(chars)})

    torch.onnx.export(model, (sample.view(1, SEQ),), HERE / "model.onnx", opset_version=17,
                      input_names=["input"], output_names=["output"], dynamo=False)
    import onnx
    from onnx.reference import ReferenceEvaluator
    m = onnx.load(HERE / "model.onnx")
    out = ReferenceEvaluator(m).run(None, {"input": sample.view(1, SEQ).numpy()})[0]
    write_json(HERE / "expected.json", {"outputs": [[float(v) for v in out.ravel()]], "shapes": [list(out.shape)]})
    print("prompt:", repr("".join(chars[i] for i in sample.tolist())), "→", repr(chars[int(out.argmax())]))


if __name__ == "__main__":
    main()
