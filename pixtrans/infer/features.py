"""pix2pixHD feature clusters: encode the training set with E, K-means per class, store centres in the checkpoint.

    pixtrans features RUN --data DIR [--k 10]

Each training instance gives one vector (E's instance-pooled feature) labelled with the class most of its pixels
carry. As in the official ``encode_features.py``, instances smaller than ``min_area`` of the image (default 1/64)
are left out (unless a class has no larger one), and each class gets ``min(k, distinct vectors)`` centres from
scikit-learn's KMeans. Centres are ordered by cluster size (cluster 0 = the most common style) and written to the
checkpoint's ``meta.json`` (``family_meta.clusters``), where ``pixtrans.load`` finds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..checkpoints import update_meta
from ..errors import ConfigError, PixtransError


def instance_features(feat: Tensor, inst: Tensor, label: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For one image: E's raw output (C, H, W), instance ids (H, W), class ids (H, W) ->
    per instance (N, C) mean features, (N,) majority class, (N,) area fraction."""
    ids, inverse = torch.unique(inst.reshape(-1), return_inverse=True)
    n, c = ids.numel(), feat.shape[0]
    flat = feat.reshape(c, -1).float()
    counts = torch.bincount(inverse, minlength=n)
    means = flat.new_zeros(c, n).index_add_(1, inverse, flat).div_(counts.to(flat)).t()
    lab = label.reshape(-1).long()
    n_cls = int(lab.max()) + 1
    votes = torch.bincount(inverse * n_cls + lab, minlength=n * n_cls).reshape(n, n_cls)
    return means, votes.argmax(1), counts.float() / inverse.numel()


def kmeans_centres(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``min(k, distinct rows)`` K-means centres of ``vectors`` (N, C), largest cluster first, and their sizes."""
    from sklearn.cluster import KMeans

    n = min(k, len(np.unique(vectors.round(6), axis=0)))
    km = KMeans(n_clusters=n, random_state=seed, n_init=10).fit(vectors)
    sizes = np.bincount(km.labels_, minlength=n)
    order = np.argsort(-sizes, kind="stable")
    return km.cluster_centers_[order], sizes[order]


@torch.no_grad()
def collect_features(model, loader, min_area: float = 1 / 64, progress: bool = False) -> dict[int, np.ndarray]:
    """Encode every item of ``loader``; per class an (N, feat_num) array of instance features."""
    from tqdm import tqdm

    big: dict[int, list[Tensor]] = {}
    small: dict[int, list[Tensor]] = {}
    for batch in tqdm(loader, desc="encode", disable=not progress, dynamic_ncols=True):
        x = model.prepare(batch)
        if "target" not in x:
            continue
        raw, inst = model.feature_map(x)
        for b in range(raw.shape[0]):
            means, cls, area = instance_features(raw[b], inst[b, 0], x["label"][b, 0])
            for vec, c, a in zip(means.cpu(), cls.tolist(), area.tolist()):
                (big if a >= min_area else small).setdefault(c, []).append(vec)
    out = {}
    for c in sorted(set(big) | set(small)):
        vecs = big.get(c) or small[c]
        out[c] = torch.stack(vecs).numpy().astype(np.float64)
    return out


def compute_clusters(
    run_or_checkpoint: str | Path,
    data_root: str | Path = "",
    k: int = 10,
    split: str = "",
    min_area: float = 1 / 64,
    max_items: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> dict:
    """Encode the training set of ``data_root`` (default: the run's) with the checkpoint's E, run K-means per class
    and store the centres in the checkpoint's ``meta.json``. Returns ``{"checkpoint", "clusters": {class: n},
    "instances": {class: n}}``."""
    from ..data.datasets import build_dataset
    from .translator import load

    if k < 1:
        raise ConfigError(f"--k {k}: the number of clusters must be >= 1")
    t = load(run_or_checkpoint, device=device)
    model = t.model
    if not model.style_schema().clusterable:
        raise ConfigError(
            f"{run_or_checkpoint}: this {t.family} model has no instance features to cluster (feature clusters need "
            "a pix2pixHD model trained with model.use_features: true)"
        )
    data = t.cfg.data.model_copy(update={"root": str(data_root or t.cfg.data.root), "max_items": max_items})
    ds = build_dataset(data, split or data.train_split, train=False)
    loader = DataLoader(ds, batch_size=1, shuffle=False, num_workers=0)
    feats = collect_features(model, loader, min_area, progress)
    if not feats:
        raise PixtransError(f"{data.root}: no training photos found to encode (split {split or data.train_split!r})")
    clusters = {}
    sizes = {}
    for c, vecs in feats.items():
        centres, counts = kmeans_centres(vecs, k)
        clusters[c] = torch.as_tensor(centres, dtype=torch.float32)
        sizes[c] = counts.tolist()
    model.set_clusters(clusters)
    update_meta(t.path, {**model.meta(), "cluster_sizes": {str(c): s for c, s in sizes.items()}, "k": k})
    return {
        "checkpoint": str(t.path),
        "clusters": {c: int(v.shape[0]) for c, v in clusters.items()},
        "instances": {c: int(len(v)) for c, v in feats.items()},
    }


def cmd_features(a) -> None:
    res = compute_clusters(
        a.run, a.data, k=a.k, split=a.split, min_area=a.min_area, max_items=a.max_items, device=a.device, progress=True
    )
    names = {}
    try:
        meta = json.loads((Path(res["checkpoint"]) / "meta.json").read_text())
        names = dict(enumerate(meta.get("class_names") or []))
    except (OSError, ValueError):
        pass
    for c, n in sorted(res["clusters"].items()):
        print(f"class {c:>3} {names.get(c, ''):<16} {res['instances'][c]:>6} instances -> {n} clusters")
    print(f"clusters stored in {Path(res['checkpoint']) / 'meta.json'}")


def add_commands(sub) -> None:
    """Register ``pixtrans features``."""
    p = sub.add_parser("features", help="pix2pixHD: encode the training set and K-means the features per class")
    p.add_argument("run", help="run or checkpoint folder of a pix2pixHD model trained with use_features")
    p.add_argument("--data", default="", help="dataset root (default: the one in the run's config)")
    p.add_argument("--k", type=int, default=10, help="clusters per class (paper: 10)")
    p.add_argument("--split", default="", help="split to encode (default: the training split)")
    p.add_argument("--min-area", type=float, default=1 / 64, help="skip instances smaller than this image fraction")
    p.add_argument("--max-items", type=int, default=0, help="encode at most this many images (0 = all)")
    p.add_argument("--device", default="auto")
    p.set_defaults(fn=cmd_features)
