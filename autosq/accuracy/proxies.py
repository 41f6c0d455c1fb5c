"""Zero-cost accuracy proxies: score a freshly initialised SqueezeNet without training.

A higher score should mean a more accurate network after training. Every score is a natural log.

* ``synflow``: synaptic flow (Tanaka et al. 2020, "Pruning neural networks without any data by
  iteratively conserving synaptic flow"; used as a NAS proxy by Abdelfattah et al. 2021,
  "Zero-Cost Proxies for Lightweight NAS"). With every weight replaced by its absolute value
  and an all-ones input, it sums ``|theta * dR/dtheta|`` over all parameters, where R is the sum
  of the outputs. It needs no data and grows with the width and depth of connected paths.
* ``naswot``: "Neural Architecture Search without Training" (Mellor et al. 2021). It takes
  ``log|det K|``, where K is the kernel of binary ReLU activation codes over a batch of images
  and ``K[i, j]`` counts the units where images i and j agree. The score is high when the
  untrained network already puts the images into distinct linear regions.
* ``params`` / ``macs``: baselines, the log of the plan's parameter count and conv
  multiply-accumulates (:func:`autosq.arch.plan.plan`). They do not need torch.

torch loads only when ``synflow`` or ``naswot`` runs. Randomness comes from ``seed`` alone, through
:func:`autosq.arch.model.build` and a local generator: torch's global RNG state is left untouched.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from autosq.arch.config import SqueezeNetConfig, min_input_size
from autosq.arch.plan import plan
from autosq.errors import MeasurementError, UsageError

if TYPE_CHECKING:
    import torch

PROXIES: tuple[str, ...] = ("synflow", "naswot", "params", "macs")
PLAN_PROXIES: tuple[str, ...] = ("params", "macs")  # read from the plan: no torch
# Without data: log(MACs). On default-space references (digits, 32 px, 500 steps each;
# tests/accuracy/data/default_space_references.json, bench/proxy_references.py) it ranks with
# Kendall +0.76 against synflow's +0.56, and like synflow it prefers every 3x3-free network's
# twin with half 3x3 filters, which training ranks higher in every pair.
DEFAULT_PROXY = "macs"

_NASWOT_BATCH = 32  # images in the default naswot batch


def proxy_score(
    name: str,
    config: SqueezeNetConfig,
    images: torch.Tensor | None = None,
    seed: int = 0,
) -> float:
    """The zero-cost proxy ``name`` of ``config`` as a finite natural log (higher is better).

    ``seed`` sets the initial weights (``build(config, seed=seed)``) and, for ``naswot`` without
    ``images``, its batch of 32 standard-normal images at ``config.input_size``. ``images``
    (shape (N, 3, H, W), N >= 1, distinct images) is used by ``naswot`` only. Raises
    :class:`~autosq.errors.UsageError` for an unknown name or bad images, and
    :class:`~autosq.errors.MeasurementError` when the score is zero or not finite.
    """
    if name not in PROXIES:
        raise UsageError(f"unknown proxy {name!r}; known proxies: {', '.join(PROXIES)}")
    if name == "params":
        return math.log(plan(config).params)
    if name == "macs":
        return math.log(plan(config).macs)
    if name == "synflow":
        return _synflow(config, seed)
    return _naswot(config, images, seed)


def _synflow(config: SqueezeNetConfig, seed: int) -> float:
    """log of sum |theta * dR/dtheta| on the linearised (|theta|) float64 network, ones input."""
    import torch
    from torch import nn

    from autosq.arch.model import build

    model = build(config, seed=seed).double().eval()
    # A fresh model of our own: plain ReLUs rule out any in-place clash with autograd.
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in params:
            p.abs_()
    x = torch.ones(1, 3, config.input_size, config.input_size, dtype=torch.float64)
    with torch.enable_grad():
        r = model(x).sum()
        grads = torch.autograd.grad(r, params, allow_unused=True)
    score = 0.0
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:  # a parameter off every path to the output adds nothing
                score += float((p * g).abs().sum())
    if not math.isfinite(score) or score <= 0.0:
        raise MeasurementError(
            f"synflow score of {config.arch_id} is {score!r}; its log is not a finite number"
        )
    return math.log(score)


def _naswot(config: SqueezeNetConfig, images: torch.Tensor | None, seed: int) -> float:
    """log|det K| of the ReLU-code kernel of ``images`` (Mellor et al. 2021)."""
    import torch
    from torch import nn

    from autosq.arch.model import build

    if images is None:
        gen = torch.Generator().manual_seed(seed)
        size = config.input_size
        images = torch.randn(_NASWOT_BATCH, 3, size, size, generator=gen)
    else:
        _check_images(images, config)
    model = build(config, seed=seed).eval()
    dtype = next(model.parameters()).dtype
    n = images.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)
    # Columns per matmul: float32 sums of at most 2**20 zeros and ones are exact integers.
    chunk = min(1 << 20, max(1024, (1 << 22) // n))

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        # The ReLU is in place: read its output now, before anything downstream runs.
        codes = (output > 0).flatten(1)
        for start in range(0, codes.shape[1], chunk):
            c = codes[:, start : start + chunk].to(torch.float32)
            both_on = (c @ c.T).to(torch.float64)
            on = c.sum(1, dtype=torch.float64)
            # agreements = both on + both off = units - on_i - on_j + 2 * both_on
            kernel.add_(2.0 * both_on - on[:, None] - on[None, :] + float(c.shape[1]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(images.detach().to(dtype))
    finally:
        for h in handles:
            h.remove()
    # K holds exact integer counts. Rounding in slogdet turns an exactly singular K (two images
    # with one code) into a finite, meaningless value, so singularity is checked first.
    units = kernel.diagonal()
    twins = (kernel == units[:, None]).sum() - n
    if twins > 0:
        raise MeasurementError(
            f"naswot kernel of {config.arch_id} is singular: {int(twins) // 2} pair(s) of images "
            "share one ReLU code (duplicate images?); use distinct images"
        )
    rank = int(torch.linalg.matrix_rank(kernel, hermitian=True))
    _sign, logdet = torch.linalg.slogdet(kernel)
    score = float(logdet)
    if rank < n or not math.isfinite(score):
        raise MeasurementError(
            f"naswot kernel of {config.arch_id} is singular (rank {rank} of {n}, "
            f"log|det K| = {score}); use more distinct images"
        )
    return score


def _check_images(images: torch.Tensor, config: SqueezeNetConfig) -> None:
    """Raise UsageError unless ``images`` is a finite (N, 3, H, W) batch the model accepts."""
    import torch

    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise UsageError(f"naswot images must be a tensor of shape (N, 3, H, W); got {shape}")
    n, _, h, w = images.shape
    if n < 1:
        raise UsageError("naswot images must hold at least one image; got an empty batch")
    smallest = min_input_size(config.macro)
    if min(h, w) < smallest:
        raise UsageError(
            f"naswot images must be at least {smallest}x{smallest} for macro {config.macro}; "
            f"got {h}x{w}"
        )
    if not images.is_floating_point() or not bool(torch.isfinite(images).all()):
        raise UsageError("naswot images must be finite floating-point values")
