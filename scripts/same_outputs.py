#!/usr/bin/env python3
"""Exit 0 when two expected.json files hold the same shapes and outputs to 1e-6 (relative to
the largest magnitude), 1 otherwise, naming the first difference."""
import json
import sys


def main(a_path: str, b_path: str) -> int:
    a, b = (json.load(open(p)) for p in (a_path, b_path))
    if a["shapes"] != b["shapes"] or len(a["outputs"]) != len(b["outputs"]):
        print(f"shapes differ: {a['shapes']} vs {b['shapes']}")
        return 1
    for i, (x, y) in enumerate(zip(a["outputs"], b["outputs"])):
        scale = max([abs(v) for v in x + y] + [1e-30])
        for j, (u, v) in enumerate(zip(x, y)):
            if len(x) != len(y) or abs(u - v) > 1e-6 * scale:
                print(f"output {i} value {j}: {u} vs {v}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
