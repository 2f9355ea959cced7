"""The ``pixtrans`` command line: parses arguments and calls the library. ``pixtrans CMD --help`` for each."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from importlib import import_module
from pathlib import Path

from .errors import (
    ConfigError,
    DataError,
    OutOfMemory,
    PixtransError,
    is_out_of_memory,
    memory_guard,
    out_of_memory,
    writable_folder,
)
from .eval.score_args import add_score_args
from .runtime_env import tune_malloc

# Sub-commands defined in other modules, as (name, help line, module of pixtrans with ``add_commands(subparsers)``).
# ``pixtrans --help`` lists them from here; only the chosen command's module (torch and all) is imported, when parsed.
EXTENSIONS = [
    ("features", "pix2pixHD: encode the training set and K-means the features per class", "infer.features"),
    ("ablation", "MSG U-Net: SSIM table input resolution x output resolution (CSV + heat map)", "eval.ablation"),
    (
        "gradstudy",
        "MSG U-Net: encoder gradient magnitudes with vs without intermediate outputs (plot + JSON)",
        "train.gradstudy",
    ),
    ("export", "export a checkpoint's generator: ONNX (verified) or a slim pixtrans folder", "infer.export"),
    ("import", "import official pix2pix / pix2pixHD / SPADE weights as a pixtrans checkpoint", "infer.importer"),
    ("serve", "the web studio: draw, translate with several models, browse, rate, download", "web.app"),
    ("compare", "HTML report across runs: metrics with bootstrap CIs, sortable image grid, ratings", "eval.compare"),
]

# Optional dependencies (top-level module) -> the extra of pyproject.toml that installs them.
EXTRAS = {
    "fastapi": "web",
    "starlette": "web",
    "uvicorn": "web",
    "multipart": "web",
    "python_multipart": "web",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
    "openvino": "fast",
    "sklearn": "features",
    "tensorboard": "tensorboard",
}


def _missing_extra(err: ModuleNotFoundError, cmd: str) -> PixtransError | None:
    """The one-line error for an optional dependency that is not installed (None for any other missing module)."""
    name = (err.name or "").split(".")[0]
    if name not in EXTRAS:
        return None
    extra = EXTRAS[name]
    return PixtransError(f'`pixtrans {cmd}` needs {name}, which is not installed: pip install "pixtrans[{extra}]"')


class _LazySubParsers(argparse._SubParsersAction):
    """Sub-parsers of which those in ``lazy`` (name -> module) are placeholders until chosen: then the placeholder
    is replaced by what the module's ``add_commands`` registers, so ``pixtrans CMD --help`` shows every option."""

    lazy: dict[str, str]

    def __call__(self, parser, namespace, values, option_string=None):
        name = values[0] if values else None
        module = self.lazy.pop(name, None)
        if module is not None:
            del self._name_parser_map[name]
            self._choices_actions = [a for a in self._choices_actions if a.dest != name]
            try:
                mod = import_module(f"pixtrans.{module}")
            except ModuleNotFoundError as err:
                raise _missing_extra(err, name) or err from None
            mod.add_commands(self)
        super().__call__(parser, namespace, values, option_string)


IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


# ---------------------------------------------------------------------- data
def cmd_data_synth(a) -> None:
    from .data.synth import generate

    writable_folder(a.out)
    out = generate(a.out, n=a.n, size=_size_arg(a.size), seed=a.seed, n_test=a.n_test, aligned=a.aligned, progress=True)
    print(f"wrote synthetic dataset to {out}")


def cmd_data_check(a) -> None:
    from .config import load_config
    from .data.datasets import check_dataset

    cfg = load_config(a.config, [*a.set, *([f"data.root={a.data}"] if a.data else [])])
    report = check_dataset(cfg.data, progress=True)
    if a.json:
        print(json.dumps(report, indent=2, default=str))
    for split, r in report["splits"].items():
        print(f"{split}: {r['items']} items, {r['bad']} bad")
        for p in r["problems"][:50]:
            print(f"  {p['path']}: {p['problem']}" + (f" — {p['hint']}" if p.get("hint") else ""))
    if not all(r["bad"] == 0 for r in report["splits"].values()):
        raise PixtransError("the dataset has bad files (listed above); fix them or train with data.on_error=skip")


def _size_arg(text: str, flag: str = "--size"):
    """``64`` -> 64, ``128x64`` -> (128, 64); anything else is a one-line :class:`ConfigError`."""
    parts = str(text).strip().lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        return (int(parts[0]), int(parts[1])) if len(parts) == 2 else int(parts[0])
    raise ConfigError(f"{flag} {text!r}: expected a positive side (64) or WIDTHxHEIGHT (128x64)")


def at_least(low: int):
    """An argparse type: an integer >= ``low`` (argparse reports anything else as one error line)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def device_arg(text: str) -> str:
    """An argparse type: auto, cpu, mps or cuda[:N] / xpu[:N] (CUDA's presence is checked when it is used)."""
    if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of auto, cpu, cuda, cuda:N, mps, xpu, xpu:N")
    return text


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use cpu or auto")


def _style_arg(text: str) -> dict:
    """``--style`` JSON -> dict (a one-line :class:`ConfigError` for anything but a JSON object)."""
    if not text:
        return {}
    try:
        style = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--style {text!r}: not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(style, dict):
        raise ConfigError(f"--style {text!r}: expected a JSON object, e.g. '{{\"seed\": 3}}'")
    return style


def _out_folder(path: str) -> Path:
    """``--out`` checked before any work: not a file, and writable (the folder is made when there is output)."""
    return writable_folder(path)


# ---------------------------------------------------------------------- train / test / translate
def cmd_train(a) -> None:
    from .config import load_config
    from .train.trainer import train

    overrides = list(a.set)
    if a.steps is not None:
        overrides.append(f"train.steps={a.steps}")
    cfg = load_config(a.config, overrides)
    out = a.out or str(Path("runs") / (cfg.name or Path(a.config).stem))
    ck = train(cfg, out, resume=a.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint: {ck}")


PAPER_TEST = "pix2pix: test as the paper (official test.py without --eval): per-image BN statistics, dropout on"


def _load_for_inference(a):
    """The checkpoint's translator; ``--paper-test`` switches pix2pix to the paper's test protocol."""
    from .infer.translator import load

    _check_device(a.device)
    t = load(a.checkpoint, device=a.device)
    if a.paper_test:
        t.model.use_paper_test()
    # a model only torch fp32 can run (runtime_unsupported) refuses a named runtime; auto says why it ran torch
    info = t.use_runtime(a.runtime, a.precision)
    print(runtime_line(info), file=sys.stderr)
    t.notify = lambda note: print(f"note: {note}", file=sys.stderr)  # e.g. --tile runs on torch fp32
    return t


def runtime_line(info: dict) -> str:
    """One log line: the runtime and precision in use and how it was verified or chosen."""
    v = info.get("verdict") or {}
    how = ""
    if info.get("note"):
        how = f" ({'auto: ' if info.get('auto') else ''}{info['note']})"
    elif info.get("auto"):
        n = sum(1 for c in info.get("candidates", []) if c.get("ok"))
        how = f" (auto: the fastest of {n} verified paths at {info.get('measured_at')})"
    elif v and not v.get("reference"):
        how = f" (verified vs torch fp32: max abs {v['max_abs']:.2g}, PSNR {v['psnr']:.1f} dB)"
    return f"runtime: {info['runtime']} {info['precision']}{how}"


def add_runtime_args(p: argparse.ArgumentParser, default: str = "torch", every: str = "auto", **helps: str) -> None:
    """--runtime / --precision (see pixtrans.infer.runtimes); ``every``: the choice beyond the named runtimes
    (``auto`` picks one, ``all`` for bench); ``helps``: ``runtime=`` / ``precision=`` help texts."""
    p.add_argument(
        "--runtime", choices=[every, "torch", "onnxruntime", "openvino"], default=default,
        help=helps.get("runtime", "where the generator runs; auto: the fastest path verified against torch fp32"),
    )  # fmt: skip
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
        help=helps.get("precision", "auto: fp32 for a named runtime, any verified precision with --runtime auto"),
    )  # fmt: skip


def cmd_test(a) -> None:
    from .eval.evaluate import run_test

    style = _style_arg(a.style) or None
    _out_folder(a.out)
    t = _load_for_inference(a)
    from .eval.score_args import score_options

    scores = score_options(a)
    m = run_test(t, a.data or t.cfg.data.root, a.out, style=style, max_items=a.max_items, scores=scores)
    shown = ("psnr", "ssim", "vif", "lpips", "fid", "kid", "miou", "pixel_acc", "n")
    print(json.dumps({k: m[k] for k in shown if k in m}))
    print(f"report: {Path(a.out) / 'index.html'}")


def _inputs(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT)
        elif p.is_file():
            files.append(p)
        else:
            raise PixtransError(f"{p}: no such file or folder")
    if not files:
        raise PixtransError(f"no images found in {', '.join(paths)}")
    return files


def cmd_translate(a) -> None:
    from .infer.batch import run as translate_all

    style = _style_arg(a.style)
    if a.seed is not None:
        style["seed"] = a.seed
    if a.cluster is not None:
        style["cluster"] = a.cluster
    if a.reference:
        style["reference"] = a.reference
    out = _out_folder(a.out)
    inputs = _inputs(a.inputs)  # before the output folder is made
    inst_dir = Path(a.instances) if a.instances else None

    def instance_for(t, f: Path) -> Path | None:
        from .data.datasets import instance_partner

        inst = instance_partner(f, inst_dir)
        if inst is None and t.is_label_model and not t.data.no_instance:
            raise DataError(
                f,
                f"no instance map for this label map in {inst_dir} (this model was trained with instances)",
                "name it like the dataset does (X_gtFine_labelIds.png -> X_gtFine_instanceIds.png, or the "
                "same stem) or leave out --instances to use the label map as instances",
            )
        return inst

    def load(device: str):
        a.device = device  # under torchrun each rank's own GPU
        t = _load_for_inference(a)
        if a.tile:  # before the progress bar: tiles run on torch fp32 whatever --runtime says
            t.tell(t.tiling_note())
        return t

    # shards the inputs over torchrun ranks, skips outputs already written, rank 0 writes out/manifest.jsonl
    manifest = translate_all(
        load,
        inputs,
        out,
        device=a.device,
        style=style or None,
        tile=a.tile,
        instances=instance_for if inst_dir else None,
        all_scales=a.all_scales,
    )
    if manifest is not None:
        print(f"{len(inputs)} inputs -> {out}, manifest: {manifest}")


# ---------------------------------------------------------------------- bench / demo
def cmd_bench(a) -> None:
    import torch

    from .families import preset_model, presets
    from .infer.bench import bench_model

    _check_device(a.device)
    size = _size_arg(a.size)
    w, h = size if isinstance(size, tuple) else (size, size)
    if a.threads:
        torch.set_num_threads(a.threads)
    table = presets()
    if a.model in table:
        model = preset_model(a.model, a.set, inference=True)
    elif Path(a.model).exists():
        from .infer.translator import load

        model = load(a.model, device="cpu").model
    else:
        raise PixtransError(f"bench: {a.model!r} is neither a preset ({', '.join(sorted(table))}) nor a checkpoint")
    if a.runtime != "torch" or a.precision not in ("auto", "fp32"):
        _bench_runtimes(a, model, w, h, from_checkpoint=a.model not in table)
        return
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype]
    with memory_guard(f"benchmarking {a.model} at {w}x{h} on {a.device}"):
        res = bench_model(model, w, h, runs=a.runs, warmup=a.warmup, device=a.device, dtype=dtype)
    res["model"] = a.model
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>14}: {v}")


def _bench_runtimes(a, model, w: int, h: int, from_checkpoint: bool) -> None:
    """``pixtrans bench --runtime all|NAME``: one table, measured interleaved in this process."""
    import tempfile

    import torch

    from .infer.bench import all_runtimes, bench_runtimes, runtime_table

    device = torch.device(a.device)
    model.to(device)
    if a.runtime == "all":
        pairs = all_runtimes(device)
        if a.precision != "auto":
            pairs = [p for p in pairs if p[1] == a.precision or p == ("torch", "fp32")]
    else:
        pairs = [("torch", "fp32"), (a.runtime, "fp32" if a.precision == "auto" else a.precision)]
        pairs = list(dict.fromkeys(pairs))
    log = None if a.json else (lambda m: print(m, file=sys.stderr))
    # random-weight presets export to a throwaway folder; checkpoints to (and from) the runtime cache
    with (
        tempfile.TemporaryDirectory(prefix="pixtrans-bench-") as tmp,
        memory_guard(f"benchmarking {a.model} at {w}x{h}"),
    ):
        folder = None if from_checkpoint else Path(tmp)
        rows = bench_runtimes(model, w, h, pairs, runs=a.runs, warmup=a.warmup, folder=folder, log=log)
    if a.json:
        print(json.dumps({"model": a.model, "rows": rows}, default=str))
        return
    r0 = rows[0]
    print(f"{a.model} @ {w}x{h}, batch 1, {r0['threads']} threads, {r0['device']}, median of {a.runs} interleaved")
    print(runtime_table(rows))


def cmd_config_reference(a) -> None:
    from .config import config_reference

    print(config_reference(), end="")


def cmd_demo(a) -> None:
    from .demo import run_demo

    writable_folder(a.out)
    run_demo(a.out, steps=a.steps, size=a.size, n=a.n, ngf=a.ngf)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pixtrans", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True, action=_LazySubParsers)

    d = sub.add_parser("data", help="datasets: synthetic generator, checks").add_subparsers(
        dest="data_cmd", required=True
    )
    s = d.add_parser("synth", help="write the built-in synthetic label->photo dataset")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=at_least(1), default=32, help="training scenes")
    s.add_argument("--n-test", type=at_least(0), default=None, help="test scenes (default max(4, n/4))")
    s.add_argument("--size", default="64", help="side (64) or WxH (128x64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--aligned", action="store_true", help="also write aligned AB images (pix2pix format)")
    s.set_defaults(fn=cmd_data_synth)
    c = d.add_parser("check", help="scan a dataset and list every bad file")
    c.add_argument("config")
    c.add_argument("--data", default="")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--json", action="store_true", help="print the full report as JSON")
    c.set_defaults(fn=cmd_data_check)

    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("config")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    t.add_argument("--out", default="", help="run folder (default runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    t.add_argument("--steps", type=at_least(0), default=None, help="shortcut for --set train.steps=N")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("test", help="translate a test split; images, index.html, metrics.json")
    e.add_argument("checkpoint", help="run or checkpoint folder")
    e.add_argument("--data", default="", help="dataset root (default: the one in the config)")
    e.add_argument("--out", required=True)
    e.add_argument("--max-items", type=at_least(0), default=0, help="0: all")
    e.add_argument("--style", default="", help="JSON style (e.g. '{\"seed\": 3}')")
    e.add_argument("--device", type=device_arg, default="auto")
    e.add_argument("--paper-test", action="store_true", help=PAPER_TEST)
    add_runtime_args(e)
    add_score_args(e)
    e.set_defaults(fn=cmd_test)

    r = sub.add_parser("translate", help="translate image or label-map files / folders")
    r.add_argument("checkpoint")
    r.add_argument("inputs", nargs="+")
    r.add_argument("--out", required=True)
    r.add_argument(
        "--instances", default="", help="folder of instance maps, matched as the datasets do (Cityscapes _instanceIds)"
    )
    r.add_argument("--tile", type=at_least(0), default=0, help="tile size for images larger than memory allows")
    r.add_argument("--seed", type=int, default=None, help="style seed (SPADE VAE)")
    r.add_argument("--cluster", type=int, default=None, help="feature cluster for every class (pix2pixHD)")
    r.add_argument("--reference", default="", help="reference photo whose style to use")
    r.add_argument("--style", default="", help='full style as JSON, e.g. \'{"clusters": {"5": 2}}\'')
    r.add_argument("--all-scales", action="store_true", help="write every output scale (MSG U-Net)")
    r.add_argument("--device", type=device_arg, default="auto")
    r.add_argument("--paper-test", action="store_true", help=PAPER_TEST)
    add_runtime_args(r)
    r.set_defaults(fn=cmd_translate)

    b = sub.add_parser("bench", help="params, GFLOPs, latency, peak memory of a preset or checkpoint")
    b.add_argument("model", help="preset name (unet_256, pix2pixhd_global, ...) or checkpoint")
    b.add_argument("--size", default="256x256", help="WxH")
    b.add_argument("--runs", type=at_least(1), default=5)
    b.add_argument("--warmup", type=at_least(0), default=2)
    b.add_argument("--device", type=device_arg, default="cpu")
    b.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    b.add_argument("--threads", type=at_least(0), default=0, help="0: torch's default")
    add_runtime_args(
        b, every="all",
        runtime="all: one table of every runtime x precision vs torch fp32, timed interleaved (what translate runs)",
        precision="with --runtime: only this precision (auto: every one)",
    )  # fmt: skip
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench)

    cr = sub.add_parser("config-reference", help="print the config reference (docs/CONFIG.md) from the config models")
    cr.set_defaults(fn=cmd_config_reference)

    m = sub.add_parser("demo", help="synthetic data -> short CPU training (pix2pixHD + styles) -> one HTML report")
    m.add_argument("--out", default="demo")
    m.add_argument("--steps", type=at_least(1), default=800)
    m.add_argument("--size", type=at_least(32), default=64)
    m.add_argument("--n", type=at_least(1), default=64, help="training scenes")
    m.add_argument("--ngf", type=at_least(1), default=32, help="generator/discriminator width")
    m.set_defaults(fn=cmd_demo)

    sub.lazy = {}
    for name, help_line, module in EXTENSIONS:
        sub.add_parser(name, help=help_line)
        sub.lazy[name] = module
    return p


# What to lower when a command runs out of memory (the trainer names its own keys and the last checkpoint).
OOM_HINTS = {
    "train": "lower data.batch_size or data.crop_size, or set train.amp=bf16 (fp16 on CUDA)",
    "test": "use --precision fp16 or bf16, --device cpu (more memory than a GPU), or a smaller data.load_size",
    "translate": "use --tile 512 (exact, bounded memory), --precision fp16 or bf16, or --device cpu",
    "bench": "use a smaller --size, --dtype bf16 or fp16, or --device cpu",
    "serve": "serve fewer checkpoints, use --precision fp16 or bf16, or --device cpu",
    "demo": "use a smaller --size or --ngf",
    "export": "export at a smaller --size",
}
DEBUG_ENV = "PIXTRANS_DEBUG"  # set to 1: errors the CLI would print in one line raise with their traceback


def _oom_line(err: BaseException, args) -> str:
    """One line for a failed allocation in command ``args.cmd``: what, where, and what to lower."""
    cmd = getattr(args, "cmd", "") or ""
    hint = OOM_HINTS.get(cmd, "use smaller inputs or a smaller model")
    device = getattr(args, "device", "")
    oom = out_of_memory(err, f"in `pixtrans {cmd}`" + (f" on {device}" if device and device != "auto" else ""))
    hint = oom.hint or hint
    if " on cpu" in oom.doing or device == "cpu" or "CPUAllocator" in str(err) or isinstance(err, MemoryError):
        hint = re.sub(r",? (or )?--device cpu( \([^)]*\))?", "", hint)  # already on the CPU: no advice to move there
    return oom.text(hint)


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that busy-wait make small convolutions many times slower whenever the cores are shared (measured
    # here: 0.19 vs 4.7 training images/s for the demo's pix2pix under load); yield instead unless the user chose.
    # Set here, before any command imports torch, and not at import: importing pixtrans leaves the environment alone.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tune_malloc()  # glibc keeps freed training buffers instead of page-faulting them back each step
    args = None
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        try:
            args.fn(args)
        except ModuleNotFoundError as err:
            raise _missing_extra(err, args.cmd) or err from None
    except (MemoryError, RuntimeError, OSError, OutOfMemory) as err:
        if debug:
            raise
        if is_out_of_memory(err):
            print(f"pixtrans: error: {_oom_line(err, args)}", file=sys.stderr)
            return 2
        if not isinstance(err, OSError):  # a bug or an unforeseen library failure: one line, the traceback on demand
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
            print(
                f"pixtrans: error: unexpected {type(err).__name__}: {first[:300]} (rerun with {DEBUG_ENV}=1 for the "
                "traceback, and report it if it looks like a bug)",
                file=sys.stderr,
            )
            return 1
        # a file system refusal no command checked for (full disk, permissions, a file as folder)
        where = f": {err.filename}" if err.filename else ""
        print(f"pixtrans: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except PixtransError as err:
        print(f"pixtrans: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixtrans: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
