"""DistributedDataParallel on CPU/gloo with 2 processes: ranks stay bitwise equal, gradients really are averaged."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pixtrans.config import load_config
from pixtrans.train import distributed as D
from pixtrans.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY32 = [
    "data.load_size=32",
    "data.crop_size=32",
    "train.progress=false",
    "train.sample_every=0",
    "train.save_every=0",
]
# per family: a 32 px config with small networks; between them they cover BatchNorm and spectral-norm buffers,
# an encoder E (pix2pixHD features, SPADE VAE), progressive unfreezing and a ModuleList of discriminators
FAMILIES = {
    "pix2pix": ("pix2pix_synth", ["model.ngf=8", "model.ndf=8", "model.num_downs=5", "model.norm=batch"]),
    "pix2pixhd": (
        "pix2pixhd_synth_local",
        ["model.ngf=8", "model.ndf=8", "model.nef=8", "model.n_blocks_global=1", "model.n_blocks_local=1"]
        + ["model.n_downsample_global=2", "model.n_downsample_E=2", "model.niter_fix_global=1"],
    ),
    "spade": (
        "spade_synth_vae",
        ["model.ngf=8", "model.ndf=8", "model.spade_nhidden=8", "model.z_dim=8", "model.param_free_norm=sync_batch"],
    ),
    "msg_unet": ("msg_unet_synth", ["model.ngf=8", "model.ndf=8", "model.max_ch=32", "model.n_extra_down=1"]),
}


def tiny_cfg(family: str, root, *extra: str):
    name, over = FAMILIES[family]
    return load_config(ROOT / "pixtrans" / "configs" / f"{name}.yaml", [f"data.root={root}", *TINY32, *over, *extra])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, dtypes and bytes)."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _env(rank: int, world: int, port: int) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)


def _equal_ranks_worker(rank: int, world: int, port: int, root: str, out: str, steps: int) -> None:
    _env(rank, world, port)
    result = {}
    try:
        for family in FAMILIES:
            extra = [f"train.steps={steps}", "data.batch_size=2", "train.ema=0.9"]
            if family == "pix2pix":  # validation on rank 0 drives the plateau schedule of every rank
                extra += ["train.val_every=2", "train.val_items=2", "train.lr_policy=plateau"]
            cfg = tiny_cfg(family, root, *extra)
            trainer = Trainer(cfg, Path(out) / family)
            trainer.fit()
            nets = {
                n: getattr(trainer.model, n) for n in ("G", "D", "E") if getattr(trainer.model, n, None) is not None
            }
            nets["ema"] = trainer.ema.module
            hashes = {n: state_hash(m) for n, m in nets.items()}
            hashes["schedules"] = json.dumps({n: s.state_dict() for n, s in trainer.scheds.items()}, default=str)
            assert not any(k.startswith(("module.", "G.module", "D.module")) for k in trainer.model.state_dict())
            gathered: list = [None] * world
            torch.distributed.all_gather_object(gathered, hashes)
            result[family] = gathered
    finally:
        if rank == 0:
            Path(out, "hashes.json").write_text(json.dumps(result))
        D.shutdown()


@pytest.mark.slow
def test_every_rank_holds_the_same_weights_and_buffers(synth_root, tmp_path):
    """Each family, 2 ranks, 3 steps: G, D, E and the EMA copy hash the same on both ranks (params and buffers)."""
    mp.spawn(_equal_ranks_worker, args=(2, free_port(), str(synth_root), str(tmp_path), 3), nprocs=2)
    result = json.loads((tmp_path / "hashes.json").read_text())
    assert set(result) == set(FAMILIES)
    for family, (r0, r1) in result.items():
        assert r0 == r1, family
        assert {"G", "D", "ema"} <= set(r0)
    plateau = json.loads(result["pix2pix"][0]["schedules"])["G"]
    assert plateau["last_epoch"] == 1 and plateau["best"] != "-inf"  # stepped once, on rank 0's PSNR, on each rank
    assert "E" in result["pix2pixhd"][0] and "E" in result["spade"][0]


def _grads(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The gradients of the last step (G's from the G step, D's from the D step), by parameter name."""
    return {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.grad is not None}


def _equivalence_worker(rank: int, world: int, port: int, root: str, out: str, share: str) -> None:
    _env(rank, world, port)
    try:
        trainer = Trainer(_instance_cfg(root, 2, share), Path(out) / "ddp")
        trainer.fit()
        if rank == 0:
            torch.save(_grads(trainer), Path(out) / "ddp_grads.pt")
    finally:
        D.shutdown()


def _instance_cfg(root, batch: int, share: str = "true"):
    # instance norm (no batch statistics), no dropout (no random numbers in the step): the global batch decides
    sets = ["model.norm=instance", "model.dropout=false", "train.steps=3", f"data.batch_size={batch}"]
    return tiny_cfg("pix2pix", root, *sets, f"train.shared_d_pass={share}")


def _dead_biases(model: torch.nn.Module) -> set[str]:
    """Conv biases right before an InstanceNorm: the norm subtracts them again, so their true gradient is 0."""
    dead = set()
    for name, m in model.named_modules():
        kids = list(m.children()) if isinstance(m, torch.nn.Sequential) else []
        for i in range(len(kids) - 1):
            conv, nxt = kids[i], kids[i + 1]
            conv_with_bias = isinstance(conv, torch.nn.modules.conv._ConvNd) and conv.bias is not None
            if conv_with_bias and isinstance(nxt, torch.nn.InstanceNorm2d):
                dead.add(f"{name}.{i}.bias")
    return dead


@pytest.mark.slow
@pytest.mark.parametrize("share", ["true", "false"])
def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(share, synth_root, tmp_path):
    """G's loss reaches G through D (one shared D pass with each backward limited to its own networks, or a frozen
    D in a separate G step): G and D after 3 steps match a 1-process run on the same global batch, so both
    networks' gradients are averaged over ranks and none leaks into D from G's loss."""
    from safetensors.torch import load_file

    from pixtrans.checkpoints import resolve_checkpoint

    mp.spawn(_equivalence_worker, args=(2, free_port(), str(synth_root), str(tmp_path), share), nprocs=2)
    ref = Trainer(_instance_cfg(synth_root, 4, share), tmp_path / "single")
    init = {k: v.clone() for k, v in ref.model.state_dict().items()}
    ref.fit()
    # the gradients of step 3: every one equal within 1e-5 (the last step's G and D gradients)
    g_ddp, g_ref = torch.load(tmp_path / "ddp_grads.pt"), _grads(ref)
    assert (
        g_ddp.keys() == g_ref.keys()
        and any(k.startswith("D.") for k in g_ref)
        and any(k.startswith("G.") for k in g_ref)
    )
    for k in g_ref:
        torch.testing.assert_close(g_ddp[k], g_ref[k], rtol=0, atol=1e-5, msg=k)
    a = load_file(str(resolve_checkpoint(tmp_path / "ddp") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "single") / "model.safetensors"))
    assert a.keys() == b.keys()
    # the weights after 3 steps: equal within 1e-5 and trained, except conv biases whose true gradient is 0 (right
    # before an instance norm): Adam turns their rounding noise into steps of about lr, in either direction
    dead = _dead_biases(ref.model)
    assert dead and dead < set(a)
    lr = ref.cfg.train.lr
    for k in a:
        if k in dead:
            assert (a[k] - init[k]).abs().max() <= 3.01 * lr and (b[k] - init[k]).abs().max() <= 3.01 * lr, k
            continue
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)
    moved = [k for k in a if k not in dead and not torch.equal(b[k], init[k])]
    assert len(moved) == len([k for k in a if k not in dead])  # every live tensor trained
    # the logged losses are the global batch's (averaged over ranks), as in the 1-process run
    from pixtrans.eval.plots import log_columns, read_log

    log_ddp, log_ref = read_log(tmp_path / "ddp" / "log.csv"), read_log(tmp_path / "single" / "log.csv")
    losses = log_columns(log_ref)[0]
    assert losses == log_columns(log_ddp)[0] and "G_L1" in losses
    for k in losses:
        torch.testing.assert_close(torch.tensor(log_ddp[k]), torch.tensor(log_ref[k]), rtol=1e-4, atol=1e-5, msg=k)


def test_any_rank_and_wrap_in_one_process():
    net = torch.nn.Linear(2, 2)
    assert D.wrap(net, torch.device("cpu")) is net and D.any_rank(True) and not D.any_rank(False)
    assert D.broadcast_float(1.5) == 1.5


def test_sync_batch_norm_is_one_implementation():
    from pixtrans.layers import blocks, spade

    assert spade.SyncBatchNorm2d is blocks.SyncBatchNorm2d
    assert isinstance(blocks.norm_layer("sync_batch")(4), blocks.SyncBatchNorm2d)
    assert isinstance(spade.param_free_norm("sync_batch", 4), blocks.SyncBatchNorm2d)


def test_ddp_wrapper_answers_like_the_network():
    """Families call their networks' own methods and properties; the wrapper forwards them (``module`` stays DDP's)."""

    class Net(torch.nn.Linear):
        size_multiple = 4

        def global_parameters(self):
            return [self.weight]

    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        net = Net(2, 2)
        ddp = D.DDP(net)
        assert ddp.module is net and ddp.size_multiple == 4 and ddp.global_parameters()[0] is net.weight
        assert ddp(torch.ones(1, 2)).shape == (1, 2)
        with pytest.raises(AttributeError):
            ddp.no_such_attribute  # noqa: B018
    finally:
        torch.distributed.destroy_process_group()
