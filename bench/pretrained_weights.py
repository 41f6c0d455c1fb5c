"""Build published ImageNet SqueezeNet weights as a torchvision-layout state_dict (.pth).

torchvision's layout and conventions: keys ``features.0.weight`` ... ``classifier.1.bias``; RGB
input in [0, 1] normalised by mean 0.485/0.456/0.406, std 0.229/0.224/0.225; ImageNet class order.
Two published files small enough for a public Git repository give them; the source's SHA-256
says which it is and so how it is converted. No weights are committed: this builds the .pth.

squeezenet1_0, from the Deep Compression SqueezeNet of the paper (Table 2: 0.66 MB, 57.5/80.3)
  repository  github.com/songhan/SqueezeNet-Deep-Compression, ``compressed_SqueezeNet.net``, added
              in commit 5623e3cdbe1fcd83328c61ce2ee42c34ed319aa3 (2016-04-06), unchanged at HEAD
              fb13faa2cf121ced9999f8a9d538ec6c56084733 (2019-03-15); license BSD 2-clause (LICENCE)
  file        675,763 bytes, SHA-256 e4ab6960...3a3261 (below). Format, as the repository's
              decode.py reads it: 26 uint32 stored-weight counts (one per conv, in the order of
              SqueezeNet_deploy.prototxt: conv1, then per Fire squeeze, expand1x1, expand3x3, then
              conv_final); then per conv a 256-entry float32 codebook, the float32 biases, one
              uint8 code per stored weight and one 4-bit gap per stored weight (two per byte, low
              nibble first). Stored weight k is codebook[code_k] at flat index sum_{i<=k}(gap_i+1)
              - 1 of the (out, in, kh, kw) tensor; all others codebook[0] (0.0 in every layer).
  conventions Caffe: BGR, 0-255, mean 104/117/123 (B, G, R) subtracted, no std; 227x227 crops.
  conversion  - conv1 (7x7/2, no padding): w'[o, c] = w[o, 2 - c] * 255 * std[c] and
                b'[o] = b[o] + sum_{c,kh,kw} w[o, 2-c, kh, kw] * (255 * mean[c] - caffe_mean[2-c])
                in float64, then float32. Exact: without padding every product of conv1 sees a
                real pixel, so the affine change of input folds into the conv.
              - the Fire modules: unchanged (same shapes, same concat order: expand1x1 first).
              - conv_final (classifier.1) CANNOT be converted exactly. Caffe's conv_final has
                ``pad: 1`` (a 1x1 kernel): its 13x13 map becomes 15x15 whose border is ReLU(b),
                so Caffe's class score is (169 * mean13(ReLU(w.x + b)) + 56 * ReLU(b)) / 225;
                torchvision's classifier conv has no padding and averages the 13x13 map only.
                A constant added after the ReLU has no torchvision-layout equivalent, so the
                head is w' = (169/225) w, b' = (169/225) b + (56/225) ReLU(b). For each class the
                logit then differs from Caffe's by between -(56/225) ReLU(b_c) and 0 (<= 0.095
                for these biases), and by nothing for a class whose 13x13 pre-activations are all
                >= 0 or whose bias is <= 0. The constants are for a 13x13 final map (213 to 228
                px inputs; 227 is Caffe's, 224 torchvision's); ``--verify`` measures the result.

squeezenet1_1, torchvision's own IMAGENET1K_V1 weights in half precision
  repository  github.com/zchrissirhcz/squeezenet-ncnn-pnnx-opencv-cpp, ``squeezenet_v1.1.ncnn.bin``
              (and .param), added in commit fc56736098dd40b834912d7409d4ab4931b30802 (2024-01-04),
              unchanged at HEAD 0392c1c4; made by its convertmodel.py with pnnx.export(
              torchvision.models.squeezenet1_1(pretrained=True), ...); license: none stated by
              the repository; the weights are torchvision's (BSD 3-clause)
  file        2,478,984 bytes, SHA-256 3de9f2f9...c57e544 (below): ncnn weights in the .param's
              layer order (conv1, per Fire squeeze, expand1x1, expand3x3, the final conv); per
              conv the tag 0x01306B47, the weights as IEEE float16 (padded to 4 bytes), the
              biases as float32.
  conventions torchvision's (these weights were trained by torchvision, not converted).
  conversion  float16 -> float32, exact; biases as stored. Lossy at the source: pnnx's
              convert_to_fp16_model truncates each weight's mantissa to 10 bits (relative error
              < 2^-10); the effect on logits against torchvision's own .pth was not measured.

Usage:
  python bench/pretrained_weights.py --source PATH_OR_URL --out squeezenet1_0-imagenet.pth
  python bench/pretrained_weights.py --model squeezenet1_1 --out squeezenet1_1-imagenet.pth
      (no --source: download --model's pinned file; needs the machine online) [--verify: classify
      scikit-learn's two sample photos with autosq's model and the .pth; for squeezenet1_0 also
      compare with a Caffe-semantics forward pass of the decoded Caffe weights]
The source's SHA-256 is checked before parsing; the .pth's bytes depend only on the source.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

TV_MEAN = (0.485, 0.456, 0.406)  # RGB
TV_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
NCNN_FP16_TAG = 0x01306B47
RAW = "https://raw.githubusercontent.com/"


@dataclass(frozen=True)
class Source:
    """A published file this script converts, pinned by size and SHA-256."""

    model: str  # the autosq preset (and torchvision name) it gives
    name: str
    url: str
    size: int
    sha256: str


SOURCES = (
    Source("squeezenet1_0", "compressed_SqueezeNet.net",
           RAW + "songhan/SqueezeNet-Deep-Compression/5623e3cdbe1fcd83328c61ce2ee42c34ed319aa3/"
           "compressed_SqueezeNet.net", 675_763,
           "e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261"),
    Source("squeezenet1_1", "squeezenet_v1.1.ncnn.bin",
           RAW + "zchrissirhcz/squeezenet-ncnn-pnnx-opencv-cpp/"
           "fc56736098dd40b834912d7409d4ab4931b30802/squeezenet_v1.1.ncnn.bin", 2_478_984,
           "3de9f2f9dbbbc4468fe452d9033300633b60748073a9509a7ea882caec57e544"),
)
KNOWN = "; ".join(f"{s.name} ({s.size:,} bytes, SHA-256 {s.sha256})" for s in SOURCES)

# (squeeze, expand1x1, expand3x3) of fire2..fire9, the same in v1.0 and v1.1.
FIRES = ((16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
         (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
# torchvision's features index of each Fire module.
FIRE_INDEX = {"squeezenet1_0": (3, 4, 5, 7, 8, 9, 10, 12),
              "squeezenet1_1": (3, 4, 6, 7, 9, 10, 11, 12)}
CONV1 = {"squeezenet1_0": (96, 3, 7, 7), "squeezenet1_1": (64, 3, 3, 3)}


class BuildError(Exception):
    """A bad source or argument: one line for the user; ``code`` 2 for usage, 1 at run time."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def conv_layout(model: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The convs in file order (conv1, per Fire squeeze/expand1x1/expand3x3, the final conv):
    their torchvision key prefix and (out, in, kh, kw) shape."""
    layout = [("features.0", CONV1[model])]
    cin = CONV1[model][0]
    for idx, (s, e1, e3) in zip(FIRE_INDEX[model], FIRES, strict=True):
        layout += [(f"features.{idx}.squeeze", (s, cin, 1, 1)),
                   (f"features.{idx}.expand1x1", (e1, s, 1, 1)),
                   (f"features.{idx}.expand3x3", (e3, s, 3, 3))]
        cin = e1 + e3
    return [*layout, ("classifier.1", (1000, cin, 1, 1))]


# -- reading the sources ---------------------------------------------------------------------
def fetch(spec: str, source: Source | None) -> bytes:
    """The bytes of ``spec`` (a path or an http(s) URL), at most the largest known source's."""
    limit = max(s.size for s in SOURCES)
    if spec.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(spec, timeout=60) as answer:
                blob = bytes(answer.read(limit + 1))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            name = source.name if source else "the source file"
            raise BuildError(f"cannot download {spec} ({exc}); put a copy of {name} here and "
                             "give its path with --source", code=1) from exc
    else:
        path = Path(spec)
        if not path.is_file():
            raise BuildError(f"--source {spec}: no such file; expected a path or an http(s) URL "
                             "of one of: " + KNOWN)
        try:
            with path.open("rb") as handle:
                blob = handle.read(limit + 1)
        except OSError as exc:
            raise BuildError(f"--source {spec}: cannot read it ({exc})", code=1) from exc
    return blob  # a longer file than every source reads one byte too many: identify() refuses


def identify(blob: bytes, spec: str) -> Source:
    """The known source ``blob`` is, by SHA-256 (nothing else is parsed)."""
    sha = hashlib.sha256(blob).hexdigest()
    for s in SOURCES:
        if s.sha256 == sha:
            return s
    raise BuildError(f"--source {spec}: SHA-256 {sha} ({len(blob):,} bytes) is not a known "
                     f"source; expected one of: {KNOWN}")


class Reader:
    """Little-endian arrays read from the front of a byte string, never past its end."""

    def __init__(self, blob: bytes, name: str) -> None:
        self.blob, self.name, self.at = blob, name, 0

    def take(self, dtype: str, count: int) -> np.ndarray:
        import numpy as np

        width = np.dtype(dtype).itemsize * count
        if count < 0 or self.at + width > len(self.blob):
            raise BuildError(f"{self.name} is truncated at byte {self.at:,}", code=1)
        out = np.frombuffer(self.blob, dtype=dtype, count=count, offset=self.at)
        self.at += width
        return out

    def done(self) -> None:
        if self.at != len(self.blob):
            raise BuildError(f"{self.name}: {len(self.blob) - self.at:,} bytes left over", code=1)


def decode_deep_compression(blob: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The Caffe-convention (weight, bias) of each conv of compressed_SqueezeNet.net, as the
    repository's decode.py rebuilds them, keyed by torchvision prefix."""
    import numpy as np

    layout = conv_layout("squeezenet1_0")
    rd = Reader(blob, "compressed_SqueezeNet.net")
    stored = rd.take("<u4", len(layout))
    convs = {}
    for (key, shape), count in zip(layout, stored.tolist(), strict=True):
        codebook = rd.take("<f4", 256)
        bias = rd.take("<f4", shape[0])
        codes = rd.take("u1", count)
        packed = rd.take("u1", (count + 1) // 2)
        gaps = np.empty(2 * len(packed), dtype=np.int64)
        gaps[0::2], gaps[1::2] = packed & 15, packed >> 4
        where = np.cumsum(gaps[:count] + 1) - 1
        size = int(np.prod(shape))
        if count and where[-1] >= size:
            raise BuildError(f"compressed_SqueezeNet.net: {key} stores a weight past its end", 1)
        full = np.zeros(size, dtype=np.uint8)
        full[where] = codes
        convs[key] = (codebook[full].reshape(shape).astype(np.float32), bias.astype(np.float32))
    rd.done()
    return convs


def caffe_to_torchvision(convs: dict[str, tuple[np.ndarray, np.ndarray]]
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fold Caffe's input convention into conv1 (exact) and map the padded head (see top)."""
    import numpy as np

    out = dict(convs)
    w, b = (a.astype(np.float64) for a in convs["features.0"])
    mean, std = np.array(TV_MEAN), np.array(TV_STD)
    shift = 255.0 * mean - np.array(CAFFE_MEAN_BGR)[::-1]  # RGB order, as w[:, ::-1]
    w_rgb = w[:, ::-1]
    bias = b + (w_rgb * shift[None, :, None, None]).sum((1, 2, 3))
    out["features.0"] = ((w_rgb * (255.0 * std)[None, :, None, None]).astype(np.float32),
                         bias.astype(np.float32))
    w, b = (a.astype(np.float64) for a in convs["classifier.1"])
    inner, border = 169.0 / 225.0, 56.0 / 225.0  # a 13x13 map inside Caffe's 15x15 one
    out["classifier.1"] = ((w * inner).astype(np.float32),
                           (b * inner + border * np.maximum(b, 0.0)).astype(np.float32))
    return out


def decode_ncnn_fp16(blob: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) of each conv of squeezenet_v1.1.ncnn.bin (pnnx, float16 weights)."""
    import numpy as np

    rd = Reader(blob, "squeezenet_v1.1.ncnn.bin")
    convs = {}
    for key, shape in conv_layout("squeezenet1_1"):
        if int(rd.take("<u4", 1)[0]) != NCNN_FP16_TAG:
            raise BuildError(f"squeezenet_v1.1.ncnn.bin: {key} is not stored as float16", 1)
        size = int(np.prod(shape))
        weight = rd.take("<f2", size)
        rd.take("u1", (-2 * size) % 4)  # ncnn pads each blob to 4 bytes
        convs[key] = (weight.astype(np.float32).reshape(shape),
                      rd.take("<f4", shape[0]).astype(np.float32))
    rd.done()
    return convs


def build_state(blob: bytes, source: Source) -> dict[str, torch.Tensor]:
    """The torchvision-layout state_dict of a known source."""
    import torch

    if source.model == "squeezenet1_0":
        convs = caffe_to_torchvision(decode_deep_compression(blob))
    else:
        convs = decode_ncnn_fp16(blob)
    return {f"{key}.{part}": torch.from_numpy(a.copy())
            for key, pair in convs.items()
            for part, a in zip(("weight", "bias"), pair, strict=True)}


def save(state: dict[str, torch.Tensor], out: Path) -> tuple[int, str]:
    """Write ``state`` atomically; its bytes do not depend on the file name."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)  # to memory: torch.save names its archive after a file's name
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.write_bytes(data)
    os.replace(part, out)  # never a half-written .pth under the asked name
    return len(data), hashlib.sha256(data).hexdigest()


# -- verification ----------------------------------------------------------------------------
def photos() -> list[tuple[str, torch.Tensor]]:
    """scikit-learn's two sample photos, preprocessed as torchvision's ImageNet evaluation:
    shorter side to 256 (bilinear, PIL), centre crop 224, [0, 1], normalised."""
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    out = []
    for name, pixels in zip(bunch.filenames, bunch.images, strict=True):
        image = Image.fromarray(pixels)
        w, h = image.size  # torchvision's Resize(256): int() of the longer side
        size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        image = image.resize(size, Image.Resampling.BILINEAR)
        top, left = round((size[1] - 224) / 2), round((size[0] - 224) / 2)
        crop = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
        x = (crop - np.array(TV_MEAN, np.float32)) / np.array(TV_STD, np.float32)
        out.append((Path(name).name, torch.from_numpy(x.transpose(2, 0, 1).copy())[None]))
    return out


def caffe_reference(convs: dict[str, tuple[np.ndarray, np.ndarray]], x_tv: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """SqueezeNet_deploy.prototxt's forward pass (Caffe conventions, conv_final padded) on the
    decoded Caffe weights, fed the same pixels as ``x_tv``: (fire9 output, class scores)."""
    import torch
    import torch.nn.functional as F

    p = {k: (torch.from_numpy(w), torch.from_numpy(b)) for k, (w, b) in convs.items()}
    std, mean = torch.tensor(TV_STD).view(1, 3, 1, 1), torch.tensor(TV_MEAN).view(1, 3, 1, 1)
    rgb255 = (x_tv.double() * std + mean) * 255.0  # the uint8 pixel values, as float
    x = (rgb255.flip(1) - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)).float()
    x = F.max_pool2d(F.relu(F.conv2d(x, *p["features.0"], stride=2)), 3, 2, ceil_mode=True)
    for idx in FIRE_INDEX["squeezenet1_0"]:
        s = F.relu(F.conv2d(x, *p[f"features.{idx}.squeeze"]))
        x = torch.cat([F.relu(F.conv2d(s, *p[f"features.{idx}.expand1x1"])),
                       F.relu(F.conv2d(s, *p[f"features.{idx}.expand3x3"], padding=1))], 1)
        if idx in (5, 10):
            x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    scores = F.relu(F.conv2d(x, *p["classifier.1"], padding=1)).mean((2, 3))
    return x, scores


def verify(path: Path, source: Source, blob: bytes) -> None:
    """Classify the sample photos with autosq's model and the written .pth; print the top 5."""
    import torch

    from autosq.arch.model import build
    from autosq.arch.presets import preset

    torch.set_num_threads(1)
    model = build(preset(source.model), seed=0).eval()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    caffe = decode_deep_compression(blob) if source.model == "squeezenet1_0" else None
    for name, x in photos():
        with torch.no_grad():
            features = model.features(x)
            logits = model(x)
        prob = logits.softmax(1)[0]
        top = prob.topk(5)
        pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
        print(f"{name}: top-5 " + ", ".join(f"{i} ({p:.4f})" for i, p in pairs)
              + f"; max |logit| {logits.abs().max().item():.3f}")
        if caffe is None:
            continue
        with torch.no_grad():
            ref_features, ref = caffe_reference(caffe, x)
        feat_err = (features - ref_features).abs().max() / ref_features.abs().max()
        ref_top = ref.softmax(1)[0].topk(5).indices.tolist()
        bound = (56 / 225) * max(float(caffe["classifier.1"][1].max()), 0.0)
        print(f"  Caffe reference: fire9 output max diff {feat_err:.2e} of its scale; logits max "
              f"diff {(logits - ref).abs().max():.4f} (head bound {bound:.4f}, logit scale "
              f"{ref.abs().max():.3f}); probabilities max diff "
              f"{(logits.softmax(1) - ref.softmax(1)).abs().max():.2e}; top-5 "
              f"{'same' if ref_top == top.indices.tolist() else 'DIFFERENT: ' + str(ref_top)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", help="path or http(s) URL of a known source file; default: "
                    "download --model's pinned file")
    ap.add_argument("--model", choices=[s.model for s in SOURCES],
                    help="which published weights (default squeezenet1_0 without --source)")
    ap.add_argument("--out", required=True, type=Path, help="the .pth to write")
    ap.add_argument("--verify", action="store_true", help="classify scikit-learn's two "
                    "sample photos with autosq's model and the .pth, print the top 5")
    args = ap.parse_args(argv)
    try:
        pinned = next(s for s in SOURCES if s.model == (args.model or "squeezenet1_0"))
        spec = args.source or pinned.url
        blob = fetch(spec, None if args.source else pinned)
        source = identify(blob, spec)
        if args.model and source.model != args.model:
            raise BuildError(f"--source {spec} is {source.name}, which gives {source.model}, "
                             f"not --model {args.model}")
        print(f"source: {source.name}, {len(blob):,} bytes, SHA-256 {source.sha256} "
              f"-> {source.model}")
        size, sha = save(build_state(blob, source), args.out)
        print(f"wrote {args.out} ({source.model}, torchvision layout): {size:,} bytes, "
              f"SHA-256 {sha}")
        if args.verify:
            verify(args.out, source, blob)
    except BuildError as exc:
        print(f"pretrained_weights: error: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:
        print(f"pretrained_weights: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
