#!/usr/bin/env python3
"""Prove the same ONNX model on the same input with zkinfer and with EZKL, one model at a time.

Each timed step runs in its own child process, so its wall time and its peak resident memory
(``ru_maxrss`` from ``wait4``) are its own. Both tools use an insecure development SRS made
locally, a Poseidon-hashed private input and public outputs, and their default "resources"
calibration. The error of each is max |proven output - float output|, against
``expected.json`` (``onnx.reference``, float32) next to each example.

Run through benches/ezkl/side_by_side.sh, which installs EZKL and builds zkinfer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EZKL_STEP = r"""
import asyncio, inspect, json, sys, time
import ezkl
step, args = sys.argv[1], json.loads(sys.argv[2])
def call(f, **kw):
    r = f(**kw)
    return asyncio.run(r) if inspect.isawaitable(r) else r
t = time.perf_counter()
if step == "settings":
    ra = ezkl.PyRunArgs()
    ra.input_visibility = "hashed"
    ra.output_visibility = "public"
    ra.param_visibility = "fixed"
    call(ezkl.gen_settings, model=args["model"], output=args["settings"], py_run_args=ra)
    call(ezkl.calibrate_settings, data=args["calibration"], model=args["model"], settings=args["settings"], target="resources")
elif step == "compile":
    call(ezkl.compile_circuit, model=args["model"], compiled_circuit=args["compiled"], settings_path=args["settings"])
elif step == "srs":
    call(ezkl.gen_srs, srs_path=args["srs"], logrows=args["logrows"])
elif step == "witness":
    call(ezkl.gen_witness, data=args["input"], model=args["compiled"], output=args["witness"])
elif step == "setup":
    call(ezkl.setup, model=args["compiled"], vk_path=args["vk"], pk_path=args["pk"], srs_path=args["srs"])
elif step == "prove":
    call(ezkl.prove, witness=args["witness"], model=args["compiled"], pk_path=args["pk"], proof_path=args["proof"], srs_path=args["srs"])
elif step == "verify":
    ok = call(ezkl.verify, proof_path=args["proof"], settings_path=args["settings"], vk_path=args["vk"], srs_path=args["srs"])
    assert ok, "EZKL rejected its own proof"
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


class StepFailed(Exception):
    """A child exited non-zero: for EZKL, that is the result (its error message and step)."""

    def __init__(self, cmd: list[str], code: int, out: str, err: str):
        lines = [ln for ln in (err or out).strip().splitlines() if ln.strip()]
        self.message = lines[-1] if lines else f"exit status {code}"
        self.step = cmd[3] if len(cmd) > 3 and cmd[1] == "-c" else " ".join(cmd[:2])
        super().__init__(f"step failed ({code}): {' '.join(cmd)}\n{out}\n{err}")


def run(cmd: list[str], cwd: Path | None = None) -> dict:
    """Runs a child; returns its wall seconds, peak RSS (MiB) and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise StepFailed(cmd, proc.returncode, out, err)
    return {"wall_s": wall, "peak_mib": usage.ru_maxrss / 1024, "stdout": out}


def max_error(proven: list[list[float]], expected: list[list[float]]) -> float:
    return max(abs(a - b) for p, e in zip(proven, expected) for a, b in zip(p, e))


def with_explicit_defaults(src: Path, dst: Path) -> Path:
    """A copy of the model with ONNX's default Conv/pool attributes written out: EZKL 23.0.5
    rejects a Conv or MaxPool without an explicit `strides` ("missing required params").
    The semantics are unchanged; zkinfer gets the original file."""
    import onnx
    from onnx import helper

    m = onnx.load(str(src))
    for node in m.graph.node:
        if node.op_type in ("Conv", "MaxPool", "AveragePool"):
            have = {a.name for a in node.attribute}
            kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
            rank = len(kernel) if kernel else 2
            for name, value in (("strides", [1] * rank), ("pads", [0] * 2 * rank), ("dilations", [1] * rank)):
                if name not in have and not (name == "dilations" and node.op_type == "AveragePool"):
                    node.attribute.append(helper.make_attribute(name, value))
    onnx.save(m, str(dst))
    return dst


def ezkl(model: str, work: Path) -> dict:
    ex = ROOT / "examples" / model
    work.mkdir(parents=True, exist_ok=True)
    a = {
        "model": str(with_explicit_defaults(ex / "model.onnx", work / "model.onnx")), "calibration": str(ex / "calibration.json"), "input": str(ex / "input.json"),
        "settings": str(work / "settings.json"), "compiled": str(work / "model.compiled"), "srs": str(work / "kzg.srs"),
        "witness": str(work / "witness.json"), "vk": str(work / "vk.key"), "pk": str(work / "pk.key"), "proof": str(work / "proof.json"),
    }
    step = lambda name: run([sys.executable, "-c", EZKL_STEP, name, json.dumps(a)])  # noqa: E731
    r = {"tool": "ezkl", "calibrate": step("settings")}
    settings = json.loads(Path(a["settings"]).read_text())
    a["logrows"] = settings["run_args"]["logrows"]
    r["k"] = a["logrows"]
    r["compile"] = step("compile")
    r["srs"] = step("srs")
    r["witness"] = step("witness")
    r["keygen"] = step("setup")
    r["prove"] = step("prove")
    r["verify"] = step("verify")
    witness = json.loads(Path(a["witness"]).read_text())
    outputs = [[float(v) for v in o] for o in witness["pretty_elements"]["rescaled_outputs"]]
    proof = json.loads(Path(a["proof"]).read_text())
    raw = proof.get("hex_proof") or proof.get("proof")
    r["proof_bytes"] = len(raw) if isinstance(raw, list) else len(bytes.fromhex(str(raw).removeprefix("0x")))
    r["outputs"] = outputs
    return r


def zkinfer(binary: str, model: str, work: Path) -> dict:
    ex = ROOT / "examples" / model
    d = work / "model"
    z = lambda *args: run([binary, *args])  # noqa: E731
    r = {"tool": "zkinfer"}
    r["compile"] = z("compile", str(ex / "model.onnx"), "-o", str(d), "--calibration", str(ex / "calibration.json"))
    r["keygen"] = z("setup", str(d), "--dev-srs")  # includes making the dev SRS
    r["prove"] = z("prove", str(d), "--input", str(ex / "input.json"), "-o", str(work / "proof.zkp"), "--output", str(work / "out.json"))
    r["verify"] = z("verify", str(d), str(work / "proof.zkp"))
    info = json.loads(z("info", str(d), "--json")["stdout"])
    r["k"] = info["k"]
    r["outputs"] = json.loads((work / "out.json").read_text())["outputs"]
    m = re.search(r"proof (\d+) bytes", r["prove"]["stdout"])
    r["proof_bytes"] = int(m.group(1)) if m else -1
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=["mlp", "cnn", "transformer"])
    p.add_argument("--zkinfer", required=True, help="the zkinfer binary (release build)")
    p.add_argument("--out", type=Path, required=True, help="working directory and results")
    a = p.parse_args()
    results = []
    for model in a.models:
        expected = json.loads((ROOT / "examples" / model / "expected.json").read_text())["outputs"]
        pair = {}
        for tool in ("zkinfer", "ezkl"):
            print(f"{model}: {tool} ...", flush=True)
            try:
                r = zkinfer(a.zkinfer, model, a.out / model / tool) if tool == "zkinfer" else ezkl(model, a.out / model / tool)
            except StepFailed as f:
                if tool == "zkinfer":
                    sys.exit(str(f))
                # The reference toolkit failing on a model is a result: keep its step and message.
                print(f"{model}: ezkl failed at {f.step}: {f.message}", flush=True)
                pair[tool] = {"tool": tool, "failed": {"step": f.step, "message": f.message}}
                continue
            r["max_error"] = max_error(r.pop("outputs"), expected)
            pair[tool] = r
        results.append({"model": model, **pair})
        z, e = pair["zkinfer"], pair["ezkl"]
        if "failed" in e:
            continue
        print(
            f"{model}: prove {z['prove']['wall_s']:.2f} s vs {e['prove']['wall_s']:.2f} s "
            f"(ratio {z['prove']['wall_s'] / e['prove']['wall_s']:.3f}), peak {z['prove']['peak_mib']:.0f} vs {e['prove']['peak_mib']:.0f} MiB "
            f"(ratio {z['prove']['peak_mib'] / e['prove']['peak_mib']:.3f}), error {z['max_error']:.2e} vs {e['max_error']:.2e}",
            flush=True,
        )
    for r in results:
        for tool in ("zkinfer", "ezkl"):
            for v in r[tool].values():
                if isinstance(v, dict):
                    v.pop("stdout", None)
    (a.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n| model | tool | k | keygen s | prove s | prove peak MiB | verify s | proof B | max error vs float |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for tool in ("zkinfer", "ezkl"):
            t = r[tool]
            if "failed" in t:
                print(f"| {r['model']} | {tool} | failed at `{t['failed']['step']}`: {t['failed']['message']} | | | | | | |")
                continue
            print(
                f"| {r['model']} | {tool} | {t['k']} | {t['keygen']['wall_s']:.2f} | {t['prove']['wall_s']:.2f} | "
                f"{t['prove']['peak_mib']:.0f} | {t['verify']['wall_s']:.3f} | {t['proof_bytes']} | {t['max_error']:.2e} |"
            )
    print("\n| model | prove time zkinfer/EZKL | prove memory zkinfer/EZKL | error zkinfer | error EZKL |")
    print("|---|---|---|---|---|")
    for r in results:
        z, e = r["zkinfer"], r["ezkl"]
        if "failed" in e:
            print(f"| {r['model']} | (EZKL failed) | | {z['max_error']:.2e} | |")
            continue
        print(
            f"| {r['model']} | {z['prove']['wall_s'] / e['prove']['wall_s']:.3f} | {z['prove']['peak_mib'] / e['prove']['peak_mib']:.3f} | "
            f"{z['max_error']:.2e} | {e['max_error']:.2e} |"
        )


if __name__ == "__main__":
    main()
