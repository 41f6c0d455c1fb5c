"""Export the Archai peer's candidates to ONNX with the peer's own model code (run by
bench/peer_bench.py in the Archai venv, never in autosq's).

Usage: ARCHAI_PYTHON bench/peer_export.py PEER_DIR CONFIGS.json OUT_DIR

CONFIGS.json holds ``[[archid, config], ...]``; each model is written to ``OUT_DIR/ARCHID.onnx``
with the legacy exporter at opset 17 (as the peer harness times them), 224x224 input.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def main() -> int:
    peer_dir, configs, out = sys.argv[1:4]
    sys.path.insert(0, peer_dir)
    import torch
    from peer_archai import SqueezeNet

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for archid, cfg in json.loads(Path(configs).read_text()):
        model = SqueezeNet(cfg).eval()
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(folder / f"{archid}.onnx"),
                          opset_version=17, dynamo=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
