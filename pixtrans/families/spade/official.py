"""spade the official checkpoints' key layout and architecture inference."""

from __future__ import annotations

import torch
from torch import Tensor


def official_state_dict(
    netG: dict[str, Tensor], netE: dict[str, Tensor] | None = None, netD: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Official NVlabs/SPADE ``*_net_G.pth`` / ``_net_E.pth`` / ``_net_D.pth`` state dicts -> :class:`SPADE` keys.

    The layouts are the same, so this only adds the ``G.``/``E.``/``D.`` prefixes (dropping a DataParallel
    ``module.`` prefix). Old checkpoints without batch-norm ``num_batches_tracked`` get zeros for it.
    """
    out: dict[str, Tensor] = {}
    for prefix, state in (("G.", netG), ("E.", netE), ("D.", netD)):
        for k, v in (state or {}).items():
            out[prefix + k.removeprefix("module.")] = v
    for k in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(k[: -len("running_mean")] + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return out
