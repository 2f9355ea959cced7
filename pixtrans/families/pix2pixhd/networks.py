"""pix2pixhd networks (generator, discriminator and encoder modules, typed arguments)."""

from __future__ import annotations

from torch import Tensor, nn

from ...layers.blocks import norm_layer
from ...layers.instance_pool import instance_mean_pool
from ...layers.resnet import Padding, ResnetBlock


# ---------------------------------------------------------------------------------------------------- networks
def _encoder_decoder(
    in_ch: int, out_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str, padding: Padding
) -> list[nn.Module]:
    """7x7 conv, ``n_down`` stride-2 convs, ``n_blocks`` res blocks, ``n_down`` transposed convs, 7x7 conv, tanh."""
    make_norm = norm_layer(norm)
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), make_norm(ngf), nn.ReLU(True)]
    for i in range(n_down):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), make_norm(c * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 2**n_down, norm, padding) for _ in range(n_blocks)]
    for i in range(n_down, 0, -1):
        c = ngf * 2**i
        layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), make_norm(c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return layers


class GlobalGenerator(nn.Module):
    """G1: down-sampling front-end, residual blocks, transposed-conv back-end (``model.<i>`` keys as official)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 3,
        ngf: int = 64,
        n_downsampling: int = 4,
        n_blocks: int = 9,
        norm: str = "instance",
        padding: Padding = "reflect",
    ):
        super().__init__()
        if min(in_ch, out_ch, ngf) < 1 or n_downsampling < 0 or n_blocks < 0:
            raise ValueError("GlobalGenerator: channels must be >= 1, n_downsampling and n_blocks >= 0")
        self.model = nn.Sequential(*_encoder_decoder(in_ch, out_ch, ngf, n_downsampling, n_blocks, norm, padding))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """G = {G1, G2, ...}: the global generator without its output layers (``model``) at the coarsest input scale,
    then per enhancer a front-end ``model<n>_1`` at twice the resolution whose output is summed with the previous
    features and fed to ``model<n>_2`` (res blocks + transposed conv; the last also has the 7x7 output conv).

    ``ngf`` is the width of the finest enhancer (official convention); the global part uses ``ngf * 2**N``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 3,
        ngf: int = 32,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: str = "instance",
        padding: Padding = "reflect",
    ):
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError("LocalEnhancer: n_local_enhancers must be >= 1 (use GlobalGenerator for none)")
        self.n_local_enhancers = n_local_enhancers
        g = _encoder_decoder(
            in_ch, out_ch, ngf * 2**n_local_enhancers, n_downsample_global, n_blocks_global, norm, padding
        )
        self.model = nn.Sequential(*g[:-3])  # without the output conv: keys stay model.<i> as in G1
        make_norm = norm_layer(norm)
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            front = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(in_ch, c, 7),
                make_norm(c),
                nn.ReLU(True),
                nn.Conv2d(c, c * 2, 3, stride=2, padding=1),
                make_norm(c * 2),
                nn.ReLU(True),
            ]
            back = [ResnetBlock(c * 2, norm, padding) for _ in range(n_blocks_local)]
            back += [nn.ConvTranspose2d(c * 2, c, 3, 2, 1, output_padding=1), make_norm(c), nn.ReLU(True)]
            if n == n_local_enhancers:
                back += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
            self.add_module(f"model{n}_1", nn.Sequential(*front))
            self.add_module(f"model{n}_2", nn.Sequential(*back))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        # The official computation, ordered so that few full-size maps are alive at once (the same results, less
        # memory; what keeps tiled inference of 4096x2048 within a few GiB): each enhancer's front-end runs finest
        # first, before the coarser scales exist, and every layer's input is dropped as soon as the next layer has
        # it (a Sequential called as a whole would hold its input to the end).
        fronts, level = [], x
        for n in range(self.n_local_enhancers, 0, -1):
            front = level
            for layer in getattr(self, f"model{n}_1"):
                front = layer(front)
            fronts.append(front)
            del front
            level = self.downsample(level)
        out = level
        del level
        for layer in self.model:
            out = layer(out)
        for n in range(1, self.n_local_enhancers + 1):
            out = fronts.pop() + out
            for layer in getattr(self, f"model{n}_2"):
                out = layer(out)
        return out

    def global_parameters(self) -> list[nn.Parameter]:
        """Everything except the finest enhancer (what ``niter_fix_global`` freezes, as official)."""
        last = f"model{self.n_local_enhancers}_"
        return [p for name, p in self.named_parameters() if not name.startswith(last)]


class Encoder(nn.Module):
    """Feature encoder E: encoder-decoder (no res blocks) then instance-wise average pooling."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 16, n_downsampling: int = 4, norm: str = "instance"):
        super().__init__()
        self.model = nn.Sequential(*_encoder_decoder(in_ch, out_ch, ngf, n_downsampling, 0, norm, "reflect"))

    def forward(self, image: Tensor, inst: Tensor) -> Tensor:
        return instance_mean_pool(self.model(image), inst)


# ---------------------------------------------------------------------------------------------------- family
