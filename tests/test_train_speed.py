"""Speed options of a training step: fused Adam, channels_last, bf16 autocast, torch.compile, malloc thresholds.

Only equivalences and validation here (tiny 32 px models, ngf 8); the timings are in benchmarks/train_step.py.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pixtrans.config import TrainConfig, load_config
from pixtrans.errors import ConfigError
from pixtrans.train.speed import adam_options, check_compile
from pixtrans.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SPEED_KEYS = ("fused_adam", "gemm_small_convs", "channels_last", "compile", "amp")

TINY = {
    "pix2pix": ["model.num_downs=5", "model.ngf=8", "model.ndf=8"],
    "pix2pixhd": ["model.ngf=8", "model.ndf=8", "model.nef=8", "model.n_blocks_global=1"],
    # param-free instance norm needs > 1x1 maps: SPADE's first block is at 1/32 of the size, so 64 px
    "spade": ["model.ngf=8", "model.ndf=8", "model.spade_nhidden=16", "data.load_size=64", "data.crop_size=64"],
    "msg_unet": ["model.ngf=8", "model.ndf=8"],
}


def _trainer(family: str, root: Path, out: Path, *sets: str) -> Trainer:
    base = [f"data.root={root}", "data.load_size=32", "data.crop_size=32", "data.flip=false", "train.progress=false"]
    base += ["train.sample_every=0", "train.save_every=0", "train.lr_policy=constant"]
    cfg = load_config(f"configs/{family}_synth.yaml", [*base, *TINY[family], *sets])
    return Trainer(cfg, out)


def _two_steps(tr: Trainer, batch: dict, n: int = 2) -> list[dict[str, float]]:
    out = []
    for _ in range(n):
        torch.manual_seed(5)  # the same dropout masks / VAE noise in both runs
        out.append(tr.train_step(batch, 0))
    return out


def _close(a: list[dict], b: list[dict], rtol: float) -> None:
    assert [set(x) for x in a] == [set(x) for x in b]
    for x, y in zip(a, b):
        for k in x:
            assert math.isclose(x[k], y[k], rel_tol=rtol, abs_tol=rtol), (k, x[k], y[k])


def _first_moments(tr: Trainer) -> dict[str, list[torch.Tensor]]:
    """Adam's exp_avg after one step: (1 - beta1) x the step's gradient, per optimizer."""
    return {n: [o.state[p]["exp_avg"].float() for p in tr.groups[n].params if p in o.state] for n, o in tr.opts.items()}


@pytest.mark.parametrize("family", list(TINY))
def test_fused_adam_matches_the_default_adam(family, synth_root, tmp_path):
    ref = _trainer(family, synth_root, tmp_path / "ref", "train.fused_adam=false")
    _, batch = next(ref._batches())
    want = _two_steps(ref, batch)  # step 2 sees the weights after one optimizer update
    fused = _trainer(family, synth_root, tmp_path / "fused")
    assert all(o.defaults["fused"] for o in fused.opts.values())
    assert not any(o.defaults["fused"] for o in ref.opts.values())
    # (weights are not compared: a conv bias before a norm layer gets a rounding-noise gradient, which Adam turns
    # into a full step of either sign; it changes no output)
    _close(_two_steps(fused, batch), want, 1e-4)


def test_channels_last_matches_contiguous(synth_root, tmp_path):
    ref = _trainer("pix2pix", synth_root, tmp_path / "ref")
    _, batch = next(ref._batches())
    cl = _trainer("pix2pix", synth_root, tmp_path / "cl", "train.channels_last=true")
    weights = [p for p in cl.model.G.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    # other summation orders: the same losses and gradients at step 1 within float rounding. (Adam's first update is
    # ~lr * sign(gradient), so rounding-sized gradients may flip sign and step 2 differs by more than rounding.)
    _close(_two_steps(cl, batch, 1), _two_steps(ref, batch, 1), 1e-4)
    for name, grads in _first_moments(ref).items():
        for g_cl, g in zip(_first_moments(cl)[name], grads):
            if float(g.abs().max()) > 1e-6:  # skip the rounding-noise gradients of biases before batch norm
                torch.testing.assert_close(g_cl, g, rtol=0, atol=1e-4 * float(g.abs().max()))


@pytest.mark.parametrize("family", ["pix2pixhd", "spade", "msg_unet"])
def test_channels_last_is_refused_with_instance_norm_on_cpu(family, synth_root, tmp_path):
    with pytest.raises(ConfigError, match="instance-norm backward"):
        _trainer(family, synth_root, tmp_path / "cl", "train.channels_last=true")


@pytest.mark.parametrize("family", list(TINY))
def test_bf16_autocast_trains_every_family(family, synth_root, tmp_path):
    ref = _trainer(family, synth_root, tmp_path / "ref")
    _, batch = next(ref._batches())
    want = _two_steps(ref, batch, 1)
    got = _two_steps(_trainer(family, synth_root, tmp_path / "bf16", "train.amp=bf16"), batch)
    assert all(math.isfinite(v) for step in got for v in step.values())
    _close(got[:1], want, 0.1)  # bf16 keeps ~3 significant digits; the first step's losses agree roughly


def test_speed_options_are_validated(monkeypatch):
    for key in ("fused_adam", "channels_last", "compile"):
        with pytest.raises(ConfigError, match=f"train.{key}"):
            load_config("configs/pix2pix_synth.yaml", [f"train.{key}=maybe"])
    t = TrainConfig()
    assert t.fused_adam and not t.channels_last and not t.compile  # defaults: only what measured faster on CPU
    assert adam_options(t, torch.device("cpu")) == {"fused": True}
    assert adam_options(TrainConfig(fused_adam=False), torch.device("cpu")) == {}
    assert adam_options(t, torch.device("meta")) == {}
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        check_compile(torch.device("cpu"))
    check_compile(torch.device("cuda"))  # no host compiler needed for the check on GPU (Triton brings its own)


def test_speed_keys_are_documented():
    readme = (ROOT / "README.md").read_text()
    for key in SPEED_KEYS:
        assert f"train.{key}" in readme, key
    assert "benchmarks/train_step.py" in readme


def test_malloc_thresholds_apply_once_and_respect_the_user():
    code = "from pixtrans.runtime_env import tune_malloc; print(tune_malloc(), tune_malloc())"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "PIXTRANS_MALLOC"))}
    env["PYTHONPATH"] = str(ROOT)
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, check=True
    ).stdout.split()
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert run({}) == ["True", "True"]
    assert run({"PIXTRANS_MALLOC": "default"}) == ["False", "False"]
    assert run({"MALLOC_ARENA_MAX": "2"}) == ["False", "False"]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("PIXTRANS_TEST_COMPILE"),
    reason="compiling takes many minutes on a shared CPU; set PIXTRANS_TEST_COMPILE=1",
)
@pytest.mark.timeout(3600)  # measured here: a tiny pix2pix was still compiling after 10 minutes at load ~20
def test_compile_trains_a_step(synth_root, tmp_path):
    pytest.importorskip("torch._inductor")
    try:
        check_compile(torch.device("cpu"))
    except ConfigError:
        pytest.skip("no C++ compiler")
    tr = _trainer("pix2pix", synth_root, tmp_path / "c", "train.compile=true")
    _, batch = next(tr._batches())
    losses = tr.train_step(batch, 0)
    assert all(math.isfinite(v) for v in losses.values())
    assert not any("_orig_mod" in k for k in tr.model.state_dict())  # checkpoints keep their names


def test_d_first_update_order_is_the_official_pix2pix_step(synth_root, tmp_path):
    """train.update_order=d_first: D's step on the detached fake, then G's through the updated D — the official
    pix2pix optimize_parameters, written out here on copies of the same networks with plain Adam; every loss of
    two steps agrees. The default g_first computes the same D losses at step 1 but G's GAN loss through D before
    its update."""
    tr = _trainer("pix2pix", synth_root, tmp_path / "d_first", "train.update_order=d_first", "train.fused_adam=false")
    _, batch = next(tr._batches())
    m = tr.model
    x = m.prepare(batch)
    G, D = copy.deepcopy(m.G).train(), copy.deepcopy(m.D).train()
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_first = _trainer("pix2pix", synth_root, tmp_path / "g_first", "train.fused_adam=false")
    for step in range(2):
        torch.manual_seed(5)
        ours = tr.train_step(batch, 0)
        torch.manual_seed(5)
        a, b = x["input"], x["target"]
        fake = G(a)
        D.requires_grad_(True)
        opt_D.zero_grad()
        d_fake = m.gan(D(torch.cat([a, fake.detach()], 1)), False) * 0.5
        d_real = m.gan(D(torch.cat([a, b], 1)), True) * 0.5
        (d_fake + d_real).backward()
        opt_D.step()
        D.requires_grad_(False)
        opt_G.zero_grad()
        g_gan = m.gan(D(torch.cat([a, fake], 1)), True)
        g_l1 = torch.nn.functional.l1_loss(fake, b) * 100.0
        (g_gan + g_l1).backward()
        opt_G.step()
        official = {"G_GAN": g_gan, "G_L1": g_l1, "D_real": d_real, "D_fake": d_fake}
        _close([{k: ours[k] for k in official}], [{k: float(v.detach()) for k, v in official.items()}], 1e-5)
        if step == 0:
            torch.manual_seed(5)
            other = g_first.train_step(batch, 0)
            _close(
                [{k: other[k] for k in ("D_real", "D_fake", "G_L1")}],
                [{k: ours[k] for k in ("D_real", "D_fake", "G_L1")}],
                1e-5,
            )
            assert not math.isclose(other["G_GAN"], ours["G_GAN"], rel_tol=1e-4)


def _d_forwards(tr: Trainer) -> list[int]:
    """A counter of discriminator passes (MSG U-Net: of its first scale's D)."""
    calls = [0]
    d = tr.model.discriminators()[0]
    d = d[0] if isinstance(d, torch.nn.ModuleList) else d
    d.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("family,passes", [("pix2pix", (3, 2)), ("pix2pixhd", (4, 2)), ("msg_unet", (4, 2))])
def test_shared_d_pass_gives_the_same_step_with_fewer_d_forwards(family, passes, synth_root, tmp_path):
    """train.shared_d_pass: one D pass serves G's and D's losses; every loss, G's weights and D's weights after
    three steps are bitwise those of a pass per loss (the same kernels on the same numbers), with fewer D forwards."""
    sep = _trainer(family, synth_root, tmp_path / "sep", "train.shared_d_pass=false")
    _, batch = next(sep._batches())
    one = _trainer(family, synth_root, tmp_path / "one")
    counts = _d_forwards(sep), _d_forwards(one)
    want, got = _two_steps(sep, batch, 3), _two_steps(one, batch, 3)
    assert got == want
    assert (counts[0][0] // 3, counts[1][0] // 3) == passes
    for net in ("G", "D"):
        a, b = getattr(sep.model, net).named_parameters(), dict(getattr(one.model, net).named_parameters())
        for k, p in a:
            assert torch.equal(p, b[k]), (net, k)
    # nothing of the step's graph outlives it (a retained generator graph would hold its activations into the next
    # step): going back through the last fakes again finds the saved tensors freed
    fake = one._last[1][-1]
    with pytest.raises(RuntimeError, match="second time|freed"):
        fake.sum().backward(inputs=[next(one.model.G.parameters())])


def test_shared_d_pass_with_frozen_parts_encoder_and_clipping(synth_root, tmp_path):
    """pix2pixHD local with E, its global part frozen for the first two steps, gradient clipping: shared and
    separate passes stay bitwise equal across the unfreezing."""
    sets = ["model.netG=local", "model.niter_fix_global=2", "model.use_features=true", "model.n_downsample_E=2"]
    sets += ["data.no_instance=false", "train.grad_clip=0.5"]
    runs = {}
    for share in ("false", "true"):
        tr = _trainer("pix2pixhd", synth_root, tmp_path / share, *sets, f"train.shared_d_pass={share}")
        assert tr.model.E is not None
        _, batch = next(tr._batches())
        frozen0 = [p.clone() for p in tr.model.G.global_parameters()]
        losses = []
        for step in range(4):
            tr.step = step  # fit() advances it; on_step freezes the global generator while step < 2
            torch.manual_seed(5)
            losses.append(tr.train_step(batch, 0))
            moved = any(not torch.equal(a, b) for a, b in zip(frozen0, tr.model.G.global_parameters()))
            assert moved == (step >= 2)
        runs[share] = (losses, tr.model.state_dict())
    assert runs["true"][0] == runs["false"][0]
    for k, v in runs["false"][1].items():
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(v, runs["true"][1][k]), k


def test_shared_d_pass_is_not_used_where_it_would_change_the_step(synth_root, tmp_path):
    # SPADE: spectral norm's power iteration runs once per D pass, so one pass fewer would change D's weights
    spade = _trainer("spade", synth_root, tmp_path / "spade")
    _, batch = next(spade._batches())
    assert not spade.model.shares_d_pass and not spade._shares_d_pass(["D"])
    with pytest.raises(NotImplementedError):
        spade.model.gd_losses({}, [])
    # d_first: G's loss must see D after its update, a second pass by definition
    tr = _trainer("pix2pix", synth_root, tmp_path / "d_first", "train.update_order=d_first")
    calls = _d_forwards(tr)
    tr.train_step(next(tr._batches())[1], 0)
    assert calls[0] == 3
