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


# ----------------------------------------------------------------------------- vid2vid's pose inputs

def _linear(x, a, b):
    return a * x + b


def _interp_points(x, y):
    """keypoint2img.interpPoints for two points (the only case the pose drawing meets): a fitted
    line sampled along the longer axis; numpy's old float-count linspace truncated the count."""
    import numpy as np
    from scipy.optimize import curve_fit
    if abs(x[:-1] - x[1:]).max() < abs(y[:-1] - y[1:]).max():
        curve_y, curve_x = _interp_points(y, x)
        return curve_x, curve_y
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        popt, _ = curve_fit(_linear, x, y)
    if x[0] > x[-1]:
        x, y = list(reversed(x)), list(reversed(y))
    curve_x = np.linspace(x[0], x[-1], int(x[-1] - x[0]))
    curve_y = _linear(curve_x, *popt)
    return curve_x.astype(int), curve_y.astype(int)


def _set_color(im, yy, xx, color):
    import numpy as np
    if (im[yy, xx] == 0).all():
        im[yy, xx, 0], im[yy, xx, 1], im[yy, xx, 2] = color[0], color[1], color[2]
    else:
        for c in range(3):
            im[yy, xx, c] = ((im[yy, xx, c].astype(float) + color[c]) / 2).astype(np.uint8)


def _draw_edge(im, x, y, bw=1, color=(255, 255, 255)):
    """keypoint2img.drawEdge with draw_end_points=True."""
    import numpy as np
    if x is not None and x.size:
        h, w = im.shape[0], im.shape[1]
        for i in range(-bw, bw):
            for j in range(-bw, bw):
                _set_color(im, np.maximum(0, np.minimum(h - 1, y + i)), np.maximum(0, np.minimum(w - 1, x + j)), color)
        for i in range(-bw * 2, bw * 2):
            for j in range(-bw * 2, bw * 2):
                if i ** 2 + j ** 2 < 4 * bw ** 2:
                    yy = np.maximum(0, np.minimum(h - 1, np.array([y[0], y[-1]]) + i))
                    xx = np.maximum(0, np.minimum(w - 1, np.array([x[0], x[-1]]) + j))
                    _set_color(im, yy, xx, color)


POSE_EDGES = [[17, 15], [15, 0], [0, 16], [16, 18], [0, 1], [1, 8], [1, 2], [2, 3], [3, 4], [1, 5], [5, 6], [6, 7],
              [8, 9], [9, 10], [10, 11], [11, 24], [11, 22], [22, 23], [8, 12], [12, 13], [13, 14], [14, 21], [14, 19],
              [19, 20]]
POSE_COLORS = [[153, 0, 153], [153, 0, 102], [102, 0, 153], [51, 0, 153], [153, 0, 51], [153, 0, 0], [153, 51, 0],
               [153, 102, 0], [153, 153, 0], [102, 153, 0], [51, 153, 0], [0, 153, 0], [0, 153, 51], [0, 153, 102],
               [0, 153, 153], [0, 153, 153], [0, 153, 153], [0, 153, 153], [0, 102, 153], [0, 51, 153], [0, 0, 153],
               [0, 0, 153], [0, 0, 153], [0, 0, 153]]
HAND_EDGES = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20]]
HAND_COLORS = [[204, 0, 0], [163, 204, 0], [0, 204, 82], [0, 82, 204], [163, 0, 204]]
FACE_EDGES = [[range(17, 22)], [range(22, 27)], [range(27, 31), range(31, 36)], [[36, 37, 38, 39], [39, 40, 41, 36]],
              [[42, 43, 44, 45], [45, 46, 47, 42]], [range(48, 55), [54, 55, 56, 57, 58, 59, 48]]]


def _valid_keypoints(pts):
    import numpy as np
    p = pts.shape[0]
    thre = 0.1 if p == 70 else 0.01
    output = np.zeros((p, 2))
    if p == 70:
        for edge_list in FACE_EDGES:
            for edge in edge_list:
                if (pts[edge, 2] > thre).all():
                    output[edge, :] = pts[edge, :2]
    elif p == 21:
        for edge in HAND_EDGES:
            if (pts[edge, 2] > thre).all():
                output[edge, :] = pts[edge, :2]
    else:
        valid = pts[:, 2] > thre
        output[valid, :] = pts[valid, :2]
    return output


def read_keypoints(json_path, size):
    """keypoint2img.read_keypoints at test time (no random drops): (H, W, 3) uint8 for size (W, H)."""
    import json

    import numpy as np
    with open(json_path, encoding="utf-8") as f:
        people = json.loads(f.read())["people"]
    w, h = size
    pose_img = np.zeros((h, w, 3), np.uint8)
    for person in people:
        pose = _valid_keypoints(np.array(person["pose_keypoints_2d"]).reshape(25, 3))
        face = _valid_keypoints(np.array(person["face_keypoints_2d"]).reshape(70, 3))
        hands = [_valid_keypoints(np.array(person[f"hand_{s}_keypoints_2d"]).reshape(21, 3)) for s in ("left", "right")]
        out = np.zeros((h, w, 3), np.uint8)
        for i, edge in enumerate(POSE_EDGES):
            x, y = pose[edge, 0], pose[edge, 1]
            if 0 not in x:
                _draw_edge(out, *_interp_points(x, y), bw=3, color=POSE_COLORS[i])
        for hand in hands:
            for i, edge in enumerate(HAND_EDGES):
                for j in range(0, len(edge) - 1):
                    x, y = hand[edge[j:j + 2], 0], hand[edge[j:j + 2], 1]
                    if 0 not in x:
                        _draw_edge(out, *_interp_points(x, y), bw=1, color=HAND_COLORS[i])
        for edge_list in FACE_EDGES:
            for edge in edge_list:
                for i in range(0, max(1, len(edge) - 1)):
                    sub = edge[i:i + 2]
                    x, y = face[sub, 0], face[sub, 1]
                    if 0 not in x:
                        _draw_edge(out, *_interp_points(x, y))
        pose_img += out
    return pose_img


def pose_dataset_frame(json_path, densepose_path, frame_size, load_size):
    """PoseDataset.__getitem__'s A for one frame at test time (--resize_or_crop scaleHeight): DensePose
    (part channel rescaled) then OpenPose maps, NEAREST-resized by get_img_params' rounding, normalised,
    the middle half of the width cropped. frame_size (W, H) of the real frame."""
    import numpy as np
    from PIL import Image

    w, h = frame_size
    new_w, new_h = load_size * w // h, load_size
    new_w, new_h = int(round(new_w / 4)) * 4, int(round(new_h / 4)) * 4
    new_w, new_h = int(round(new_w / 32.0) * 32.0), int(round(new_h / 32.0) * 32.0)

    def transform(img):
        x = np.asarray(img.resize((new_w, new_h), Image.NEAREST), dtype=np.float32) / 255.0
        return (torch.from_numpy(x.copy()).permute(2, 0, 1) - 0.5) / 0.5

    di = transform(Image.open(densepose_path).convert("RGB"))
    di[2, :, :] = ((di[2, :, :] * 0.5 + 0.5) * 255 / 24 - 0.5) / 0.5
    oi = transform(Image.fromarray(read_keypoints(json_path, frame_size)))
    a = torch.cat([di, oi])
    x_cen, bs = a.shape[2] // 2, int(a.shape[2] * 0.25) // 32 * 32
    return a[:, :, x_cen - bs:x_cen + bs]
