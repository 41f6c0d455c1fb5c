"""The torch module of a plan, with torchvision's SqueezeNet names, order and initialisation,
and its training form (BatchNorm after each conv, folded back exactly for deployment).

For the paper's presets without bypass the state_dict keys and shapes equal torchvision's
(``features.3.squeeze.weight``, ..., ``classifier.1.weight``), so weights load both ways. A
bypass adds its shortcut inside the Fire module (``features.N.shortcut`` for the 1x1-conv one),
which leaves every torchvision name in place.
"""

from __future__ import annotations

import torch
from torch import nn

from autosq.arch.config import SqueezeNetConfig
from autosq.arch.plan import FireSpec, Plan, plan
from autosq.memory import check_allocation


def check_model_memory(p: Plan) -> None:
    """Refuse, with the numbers, a network whose weights this machine cannot hold (three
    copies: the model, an export or a training step's gradients, and a runtime's)."""
    check_allocation(12.0 * p.params, f"a network of {p.params:,} parameters",
                     "ask for fewer classes or a smaller architecture")


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
    """SqueezeNet built from a :class:`~autosq.arch.plan.Plan` (``features`` + ``classifier``)."""

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
    check_model_memory(p)
    if seed is None:
        return SqueezeNet(p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SqueezeNet(p)


# -- training form <-> deployed form -------------------------------------------------------------
# SqueezeNet as published (no BatchNorm) barely trains from random weights in a few hundred
# steps: its class outputs die. Candidates train with a BatchNorm after every conv and are folded
# back into the plain network, which is what is exported, timed and scored (see
# autosq.accuracy.train). The head keeps its ReLU in both forms, so folding gives back exactly
# the function that was trained: a training form with another head (a LeakyReLU) learnt negative
# class outputs that the deployed ReLU zeroed, and scored trained networks at chance.
class _ConvBN(nn.Module):
    """A conv followed by BatchNorm: the training form of one conv."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn(self.conv(x))
        return out


def training_form(model: SqueezeNet) -> SqueezeNet:
    """Wrap every conv, the classifier's too, with BatchNorm (in place); the ReLU head stays,
    so :func:`deployed_form` computes the same function in eval mode."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d):
                setattr(module, name, _ConvBN(child))
    return model


def deployed_form(model: SqueezeNet) -> SqueezeNet:
    """Fold every BatchNorm into its conv (exact in eval mode, up to float rounding): the plain
    SqueezeNet, with torchvision's names."""
    model.eval()
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _ConvBN):
                conv, bn = child.conv, child.bn
                assert bn.running_var is not None and bn.running_mean is not None
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                with torch.no_grad():
                    conv.weight.mul_(scale.view(-1, 1, 1, 1))
                    assert conv.bias is not None
                    conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
                setattr(module, name, conv)
    return model

