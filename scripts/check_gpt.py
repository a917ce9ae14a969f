#!/usr/bin/env python3
"""Checks examples/gpt without torch (its training and export need torch; their outputs are
committed): onnx.reference, run on the committed model.onnx, must give expected.json's logits
for input.json (to float rounding) and prompts.json's next-token argmax for each of its prompts.
Exit 0 when both hold, 1 otherwise, naming the first difference."""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

GPT = Path(__file__).resolve().parent.parent / "examples" / "gpt"


def main() -> int:
    model = onnx.load(GPT / "model.onnx")
    run = ReferenceEvaluator(model)
    seq = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value

    def logits(ids) -> np.ndarray:
        return run.run(None, {"input": np.asarray(ids, dtype=np.int64).reshape(1, seq)})[0].ravel()

    sample = json.loads((GPT / "input.json").read_text())["input_data"][0]
    expected = np.asarray(json.loads((GPT / "expected.json").read_text())["outputs"][0])
    got = logits(sample)
    scale = max(np.abs(expected).max(), 1e-30)
    if got.shape != expected.shape or np.abs(got - expected).max() > 1e-5 * scale:
        print("examples/gpt/expected.json differs from onnx.reference on model.onnx")
        return 1
    prompts = json.loads((GPT / "prompts.json").read_text())
    ids = prompts["input_data"][0]
    for i, want in enumerate(prompts["argmax"]):
        top = int(logits(ids[i * seq:(i + 1) * seq]).argmax())
        if top != want:
            print(f"examples/gpt/prompts.json prompt {i}: onnx.reference's argmax is {top}, the file says {want}")
            return 1
    print(f"examples/gpt: onnx.reference reproduces expected.json and the argmax of {len(prompts['argmax'])} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
