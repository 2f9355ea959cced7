"""Datasets for every supported layout, one item contract (docs/CONTRACTS.md).

``build_dataset(cfg, split, train)`` finds the files of ``cfg.layout`` under ``cfg.root``, pairs them by file
stem (Cityscapes suffixes stripped) and returns a :class:`PairedDataset` whose items are dicts:

- ``input``: int64 (1, H, W) label ids (``cfg.label_nc > 0``) or float32 (C, H, W) photo in [-1, 1]
- ``inst``: int64 (1, H, W) instance ids (when ``cfg.no_instance`` is false; the label map if no instance files)
- ``target``: float32 (C, H, W) photo in [-1, 1] (absent when the split has no photos)
- ``name``: the file stem

Layouts (``split`` "test" falls back to "val"/"validation" when there are no test folders):

- ``aligned``: ``root/<split>/*`` A|B side by side (pix2pix); ``direction`` picks which half is the input
- ``paired``: ``root/<split>/A/`` + ``root/<split>/B/`` (or ``root/A`` + ``root/B``)
- ``synth`` / ``pix2pixhd`` / ``coco``: ``root/<split>_label/``, ``<split>_inst/``, ``<split>_img/``
- ``cityscapes``: ``root/gtFine/<split>/<city>/*_gtFine_labelIds.png`` (+ ``_instanceIds``),
  ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png``
- ``ade20k``: ``root/images/{training,validation}/*.jpg`` + ``root/annotations/...png``; ids are shifted down by one
  and 0 ("other") becomes 255 = don't care (SPADE convention; needs ``contain_dontcare``)
- ``custom``: ``root/<split>/label/``, optional ``root/<split>/instance/``, ``root/<split>/image/``

Training fetches ``dataset[ItemKey(index, epoch, seed)]``: the item's augmentation draws come from a generator
seeded by (seed, epoch, index) alone, so the data stream does not depend on DataLoader workers, world size or where
a run was resumed. Such items also carry ``skipped``: a JSON list of ``[path, problem, hint]`` of the bad files
passed over to fetch it (``[]`` mostly), so the training process can book skips made in worker processes
(:meth:`PairedDataset.record_skipped`).

Sizes follow the data: when the config gives neither ``load_size`` nor ``crop_size`` (nor was given them by an
earlier dataset of the same config), :func:`build_dataset` sets both from the first readable item, so a 128 px
dataset trains and tests at 128 px (:func:`follow_data_sizes`); a size the config gives is kept.

Bad files (unreadable, wrong mode, partner missing or of another size, label id out of range) raise
:class:`~pixtrans.errors.DataError` naming the file, or with ``cfg.on_error == "skip"`` are skipped and counted in
``.skipped`` (details in ``.problems``, one per file). Items are checked when loaded; :meth:`PairedDataset.validate`
checks all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from . import transforms as T
from .io import IMAGE_EXTS, LABEL_EXTS, grey, read_instance, read_label, read_rgb, to_tensor_ids, to_tensor_image
from .labels import DONTCARE, check_label_range
from .palettes import class_info

LABEL_LAYOUTS = ("synth", "pix2pixhd", "cityscapes", "coco", "ade20k", "custom")
SUFFIXES = ("_gtFine_labelIds", "_gtFine_instanceIds", "_gtFine_color", "_leftImg8bit", "_labelIds", "_instanceIds")
_DATASET_OF = {"cityscapes": "cityscapes", "pix2pixhd": "cityscapes", "coco": "coco", "ade20k": "ade20k"}


def stem_key(path: Path) -> str:
    """The file stem with Cityscapes-style suffixes removed (how partners are matched)."""
    s = path.stem
    for suf in SUFFIXES:
        if s.endswith(suf):
            return s[: -len(suf)]
    return s


_NOT_INSTANCE = ("_gtFine_labelIds", "_gtFine_color", "_labelIds", "_leftImg8bit")
_INDEX_CACHE: dict[str, tuple[int, dict[str, Path]]] = {}


def _instance_index(inst_dir: Path) -> dict[str, Path]:
    """Instance maps under ``inst_dir`` (recursively, as Cityscapes' city folders) by :func:`stem_key`; label,
    colour and photo files that share the folder (Cityscapes ``gtFine``) are left out."""
    idx: dict[str, Path] = {}
    for p in sorted(inst_dir.rglob("*")):
        if p.suffix.lower() not in LABEL_EXTS or p.name.startswith(".") or p.stem.endswith(_NOT_INSTANCE):
            continue
        k = stem_key(p)
        if k not in idx or p.stem.endswith("_instanceIds"):
            idx[k] = p
    return idx


def instance_partner(label_path: str | Path, inst_dir: str | Path) -> Path | None:
    """The instance map of ``label_path`` in ``inst_dir`` by the dataset loaders' rule (same :func:`stem_key`):
    Cityscapes ``X_gtFine_labelIds.png`` -> ``X_gtFine_instanceIds.png``, pix2pixHD/custom layouts the same stem in
    the ``_inst`` / ``instance`` folder; None when there is none."""
    inst_dir = Path(inst_dir)
    if not inst_dir.is_dir():
        raise DataError(inst_dir, "instance map folder not found", "give the folder that holds the instance maps")
    key, stamp = str(inst_dir.resolve()), inst_dir.stat().st_mtime_ns
    cached = _INDEX_CACHE.get(key)
    if cached is None or cached[0] != stamp:  # one scan per folder for a run over many labels
        cached = _INDEX_CACHE[key] = (stamp, _instance_index(inst_dir))
    return cached[1].get(stem_key(Path(label_path)))


def reference_maps(photo: str | Path) -> dict[str, Path]:
    """The label and instance maps of a dataset photo, found by the layouts' folder rules: ``<split>_img/X`` ->
    ``<split>_label/X``, ``<split>_inst/X``; Cityscapes ``leftImg8bit/<split>/<city>/X_leftImg8bit`` ->
    ``gtFine/<split>/<city>/X_gtFine_labelIds`` / ``_instanceIds``. Keys ``label`` / ``inst`` where found."""
    photo = Path(photo)
    key, folder = stem_key(photo), photo.parent
    places: list[tuple[str, Path, tuple[str, ...]]] = []
    if folder.name.endswith("_img"):
        base = folder.parent / folder.name[: -len("_img")]
        places += [("label", Path(f"{base}_label"), ("",)), ("inst", Path(f"{base}_inst"), ("",))]
    parts = folder.parts
    if "leftImg8bit" in parts:
        i = len(parts) - 1 - parts[::-1].index("leftImg8bit")
        gt = Path(*parts[:i], "gtFine", *parts[i + 1 :])
        places += [("label", gt, ("_gtFine_labelIds",)), ("inst", gt, ("_gtFine_instanceIds",))]
    found: dict[str, Path] = {}
    for what, d, suffixes in places:
        for suf in suffixes:
            hits = sorted(q for q in d.glob(f"{key}{suf}.*") if q.suffix.lower() in LABEL_EXTS) if d.is_dir() else []
            if hits and what not in found:
                found[what] = hits[0]
    return found


class ItemKey(NamedTuple):
    """A training fetch: item ``index`` in ``epoch`` of a run seeded ``seed``."""

    index: int
    epoch: int
    seed: int


def item_generator(key: ItemKey) -> torch.Generator:
    """The random stream of one training fetch, a function of (seed, epoch, index) only."""
    entropy = [key.seed % 2**64, key.epoch, key.index]
    hi, lo = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(hi) << 32 | int(lo)) & (2**63 - 1))


@dataclass
class Entry:
    """The files of one item; ``source`` is the label map or input photo (the AB file for ``aligned``)."""

    name: str
    source: Path
    target: Path | None = None
    inst: Path | None = None


# ---------------------------------------------------------------------------- file discovery
def _files(folder: Path, exts: tuple[str, ...], recursive: bool = False, suffix: str = "") -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    # a dangling symlink is listed (reading it names it as such) rather than dropped (its partner would seem alone)
    out = [
        p
        for p in it
        if p.suffix.lower() in exts
        and p.stem.endswith(suffix)
        and not p.name.startswith(".")
        and (p.is_file() or (p.is_symlink() and not p.exists()))
    ]
    return sorted(out, key=lambda p: (stem_key(p), str(p)))


def _index(files: list[Path], folder: Path) -> dict[str, Path]:
    idx: dict[str, Path] = {}
    for p in files:
        k = stem_key(p)
        if k in idx:
            raise DataError(
                p, f"two files with the same name stem {k!r} in {folder} (also {idx[k].name})", "keep one file per item"
            )
        idx[k] = p
    return idx


def _split_candidates(split: str) -> list[str]:
    if split == "test":
        return ["test", "val", "validation"]
    if split == "val":
        return ["val", "validation", "test"]
    return [split]


def _first_existing(root: Path, split: str, pattern: str) -> tuple[str, Path]:
    """The first split name whose folder ``pattern.format(s)`` exists under root."""
    tried = []
    for s in _split_candidates(split):
        p = root / pattern.format(s)
        tried.append(p)
        if p.is_dir():
            return s, p
    have = sorted(q.name for q in root.iterdir()) if root.is_dir() else []
    raise DataError(
        tried[0],
        "folder not found" + (f" (nor {', '.join(str(t) for t in tried[1:])})" if len(tried) > 1 else ""),
        f"check data.root and data.layout; {root} holds: {', '.join(have[:12]) or 'nothing'}"
        if root.is_dir()
        else f"data.root {root} does not exist",
    )


@dataclass
class Found:
    entries: list[Entry]
    problems: list[DataError]
    has_target: bool
    has_inst: bool


def _pair(
    sources: list[Path],
    src_dir: Path,
    targets: dict[str, Path] | None,
    tgt_dir: Path | None,
    insts: dict[str, Path] | None,
    inst_dir: Path | None,
    what: str = "label map",
) -> Found:
    """Match sources with targets/instances by stem; report missing partners both ways."""
    entries, problems = [], []
    seen = set()
    for p in sources:
        k = stem_key(p)
        e = Entry(name=k, source=p)
        missing = []
        if targets is not None:
            e.target = targets.get(k)
            if e.target is None:
                missing.append(f"no photo named {k}.* in {tgt_dir}")
        if insts is not None:
            e.inst = insts.get(k)
            if e.inst is None:
                missing.append(f"no instance map named {k}.* in {inst_dir}")
        seen.add(k)
        if missing:
            problems.append(
                DataError(
                    p, "missing partner: " + "; ".join(missing), "every item needs the same file stem in each folder"
                )
            )
        else:
            entries.append(e)
    if targets is not None:
        for k, t in targets.items():
            if k not in seen:
                problems.append(
                    DataError(
                        t,
                        f"missing partner: no {what} named {k}.* in {src_dir}",
                        "every item needs the same file stem in each folder",
                    )
                )
    return Found(entries, problems, targets is not None, insts is not None)


def _discover_triplet(
    label_dir: Path,
    inst_dir: Path | None,
    img_dir: Path | None,
    cfg,
    require_target: bool,
    label_suffix: str = "",
    inst_suffix: str = "",
    img_suffix: str = "",
    recursive: bool = False,
) -> Found:
    labels = _files(label_dir, LABEL_EXTS + (".jpg", ".jpeg"), recursive, label_suffix)
    if not labels:
        raise DataError(label_dir, f"no label maps found (*{label_suffix}.png)", "check data.root and data.layout")
    use_inst = inst_dir is not None and inst_dir.is_dir() and not cfg.no_instance
    insts = _index(_files(inst_dir, LABEL_EXTS, recursive, inst_suffix), inst_dir) if use_inst else None
    targets = None
    if img_dir is not None and img_dir.is_dir():
        targets = _index(_files(img_dir, IMAGE_EXTS, recursive, img_suffix), img_dir)
    elif require_target:
        raise DataError(
            img_dir,
            "folder of photos not found (needed for training and metrics)",
            "add the photos, or build the dataset with require_target=False for inference",
        )
    _index(labels, label_dir)
    return _pair(labels, label_dir, targets, img_dir, insts, inst_dir if use_inst else None)


def discover(cfg, split: str, require_target: bool = True) -> Found:
    """Find and pair the files of ``split`` for ``cfg.layout``."""
    root = Path(cfg.root).expanduser()
    if not str(cfg.root):
        raise ConfigError("data.root is empty: set it to the dataset folder")
    if not root.is_dir():
        raise DataError(root, "dataset folder not found", "check data.root (generate one with `pixtrans data synth`)")
    layout = cfg.layout
    if layout in ("synth", "pix2pixhd", "coco"):
        s, label_dir = _first_existing(root, split, "{}_label")
        return _discover_triplet(label_dir, root / f"{s}_inst", root / f"{s}_img", cfg, require_target)
    if layout == "custom":
        s, d = _first_existing(root, split, "{}/label")
        d = d.parent
        return _discover_triplet(d / "label", d / "instance", d / "image", cfg, require_target)
    if layout == "cityscapes":
        s, label_dir = _first_existing(root, split, "gtFine/{}")
        return _discover_triplet(
            label_dir,
            label_dir,
            root / "leftImg8bit" / s,
            cfg,
            require_target,
            label_suffix="_labelIds",
            inst_suffix="_instanceIds",
            img_suffix="_leftImg8bit",
            recursive=True,
        )
    if layout == "ade20k":
        ade = {"train": "training", "test": "validation", "val": "validation"}.get(split, split)
        s, ann = _first_existing(root, ade, "annotations/{}")
        return _discover_triplet(ann, None, root / "images" / s, cfg, require_target)
    if layout == "aligned":
        s, d = _first_existing(root, split, "{}")
        files = _files(d, IMAGE_EXTS)
        if not files:
            raise DataError(d, "no images found (*.jpg / *.png with A|B side by side)", "check data.root")
        _index(files, d)
        return Found([Entry(name=stem_key(p), source=p) for p in files], [], True, False)
    if layout == "paired":
        if (root / split / "A").is_dir() or not (root / "A").is_dir():
            s, a_dir = _first_existing(root, split, "{}/A")
            base = a_dir.parent
        else:
            base = root
        a_dir, b_dir = base / "A", base / "B"
        if cfg.direction == "BtoA":
            a_dir, b_dir = b_dir, a_dir
        exts = LABEL_EXTS if cfg.label_nc > 0 else IMAGE_EXTS
        sources = _files(a_dir, exts) if a_dir.is_dir() else []
        if not sources:
            raise DataError(a_dir, "no input files found", "paired layout: root/<split>/A and root/<split>/B")
        _index(sources, a_dir)
        targets = None
        if b_dir.is_dir():
            targets = _index(_files(b_dir, IMAGE_EXTS), b_dir)
        elif require_target:
            raise DataError(b_dir, "folder of target images not found", "paired layout: A/ inputs, B/ targets")
        return _pair(sources, a_dir, targets, b_dir, None, None, what="input")
    raise ConfigError(f"data.layout: unknown layout {layout!r}")


# ---------------------------------------------------------------------------- class names
def _classes_json(root: Path) -> dict | None:
    p = root / "classes.json"
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as err:
        raise DataError(p, f"not valid JSON ({err})", "regenerate it with `pixtrans data synth` or fix it") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("names"), list):
        raise DataError(p, "expected an object with 'names' (and 'colors', 'label_nc')", "fix or delete the file")
    return meta


def dataset_info(cfg) -> dict:
    """Class names, palette and label_nc of ``cfg``'s dataset without scanning its files.

    ``root/classes.json`` (written by the synthetic generator, optional for other layouts) wins over the built-in
    tables; ``label_nc`` there is reported as ``found_label_nc``.
    """
    info = {
        "kind": "label" if cfg.label_nc > 0 else "image",
        "label_nc": cfg.label_nc,
        "contain_dontcare": cfg.contain_dontcare,
        "class_names": [],
        "palette": [],
        "things": [],
    }
    meta = _classes_json(Path(cfg.root).expanduser()) if cfg.root else None
    if meta is not None:
        info["found_label_nc"] = int(meta.get("label_nc", len(meta["names"])))
    if cfg.label_nc <= 0:
        return info
    if meta is not None and len(meta["names"]) == cfg.label_nc:
        names = [str(n) for n in meta["names"]]
        colors = meta.get("colors") or class_info("", cfg.label_nc)["colors"]
        info.update(class_names=names, palette=[list(map(int, c)) for c in colors], things=list(meta.get("things", [])))
    else:
        dataset = "synth" if cfg.layout == "synth" else _DATASET_OF.get(cfg.layout, "")
        ci = class_info(dataset, cfg.label_nc)
        info.update(class_names=ci["names"], palette=ci["colors"], things=ci["things"])
    return info


# ---------------------------------------------------------------------------- the dataset
class PairedDataset(Dataset):
    """Items of one split; see the module docstring for the item contract."""

    def __init__(self, cfg, split: str, train: bool, found: Found, info: dict):
        self.cfg, self.split, self.train = cfg, split, train
        self.layout = cfg.layout
        self.entries = found.entries
        self.has_target, self.has_inst = found.has_target, found.has_inst
        self.kind = info["kind"]
        self.label_nc = cfg.label_nc
        self.contain_dontcare = cfg.contain_dontcare
        self.class_names, self.palette, self.things = info["class_names"], info["palette"], info["things"]
        self.problems: list[DataError] = []
        self.skipped = 0
        self._bad: set[int] = set()
        jitter = ("source",) if self.kind == "image" else ("target",)
        self.transform = T.PairedTransform(cfg, train, jitter_keys=jitter)
        for err in found.problems:
            self._problem(err)

    # -- bookkeeping
    def _problem(self, err: DataError) -> None:
        if self.cfg.on_error != "skip":
            raise err
        if any(p.path == err.path for p in self.problems):
            return
        self.problems.append(err)
        self.skipped += 1

    def record_skipped(self, reports) -> None:
        """Book the ``skipped`` reports of fetched items (JSON strings; a collated batch gives a list of them)."""
        for text in [reports] if isinstance(reports, str) else reports:
            for path, problem, hint in json.loads(text):
                self._problem(DataError(path, problem, hint))

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    # -- loading
    def load_maps(self, i: int) -> dict[str, np.ndarray]:
        """The raw (untransformed) maps of item ``i``, checked: ``source``/``label``, ``inst``, ``target``."""
        e, cfg = self.entries[i], self.cfg
        maps: dict[str, np.ndarray] = {}
        if self.layout == "aligned":
            ab = read_rgb(e.source)
            w2 = ab.shape[1] // 2
            if w2 < 1:
                raise DataError(e.source, "image too narrow to hold A|B side by side", "aligned layout: A|B pairs")
            a, b = ab[:, :w2], ab[:, w2 : 2 * w2]
            if cfg.direction == "BtoA":
                a, b = b, a
            maps["source"], maps["target"] = a, b
        elif self.kind == "label":
            label = read_label(e.source)
            if self.layout == "ade20k":
                label = label - 1
                label[label < 0] = DONTCARE
            check_label_range(label, cfg.label_nc, cfg.contain_dontcare, e.source)
            maps["label"] = label
        else:
            maps["source"] = read_rgb(e.source)
        ref = next(iter(maps.values()))
        h, w = ref.shape[:2]
        for key, path, reader in (("inst", e.inst, read_instance), ("target", e.target, read_rgb)):
            if path is None or key in maps:
                continue
            arr = reader(path)
            if arr.shape[:2] != (h, w):
                raise DataError(
                    path,
                    f"size {arr.shape[1]}x{arr.shape[0]} differs from its partner {e.source.name} ({w}x{h})",
                    "partner files must have the same size",
                )
            maps[key] = arr
        return maps

    def _item(self, i: int, gen: torch.Generator | None = None) -> dict:
        cfg = self.cfg
        maps = self.transform(self.load_maps(i), gen)
        item: dict = {}
        if "label" in maps:
            item["input"] = to_tensor_ids(maps["label"])
            if not cfg.no_instance:
                item["inst"] = to_tensor_ids(maps.get("inst", maps["label"]))
        else:
            src = maps["source"]
            item["input"] = to_tensor_image(grey(src) if cfg.input_nc == 1 else src)
        if "target" in maps:
            tgt = maps["target"]
            item["target"] = to_tensor_image(grey(tgt) if cfg.output_nc == 1 else tgt)
        item["name"] = self.entries[i].name
        return item

    def __getitem__(self, key: int | ItemKey) -> dict:
        keyed = isinstance(key, ItemKey)
        i = key.index if keyed else key
        gen = item_generator(key) if keyed else None
        n = len(self.entries)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        passed: list[DataError] = []
        for k in range(n):
            j = (i + k) % n
            if j in self._bad:
                continue
            try:
                item = self._item(j, gen)  # files are read before any random draw: a skip leaves gen untouched
            except DataError as err:
                self._bad.add(j)
                self._problem(err)
                passed.append(err)
                continue
            if keyed:
                item["skipped"] = json.dumps([[e.path, e.problem, e.hint] for e in passed])
            return item
        raise DataError(
            self.cfg.root,
            f"every item of split {self.split!r} is unreadable ({self.skipped} skipped)",
            "run `pixtrans data check` for the list of problems",
        )

    def validate(self, progress: bool = False) -> list[DataError]:
        """Load and check every item; raises the first problem, or with ``on_error=skip`` drops the bad items.

        Returns every problem found so far (including missing partners found while pairing files).
        """
        it = range(len(self.entries))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"check {self.split}", unit="item")
        keep = []
        for i in it:
            try:
                self.load_maps(i)
                keep.append(self.entries[i])
            except DataError as err:
                if i not in self._bad:
                    self._problem(err)
        self.entries, self._bad = keep, set()
        return list(self.problems)


def build_dataset(cfg, split: str, train: bool, require_target: bool = True) -> PairedDataset:
    """The dataset of ``split`` for ``cfg`` (a :class:`~pixtrans.config.DataConfig`); see the module docstring."""
    if cfg.layout in LABEL_LAYOUTS and cfg.label_nc <= 0:
        meta = _classes_json(Path(cfg.root).expanduser()) if cfg.root else None
        n = f" ({meta['label_nc']} classes in classes.json)" if meta and "label_nc" in meta else ""
        raise ConfigError(f"data.label_nc: layout {cfg.layout!r} holds label maps{n}; set data.label_nc > 0")
    if cfg.output_nc not in (1, 3):
        raise ConfigError(f"data.output_nc: photos are read as 1 (grey) or 3 (RGB) channels, not {cfg.output_nc}")
    if cfg.label_nc == 0 and cfg.input_nc not in (1, 3):
        raise ConfigError(f"data.input_nc: input photos are read as 1 (grey) or 3 (RGB) channels, not {cfg.input_nc}")
    if cfg.layout == "aligned" and cfg.label_nc > 0:
        raise ConfigError("data.label_nc: the aligned layout holds A|B photos; set label_nc 0 (or use 'paired')")
    info = dataset_info(cfg)
    if cfg.layout == "synth" and "found_label_nc" in info and info["found_label_nc"] > cfg.label_nc:
        raise ConfigError(
            f"data.label_nc is {cfg.label_nc} but {cfg.root}/classes.json has {info['found_label_nc']} classes"
        )
    found = discover(cfg, split, require_target)
    if cfg.max_items and cfg.max_items > 0:
        found.entries = found.entries[: cfg.max_items]
    ds = PairedDataset(cfg, split, train, found, info)
    if follow_data_sizes(cfg, ds):
        ds.transform = T.PairedTransform(cfg, train, jitter_keys=ds.transform.jitter_keys)
    return ds


SIZE_KEYS = ("load_size", "crop_size")


def follow_data_sizes(cfg, ds: PairedDataset) -> bool:
    """Set ``cfg.load_size`` / ``cfg.crop_size`` (in place) that the config leaves unset from ``ds``'s first readable
    item: the short side (``resize_and_crop``, ``crop``) or the width (``scale_width*``), snapped to a multiple of 4,
    so nothing is upscaled; a given ``crop_size`` (or ``load_size``) bounds the other. Returns whether it changed
    ``cfg``; nothing to do when both are given, for ``preprocess: none`` or an empty dataset."""
    unset = [k for k in SIZE_KEYS if k not in cfg.model_fields_set]
    if not unset or cfg.preprocess == "none" or len(ds) == 0:
        return False
    maps = None
    for i in range(len(ds)):
        try:
            maps = ds.load_maps(i)
            break
        except DataError:
            continue
    if maps is None:
        return False
    h, w = next(iter(maps.values())).shape[:2]
    side = T.snap(w if cfg.preprocess.startswith("scale_width") else min(w, h))
    crop = cfg.crop_size if "crop_size" not in unset else side if "load_size" in unset else min(side, cfg.load_size)
    load = cfg.load_size if "load_size" not in unset else max(side, crop)
    # assigned one at a time (each assignment is validated: crop <= load must hold after each)
    for key, value in (
        (("load_size", load), ("crop_size", crop))
        if crop > cfg.load_size
        else (("crop_size", crop), ("load_size", load))
    ):
        if key in unset:
            setattr(cfg, key, value)
    return True


def check_dataset(cfg, splits: tuple[str, ...] | None = None, progress: bool = False) -> dict:
    """Read every file of each split and report, without raising on bad files (for ``pixtrans data check``).

    Returns ``{"info": dataset_info(cfg), "ok": bool, "splits": {split: {"items", "bad", "problems", "sizes",
    "label_ids"}}}``; ``problems`` are ``{"path", "problem", "hint"}`` dicts, ``sizes`` the distinct (w, h) of the
    good items (at most 10), ``label_ids`` the sorted ids seen (label datasets).
    """
    skip = cfg.model_copy(update={"on_error": "skip"})
    report: dict = {"info": dataset_info(cfg), "splits": {}}
    for split in splits or (cfg.train_split, cfg.test_split):
        entry: dict = {"items": 0, "bad": 0, "problems": [], "sizes": [], "label_ids": []}
        report["splits"][split] = entry
        try:
            ds = build_dataset(skip, split, train=False, require_target=split == cfg.train_split)
        except DataError as err:
            entry["problems"].append({"path": err.path, "problem": err.problem, "hint": err.hint})
            entry["bad"] += 1
            continue
        sizes, ids = set(), set()
        it = range(len(ds))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"check {split}", unit="item")
        good = 0
        for i in it:
            try:
                maps = ds.load_maps(i)
            except DataError as err:
                ds._problem(err)
                continue
            good += 1
            ref = next(iter(maps.values()))
            sizes.add((int(ref.shape[1]), int(ref.shape[0])))
            if "label" in maps:
                ids.update(int(v) for v in np.unique(maps["label"]))
        entry.update(
            items=good,
            bad=len(ds.problems),
            problems=[{"path": e.path, "problem": e.problem, "hint": e.hint} for e in ds.problems],
            sizes=sorted(sizes)[:10],
            label_ids=sorted(ids),
        )
    report["ok"] = all(not s["problems"] for s in report["splits"].values())
    return report
