"""Export a checkpoint's generator to ONNX, check it against PyTorch with onnxruntime, and describe its input.

    pixtrans export runs/synth --format onnx --out model.onnx     # writes model.onnx and model.onnx.json

The graph maps the *prepared* generator input (the tensor :meth:`TranslationModel.prepare` builds: one-hot labels
[+ don't-care] [+ instance boundary], or an image in [-1, 1]) to the output image in [-1, 1]; the sidecar JSON says
how to build that input (channels, classes, palette, size multiple) so the file can be used without pixtrans.

Exporters: ``auto`` uses the TorchScript exporter (fast, dynamic batch/height/width through ``dynamic_axes``) and
falls back to the dynamo exporter (``torch.export`` + onnxscript; sizes as multiples of the model's size multiple)
when the first fails to export or to verify. Every file is checked with onnxruntime on random inputs at the export
size and, when dynamic, at a second size and batch; a model whose graph cannot be made size-independent (SPADE with
the VAE) is exported at a fixed size instead, and the sidecar says so.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.palettes import palette as default_palette
from ..errors import ConfigError, PixtransError, writable_folder
from ..families.base import round_up

EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_ATOL = 1e-3


class ExportFailed(PixtransError):
    """The model could not be exported, or the ONNX output differs from PyTorch's beyond the tolerance."""


# ---------------------------------------------------------------------------------------------- inputs
def _example(model, batch: int, height: int, width: int, gen: torch.Generator) -> tuple[Tensor, ...]:
    """The family's example inputs (:meth:`TranslationModel.export_inputs`) as a tuple in input order."""
    return tuple(model.export_inputs(batch, height, width, gen).values())


def _inputs_spec(model) -> list[tuple[str, int]]:
    """(name, channels) of the exported module's inputs."""
    return [(n, v.shape[1]) for n, v in model.export_inputs(1, 1, 1, torch.Generator()).items()]


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"WxH"`` or ``"S"`` -> (W, H)."""
    if not text:
        return None
    try:
        if "x" in str(text).lower():
            w, h = str(text).lower().split("x")
            return int(w), int(h)
        return int(text), int(text)
    except ValueError:
        raise ConfigError(f"--size {text!r}: expected WxH (e.g. 256x256) or a single side") from None


# ---------------------------------------------------------------------------------------------- exporting
def _torchscript(module, args, path: Path, names: list[str], dynamic: bool, opset: int | None) -> int:
    opset = opset or 17
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in [*names, "output"]} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the exporter's deprecation notice
        torch.onnx.export(
            module, args, str(path), dynamo=False, input_names=names, output_names=["output"],
            opset_version=opset, dynamic_axes=axes, do_constant_folding=True,
        )  # fmt: skip
    return opset


def _dynamo(module, args, path: Path, names: list[str], dynamic: bool, opset: int | None, multiple: int) -> int:
    from torch.export import Dim

    opset = max(opset or 18, 18)
    shapes = None
    if dynamic:
        b, h, w = Dim("batch", min=1, max=1024), Dim("h", min=1, max=8192), Dim("w", min=1, max=8192)
        shapes = tuple({0: b, 2: multiple * h, 3: multiple * w} for _ in args)
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > 1.8e9
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # torchvision ops
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), dynamo=True, input_names=names, output_names=["output"],
            opset_version=opset, dynamic_shapes=shapes, external_data=big, verbose=False,
        )  # fmt: skip
    return opset


def _verify(path: Path, module, checks: list[tuple[Tensor, ...]], names: list[str], atol: float) -> float:
    """Largest |ONNX - PyTorch| over ``checks``; raises :class:`ExportFailed` above ``atol``."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for args in checks:
        with torch.no_grad():
            ref = module(*args).float().numpy()
        try:
            out = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})[0]
        except Exception as err:  # onnxruntime raises its own types
            raise ExportFailed(f"onnxruntime cannot run the graph at {tuple(args[0].shape)}: {err}") from None
        if out.shape != ref.shape:
            raise ExportFailed(f"ONNX output {out.shape} != PyTorch {ref.shape} for input {tuple(args[0].shape)}")
        err = np.abs(out - ref)
        diff = float(err.max())
        worst = max(worst, diff)
        if not diff <= atol:
            share = float(np.mean(~(err <= atol)))
            raise ExportFailed(
                f"ONNX output differs from PyTorch by up to {diff:.3g} (tolerance {atol:g}) at {share:.3%} of the "
                f"values, input {tuple(args[0].shape)}" + ("; a few values flipping between -1 and 1 happen with "
                "untrained models whose outputs saturate (raise --atol to accept)" if share < 1e-3 else "")
            )  # fmt: skip
    return worst


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    size: tuple[int, int] | str | None = None,
    dynamic: bool = True,
    opset: int | None = None,
    exporter: str = "auto",
    atol: float = DEFAULT_ATOL,
    use_ema: bool = True,
    log=print,
) -> dict:
    """Export ``checkpoint``'s generator to ``out`` (ONNX), verify it with onnxruntime, write ``out + '.json'``.

    ``size`` (W, H) is the tracing size (default: the training crop, rounded up to the size multiple); with
    ``dynamic`` the batch, height and width are free (height and width must stay multiples of
    ``size_multiple``). Returns the sidecar dict plus ``path`` and ``sidecar`` (file paths).
    """
    from ..version import __version__
    from .translator import load

    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter: unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    t = load(checkpoint, device="cpu", use_ema=use_ema)
    model = t.model.float().eval()
    module = model.inference_module().float().eval()
    m = model.size_multiple
    w, h = (parse_size(size) if isinstance(size, str) else size) or model.export_size()
    if w < 1 or h < 1 or w % m or h % m:
        raise ConfigError(
            f"--size {w}x{h}: width and height must be positive multiples of {m} for this model "
            f"(e.g. {round_up(w, m)}x{round_up(h, m)})"
        )
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: the file name must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = _inputs_spec(model)
    names = [n for n, _ in spec]
    gen = torch.Generator().manual_seed(0)

    if dynamic and not model.export_dynamic:
        log(f"export: this {model.family} model's graph depends on the input size; exporting at a fixed {w}x{h}")
        dynamic = False
    plan = [("torchscript", dynamic), ("dynamo", dynamic)] if exporter == "auto" else [(exporter, dynamic)]
    if dynamic:
        plan.append(("torchscript" if exporter != "dynamo" else "dynamo", False))
    errors, used = [], None
    for kind, dyn in plan:
        # dynamo specialises sizes of 1 (and the U-Net's innermost map), so its example is >= 2 in every dim
        bw, bh = (max(w, 2 * m), max(h, 2 * m)) if kind == "dynamo" and dyn else (w, h)
        args = _example(model, 2 if kind == "dynamo" and dyn else 1, bh, bw, gen)
        checks = [args]
        if dyn:
            checks.append(_example(model, 2, bh + m, bw + 2 * m, gen))
        try:
            if kind == "torchscript":
                used_opset = _torchscript(module, args, out, names, dyn, opset)
            else:
                used_opset = _dynamo(module, args, out, names, dyn, opset, m)
            diff = _verify(out, module, checks, names, atol)
        except Exception as err:  # export errors come in many types; each attempt's reason is reported
            msg = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            errors.append(f"{kind} ({'dynamic' if dyn else 'fixed size'}): {msg}")
            log(f"export: {errors[-1]}; trying the next way" if (kind, dyn) != plan[-1] else f"export: {errors[-1]}")
            continue
        used = (kind, dyn, used_opset, diff, [[a[0].shape[-1], a[0].shape[-2]] for a in checks], bw, bh)
        break
    if used is None:
        out.unlink(missing_ok=True)
        raise ExportFailed("ONNX export failed:\n  " + "\n  ".join(errors))
    kind, dyn, used_opset, diff, sizes, bw, bh = used
    if dynamic and not dyn:
        log(f"export: this model's graph depends on the input size; exported at a fixed {bw}x{bh}")

    import onnxruntime as ort

    info = _sidecar(t, model, spec, dyn, (bw, bh))
    info.update(
        {
            "pixtrans_version": __version__,
            "onnx_file": out.name,
            "exporter": kind,
            "opset": used_opset,
            "verification": {
                "max_abs_diff": diff,
                "tolerance": atol,
                "sizes_checked": sizes,
                "onnxruntime": ort.__version__,
            },
        }
    )
    side = Path(str(out) + ".json")
    side.write_text(json.dumps(info, indent=2))
    return {**info, "path": str(out), "sidecar": str(side)}


def _sidecar(t, model, spec: list[tuple[str, int]], dynamic: bool, size: tuple[int, int]) -> dict[str, Any]:
    """What a user of the ONNX file needs to build its input and read its output."""
    data = model.data_cfg
    m = model.size_multiple
    dims = ["batch", None, "height", "width"] if dynamic else [1, None, size[1], size[0]]
    inputs = [{"name": n, "shape": [dims[0], ch, dims[2], dims[3]], "dtype": "float32"} for n, ch in spec]
    info: dict[str, Any] = {
        "format": "onnx",
        "family": model.family,
        "checkpoint": t.path.name if t.path else "",
        "step": t.meta.get("step"),
        "inputs": inputs,
        "outputs": [{"name": "output", "shape": [dims[0], data.output_nc, dims[2], dims[3]], "dtype": "float32"}],
        "dynamic": dynamic,
        "export_size": list(size),
        "size_multiple": m,
        "input_channels": model.in_channels,
        "input_kind": "label" if data.label_nc > 0 else "image",
        "label_nc": data.label_nc,
        "contain_dontcare": data.contain_dontcare if data.label_nc > 0 else False,
        "instance_boundary": (not data.no_instance) if data.label_nc > 0 else False,
        "input_nc": data.input_nc if data.label_nc == 0 else None,
        "output_nc": data.output_nc,
        "class_names": t.class_names if data.label_nc > 0 else [],
        "palette": (t.palette or default_palette(data.label_nc)) if data.label_nc > 0 else None,
        "output_range": [-1.0, 1.0],
    }
    if data.label_nc > 0:
        chans = [f"one-hot channels 0..{data.label_nc - 1}: 1 where the label id equals the channel index"]
        if data.contain_dontcare:
            chans.append(f"channel {data.label_nc}: 1 where the label id is 255 (don't care)")
        if not data.no_instance:
            chans.append(
                f"channel {model.in_channels - 1}: instance boundary, 1 where the instance id (or the label id "
                "without an instance map) differs from any 4-neighbour"
            )
        how = "; ".join(chans)
    else:
        how = f"an RGB image with {data.input_nc} channel(s), value / 127.5 - 1 (range [-1, 1])"
    info["input_recipe"] = (
        f"{how}; float32 NCHW; height and width multiples of {m} (pad, e.g. by reflection, and crop the output)"
    )
    info["output_recipe"] = "RGB NCHW in [-1, 1]: pixel = clip((value + 1) * 127.5, 0, 255)"
    info.update(model.export_notes())
    return info


# ---------------------------------------------------------------------------------------------- pixtrans folder
def export_pixtrans(checkpoint: str | Path, out: str | Path, use_ema: bool = True) -> dict:
    """A slim inference folder: ``config.yaml``, the generator side's weights (EMA copy folded in, no
    discriminator, no optimizer state) as ``model.safetensors``, and ``meta.json``; ``pixtrans.load`` reads it like
    a checkpoint. Returns ``{"path", "tensors", "megabytes", "source_megabytes"}``."""
    from ..checkpoints import WEIGHTS, save_inference_folder
    from .translator import load

    t = load(checkpoint, device="cpu", use_ema=use_ema)
    weights = t.model.checkpoint_state()
    meta = {k: v for k, v in t.meta.items() if k not in ("family", "step")}
    meta["source"] = {"checkpoint": t.path.name if t.path else "", "step": t.meta.get("step"), "ema": use_ema}
    path = save_inference_folder(out, t.cfg, weights, meta)
    mb = (path / WEIGHTS).stat().st_size / 2**20
    return {"path": str(path), "tensors": len(weights), "megabytes": mb,
            "source_megabytes": (t.path / WEIGHTS).stat().st_size / 2**20 if t.path else 0.0}  # fmt: skip


# ---------------------------------------------------------------------------------------------- command line
def cmd_export(a) -> None:
    writable_folder(a.out, file=a.format == "onnx")  # before the checkpoint is read or anything is traced
    if a.format == "web":
        from .web_export import export_web

        r = export_web(a.checkpoint, a.out, size=a.size or None, precision=a.precision, webgpu=a.webgpu)
        psnr = f", {r['psnr_vs_fp32']:.1f} dB vs fp32" if r["psnr_vs_fp32"] else ""
        runtime = " + ".join(b.replace("webgpu", "WebGPU").replace("wasm", "WASM") for b in r["backends"])
        print(
            f"wrote {r['path']}: model {r['model_mb']:.2f} MB ({r['precision']} weights{psnr}), runtime "
            f"{r['runtime_mb']:.1f} MB ({runtime}), page {r['page_kb']:.0f} kB, total {r['total_mb']:.1f} MB in "
            f"{r['files']} files"
        )
        if "webgpu" not in r["backends"]:
            print(f"WASM only: --webgpu adds ONNX Runtime Web's WebGPU build (+{r['webgpu_mb']:.1f} MB)")
        print(f"open it: python {Path(r['path']) / 'serve.py'} (WASM threads) or python -m http.server -d {r['path']}")
        return
    if a.format == "pixtrans":
        res = export_pixtrans(a.checkpoint, a.out, use_ema=not a.no_ema)
        print(
            f"wrote {res['path']} ({res['tensors']} tensors, {res['megabytes']:.1f} MB; the checkpoint's weights are "
            f"{res['source_megabytes']:.1f} MB); load it with pixtrans.load or any pixtrans command"
        )
        return
    res = export_onnx(
        a.checkpoint, a.out, size=a.size or None, dynamic=a.dynamic, opset=a.opset, exporter=a.exporter,
        atol=a.atol, use_ema=not a.no_ema,
    )  # fmt: skip
    v = res["verification"]
    shape = "dynamic batch/height/width" if res["dynamic"] else "fixed size {}x{}".format(*res["export_size"])
    print(f"wrote {res['path']} ({res['exporter']} exporter, opset {res['opset']}, {shape})")
    sizes = ", ".join(f"{w}x{h}" for w, h in v["sizes_checked"])
    print(f"onnxruntime vs PyTorch: max abs diff {v['max_abs_diff']:.3g} (tolerance {v['tolerance']:g}) at {sizes}")
    print(f"sidecar: {res['sidecar']}")


def add_commands(sub) -> None:
    """Register ``pixtrans export``."""
    p = sub.add_parser("export", help="export a checkpoint's generator: ONNX (verified) or a slim pixtrans folder")
    p.add_argument("checkpoint", help="run or checkpoint folder")
    p.add_argument(
        "--format", choices=["onnx", "pixtrans", "web"], default="onnx",
        help="onnx: one .onnx file + sidecar JSON; pixtrans: an inference folder (generator weights only); "
        "web: a static page folder that draws and translates in the browser (ONNX Runtime Web)",
    )  # fmt: skip
    p.add_argument(
        "--out", required=True,
        help="onnx: output .onnx file (a sidecar FILE.json describes the input); pixtrans: output folder",
    )  # fmt: skip
    p.add_argument("--size", default="", help="tracing size WxH (default: the training crop)")
    dyn = p.add_mutually_exclusive_group()
    dyn.add_argument("--dynamic", dest="dynamic", action="store_true", default=True,
                     help="free batch, height and width (default)")  # fmt: skip
    dyn.add_argument("--static", dest="dynamic", action="store_false", help="fixed batch 1 and --size")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; the dynamo exporter needs >= 18)")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="largest allowed |ONNX - PyTorch|")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA copy")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                   help="web: weights stored as fp16/int8 (kept only at >= 40 dB PSNR vs fp32)")  # fmt: skip
    p.add_argument("--webgpu", action="store_true",
                   help="web: also ship ONNX Runtime Web's WebGPU build (+25.6 MB; used where the browser gives an "
                        "adapter, else WASM)")  # fmt: skip
    p.set_defaults(fn=cmd_export)
