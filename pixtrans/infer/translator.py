"""Inference: load a checkpoint and translate images or label maps of any size (padding or tiling as needed).

import pixtrans
t = pixtrans.load("runs/synth")                # a run folder or a checkpoint folder
out = t.translate("label.png")                  # PIL image; out.info["pixtrans_style"] reproduces it
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..checkpoints import read_checkpoint, read_weights, weight_keys
from ..config import DataConfig, ExperimentConfig
from ..data.labels import colorize
from ..data.palettes import palette as default_palette
from ..errors import CheckpointError, ConfigError, DataError, memory_guard
from ..families import build_model
from ..families.base import Translation, TranslationModel

ImageLike = str | Path | Image.Image | np.ndarray | Tensor


def tensor_to_pil(img: Tensor) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) in [-1, 1] -> PIL RGB."""
    if img.dim() == 4:
        img = img[0]
    arr = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr[..., :3] if arr.shape[2] >= 3 else arr[..., 0])


def input_to_rgb(x: dict, i: int, data: DataConfig, palette: list | None) -> Tensor:
    """A viewable (3, H, W) [-1, 1] picture of item ``i``'s input (label maps colourised)."""
    if data.label_nc > 0 and "label" in x:
        rgb = colorize(x["label"][i, 0].cpu().numpy(), palette or default_palette(data.label_nc + 1))
        return torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1
    inp = x["input"][i].detach().float().cpu()
    if inp.shape[0] == 1:
        inp = inp.expand(3, -1, -1)
    return inp[:3]


class Translator:
    """A trained model ready for inference, with its data settings, palette and class names."""

    def __init__(self, model: TranslationModel, cfg: ExperimentConfig, meta: dict, path: Path | None = None):
        self.model, self.cfg, self.meta, self.path = model.eval(), cfg, meta, path
        self.backend = None  # pixtrans.infer.runtimes.Backend running the generator; None: model.translate
        self.runtime_info: dict = {"runtime": "torch", "precision": "fp32", "auto": False, "reference": True}
        self.notify = None  # called with each note for the user (once per note); None: warnings.warn
        self._told: set[str] = set()

    def use_runtime(self, runtime: str = "torch", precision: str = "auto", log=None) -> dict:
        """Run the generator on ``runtime`` (``auto``, ``torch``, ``onnxruntime``, ``openvino``) at ``precision``
        (``auto``: fp32 for a named runtime, any verified one for ``auto``); see :mod:`pixtrans.infer.runtimes`.
        Returns (and keeps in :attr:`runtime_info`) what was chosen and its verification."""
        from .runtimes import select

        self.backend, self.runtime_info = select(self.model, runtime, precision, log=log)
        return self.runtime_info

    def tiling_note(self) -> str:
        """'' when tiles run on the chosen runtime (the torch fp32 reference); else the one line saying that tiled
        translation runs on torch fp32 instead, and why."""
        from .runtimes import TILING_NOTE

        b = self.backend
        if b is None or b.is_reference:
            return ""
        return f"tiled translation runs on torch fp32: {TILING_NOTE}; {b.label} runs the untiled inputs"

    def tell(self, note: str) -> None:
        """Say ``note`` to the user once (through :attr:`notify`, else as a warning)."""
        if not note or note in self._told:
            return
        self._told.add(note)
        if self.notify is not None:
            self.notify(note)
        else:
            warnings.warn(note, stacklevel=3)

    def run_generator(self, x: dict, style: dict | None = None) -> Translation:
        """The model on a prepared batch whose size fits the network: the family's style work in torch, then the
        generator on the chosen runtime (the torch reference where the model allows no other)."""
        reason = self.model.runtime_unsupported
        if self.backend is None or (reason and self.backend.is_reference):
            return self.model.translate(x, style)
        if reason:
            raise ConfigError(f"{reason} (this translator runs {self.backend.label})")
        inputs, used = self.model.generator_inputs(x, style)
        outs = self.backend(inputs)
        return Translation(image=outs[-1], scales=outs, style=used)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", use_ema: bool = True) -> Translator:
        """Build the generator side only (no discriminator, losses or VGG) on the meta device, then read only its
        tensors into it: the EMA generator's where the checkpoint has one and ``use_ema``, else the raw generator's.
        Nothing is randomly initialised and no weight is held twice."""
        ck, cfg, meta = read_checkpoint(path)
        with torch.device("meta"):
            model = build_model(cfg, inference=True)
        own = set(model.checkpoint_state())
        prefix = next(n for n, m in model.named_children() if m is model.generators()) + "."
        ema = {"ema." + k[len(prefix) :]: k for k in own if k.startswith(prefix)} if use_ema else {}
        if not set(ema) <= set(weight_keys(ck)):
            ema = {}  # no (complete) EMA copy: the raw generator
        raw = set(ema.values())
        weights = read_weights(ck, lambda k: (k in own and k not in raw) or k in ema)
        try:
            model.load_checkpoint_state({ema.get(k, k): v for k, v in weights.items()}, assign=True)
        except (ValueError, RuntimeError) as err:
            raise CheckpointError(f"{ck}: {err}") from None
        empty = [n for n, v in [*model.named_parameters(), *model.named_buffers()] if v.is_meta]
        if empty:
            raise CheckpointError(f"{ck}: the checkpoint has no weights for {', '.join(empty[:5])}")
        tensors = [*model.named_parameters(), *model.named_buffers()]
        bad = [n for n, v in tensors if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CheckpointError(
                f"{ck}: non-finite weights (NaN/inf) in {', '.join(bad[:3])}: training diverged before this was "
                "saved; use an earlier checkpoint"
            )
        model.load_meta(meta.get("family_meta", {}))
        dev = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
        )
        return cls(model.to(dev), cfg, meta, ck)

    # ------------------------------------------------------------------ properties
    @property
    def family(self) -> str:
        return self.cfg.family

    @property
    def data(self) -> DataConfig:
        return self.cfg.data

    @property
    def is_label_model(self) -> bool:
        return self.data.label_nc > 0

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names")
        return list(names) if names else [str(i) for i in range(self.data.label_nc)]

    @property
    def palette(self) -> list | None:
        return self.meta.get("palette")

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.G.parameters())

    # ------------------------------------------------------------------ inputs
    def load_input(self, src: ImageLike, name: str = "input") -> Tensor:
        """A file, PIL image, array or tensor -> the dataset ``input`` tensor (ids (1,H,W) or image (C,H,W))."""
        from ..data.io import load_input

        if isinstance(src, Tensor):
            return src
        if isinstance(src, (str, Path)):
            kind = "label" if self.is_label_model else "image"
            d = self.data
            return load_input(src, kind, d.label_nc, d.contain_dontcare, d.input_nc, palette=self.palette)
        arr = np.asarray(src)
        if self.is_label_model:
            if arr.ndim != 2:
                raise DataError(name, f"a label map must be a 2-D array of class ids, got shape {arr.shape}")
            ids = torch.from_numpy(arr.astype(np.int64))[None]
            limit = self.data.label_nc
            bad = (ids >= limit) & ~((ids == 255) & self.data.contain_dontcare)
            if bool(bad.any()) or bool((ids < 0).any()):
                raise DataError(
                    name,
                    f"label ids must be in [0, {limit}); found max {int(ids.max())}",
                    "use the model's class ids (see its palette)",
                )
            return ids
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 127.5 - 1
        return t[: self.data.input_nc]

    def _batch(self, inp: Tensor, inst: Tensor | None, encode: bool = True) -> dict:
        batch = {"input": inp[None]}
        if inst is not None:
            batch["inst"] = inst[None].long()
        return self.model.prepare(batch, encode=encode)

    # ------------------------------------------------------------------ translation
    @torch.no_grad()
    def translate_tensor(self, x: dict, style: dict | None = None, tile: int = 0) -> Translation:
        """Translate a prepared batch of any size: pad to the network's multiple and minimum size (or tile), then
        crop back."""
        h, w = x["input"].shape[-2:]
        if tile and (h > tile or w > tile):
            return self._tiled(x, style, tile)
        hp, wp = self.model.padded_size(h, w)
        ph, pw = hp - h, wp - w
        if ph or pw:
            x = {k: _pad(v, ph, pw) if isinstance(v, Tensor) and v.dim() == 4 else v for k, v in x.items()}
        with memory_guard(lambda: f"translating {w}x{h} on {self._where()}"):
            res = self.run_generator(x, style)
        if not torch.isfinite(res.image).all():
            raise DataError(
                "translation",
                "the model produced non-finite values (NaN/inf) for this input",
                "the checkpoint may be diverged (check its training log) or the input far outside its training data",
            )
        if ph or pw:
            res.image = res.image[..., :h, :w]
            res.scales = [
                s[..., : max(1, h * s.shape[-2] // (h + ph)), : max(1, w * s.shape[-1] // (w + pw))] for s in res.scales
            ]
        return res

    def _tiled(self, x: dict, style: dict | None, tile: int) -> Translation:
        """The untiled output computed in tiles with whole-image normalisation statistics, in bounded memory
        (:mod:`pixtrans.infer.tiling`; the torch reference network)."""
        from .tiling import translate_tiled

        self.tell(self.tiling_note())
        h, w = (x["input"] if "input" in x else x["label"]).shape[-2:]  # label maps: encoded per tile
        with memory_guard(lambda: f"translating {w}x{h} in {tile} px tiles on {self._where()}"):
            return translate_tiled(self.model, x, style, tile)

    def _where(self) -> str:
        """Where the generator runs, for messages (``cuda:0``, ``cpu``, or the runtime's name)."""
        if self.backend is not None and not self.backend.is_reference:
            return self.backend.label
        p = next(self.model.parameters(), None)
        return str(p.device) if p is not None else "cpu"

    def translate(
        self,
        image: ImageLike,
        instances: ImageLike | None = None,
        style: dict | None = None,
        tile: int = 0,
        all_scales: bool = False,
    ) -> Image.Image | list[Image.Image]:
        """Translate one image or label map; returns a PIL image (``all_scales``: one per output scale).

        The style that produced the output is in ``out.info["pixtrans_style"]`` (JSON), so it can be reproduced.
        """
        inp = self.load_input(image)
        inst = None
        if instances is not None:
            from ..data.io import read_instance

            inst = (
                read_instance(instances)
                if isinstance(instances, (str, Path))
                else torch.as_tensor(np.asarray(instances)).long()
            )
            inst = torch.as_tensor(inst).long().reshape(1, *inp.shape[-2:])
        if tile and max(inp.shape[-2:]) > tile:  # label maps are one-hot encoded tile by tile
            res = self._tiled(self._batch(inp, inst, encode=False), style, tile)
        else:
            res = self.translate_tensor(self._batch(inp, inst), style, tile)
        imgs = [tensor_to_pil(s) for s in (res.scales if all_scales else [res.image])]
        for im in imgs:
            im.info["pixtrans_style"] = json.dumps(res.style, default=_jsonable)
        return imgs if all_scales else imgs[0]


def _jsonable(v: Any):
    if isinstance(v, Tensor):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _pad(t: Tensor, ph: int, pw: int) -> Tensor:
    if t.is_floating_point():
        mode = "reflect" if t.shape[-2] > ph and t.shape[-1] > pw else "replicate"
        return F.pad(t, (0, pw, 0, ph), mode=mode)
    return F.pad(t.float(), (0, pw, 0, ph), mode="replicate").to(t.dtype)


def load(
    path: str | Path,
    device: str = "auto",
    use_ema: bool = True,
    runtime: str | None = None,
    precision: str = "auto",
    log=None,
) -> Translator:
    """Load a run or checkpoint folder for inference; ``runtime``/``precision``: see :meth:`Translator.use_runtime`
    (None: the torch fp32 reference, :meth:`TranslationModel.translate`)."""
    t = Translator.from_checkpoint(path, device=device, use_ema=use_ema)
    if runtime is not None:
        t.use_runtime(runtime, precision, log=log)
    return t
