"""VGG19 features (torchvision key layout) and the pix2pixHD perceptual loss.

pixtrans never downloads weights on its own. :func:`load_vgg19` looks, in order, at the ``weights`` argument, the
``PIXTRANS_VGG19`` environment variable and the torch hub cache (``<hub dir>/checkpoints/vgg19-dcbbb4ee.pth``);
a URL is only fetched when one is given explicitly (argument or environment variable).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .pretrained import check_state, find_weights, hub_checkpoints, read_state, save_state

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbbb4ee.pth"
VGG19_FILE = "vgg19-dcbbb4ee.pth"
ENV_VAR = "PIXTRANS_VGG19"

# torchvision's vgg19 "E" configuration: channels per conv, "M" = 2x2 max-pool.
_CFG: tuple[int | str, ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, 256, "M"),
    *(512, 512, 512, 512, "M"),
    *(512, 512, 512, 512, "M"),
)
# Index of the ReLU that ends each slice: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (pix2pixHD's Vgg19).
TAPS = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """``features`` of torchvision's VGG19 (keys ``features.0.weight`` ... ``features.34.bias``).

    ``forward`` returns the activations relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 and stops there.
    """

    def __init__(self):
        super().__init__()
        self.features = _make_features()

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for i, layer in enumerate(self.features[: TAPS[-1] + 1]):
            x = layer(x)
            if i in TAPS:
                outs.append(x)
        return outs


def _meta_state() -> dict[str, Tensor]:
    """Keys and shapes of the VGG19 features, without allocating or initialising weights."""
    with torch.device("meta"):
        return VGG19Features().state_dict()


def conv_indices() -> list[int]:
    """Indices of the conv layers inside ``features`` (0, 2, 5, ..., 34)."""
    return [i for i, m in enumerate(_make_features()) if isinstance(m, nn.Conv2d)]


def _missing_message(problem: str) -> str:
    hub = hub_checkpoints()
    return (
        f"{problem}\nThe VGG (perceptual) loss needs ImageNet VGG19 weights. Provide them one of these ways:\n"
        f"  - download {VGG19_URL} (548 MB) and put it at {hub / VGG19_FILE}\n"
        f"  - or set the environment variable {ENV_VAR}=/path/to/vgg19.pth (.pth or .safetensors, or an https URL)\n"
        f"  - or set the config key model.vgg_weights (e.g. --set model.vgg_weights=/path/to/vgg19.pth, or "
        f"--set model.vgg_weights={VGG19_URL} to let torch.hub download and cache it)\n"
        f"  - or train without it: --set model.no_vgg_loss=true"
    )


def _normalise_keys(state: dict) -> dict:
    """Accept bare ``features`` keys (``0.weight``); drop ``classifier.*``."""
    out = {}
    for k, v in state.items():
        if re.fullmatch(r"\d+\.(weight|bias)", k):
            k = "features." + k
        if not k.startswith("classifier."):
            out[k] = v
    return out


def check_vgg19_state(state: Mapping, source: str) -> dict[str, Tensor]:
    """Validate keys and shapes against :class:`VGG19Features`; return the features state dict."""
    state = _normalise_keys({str(k).removeprefix("module."): v for k, v in state.items()})
    hint = f"expected torchvision's vgg19 layout (features.0.weight ... features.34.bias), e.g. {VGG19_URL}"
    return check_state(state, _meta_state(), source, "VGG19", "not a VGG19 state dict", hint)


def find_vgg19_weights(weights: str | os.PathLike | None = None) -> str:
    """Resolve where the weights come from (argument, env var, hub cache) or raise WeightsMissingError."""
    return find_weights(weights, ENV_VAR, (VGG19_FILE,), "VGG19", _missing_message)


def _read_state(source: str) -> dict:
    expected = f"a torchvision vgg19 state dict saved with torch.save (.pth) or as .safetensors, e.g. {VGG19_URL}"
    return read_state(source, "VGG19", _missing_message, expected)


def load_vgg19(weights: str | os.PathLike | None = None) -> VGG19Features:
    """ImageNet VGG19 features from a local file or an explicit URL (see the module docstring for the order)."""
    source = find_vgg19_weights(weights)
    state = check_vgg19_state(_read_state(source), source)
    with torch.device("meta"):  # no random init: every weight comes from the file
        model = VGG19Features()
    model.load_state_dict(state, assign=True)
    return model


def save_random_vgg19(path: str | os.PathLike, seed: int = 0, classifier: bool = True) -> Path:
    """Write a randomly initialised VGG19 in torchvision's full key layout (features + classifier).

    Conv weights use torchvision's init (Kaiming normal, fan-out); biases are small random values so a load
    round-trip checks them too. ``.safetensors`` paths are written as safetensors, anything else with torch.save.
    ``classifier=False`` leaves out the 120M-parameter classifier (a much smaller file for tests).
    """
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for k, v in _meta_state().items():
        if k.endswith("weight"):
            fan_out = v.shape[0] * v.shape[2] * v.shape[3]
            state[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_out) ** 0.5
        else:
            state[k] = torch.randn(v.shape, generator=g) * 0.01
    if classifier:
        for i, (cin, cout) in zip((0, 3, 6), ((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000))):
            state[f"classifier.{i}.weight"] = torch.randn(cout, cin, generator=g) * 0.01
            state[f"classifier.{i}.bias"] = torch.zeros(cout)
    return save_state(state, path)


class VGGLoss(nn.Module):
    """pix2pixHD perceptual loss: Σ_i w_i · L1(VGG_i(x), VGG_i(y).detach()) over relu1_1 ... relu5_1.

    Inputs are images in [-1, 1]. Official pix2pixHD feeds them to VGG as they are (``normalize=False``);
    ``normalize=True`` maps them to [0, 1] and then to ImageNet mean/std first. The VGG is frozen (no grads,
    always eval mode) and its weights are left out of this module's ``state_dict`` so model checkpoints stay
    small; loading a state dict without them is fine.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
        normalize: bool = False,
        vgg: VGG19Features | None = None,
    ):
        super().__init__()
        if len(layer_weights) != len(TAPS):
            raise ValueError(f"layer_weights needs {len(TAPS)} values (relu1_1 ... relu5_1), got {len(layer_weights)}")
        self.vgg = vgg if vgg is not None else load_vgg19(weights)
        self.vgg.requires_grad_(False).eval()
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_state_dict_post_hook(_drop_vgg_keys)
        self.register_load_state_dict_pre_hook(_fill_vgg_keys)

    def train(self, mode: bool = True) -> VGGLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def _prep(self, x: Tensor) -> Tensor:
        if self.normalize:
            x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if not torch.is_autocast_enabled(x.device.type):
            x = x.to(self.vgg.features[0].weight.dtype)
        return x

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.vgg(self._prep(x))
        with torch.no_grad():
            fy = self.vgg(self._prep(y))
        loss = x.new_zeros((), dtype=torch.float32)
        for w, a, b in zip(self.layer_weights, fx, fy):
            loss = loss + w * F.l1_loss(a.float(), b.detach().float())
        return loss


def _drop_vgg_keys(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    for k in [k for k in state_dict if k.startswith(prefix + "vgg.")]:
        del state_dict[k]


def _fill_vgg_keys(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    for k, v in module.vgg.state_dict().items():
        state_dict.setdefault(prefix + "vgg." + k, v)
