"""LPIPS (Zhang et al. 2018, v0.1): an AlexNet, VGG16 or SqueezeNet 1.1 backbone (torchvision key layout) plus
learned linear heads.

Two weight files, neither downloaded behind the user's back:

- the **backbone**: torchvision's ImageNet ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth`` or
  ``squeezenet1_1-b8a52dc0.pth`` (only the ``features.*`` tensors are read), from the ``backbone`` argument,
  ``PIXTRANS_ALEXNET`` / ``PIXTRANS_VGG16`` / ``PIXTRANS_SQUEEZENET`` or the
  torch hub cache (``<hub dir>/checkpoints/``);
- the **heads**: the ``lpips`` package's ``weights/v0.1/{alex,vgg,squeeze}.pth`` (keys ``lin0.model.1.weight`` ...,
  shapes (1, C, 1, 1)), from the ``heads`` argument, ``PIXTRANS_LPIPS_HEADS``, an installed ``lpips`` package or
  the copy torchmetrics ships (``torchmetrics/functional/image/lpips_models/``); neither package is imported.

Distance as the reference implementation: inputs in [-1, 1], shifted/scaled by the fixed ImageNet-derived constants,
each tapped ReLU feature normalised to unit length over channels, squared differences weighted per channel by the
head, averaged over space and summed over layers. 0 for identical images; larger = less similar (typically < 1).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import CheckpointError, WeightsMissingError
from .pretrained import check_state, find_weights, hub_checkpoints, read_state, save_state

# torchvision ``features`` configurations; NETS: per backbone the indices of ``features`` tapped (a ReLU or a Fire
# block), the head channels, the torchvision weight file, its URL and the environment variable naming it.
_ALEX = (("C", 3, 64, 11, 4, 2), "R", "M", ("C", 64, 192, 5, 1, 2), "R", "M", ("C", 192, 384, 3, 1, 1), "R",
         ("C", 384, 256, 3, 1, 1), "R", ("C", 256, 256, 3, 1, 1), "R", "M")  # fmt: skip
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# SqueezeNet 1.1 after its first conv + ReLU: "M" = 3x3/2 max-pool (ceil mode), (cin, squeeze, expand) = Fire block
_SQUEEZE = ("M", (64, 16, 64), (128, 16, 64), "M", (128, 32, 128), (256, 32, 128), "M", (256, 48, 192),
            (384, 48, 192), (384, 64, 256), (512, 64, 256))  # fmt: skip
NETS = {
    "alex": {
        "taps": (1, 4, 7, 9, 11),
        "channels": (64, 192, 384, 256, 256),
        "file": "alexnet-owt-7be5be79.pth",
        "url": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "env": "PIXTRANS_ALEXNET",
    },
    "vgg": {
        "taps": (3, 8, 15, 22, 29),
        "channels": (64, 128, 256, 512, 512),
        "file": "vgg16-397923af.pth",
        "url": "https://download.pytorch.org/models/vgg16-397923af.pth",
        "env": "PIXTRANS_VGG16",
    },
    "squeeze": {
        "taps": (1, 4, 7, 9, 10, 11, 12),
        "channels": (64, 128, 256, 384, 384, 512, 512),
        "file": "squeezenet1_1-b8a52dc0.pth",
        "url": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        "env": "PIXTRANS_SQUEEZENET",
    },
}
HEADS_ENV = "PIXTRANS_LPIPS_HEADS"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class Fire(nn.Module):
    """SqueezeNet's Fire block (keys ``squeeze``, ``expand1x1``, ``expand3x3``): 1x1 squeeze, then 1x1 and 3x3
    expands side by side, each followed by a ReLU."""

    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


def _features(net: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    if net == "squeeze":
        layers += [nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=False)]
        for item in _SQUEEZE:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True) if item == "M" else Fire(*item))
        return nn.Sequential(*layers)
    if net == "alex":
        for item in _ALEX:
            if item == "R":
                layers.append(nn.ReLU(inplace=False))
            elif item == "M":
                layers.append(nn.MaxPool2d(3, 2))
            else:
                _, cin, cout, k, s, p = item
                layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
        return nn.Sequential(*layers)
    cin = 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def _check_net(net: str) -> dict:
    if net not in NETS:
        raise ValueError(f"LPIPS backbone must be one of {', '.join(NETS)}, got {net!r}")
    return NETS[net]


class LPIPS(nn.Module):
    """LPIPS distance per image pair; ``forward(x, y)`` with (N, 3, H, W) images in [-1, 1] returns (N,)."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        spec = _check_net(net)
        self.net = net
        self.taps = spec["taps"]
        self.features = _features(net)
        self.lins = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in spec["channels"]])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def _taps(self, x: Tensor) -> list[Tensor]:
        outs = []
        for i, layer in enumerate(self.features[: self.taps[-1] + 1]):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
        return outs

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two (N, 3, H, W) batches of one shape, got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        fx = self._taps((x.float() - self.shift) / self.scale)
        fy = self._taps((y.float() - self.shift) / self.scale)
        total = x.new_zeros(x.shape[0], dtype=torch.float32)
        for a, b, w in zip(fx, fy, self.lins):
            a = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + ((a - b).square() * w).sum(1).mean((1, 2))
        return total


# ---------------------------------------------------------------------------- weights
def _missing_message(problem: str, net: str) -> str:
    spec = NETS[net]
    hub = hub_checkpoints()
    return (
        f"{problem} LPIPS ({net}) needs the ImageNet {net} backbone weights: download {spec['url']} to "
        f"{hub / spec['file']}, or set {spec['env']}=/path/to/{spec['file']} or --lpips-backbone FILE, "
        f"or leave out --lpips"
    )


def _heads_message(problem: str, net: str) -> str:
    return (
        f"{problem} LPIPS needs the v0.1 linear heads ({net}.pth, 6-11 kB). They ship inside torchmetrics "
        f"(functional/image/lpips_models/) and the lpips package (weights/v0.1/); set {HEADS_ENV}=/path/to/{net}.pth "
        f"or a folder holding it"
    )


def find_backbone_weights(net: str = "alex", backbone: str | os.PathLike | None = None) -> Path:
    """Argument, then ``PIXTRANS_ALEXNET``/``PIXTRANS_VGG16``, then the torch hub cache; else WeightsMissingError."""
    spec = _check_net(net)
    path = Path(
        find_weights(backbone, spec["env"], (spec["file"],), f"{net} backbone", lambda p: _missing_message(p, net))
    )
    if not path.expanduser().is_file():
        raise WeightsMissingError(_missing_message(f"LPIPS backbone file {path} does not exist.", net))
    return path.expanduser()


def find_head_weights(net: str = "alex", heads: str | os.PathLike | None = None) -> Path:
    """Argument, then ``PIXTRANS_LPIPS_HEADS`` (file or folder), then an installed lpips package, then torchmetrics'
    copy; each found without importing the package."""
    _check_net(net)
    src = str(heads) if heads is not None and str(heads) else os.environ.get(HEADS_ENV, "").strip()
    if src:
        path = Path(src).expanduser()
        path = path / f"{net}.pth" if path.is_dir() else path
        if not path.is_file():
            raise WeightsMissingError(_heads_message(f"LPIPS heads file {path} does not exist.", net))
        return path
    for pkg, sub in (("lpips", "weights/v0.1"), ("torchmetrics", "functional/image/lpips_models")):
        spec = importlib.util.find_spec(pkg)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            cand = Path(loc) / sub / f"{net}.pth"
            if cand.is_file():
                return cand
    raise WeightsMissingError(_heads_message("no LPIPS heads found.", net))


def _backbone_state(state: dict, net: str, source: str) -> dict[str, Tensor]:
    with torch.device("meta"):
        expected = {f"features.{k}": v for k, v in _features(net).state_dict().items()}
    title, hint = f"not a torchvision {net} state dict", f"expected e.g. {NETS[net]['url']}"
    state = check_state(state, expected, source, net, title, hint, strict=False)
    return {k.removeprefix("features."): v for k, v in state.items()}


def _head_state(state: dict, net: str, source: str) -> list[Tensor]:
    chans = NETS[net]["channels"]
    out = []
    for i, c in enumerate(chans):
        v = next((state[k] for k in (f"lin{i}.model.1.weight", f"lins.{i}.model.1.weight") if k in state), None)
        if v is None or tuple(v.shape) != (1, c, 1, 1):
            got = "missing" if v is None else f"shape {tuple(v.shape)}"
            raise CheckpointError(
                f"{source}: not LPIPS v0.1 {net} heads: lin{i}.model.1.weight is {got}, needs (1, {c}, 1, 1) "
                f"— use the {net}.pth the lpips package or torchmetrics ships"
            )
        out.append(v.float())
    return out


def load_lpips(
    net: str = "alex", backbone: str | os.PathLike | None = None, heads: str | os.PathLike | None = None
) -> LPIPS:
    """LPIPS with the backbone and heads from files (see the module docstring for where each is looked for)."""
    bpath = find_backbone_weights(net, backbone)
    hpath = find_head_weights(net, heads)
    feats = _backbone_state(read_state(str(bpath), net, lambda p: _missing_message(p, net)), net, str(bpath))
    lins = _head_state(read_state(str(hpath), "LPIPS heads", lambda p: _heads_message(p, net)), net, str(hpath))
    model = LPIPS(net)
    model.features.load_state_dict(feats)
    with torch.no_grad():
        for p, w in zip(model.lins, lins):
            p.copy_(w)
    model.source = {"backbone": str(bpath), "heads": str(hpath)}
    return model.eval().requires_grad_(False)


def save_random_backbone(path: str | os.PathLike, net: str = "alex", seed: int = 0) -> Path:
    """A randomly initialised ``features.*`` state dict in torchvision's layout (tests)."""
    _check_net(net)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in _features(net).state_dict().items():
        if k.endswith("weight"):
            fan_in = v.shape[1] * v.shape[2] * v.shape[3]
            state[f"features.{k}"] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            state[f"features.{k}"] = torch.randn(v.shape, generator=g) * 0.01
    return save_state(state, path)


def save_random_heads(path: str | os.PathLike, net: str = "alex", seed: int = 0) -> Path:
    """Random non-negative heads in the lpips file layout (``lin{i}.model.1.weight``) (tests)."""
    g = torch.Generator().manual_seed(seed)
    state = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(NETS[net]["channels"])}
    return save_state(state, path)
