"""Networks laid out as NVIDIA's pix2pixHD and vid2vid save them (module names, Sequential
indices, padding layers), written from their ``models/networks.py`` to build small seeded
checkpoints in the original formats and to compute what the original test scripts output.
Only the tests use them; the product's networks are in vid2vid.models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # vid2vid's instance norm tracks running statistics (unused in train mode), pix2pixHD's does not
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=kind == "instance_tracked")


class Block(nn.Module):
    """ResnetBlock: conv_block = [pad, conv, norm, relu, pad, conv, norm]."""

    def __init__(self, dim: int, kind: str):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(kind, dim), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(kind, dim))

    def forward(self, x):
        return x + self.conv_block(x)


def stem(cin: int, ngf: int, kind: str) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), norm(kind, ngf), nn.ReLU(True)]


def downs(ngf: int, n: int, kind: str) -> list[nn.Module]:
    return [m for i in range(n) for m in (nn.Conv2d(ngf * 2 ** i, ngf * 2 ** (i + 1), 3, 2, 1),
                                          norm(kind, ngf * 2 ** (i + 1)), nn.ReLU(True))]


def ups(ngf: int, n: int, kind: str) -> list[nn.Module]:
    return [m for i in range(n) for m in (nn.ConvTranspose2d(ngf * 2 ** (n - i), ngf * 2 ** (n - i - 1), 3, 2, 1, 1),
                                          norm(kind, ngf * 2 ** (n - i - 1)), nn.ReLU(True))]


def final(ngf: int, cout: int, act: nn.Module | None = None) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7)] + ([act] if act is not None else [])


def pool(x):
    return F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)


class Global(nn.Module):
    def __init__(self, cin, cout, ngf, n_down, n_blocks, kind="instance"):
        super().__init__()
        self.model = nn.Sequential(*stem(cin, ngf, kind), *downs(ngf, n_down, kind),
                                   *[Block(ngf * 2 ** n_down, kind) for _ in range(n_blocks)],
                                   *ups(ngf, n_down, kind), *final(ngf, cout, nn.Tanh()))

    def forward(self, x):
        return self.model(x)


class Local(nn.Module):
    def __init__(self, cin, cout, ngf, n_down, n_blocks, n_local, n_blocks_local, kind="instance"):
        super().__init__()
        self.n_local = n_local
        self.model = nn.Sequential(*list(Global(cin, cout, ngf * 2 ** n_local, n_down, n_blocks, kind).model)[:-3])
        for n in range(1, n_local + 1):
            g = ngf * 2 ** (n_local - n)
            setattr(self, f"model{n}_1", nn.Sequential(*stem(cin, g, kind), *downs(g, 1, kind)))
            up = [Block(g * 2, kind) for _ in range(n_blocks_local)] + ups(g, 1, kind)
            if n == n_local:
                up += final(ngf, cout, nn.Tanh())
            setattr(self, f"model{n}_2", nn.Sequential(*up))

    def forward(self, x):
        pyramid = [x]
        for _ in range(self.n_local):
            pyramid.append(pool(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local + 1):
            out = getattr(self, f"model{n}_2")(getattr(self, f"model{n}_1")(pyramid[self.n_local - n]) + out)
        return out


class Encoder(nn.Module):
    def __init__(self, cin, cout, ngf, n_down, kind="instance"):
        super().__init__()
        self.model = nn.Sequential(*stem(cin, ngf, kind), *downs(ngf, n_down, kind), *ups(ngf, n_down, kind),
                                   *final(ngf, cout, nn.Tanh()))


def seeded(net: nn.Module, seed: int) -> nn.Module:
    """Random weights at a scale that keeps outputs away from tanh's flat ends, batch-norm statistics too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * (0.05 if t.dim() > 1 else 0.1))
    return net


def get_edges(inst: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's boundary map, as written there (byte tensor arithmetic)."""
    edge = torch.zeros_like(inst, dtype=torch.uint8)
    edge[:, :, :, 1:] = edge[:, :, :, 1:] | (inst[:, :, :, 1:] != inst[:, :, :, :-1]).to(torch.uint8)
    edge[:, :, :, :-1] = edge[:, :, :, :-1] | (inst[:, :, :, 1:] != inst[:, :, :, :-1]).to(torch.uint8)
    edge[:, :, 1:, :] = edge[:, :, 1:, :] | (inst[:, :, 1:, :] != inst[:, :, :-1, :]).to(torch.uint8)
    edge[:, :, :-1, :] = edge[:, :, :-1, :] | (inst[:, :, 1:, :] != inst[:, :, :-1, :]).to(torch.uint8)
    return edge.float()


def tensor2im(x: torch.Tensor):
    """util.tensor2im: (x + 1) / 2 * 255, clipped, truncated to uint8; (3, H, W) -> (H, W, 3)."""
    import numpy as np
    image = (x.detach().cpu().float().numpy().transpose(1, 2, 0) + 1) / 2.0 * 255.0
    return np.clip(image, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- vid2vid

def resample(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """BaseNetwork.resample: a linspace(-1, 1) grid plus the flow in normalised units, border padding,
    align_corners=True (the semantics of the PyTorch 0.4 the original ran on)."""
    b, _, h, w = image.shape
    hor = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, 1, h, w)
    ver = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, 1, h, w)
    grid = torch.cat([hor, ver], 1)
    flow = torch.cat([flow[:, 0:1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(image, (grid + flow).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                         align_corners=True)


class Composite(nn.Module):
    """CompositeGenerator (G0)."""

    def __init__(self, cin, cout, prev_nc, ngf, n_down, n_blocks, fg, kind):
        super().__init__()
        self.fg = fg
        if fg:
            gi = ngf // 2 if n_down > 2 else ngf
            self.indv_down = nn.Sequential(*stem(cin, gi, kind), *downs(gi, n_down, kind))
            self.indv_res = nn.Sequential(*[Block(gi * 2 ** n_down, kind) for _ in range(n_blocks)])
            self.indv_up = nn.Sequential(*ups(gi, n_down, kind))
            self.indv_final = nn.Sequential(*final(gi, cout, nn.Tanh()))
        width = ngf * 2 ** n_down
        down_seg = stem(cin, ngf, kind) + downs(ngf, n_down, kind) + \
            [Block(width, kind) for _ in range(n_blocks - n_blocks // 2)]
        self.model_down_seg = nn.Sequential(*down_seg)
        self.model_down_img = nn.Sequential(*stem(prev_nc, ngf, kind), *downs(ngf, n_down, kind),
                                            *[Block(width, kind) for _ in range(n_blocks - n_blocks // 2)])
        self.model_res_img = nn.Sequential(*[Block(width, kind) for _ in range(n_blocks // 2)])
        self.model_up_img = nn.Sequential(*ups(ngf, n_down, kind))
        self.model_final_img = nn.Sequential(*final(ngf, cout, nn.Tanh()))
        self.model_res_flow = nn.Sequential(*[Block(width, kind) for _ in range(n_blocks // 2)])
        self.model_up_flow = nn.Sequential(*ups(ngf, n_down, kind))
        self.model_final_flow = nn.Sequential(*final(ngf, 2))
        self.model_final_w = nn.Sequential(*final(ngf, 1, nn.Sigmoid()))

    def forward(self, x, prev, mask, img_feat_c, flow_feat_c, fg_feat_c, raw_only):
        down = self.model_down_seg(x) + self.model_down_img(prev)
        img_feat = self.model_up_img(self.model_res_img(down))
        raw = self.model_final_img(img_feat)
        flow_feat = self.model_up_flow(self.model_res_flow(down))
        flow = self.model_final_flow(flow_feat) * 20
        weight = self.model_final_w(flow_feat)
        return self._compose(x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, None)

    def _compose(self, x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, fg_feat_c):
        final_img = raw if raw_only else raw * weight + resample(prev[:, -3:], flow) * (1 - weight)
        fg_feat = None
        if self.fg:
            if fg_feat_c is None:
                fg_feat = self.indv_up(self.indv_res(self.indv_down(x)))
            else:
                fg_feat = self.indv_up(self.indv_down(x) + fg_feat_c)
            img_fg = self.indv_final(fg_feat)
            final_img = img_fg * mask + final_img * (1 - mask)
        return final_img, img_feat, flow_feat, fg_feat


class CompositeLocal(Composite):
    """CompositeLocalGenerator (G1, G2, ...): ngf is this scale's."""

    def __init__(self, cin, cout, prev_nc, ngf, n_down, n_blocks_local, fg, kind, scale):
        nn.Module.__init__(self)
        self.fg, self.scale = fg, scale
        if fg:
            gi = ngf // 2 if n_down > 2 else ngf
            self.indv_down = nn.Sequential(*stem(cin, gi, kind), *downs(gi, 1, kind))
            self.indv_up = nn.Sequential(*[Block(gi * 2, kind) for _ in range(n_blocks_local)], *ups(gi, 1, kind))
            self.indv_final = nn.Sequential(*final(gi, cout, nn.Tanh()))
        self.model_down_seg = nn.Sequential(*stem(cin, ngf, kind), *downs(ngf, 1, kind))
        self.model_down_img = nn.Sequential(*stem(prev_nc, ngf, kind), *downs(ngf, 1, kind))
        self.model_up_img = nn.Sequential(*[Block(ngf * 2, kind) for _ in range(n_blocks_local)], *ups(ngf, 1, kind))
        self.model_final_img = nn.Sequential(*final(ngf, cout, nn.Tanh()))
        self.model_up_flow = nn.Sequential(*[Block(ngf * 2, kind) for _ in range(n_blocks_local)], *ups(ngf, 1, kind))
        self.model_final_flow = nn.Sequential(*final(ngf, 2))
        self.model_final_w = nn.Sequential(*final(ngf, 1, nn.Sigmoid()))

    def forward(self, x, prev, mask, img_feat_c, flow_feat_c, fg_feat_c, raw_only):
        down = self.model_down_seg(x) + self.model_down_img(prev)
        img_feat = self.model_up_img(down + img_feat_c)
        raw = self.model_final_img(img_feat)
        flow_feat = self.model_up_flow(down + flow_feat_c)
        flow = self.model_final_flow(flow_feat) * 20 * 2 ** self.scale
        weight = self.model_final_w(flow_feat)
        return self._compose(x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, fg_feat_c)


def vid2vid_generators(cin, prev_nc, ngf, n_down, n_blocks, n_blocks_local, n_scales, fg, kind):
    """[G0, G1, ...] as Vid2VidModelG builds them (ngf halves per finer scale)."""
    nets = [Composite(cin, 3, prev_nc, ngf, n_down, n_blocks, fg, kind)]
    nets += [CompositeLocal(cin, 3, prev_nc, ngf // 2 ** s, n_down, n_blocks_local, fg, kind, s)
             for s in range(1, n_scales)]
    return nets


def vid2vid_test(nets, inputs, first_frames, fg_labels, n_frames_G, no_first_img):
    """Vid2VidModelG.inference over a sequence, as test.py drives it: ``inputs`` (T, C, H, W) encoded
    label maps (one-hot + edges); ``first_frames`` (n_frames_G - 1, 3, H, W) from the single-image
    generator, or None with ``no_first_img`` (a zero history). Every scale keeps its own frames; the
    outputs are the frames n_frames_G - 1 ... T - 1 (what test.py saves)."""
    n_scales, tG = len(nets), n_frames_G
    pyramid = lambda x: [x] + [x := pool(x) for _ in range(n_scales - 1)]  # noqa: E731 finest first
    if first_frames is None:
        first_frames = torch.zeros(tG - 1, 3, *inputs.shape[-2:])
    history = pyramid(first_frames)  # per scale, finest first: (tG - 1, 3, h, w)
    outputs = []
    with torch.no_grad():
        for t in range(tG - 1, inputs.shape[0]):
            window = pyramid(inputs[t - tG + 1:t + 1])
            img_feat = flow_feat = fg_feat = None
            for s, net in enumerate(nets):
                si = n_scales - 1 - s
                x = window[si].reshape(1, -1, *window[si].shape[-2:])
                prev = history[si].reshape(1, -1, *history[si].shape[-2:])
                mask = None
                if fg_labels:
                    mask = torch.clamp(sum(window[si][-1:, c] for c in fg_labels), 0, 1)[:, None]
                raw_only = no_first_img and t == tG - 1
                frame, img_feat, flow_feat, fg_feat = net(x, prev, mask, img_feat, flow_feat, fg_feat, raw_only)
                history[si] = torch.cat([history[si][1:], frame])
            outputs.append(frame[0])
    return torch.stack(outputs)
