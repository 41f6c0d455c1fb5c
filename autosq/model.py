"""The torch module of a plan, with torchvision's SqueezeNet names, order and initialisation.

For the paper's presets without bypass the state_dict keys and shapes equal torchvision's
(``features.3.squeeze.weight``, ..., ``classifier.1.weight``), so weights load both ways. A
bypass adds its shortcut inside the Fire module (``features.N.shortcut`` for the 1x1-conv one),
which leaves every torchvision name in place.
"""

from __future__ import annotations

import torch
from torch import nn

from autosq.arch import FireSpec, Plan, SqueezeNetConfig, plan


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> (expand 1x1 | expand 3x3) -> ReLU -> concat [+ shortcut]."""

    def __init__(self, spec: FireSpec) -> None:
        super().__init__()
        self.spec = spec
        self.squeeze = nn.Conv2d(spec.cin, spec.squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        # A branch with 0 filters (pct_3x3 exactly 0 or 1) does not exist.
        self.expand1x1: nn.Conv2d | None = (
            nn.Conv2d(spec.squeeze, spec.expand1x1, kernel_size=1) if spec.expand1x1 else None
        )
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3: nn.Conv2d | None = (
            nn.Conv2d(spec.squeeze, spec.expand3x3, kernel_size=3, padding=1)
            if spec.expand3x3
            else None
        )
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.shortcut: nn.Conv2d | None = (
            nn.Conv2d(spec.cin, spec.cout, kernel_size=1) if spec.shortcut == "conv" else None
        )
        self.identity = spec.shortcut == "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        outs = []
        if self.expand1x1 is not None:
            outs.append(self.expand1x1_activation(self.expand1x1(s)))
        if self.expand3x3 is not None:
            outs.append(self.expand3x3_activation(self.expand3x3(s)))
        y = torch.cat(outs, 1) if len(outs) == 2 else outs[0]
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        elif self.identity:
            y = y + x
        return y


class SqueezeNet(nn.Module):
    """SqueezeNet built from a :class:`~autosq.arch.Plan` (``features`` + ``classifier``)."""

    def __init__(self, p: Plan) -> None:
        super().__init__()
        self.plan = p
        cfg = p.config
        fires = iter(p.fires)
        modules: list[nn.Module] = []
        for layer in p.layers:
            if layer.name == "conv1":
                modules.append(nn.Conv2d(3, layer.cout, kernel_size=layer.kernel, stride=2))
                modules.append(nn.ReLU(inplace=True))
            elif layer.kind == "maxpool":
                modules.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            elif layer.name.endswith(".squeeze"):
                modules.append(Fire(next(fires)))
        self.features = nn.Sequential(*modules)
        final_conv = nn.Conv2d(p.fires[-1].cout, cfg.num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=cfg.dropout),
            final_conv,
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)


def build(config: SqueezeNetConfig | Plan, seed: int | None = None) -> SqueezeNet:
    """The torch model of a config or plan; ``seed`` makes the initial weights reproducible."""
    p = config if isinstance(config, Plan) else plan(config)
    if seed is None:
        return SqueezeNet(p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SqueezeNet(p)
