#!/usr/bin/env python3
"""Export a small PyTorch CNN with torch.onnx (the TorchScript exporter), as customers do.

This model is here to check that zkinfer takes what a real exporter writes, noise included:
``x.view(x.size(0), -1)`` becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape, the
exporter adds Constant nodes, and BatchNorm2d stays a BatchNormalization node (training mode
PRESERVE, constant folding off) so that zkinfer's folding of it into the Conv is exercised.

Needs torch (not installed by the project: it is a 5 GB download; the exported files are
committed instead). Reproduce with:

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install -r examples/torch_cnn/requirements.txt
    /tmp/torch/bin/python examples/torch_cnn/export.py

Writes model.onnx, input.json and calibration.json (EZKL format) next to this script.
"""

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 11
SIDE = 10
CALIBRATION_SAMPLES = 8
HERE = Path(__file__).resolve().parent


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(4 * (SIDE // 2) ** 2, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        x = x.view(x.size(0), -1)  # the exporter turns this into Shape/Gather/Unsqueeze/Concat
        return self.fc2(torch.relu(self.fc1(x)))


def floats(t: torch.Tensor) -> list:
    return [float(v) for v in t.detach().numpy().astype(np.float32).ravel()]


def main() -> None:
    torch.manual_seed(SEED)
    model = SmallCnn()
    # Non-trivial running statistics, so that BatchNormalization is not an identity.
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.1, 0.1)
    model.eval()
    sample = torch.rand(1, 1, SIDE, SIDE) * 2 - 1
    calibration = torch.rand(CALIBRATION_SAMPLES, 1, 1, SIDE, SIDE) * 2 - 1
    torch.onnx.export(
        model,
        (sample,),
        str(HERE / "model.onnx"),
        input_names=["image"],
        output_names=["logits"],
        opset_version=13,
        do_constant_folding=False,
        training=torch.onnx.TrainingMode.PRESERVE,
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},  # as most exports do; zkinfer proves batch 1
        dynamo=False,
    )
    (HERE / "input.json").write_text(json.dumps({"input_data": [floats(sample)]}) + "\n")
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [floats(calibration)]}) + "\n")
    with torch.no_grad():
        out = model(sample)
    (HERE / "expected.json").write_text(json.dumps({"outputs": [floats(out)], "shapes": [list(out.shape)]}) + "\n")


if __name__ == "__main__":
    main()
