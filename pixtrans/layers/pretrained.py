"""Pretrained weights from files, for the networks that need them (VGG19 of the perceptual loss, the FID Inception,
the LPIPS backbones): where to look (argument, environment variable, torch hub cache — nothing is downloaded unless
the user names a URL), reading a state dict (``.pth`` with ``weights_only``, ``.safetensors``, or that URL through
the hub cache) and checking it against the network's own keys and shapes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError, WeightsMissingError

Missing = Callable[[str], str]  # problem -> the full message saying how to provide the weights


def hub_checkpoints() -> Path:
    """The torch hub cache folder where downloaded weights live (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(given: str | os.PathLike | None, env_var: str, files: tuple[str, ...], what: str, missing: Missing):
    """``given`` (a path or URL), else ``$env_var``, else the first of ``files`` in the hub cache; else
    :class:`WeightsMissingError` with ``missing``'s advice."""
    if given is not None and str(given):
        return str(given)
    env = os.environ.get(env_var, "").strip()
    if env:
        return env
    for name in files:
        if (hub_checkpoints() / name).is_file():
            return str(hub_checkpoints() / name)
    where = hub_checkpoints() / files[0]
    raise WeightsMissingError(missing(f"no {what} weights given (no {env_var}, nothing at {where})."))


def read_state(source: str, what: str, missing: Missing, expected: str = "") -> dict:
    """A raw state dict from a URL (hub cache, hash checked) or a local ``.pth``/``.safetensors`` file;
    ``{"state_dict": ...}`` wrappers and ``module.`` prefixes are removed."""
    if source.startswith(("http://", "https://")):
        try:
            state = torch.hub.load_state_dict_from_url(
                source, map_location="cpu", progress=True, check_hash=True, weights_only=True
            )
        except OSError as err:  # no network, HTTP errors, unwritable cache
            raise WeightsMissingError(missing(f"could not download {what} weights from {source}: {err}")) from None
        except Exception as err:  # hash mismatch, not a state dict
            raise CheckpointError(f"{source}: cannot load {what} weights ({type(err).__name__}: {err})") from None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise WeightsMissingError(missing(f"{what} weights file {path} does not exist."))
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling / format errors of many kinds
            hint = f" — expected {expected}" if expected else ""
            raise CheckpointError(f"{path}: cannot read {what} weights ({type(err).__name__}: {err}){hint}") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: holds a {type(state).__name__}, expected a {what} state dict (key -> tensor)")
    if set(state) == {"state_dict"} and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def check_state(
    state: Mapping, expected: Mapping[str, Tensor], source: str, name: str, title: str, hint: str, strict: bool = True
) -> dict[str, Tensor]:
    """The tensors of ``expected``'s keys from ``state`` as float; missing keys (and unexpected ones when
    ``strict``) are a :class:`CheckpointError` ``"{source}: {title}: ... — {hint}"``, a wrong shape one that says
    what ``name`` (the network) needs."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected] if strict else []
    if missing or unexpected:
        parts = [
            f"{label} {len(keys)} keys ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for label, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        raise CheckpointError(f"{source}: {title}: {'; '.join(parts)} — {hint}")
    for k, ref in expected.items():
        v = state[k]
        if not isinstance(v, Tensor) or tuple(v.shape) != tuple(ref.shape):
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise CheckpointError(f"{source}: {k} has shape {got}, {name} needs {tuple(ref.shape)}")
    return {k: state[k].float() for k in expected}


def save_state(state: dict[str, Tensor], path: str | os.PathLike) -> Path:
    """Write a state dict as ``.safetensors`` (by suffix) or with ``torch.save``; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
