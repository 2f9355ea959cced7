"""pix2pixHD unit tests: official sizes and keys, instance inputs, pooling, losses, VGG, freezing, stage init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixtrans.config import DataConfig, TrainConfig, config_from_dict
from pixtrans.data.labels import boundary_map
from pixtrans.errors import CheckpointError, ConfigError, WeightsMissingError
from pixtrans.families import build_model, presets
from pixtrans.families.pix2pixhd import Encoder, GlobalGenerator, LocalEnhancer, Pix2PixHD, Pix2PixHDConfig
from pixtrans.infer.features import instance_features, kmeans_centres
from pixtrans.layers.blocks import count_params
from pixtrans.layers.instance_pool import instance_mean_pool, instance_mean_pool_reference, instance_means

TINY = dict(ngf=8, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1, ndf=8, num_D=2, nef=4, n_downsample_E=2)


def tiny(netG="global", label_nc=4, no_instance=False, **kw) -> Pix2PixHD:
    torch.manual_seed(0)
    cfg = Pix2PixHDConfig(**{**TINY, "netG": netG, "no_vgg_loss": True, **kw})
    return Pix2PixHD(cfg, DataConfig(label_nc=label_nc, no_instance=no_instance))


def batch(b=2, size=16, label_nc=4, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, label_nc, (b, 1, size // 4, size // 4), generator=g)
    label = label.repeat_interleave(4, 2).repeat_interleave(4, 3)
    inst = label * 1000 + torch.randint(0, 2, label.shape, generator=g)
    return {"input": label, "inst": inst, "target": torch.rand(b, 3, size, size, generator=g) * 2 - 1}


# ------------------------------------------------------------------------------------------ sizes and keys
def test_official_parameter_counts():
    with torch.device("meta"):
        assert count_params(GlobalGenerator(36)) == 182_546_755
        assert count_params(LocalEnhancer(36, 3, ngf=32)) == 182_857_059


@pytest.mark.parametrize(("preset", "expected"), [("pix2pixhd_global", 182_546_755), ("pix2pixhd_local", 182_857_059)])
def test_presets_build_the_official_generators(preset, expected):
    cfg = config_from_dict(presets()[preset])
    assert cfg.data.semantic_nc == 36
    with torch.device("meta"):
        model = build_model(cfg)
    assert count_params(model.G) == expected
    assert model.size_multiple == (16 if preset == "pix2pixhd_global" else 32)


def test_state_dict_keys_follow_the_official_layout():
    with torch.device("meta"):
        local = LocalEnhancer(36, 3, ngf=32, n_blocks_global=2)
        keys = set(local.state_dict())
        enc = set(Encoder(3, 3, 16, 4).state_dict())
    # official: global part "model.<i>", enhancer front "model1_1.<i>", back "model1_2.<i>" with res blocks
    assert {"model.1.weight", "model.16.conv_block.1.weight", "model1_1.1.weight", "model1_1.4.weight"} <= keys
    assert {"model1_2.0.conv_block.5.weight", "model1_2.3.weight", "model1_2.7.weight"} <= keys
    assert "model.1.weight" in enc and "model.29.weight" in enc  # 7x7 conv ... final 7x7 conv


def test_local_enhancer_shapes_and_multiple_enhancers():
    g = LocalEnhancer(5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=2, n_blocks_local=1)
    assert {"model1_1.1.weight", "model2_1.1.weight"} <= set(g.state_dict())
    assert g.model1_1[1].out_channels == 8 and g.model2_1[1].out_channels == 4  # ngf * 2**(N-n)
    x = torch.randn(1, 5, 32, 48)
    out = g(x)
    assert out.shape == (1, 3, 32, 48) and out.abs().max() <= 1
    # the official order (global part first, every stage called whole) gives the same image
    pyramid = [x, g.downsample(x), g.downsample(g.downsample(x))]
    ref = g.model(pyramid[2])
    for n in (1, 2):
        ref = getattr(g, f"model{n}_2")(getattr(g, f"model{n}_1")(pyramid[2 - n]) + ref)
    assert torch.equal(out, ref)


# ------------------------------------------------------------------------------------------ instances
def test_generator_input_has_the_instance_boundary_channel():
    label = torch.zeros(1, 1, 6, 6, dtype=torch.long)
    label[..., :, 3:] = 1
    inst = label.clone() * 1000
    inst[..., 3:, 3:] = 1001  # two touching instances of class 1: only the instance map separates them
    model = tiny(label_nc=2)
    x = model.prepare({"input": label, "inst": inst})
    assert x["input"].shape == (1, 3, 6, 6)  # 2 one-hot channels + boundary
    expected = torch.zeros(6, 6)
    expected[:, 2:4] = 1  # class boundary, both sides
    expected[2:4, 3:] = 1  # boundary between the two class-1 instances
    torch.testing.assert_close(x["input"][0, 2], expected)
    torch.testing.assert_close(x["input"][0, :2].argmax(0), label[0, 0])
    # the boundary channel is what boundary_map gives, and no_instance drops it
    torch.testing.assert_close(x["input"][:, 2:], boundary_map(inst))
    assert tiny(label_nc=2, no_instance=True).prepare({"input": label})["input"].shape[1] == 2


def test_discriminator_sees_semantics_plus_image():
    model = tiny(label_nc=4)
    assert model.D.discriminator_0.model0[0].in_channels == 4 + 1 + 3
    assert model.G.model[1].in_channels == 5
    with_feat = tiny(label_nc=4, use_features=True, feat_num=3)
    assert with_feat.G.model[1].in_channels == 8 and with_feat.D.discriminator_0.model0[0].in_channels == 8


# ------------------------------------------------------------------------------------------ pooling
@pytest.mark.parametrize("scale", [1, 7919, -3])  # small ids (direct index), large ids (unique), negative ids
def test_instance_mean_pool_equals_naive_reference(scale):
    g = torch.Generator().manual_seed(scale % 100)
    feat = torch.randn(3, 5, 12, 10, generator=g)
    inst = torch.randint(0, 6, (3, 1, 12, 10), generator=g) * scale
    inst[1] = 4 * scale  # one element with a single instance
    fast = instance_mean_pool(feat, inst)
    torch.testing.assert_close(fast, instance_mean_pool_reference(feat, inst), rtol=1e-5, atol=1e-6)
    # ids are per batch element: element 0 alone gives the same result
    torch.testing.assert_close(fast[:1], instance_mean_pool(feat[:1], inst[:1]), rtol=1e-5, atol=1e-6)


def test_instance_mean_pool_gradient_matches_reference():
    feat = torch.randn(2, 3, 8, 8)
    inst = torch.randint(0, 4, (2, 1, 8, 8))
    w = torch.randn(2, 3, 8, 8)
    grads = []
    for fn in (instance_mean_pool, instance_mean_pool_reference):
        f = feat.clone().requires_grad_(True)
        (fn(f, inst) * w).sum().backward()
        grads.append(f.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_instance_mean_pool_checks_its_inputs():
    with pytest.raises(ValueError, match="integer"):
        instance_mean_pool(torch.randn(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="differ"):
        instance_mean_pool(torch.randn(1, 3, 4, 4), torch.zeros(1, 1, 4, 5, dtype=torch.long))


def test_instance_means_and_features_per_instance():
    feat = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    inst = torch.tensor([[0, 0, 1, 1]] * 4).reshape(1, 1, 4, 4)
    means = instance_means(feat, inst)[0]
    torch.testing.assert_close(means[0], feat[0, :, :, :2].mean((1, 2)))
    label = torch.tensor([[3, 3, 5, 5]] * 3 + [[3, 5, 5, 5]]).reshape(4, 4)
    vecs, cls, area = instance_features(feat[0], inst[0, 0], label)
    assert cls.tolist() == [3, 5] and area.tolist() == [0.5, 0.5]  # majority class of each instance
    torch.testing.assert_close(vecs[1], means[1])


def test_kmeans_centres_are_sorted_by_size_and_capped():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.01, (30, 3)), rng.normal(5, 0.01, (5, 3))])
    centres, sizes = kmeans_centres(pts, 2)
    assert sizes.tolist() == [30, 5] and abs(centres[0].mean()) < 0.1 and abs(centres[1].mean() - 5) < 0.1
    centres, sizes = kmeans_centres(np.ones((4, 3)), 10)  # fewer distinct vectors than k
    assert centres.shape == (1, 3) and sizes.tolist() == [4]


# ------------------------------------------------------------------------------------------ losses
def test_losses_and_feature_matching_zero_for_identical_images():
    model = tiny(use_features=True)
    x = model.prepare(batch())
    g = model.g_losses(x, [x["target"]])
    assert set(g) == {"G_GAN", "G_GAN_Feat", "G_L1", "G_SSIM"}  # no VGG: the reconstruction term is on
    assert g["G_GAN_Feat"].item() == 0.0 and g["G_GAN"].item() > 0
    assert g["G_L1"].item() == 0.0 and g["G_SSIM"].item() == pytest.approx(0.0, abs=1e-4)
    fake = model.generate(x)
    assert model.g_losses(x, fake)["G_GAN_Feat"].item() > 0
    d = model.d_losses(x, fake)
    assert set(d) == {"D_real", "D_fake"}
    # official: loss_D = 0.5 * (D_real + D_fake), GAN terms summed over the num_D scales
    pred = model.D(torch.cat([x["input"], x["target"]], 1))
    lsgan = sum(((p[-1] - 1) ** 2).mean() for p in pred)
    torch.testing.assert_close(d["D_real"], 0.5 * lsgan)
    off = tiny(no_ganFeat_loss=True, lambda_L1=0, lambda_ssim=0)
    assert set(off.g_losses(off.prepare(batch()), [batch()["target"]])) == {"G_GAN"}


def test_vgg_loss_from_a_generated_weights_file(tmp_path, monkeypatch):
    from pixtrans.layers.vgg import save_random_vgg19

    path = save_random_vgg19(tmp_path / "vgg19.pth", classifier=False)
    raw = {
        "family": "pix2pixhd",
        "data": {"label_nc": 4, "no_instance": False},
        "model": {**TINY, "no_vgg_loss": False, "vgg_weights": str(path), "lambda_vgg": 10.0},
    }
    model = build_model(config_from_dict(raw))
    x = model.prepare(batch(size=32))
    fake = model.generate(x)
    losses = model.g_losses(x, fake)
    assert losses["G_VGG"].item() > 0 and torch.isfinite(losses["G_VGG"])
    assert model.g_losses(x, [x["target"]])["G_VGG"].item() == 0.0
    assert not any(k.startswith("vgg_loss.") for k in model.checkpoint_state())  # not saved in checkpoints
    losses["G_VGG"].backward()
    assert model.G.model[1].weight.grad is not None
    assert all(p.grad is None for p in model.vgg_loss.parameters())  # VGG stays frozen
    # without weights: a clear error that says how to provide them
    monkeypatch.delenv("PIXTRANS_VGG19", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    raw["model"]["vgg_weights"] = ""
    bare = build_model(config_from_dict(raw))  # building for inference needs no weights
    with pytest.raises(WeightsMissingError, match="no_vgg_loss"):
        bare.g_losses(x, [x["target"]])


# ------------------------------------------------------------------------------------------ progressive training
def _train_steps(model, steps):
    groups = model.optim_groups(TrainConfig())
    opts = {n: torch.optim.Adam(g.params, lr=1e-2, betas=g.betas) for n, g in groups.items()}
    x = model.prepare(batch())
    for step in steps:
        model.on_step(step, 0)
        opts["G"].zero_grad(set_to_none=True)
        model.D.requires_grad_(False)
        sum(model.g_losses(x, model.generate(x)).values()).backward()
        opts["G"].step()
        model.D.requires_grad_(True)


def test_progressive_freeze_really_freezes():
    model = tiny("local", use_features=True, niter_fix_global=2)
    snap = lambda: {k: v.clone() for k, v in model.state_dict().items()}  # noqa: E731
    before = snap()
    _train_steps(model, [0, 1])
    after = snap()
    for k in before:
        same = torch.equal(before[k], after[k])
        if k.startswith("G.model."):
            assert same, f"{k} changed while the global generator is frozen"
        elif k.startswith(("G.model1_", "E.")) and k.endswith("weight"):
            assert not same, f"{k} did not train"
    _train_steps(model, [2])
    final = snap()
    assert not torch.equal(after["G.model.1.weight"], final["G.model.1.weight"])  # unfrozen: fine-tuned jointly
    assert all(p.requires_grad for p in model.G.parameters())


def test_freeze_keeps_only_the_finest_enhancer_trainable():
    model = tiny("local", n_local_enhancers=2, ngf=8, niter_fix_global=5)
    model.on_step(0, 0)
    trainable = {n.split(".")[0] for n, p in model.G.named_parameters() if p.requires_grad}
    assert trainable == {"model2_1", "model2_2"}  # official: only model<N>_* while the rest is fixed
    tiny("global", niter_fix_global=5).on_step(0, 0)  # no-op for the global generator


def test_load_init_maps_a_global_checkpoint_into_the_local_model():
    stage1 = tiny("global", use_features=True)
    for p in stage1.parameters():
        p.data.normal_()
    stage2 = tiny("local", use_features=True)
    loaded = stage2.load_init({**stage1.checkpoint_state(), "ema.G.model.1.weight": torch.zeros(1)})
    s1, s2 = stage1.state_dict(), stage2.state_dict()
    g_keys = [k for k in s2 if k.startswith("G.model.")]
    assert g_keys and all(k in loaded and torch.equal(s1[k], s2[k]) for k in g_keys)
    assert all(k in loaded for k in s2 if k.startswith(("D.", "E.")))
    assert not any(k.startswith("G.model1_") for k in loaded)  # the enhancer starts fresh
    n_global = len(stage1.G.model)
    assert len(stage2.G.model) == n_global - 3  # local keeps the global G minus its output conv, pad and tanh
    wrong = tiny("local", use_features=True, ngf=16)
    with pytest.raises(CheckpointError, match="ngf"):
        wrong.load_init(stage1.checkpoint_state())


# ------------------------------------------------------------------------------------------ styles
def test_cluster_styles_are_recorded_and_reproducible():
    model = tiny(use_features=True, feat_num=3).eval()
    model.load_meta({"clusters": {str(c): torch.randn(4, 3).tolist() for c in range(4)}})
    x = model.prepare({k: v for k, v in batch(b=1).items() if k != "target"})
    a = model.translate(x, {"clusters": {"1": 2}})
    assert a.style["clusters"][1] == 2 and set(a.style["clusters"]) == set(torch.unique(x["label"]).tolist())
    again = model.translate(x, a.style)
    torch.testing.assert_close(a.image, again.image, rtol=0, atol=0)
    b = model.translate(x, {"clusters": {"1": 3}})
    mask = (x["label"] == 1).expand_as(a.image)
    assert (a.image - b.image)[mask].abs().mean() > 0
    drawn = model.translate(x, {"seed": 5}).style
    assert drawn["seed"] == 5 and drawn == model.translate(x, {"seed": 5}).style
    assert model.translate(x, {"cluster": 7}).style["clusters"] == {c: 3 for c in a.style["clusters"]}
    inst_id = int(x["inst"][0, 0, 0, 0])
    c = model.translate(x, {"cluster": 0, "instances": {str(inst_id): 1}})
    assert c.style["instances"] == {inst_id: 1}
    assert model.meta()["clusters"].keys() == {"0", "1", "2", "3"}
    with pytest.raises(ConfigError, match="unknown key"):
        model.translate(x, {"clusterz": 1})
    with pytest.raises(ConfigError, match="class 1 has 4 clusters"):
        model.translate(x, {"clusters": {1: 9}})


def test_feature_vectors_reference_and_target_styles():
    model = tiny(use_features=True, feat_num=3).eval()
    x = model.prepare(batch(b=1))
    # no clusters yet and a target photo: its own encoded features (what validation uses)
    own = model.translate(x)
    assert own.style == {"features_from": "target"}
    torch.testing.assert_close(model.translate(x, own.style).image, own.image, rtol=0, atol=0)
    ref = model.translate(x, {"reference": {"image": x["target"]}})
    vectors = ref.style["features"]
    assert set(vectors) == set(torch.unique(x["label"]).tolist()) and all(len(v) == 3 for v in vectors.values())
    replay = model.translate(x, {"features": {str(k): v for k, v in vectors.items()}})
    torch.testing.assert_close(ref.image, replay.image, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="label map"):
        model.translate(x, {"reference": {"image": torch.zeros(1, 3, 8, 8)}})


def test_inference_module_and_config_errors():
    model = tiny(use_features=True, feat_num=3).eval()
    x = model.prepare(batch(b=1))
    mod = model.inference_module()
    assert mod(x["input"]).shape == (1, 3, 16, 16)
    assert mod(x["input"], torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    assert tiny().inference_module() is not None
    with pytest.raises(ConfigError, match="label maps"):
        Pix2PixHD(Pix2PixHDConfig(use_features=True), DataConfig(label_nc=0))
    with pytest.raises(ConfigError, match="divisible"):
        config_from_dict({"family": "pix2pixhd", "model": {"netG": "local", "ngf": 6, "n_local_enhancers": 2}})
    with pytest.raises(ConfigError, match="n_blocks_glob"):
        config_from_dict({"family": "pix2pixhd", "model": {"n_blocks_glob": 3}})
