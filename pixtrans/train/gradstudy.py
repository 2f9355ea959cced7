"""MSG U-Net gradient study (Fig. 2 of the MSG U-Net paper): gradient magnitudes of the encoder's first layers after
N training steps with and without the intermediate (multi-scale) outputs.

Both runs start from the same seed and data order and train with the shared trainer; a hook records ``|grad|`` of
every encoder conv weight during the generator updates of the last ``collect`` steps. Writes
``gradients.png`` (distribution of log10 |grad| of the first ``layers`` encoder convs, and the median per encoder
layer), ``gradients.json`` (per-layer statistics) and the two run folders ``with_outputs/`` and
``without_outputs/``.

    pixtrans gradstudy configs/msg_unet_synth.yaml --set data.root=data/synth --steps 500 --out runs/gradstudy
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import ExperimentConfig
from ..errors import ConfigError
from ..registry import family_class

VARIANTS = (("with_outputs", True), ("without_outputs", False))


def encoder_convs(G: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The generator's encoder convs in forward order: stem, then per level its stride-2 conv and merge conv."""
    out = [(f"stem.{i}", block[0]) for i, block in enumerate(G.stem)]
    for level, down in enumerate(G.down, 1):
        out.append((f"down.{level - 1}", down[0]))
        if level < G.n_scales:
            out.append((f"merge.{level - 1}", G.merge[level - 1][0]))
    return out


def _stats(v: Tensor) -> dict:
    v = v.double()
    q = torch.quantile(
        v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]],
        torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64),
    )
    return {
        "n": v.numel(),
        "mean": float(v.mean()),
        "p10": float(q[0]),
        "median": float(q[1]),
        "p90": float(q[2]),
        "frac_below_1e-6": float((v < 1e-6).double().mean()),
    }


class GradientRecorder:
    """Collects ``|grad|`` of the given weights after each backward pass while :attr:`active` is true."""

    def __init__(self, layers: list[tuple[str, nn.Conv2d]]):
        self.active = False
        self.values: dict[str, list[Tensor]] = {name: [] for name, _ in layers}
        self._handles = [m.weight.register_post_accumulate_grad_hook(self._hook(name)) for name, m in layers]

    def _hook(self, name: str):
        def record(p: Tensor) -> None:
            if self.active and p.grad is not None:
                self.values[name].append(p.grad.detach().abs().flatten().float().cpu())

        return record

    def collected(self) -> dict[str, Tensor]:
        return {k: torch.cat(v) if v else torch.empty(0) for k, v in self.values.items()}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def _train_variant(cfg: ExperimentConfig, out: Path, collect: int) -> tuple[dict[str, Tensor], list[str]]:
    from .trainer import Trainer

    trainer = Trainer(cfg, out)
    layers = encoder_convs(trainer.model.G)
    rec = GradientRecorder(layers)
    steps = cfg.train.steps
    rec.active = steps <= collect  # record the G updates of the last `collect` steps

    def after_step(t) -> None:
        rec.active = t.step >= steps - collect

    try:
        trainer.fit(after_step)
    finally:
        rec.remove()
    return rec.collected(), [name for name, _ in layers]


def gradient_study(
    cfg: ExperimentConfig,
    out: str | Path,
    steps: int = 200,
    collect: int = 20,
    layers: int = 3,
    progress: bool | None = None,
) -> dict:
    """Train ``cfg`` (an MSG U-Net experiment) for ``steps`` with and without intermediate outputs; write
    ``gradients.png`` and ``gradients.json`` in ``out``; returns the summary."""
    if not family_class(cfg.family).multi_scale:
        raise ConfigError(f"gradstudy: family {cfg.family!r}; the gradient study needs an MSG U-Net config")
    if steps < 1 or not 1 <= collect <= steps:
        raise ConfigError(f"gradstudy: need steps >= 1 and 1 <= collect <= steps (got {steps}, {collect})")
    if layers < 1:
        raise ConfigError("gradstudy: --layers must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = cfg.train.model_copy(
        update={
            "steps": steps,
            "save_every": 0,
            "sample_every": 0,
            "val_every": 0,
            "progress": cfg.train.progress if progress is None else progress,
            "keep_checkpoints": 1,
        }
    )
    grads: dict[str, dict[str, Tensor]] = {}
    names: list[str] = []
    for variant, flag in VARIANTS:
        model = cfg.model.model_copy(update={"intermediate_outputs": flag})
        vcfg = cfg.model_copy(update={"model": model, "train": train, "name": f"{cfg.name or 'msg_unet'}_{variant}"})
        grads[variant], names = _train_variant(vcfg, out / variant, collect)
    first = names[:layers]
    summary = {
        "steps": steps,
        "collected_steps": collect,
        "first_layers": first,
        "layers": names,
        "variants": {
            v: {
                "first_layers": _stats(torch.cat([g[n] for n in first])),
                "per_layer": {n: _stats(g[n]) for n in names},
            }
            for v, g in grads.items()
        },
    }
    w, wo = (summary["variants"][v]["first_layers"]["median"] for v, _ in VARIANTS)
    summary["median_ratio_with_over_without"] = w / wo if wo > 0 else math.inf
    (out / "gradients.json").write_text(json.dumps(summary, indent=2))
    summary["png"] = str(plot_gradients(grads, names, first, out / "gradients.png", steps))
    return summary


def plot_gradients(
    grads: dict[str, dict[str, Tensor]], names: list[str], first: list[str], path: Path, steps: int
) -> Path:
    """Left: histogram of log10 |grad| of the ``first`` layers per variant; right: median |grad| per layer."""
    import numpy as np
    from matplotlib.figure import Figure

    labels = {"with_outputs": "with intermediate outputs", "without_outputs": "without intermediate outputs"}
    fig = Figure(figsize=(12, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    pooled = {v: torch.cat([g[n] for n in first]).numpy() for v, g in grads.items()}
    logs = {v: np.log10(x[x > 0]) for v, x in pooled.items()}
    lo = min(float(np.percentile(x, 0.5)) for x in logs.values() if x.size)
    hi = max(float(x.max()) for x in logs.values() if x.size)
    bins = np.linspace(lo, hi, 60)
    for i, (v, x) in enumerate(logs.items()):
        zeros = 100 * float(np.mean(pooled[v] == 0)) if pooled[v].size else 0.0
        label = labels.get(v, v) + (f" ({zeros:.1f}% exactly 0)" if zeros else "")
        ax.hist(np.clip(x, lo, hi), bins=bins, alpha=0.55, color=f"C{i}", label=label, density=True)
    ax.set_xlabel("log10 |gradient|")
    ax.set_ylabel("density")
    ax.set_title(f"encoder layers {', '.join(first)} after {steps} steps")
    ax.legend()
    for i, (v, g) in enumerate(grads.items()):
        med = [float(g[n].median()) if g[n].numel() else float("nan") for n in names]
        ax2.plot(range(len(names)), med, "o-", color=f"C{i}", label=labels.get(v, v))
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax2.set_ylabel("median |gradient|")
    ax2.set_title("per encoder layer (input side left)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _cmd(a) -> None:
    from ..config import load_config

    cfg = load_config(a.config, a.set)
    res = gradient_study(cfg, a.out, steps=a.steps, collect=a.collect, layers=a.layers)
    for v, s in res["variants"].items():
        f = s["first_layers"]
        print(f"{v:>16}: median |grad| {f['median']:.3e}  mean {f['mean']:.3e}  p10 {f['p10']:.3e}  p90 {f['p90']:.3e}")
    print(f"median ratio (with / without): {res['median_ratio_with_over_without']:.3g}")
    print(f"wrote {Path(a.out) / 'gradients.json'} and {res['png']}")


def add_commands(subparsers) -> None:
    """``pixtrans gradstudy CONFIG [--set k=v] --out O [--steps N] [--collect K] [--layers L]``."""
    p = subparsers.add_parser(
        "gradstudy",
        help="MSG U-Net: encoder gradient magnitudes with vs without intermediate outputs (plot + JSON)",
    )
    p.add_argument("config", help="an MSG U-Net experiment config (e.g. configs/msg_unet_synth.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--out", required=True, help="output folder (two run folders, gradients.png, gradients.json)")
    p.add_argument("--steps", type=int, default=200, help="training steps of each run")
    p.add_argument("--collect", type=int, default=20, help="record gradients during the last K steps")
    p.add_argument("--layers", type=int, default=3, help="how many of the first encoder convs the histogram pools")
    p.set_defaults(fn=_cmd)
