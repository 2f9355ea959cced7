"""``pixtrans demo``: synthetic street scenes -> a short CPU training -> one HTML report.

The recipe (chosen by measuring several for the same few CPU minutes, see README "Demo"): pix2pixHD's global
generator with its instance-wise feature encoder on 64 px scenes, trained with GAN + feature matching + the
reconstruction term (L1 + SSIM, no VGG weights needed). The scenes have several styles per class (sky at noon or
dusk, car colours...): the feature encoder lets the trained model copy the style of the target photo, so the report
shows the plain output and the output in the target's style next to it.

The report (``OUT/report/index.html``) holds, per test scene, input | untrained | trained | trained in the target's
style (models that take a reference photo) | target; the metric table for all of them; and the loss curves.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path

DEFAULT_CONFIG = "pix2pixhd_synth"
# the demo's settings on top of DEFAULT_CONFIG (ngf from the ngf argument)
RECIPE = [
    "model.n_blocks_global=6",
    "model.num_D=2",
    "model.n_layers_D=3",
    "model.no_vgg_loss=true",
    "train.lr_policy=linear",
]


def _overrides(data: Path, steps: int, size: int, ngf: int) -> list[str]:
    return [
        f"data.root={data}",
        f"train.steps={steps}",
        "train.sample_every=0",
        f"train.save_every={max(steps // 4, 1)}",
        "train.log_every=25",
        f"data.load_size={size}",
        f"data.crop_size={size}",
        f"model.ngf={ngf}",
        f"model.ndf={ngf}",
    ]


def run_demo(
    out: str | Path = "demo", steps: int = 800, size: int = 64, n: int = 64, config: str = "", ngf: int = 32
) -> dict:
    """Generate data, train, test the untrained and the trained model and write the report into ``out``; returns
    the summary (metrics of both, the report's path, how to serve the model)."""
    from .config import load_config
    from .data.synth import generate

    out = Path(out)
    data, run = out / "data", out / "run"
    t0 = time.perf_counter()
    print(f"[1/4] synthetic dataset ({n} train scenes, {size}px) -> {data}")
    generate(data, n=n, size=size, seed=0, progress=True)
    extra = [] if config else RECIPE
    cfg = load_config(config or DEFAULT_CONFIG, extra + _overrides(data, steps, size, ngf))
    if run.exists():
        shutil.rmtree(run)
    print(f"[2/4] training {cfg.family} for {steps} steps on the CPU -> {run}")
    from .train.trainer import train

    ck = train(cfg, run)
    _clusters(ck, data)
    print("[3/4] testing the untrained model (same architecture, same seed) and the trained one")
    columns, metrics = _test(cfg, ck, data, out / "report")
    summary = {
        "trained": metrics["trained"],
        "untrained": metrics["untrained"],
        **({"trained_target_style": metrics["style"]} if "style" in metrics else {}),
        "family": cfg.family,
        "steps": steps,
        "minutes": round((time.perf_counter() - t0) / 60, 2),
        "report": str(out / "report" / "index.html"),
        "run": str(run),
        "serve": f"pixtrans serve {run}",
    }
    print("[4/4] report")
    _write_report(out / "report", cfg, summary, columns, run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("trained", "untrained", "minutes")}, indent=2))
    report = (out / "report" / "index.html").resolve()
    print(f"\nReport: open {report.as_uri()} in a browser (or: python -m http.server -d {out / 'report'})")
    here = " (a plain `pixtrans serve` in this folder finds it)" if out.resolve() == Path("demo").resolve() else ""
    print(f"Serve the trained model: pixtrans serve {run}{here}")
    return summary


def _clusters(checkpoint: Path, data: Path) -> None:
    """K-means styles per class (``pixtrans features``) for models that have them, so that the plain output draws
    a style per class instead of using the target's; skipped without scikit-learn (the ``features`` extra)."""
    from .infer.translator import load

    if not load(checkpoint, device="cpu").model.style_schema().clusterable:
        return
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("(no scikit-learn: the plain output uses the mean style; pip install 'pixtrans[features]')")
        return
    from .infer.features import compute_clusters

    compute_clusters(checkpoint, data, k=4, device="cpu")


def _test(cfg, checkpoint: Path, data: Path, out: Path) -> tuple[list[dict], dict]:
    """Translate every test scene with the untrained and the trained model (and, where the model takes a reference
    photo, in the target's style); writes the images into ``out/images``; returns rows and metrics."""
    import torch

    from .eval.evaluate import _test_loader
    from .eval.metrics import MetricAccumulator
    from .families import build_model
    from .infer.translator import Translator, input_to_rgb, load, tensor_to_pil

    torch.manual_seed(cfg.train.seed)
    untrained = Translator(build_model(cfg, inference=True), cfg, {}, None)
    trained = load(checkpoint, device="cpu")
    takes_reference = trained.model.style_schema().reference
    tcfg = trained.cfg.model_copy(deep=True)
    tcfg.data = tcfg.data.model_copy(update={"root": str(data)})
    acc = {"untrained": MetricAccumulator(), "trained": MetricAccumulator()}
    if takes_reference:
        acc["style"] = MetricAccumulator()
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for batch in _test_loader(tcfg, require_target=True):
        name = batch["name"][0]
        x = trained.model.prepare(batch)
        plain = {k: v for k, v in x.items() if k != "target"}  # the model's own style, not the target's
        outs = {
            "untrained": untrained.translate_tensor(plain, untrained.model.eval_style()).image,
            "trained": trained.translate_tensor(plain, trained.model.eval_style()).image,
        }
        if takes_reference:
            style = trained.model.encode_reference(x["target"][:1], x.get("label"), x.get("inst"))
            outs["style"] = trained.translate_tensor(x, style).image
        row = {"name": name}
        images = {"input": input_to_rgb(x, 0, tcfg.data, trained.palette), **{k: v[0] for k, v in outs.items()}}
        images["target"] = x["target"][0]
        for key, img in images.items():
            row[key] = f"images/{name}_{key}.png"
            tensor_to_pil(img).save(out / row[key])
        for key, image in outs.items():
            per = acc[key].update(image.float(), x["target"], names=[name])
            row[f"{key}_metrics"] = {k: float(v[0]) for k, v in per.items()}
        rows.append(row)
    metrics = {k: {m: a.compute()[m] for m in ("psnr", "ssim", "vif", "n")} for k, a in acc.items()}
    return rows, metrics


_LABELS = {"untrained": "untrained", "trained": "trained", "style": "trained, target's style"}


def _write_report(out: Path, cfg, summary: dict, rows: list[dict], run: Path) -> None:
    """``out/index.html``: recipe, metric table, loss curves and the per-scene grid."""
    if (run / "losses.png").is_file():
        shutil.copy(run / "losses.png", out / "losses.png")
    kinds = [k for k in ("untrained", "trained", "style") if k in rows[0]] if rows else []
    esc = html.escape
    table = "".join(
        f"<tr><td>{_LABELS[k]}</td>"
        + "".join(f"<td>{summary[key][m]:.{p}f}</td>" for m, p in (("psnr", 2), ("ssim", 4), ("vif", 4)))
        + "</tr>"
        for k, key in (("untrained", "untrained"), ("trained", "trained"), ("style", "trained_target_style"))
        if key in summary
    )
    head = "".join(f"<th>{esc(c)}</th>" for c in ["scene", "input", *[_LABELS[k] for k in kinds], "target"])
    body = []
    for r in rows:
        cells = [f"<td>{esc(r['name'])}</td>", f"<td><img src='{esc(r['input'])}' alt='input'></td>"]
        for k in kinds:
            m = r[f"{k}_metrics"]
            cap = f"PSNR {m['psnr']:.1f} · SSIM {m['ssim']:.3f}"
            cells.append(f"<td><img src='{esc(r[k])}' alt='{_LABELS[k]}'><br><small>{cap}</small></td>")
        cells.append(f"<td><img src='{esc(r['target'])}' alt='target'></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    style_note = (
        "<p>“trained, target's style”: the same model given the target photo as its style reference "
        "(per-instance features of the photo), so sky, cars and buildings take the target's colours.</p>"
        if "style" in kinds
        else ""
    )
    losses = (
        "<h2>Loss curves</h2><img class='curves' src='losses.png' alt='loss curves'>"
        if (out / "losses.png").is_file()
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixtrans demo</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: center; }}
.grid img {{ width: 160px; image-rendering: pixelated; }} .curves {{ max-width: 900px; width: 100%; }}
code {{ background: #f3f3f3; padding: 1px 4px; }}
</style></head><body>
<h1>pixtrans demo: {esc(cfg.family)} on synthetic street scenes</h1>
<p>{summary["steps"]} training steps on the CPU ({summary["minutes"]} min in all), {esc(cfg.name)} with
<code>ngf {cfg.model.ngf}</code>, no VGG weights (GAN + feature matching + L1/SSIM reconstruction).
Serve the trained model: <code>{esc(summary["serve"])}</code>.</p>
<h2>Metrics on the {summary["trained"]["n"]} test scenes</h2>
<table><tr><th>model</th><th>PSNR</th><th>SSIM</th><th>VIF</th></tr>{table}</table>
<p><small>PSNR, SSIM and VIF are means of per-image values (see the README's metric notes).</small></p>
{style_note}
{losses}
<h2>Test scenes</h2>
<table class="grid"><tr>{head}</tr>{"".join(body)}</table>
</body></html>
"""
    (out / "index.html").write_text(page)
