"""``pixtrans test``: translate a test split, write images, an HTML report and metrics.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import ExperimentConfig
from ..data.datasets import build_dataset, dataset_info
from ..errors import PixtransError
from ..families.base import TranslationModel


def _test_loader(cfg: ExperimentConfig, max_items: int = 0, require_target: bool = False) -> DataLoader:
    data = cfg.data.model_copy(update={"max_items": max_items or cfg.data.max_items})
    ds = build_dataset(data, data.test_split, train=False, require_target=require_target)
    if len(ds) == 0:
        raise PixtransError(f"{data.root}: no '{data.test_split}' items found for layout {data.layout!r}")
    return DataLoader(ds, batch_size=1, shuffle=False, num_workers=0)


@torch.no_grad()
def evaluate_model(model: TranslationModel, cfg: ExperimentConfig, max_items: int = 0) -> dict:
    """Mean PSNR/SSIM/VIF of ``model`` on the test split (validation during training), translated as
    ``pixtrans.load`` translates: through :meth:`Translator.translate_tensor` (padding to the network's multiple)."""
    from ..infer.translator import Translator
    from .metrics import MetricAccumulator

    was_training = model.training
    translator = Translator(model, cfg, {})  # puts the model in eval mode
    acc = MetricAccumulator()
    try:
        for batch in _test_loader(cfg, max_items):
            if "target" not in batch:
                continue
            x = model.prepare(batch)
            acc.update(translator.translate_tensor(x, model.eval_style()).image.float(), x["target"])
    finally:
        model.train(was_training)
    return acc.compute()


@torch.no_grad()
def run_test(
    translator,
    data_root: str | Path,
    out: str | Path,
    style: dict | None = None,
    max_items: int = 0,
    progress: bool = True,
    scores=None,
) -> dict:
    """Translate every test item of ``data_root`` with ``translator``; write images, index.html, metrics.json.

    ``scores`` (a :class:`~pixtrans.eval.scores.ScoreOptions`) adds FID / KID / LPIPS / the segmentation score; their
    networks are loaded before the first translation. metrics.json's ``protocol`` says how each number is made."""
    from ..infer.translator import input_to_rgb, tensor_to_pil
    from .metrics import METRICS, MetricAccumulator
    from .report import write_html_report
    from .scores import SetScorer, json_safe_tree, protocol_for, psnr_of_mean_mse

    cfg = translator.cfg.model_copy(deep=True)
    cfg.data = cfg.data.model_copy(update={"root": str(data_root)})
    out = Path(out)
    palette = dataset_info(cfg.data).get("palette") or translator.palette
    acc = MetricAccumulator()
    scorer = None
    if scores is not None and scores.any:
        scorer = SetScorer(scores, translator.is_label_model, device=translator.model.device)
    rows, per_image = [], []
    loader = _test_loader(cfg, max_items)
    (out / "images").mkdir(parents=True, exist_ok=True)  # once the data is found: a failed start leaves no folder
    style = style or translator.model.eval_style()
    for batch in tqdm(loader, desc="test", disable=not progress, dynamic_ncols=True):
        name = batch["name"][0]
        x = translator.model.prepare(batch)
        res = translator.translate_tensor(x, style)
        files = {"input": f"images/{name}_input.png", "output": f"images/{name}_output.png"}
        tensor_to_pil(input_to_rgb(x, 0, cfg.data, palette)).save(out / files["input"])
        tensor_to_pil(res.image[0]).save(out / files["output"])
        row = {"name": name, **files, "style": json.dumps(res.style, default=str)}
        if "target" in x:
            files["target"] = f"images/{name}_target.png"
            tensor_to_pil(x["target"][0]).save(out / files["target"])
            per = acc.update(res.image.float(), x["target"], names=[name])
            if scorer is not None:
                per.update(scorer.update(res.image.float(), x["target"], x.get("label")))
            row.update(files, **{k: round(float(v[0]), 4) for k, v in per.items()})
        elif scorer is not None:
            scorer.update(res.image.float(), None, x.get("label"))
        rows.append(row)
        per_image.append(row)
    metrics = acc.summary() if acc.n else {"psnr": None, "ssim": None, "vif": None, "n": 0}
    if acc.n:
        metrics["psnr_set"] = psnr_of_mean_mse(acc.values["psnr"])
    if scorer is not None:
        metrics.update(scorer.summary())
    metrics = json_safe_tree(metrics)
    metrics["protocol"] = protocol_for([*METRICS, *metrics])
    metrics["n_images"] = len(rows)
    metrics["checkpoint"] = str(translator.path) if translator.path else None
    metrics["family"] = translator.family
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    with open(out / "per_image.csv", "w", newline="") as f:
        keys = sorted({k for r in per_image for k in r})
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(per_image)
    shown = {k: v for k, v in metrics.items() if k not in ("protocol", "segmentation")}
    write_html_report(out, rows, shown, title=f"pixtrans test — {translator.family}")
    return metrics
