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

    def __init__(self, cin, cout, prev_nc, ngf, n_down, n_blocks, fg, kind, no_flow=False):
        super().__init__()
        self.fg, self.no_flow = fg, no_flow
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
        if not no_flow:
            self.model_res_flow = nn.Sequential(*[Block(width, kind) for _ in range(n_blocks // 2)])
            self.model_up_flow = nn.Sequential(*ups(ngf, n_down, kind))
            self.model_final_flow = nn.Sequential(*final(ngf, 2))
            self.model_final_w = nn.Sequential(*final(ngf, 1, nn.Sigmoid()))

    def forward(self, x, prev, mask, img_feat_c, flow_feat_c, fg_feat_c, raw_only):
        down = self.model_down_seg(x) + self.model_down_img(prev)
        img_feat = self.model_up_img(self.model_res_img(down))
        raw = self.model_final_img(img_feat)
        flow = weight = flow_feat = None
        if not self.no_flow:
            flow_feat = self.model_up_flow(self.model_res_flow(down))
            flow = self.model_final_flow(flow_feat) * 20
            weight = self.model_final_w(flow_feat)
        return self._compose(x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, None)

    def _compose(self, x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, fg_feat_c):
        if raw_only or self.no_flow:
            final_img = raw
        else:
            final_img = raw * weight + resample(prev[:, -3:], flow) * (1 - weight)
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

    def __init__(self, cin, cout, prev_nc, ngf, n_down, n_blocks_local, fg, kind, scale, no_flow=False):
        nn.Module.__init__(self)
        self.fg, self.scale, self.no_flow = fg, scale, no_flow
        if fg:
            gi = ngf // 2 if n_down > 2 else ngf
            self.indv_down = nn.Sequential(*stem(cin, gi, kind), *downs(gi, 1, kind))
            self.indv_up = nn.Sequential(*[Block(gi * 2, kind) for _ in range(n_blocks_local)], *ups(gi, 1, kind))
            self.indv_final = nn.Sequential(*final(gi, cout, nn.Tanh()))
        self.model_down_seg = nn.Sequential(*stem(cin, ngf, kind), *downs(ngf, 1, kind))
        self.model_down_img = nn.Sequential(*stem(prev_nc, ngf, kind), *downs(ngf, 1, kind))
        self.model_up_img = nn.Sequential(*[Block(ngf * 2, kind) for _ in range(n_blocks_local)], *ups(ngf, 1, kind))
        self.model_final_img = nn.Sequential(*final(ngf, cout, nn.Tanh()))
        if not no_flow:
            self.model_up_flow = nn.Sequential(*[Block(ngf * 2, kind) for _ in range(n_blocks_local)],
                                               *ups(ngf, 1, kind))
            self.model_final_flow = nn.Sequential(*final(ngf, 2))
            self.model_final_w = nn.Sequential(*final(ngf, 1, nn.Sigmoid()))

    def forward(self, x, prev, mask, img_feat_c, flow_feat_c, fg_feat_c, raw_only):
        down = self.model_down_seg(x) + self.model_down_img(prev)
        img_feat = self.model_up_img(down + img_feat_c)
        raw = self.model_final_img(img_feat)
        flow = weight = flow_feat = None
        if not self.no_flow:
            flow_feat = self.model_up_flow(down + flow_feat_c)
            flow = self.model_final_flow(flow_feat) * 20 * 2 ** self.scale
            weight = self.model_final_w(flow_feat)
        return self._compose(x, prev, mask, raw, flow, weight, raw_only, img_feat, flow_feat, fg_feat_c)


def vid2vid_generators(cin, prev_nc, ngf, n_down, n_blocks, n_blocks_local, n_scales, fg, kind, no_flow=False):
    """[G0, G1, ...] as Vid2VidModelG builds them (ngf halves per finer scale; --no_flow: no flow parts)."""
    nets = [Composite(cin, 3, prev_nc, ngf, n_down, n_blocks, fg, kind, no_flow)]
    nets += [CompositeLocal(cin, 3, prev_nc, ngf // 2 ** s, n_down, n_blocks_local, fg, kind, s, no_flow)
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


def _func(x, a, b, c):
    return a * x ** 2 + b * x + c


def _interp_points(x, y):
    """keypoint2img.interpPoints: a fitted line (a parabola through 3 points, None if bent more than
    x**2) sampled along the longer axis; numpy's old float-count linspace truncated the count."""
    import warnings

    import numpy as np
    from scipy.optimize import curve_fit
    if abs(x[:-1] - x[1:]).max() < abs(y[:-1] - y[1:]).max():
        curve_y, curve_x = _interp_points(y, x)
        if curve_y is None:
            return None, None
        return curve_x, curve_y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(x) < 3:
            popt, _ = curve_fit(_linear, x, y)
        else:
            popt, _ = curve_fit(_func, x, y)
            if abs(popt[0]) > 1:
                return None, None
    if x[0] > x[-1]:
        x, y = list(reversed(x)), list(reversed(y))
    curve_x = np.linspace(x[0], x[-1], int(x[-1] - x[0]))
    curve_y = _linear(curve_x, *popt) if len(x) < 3 else _func(curve_x, *popt)
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


# ----------------------------------------------------------------------------- vid2vid's edge2face

def _draw_grey_edge(im, x, y):
    """keypoint2img.drawEdge on a 2-D map (bw 1, no end points): setColor writes color[0]."""
    import numpy as np
    if x is not None and x.size:
        h, w = im.shape
        for i in range(-1, 1):
            for j in range(-1, 1):
                im[np.maximum(0, np.minimum(h - 1, y + i)), np.maximum(0, np.minimum(w - 1, x + j))] = 255


FACE_PART_LIST = [[list(range(0, 17)) + list(range(68, 83)) + [0]], [range(17, 22)], [range(22, 27)],
                  [[28, 31], range(31, 36), [35, 28]], [[36, 37, 38, 39], [39, 40, 41, 36]],
                  [[42, 43, 44, 45], [45, 46, 47, 42]], [range(48, 55), [54, 55, 56, 57, 58, 59, 48]],
                  [range(60, 65), [64, 65, 66, 67, 60]]]
FACE_LABEL_LIST = [1, 2, 2, 3, 4, 4, 5, 6]


def face_dataset_sequence(keypoint_files, image_files, load_size, no_dist_map=False, no_canny_edge=False):
    """FaceDataset at test time over one sequence (--resize_or_crop scaleWidth): the crop from the first
    frame's keypoints; per frame A (15, H, W) in 0..1 (edges + Canny outside the face, 14 distance maps;
    the flags take out the maps or the Canny edges), the part labels (1, H, W) and B normalised."""
    import cv2
    import numpy as np
    from PIL import Image
    from skimage import feature

    size = Image.open(image_files[0]).size
    keypoints = np.loadtxt(keypoint_files[0], delimiter=",")
    min_y, max_y = keypoints[:, 1].min(), keypoints[:, 1].max()
    min_x, max_x = keypoints[:, 0].min(), keypoints[:, 0].max()
    xc, yc = (min_x + max_x) // 2, (min_y * 3 + max_y) // 4
    h = w = (max_x - min_x) * 2.5
    xc = min(max(0, xc - w // 2) + w, size[0]) - w // 2
    yc = min(max(0, yc - h // 2) + h, size[1]) - h // 2
    box = int(xc - w // 2), int(yc - h // 2), int(xc + w // 2), int(yc + h // 2)

    def crop(img):
        if isinstance(img, np.ndarray):
            return img[box[1]:box[3], box[0]:box[2]]
        return img.crop(box)

    cw, ch = box[2] - box[0], box[3] - box[1]
    new_w, new_h = load_size, load_size * ch // cw
    new_w, new_h = int(round(new_w / 4)) * 4, int(round(new_h / 4)) * 4

    def transform(img, method, normalize=False):
        x = torch.from_numpy(np.asarray(img.resize((new_w, new_h), method), dtype=np.float32).copy() / 255.0)
        x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
        return (x - 0.5) / 0.5 if normalize else x

    inputs, parts, images = [], [], []
    for keypoint_file, image_file in zip(keypoint_files, image_files):
        img = Image.open(image_file)
        keypoints = np.loadtxt(keypoint_file, delimiter=",")
        pts = keypoints[:17, :].astype(np.int32)
        baseline_y = (pts[0, 1] + pts[-1, 1]) / 2
        upper_pts = pts[1:-1, :].copy()
        upper_pts[:, 1] = baseline_y + (baseline_y - upper_pts[:, 1]) * 2 // 3
        keypoints = np.vstack((keypoints, upper_pts[::-1, :]))
        part_labels = np.zeros((size[1], size[0]), np.uint8)
        for p, edge_list in enumerate(FACE_PART_LIST):
            indices = [item for sublist in edge_list for item in sublist]
            cv2.fillPoly(part_labels, pts=[keypoints[indices, :].astype(np.int32)], color=FACE_LABEL_LIST[p])
        im_edges = np.zeros((size[1], size[0]), np.uint8)
        dist_tensor = []
        for edge_list in FACE_PART_LIST:
            for edge in edge_list:
                im_edge = np.zeros((size[1], size[0]), np.uint8)
                for i in range(0, max(1, len(edge) - 1), 2):
                    sub_edge = edge[i:i + 3]
                    curve_x, curve_y = _interp_points(keypoints[sub_edge, 0], keypoints[sub_edge, 1])
                    _draw_grey_edge(im_edges, curve_x, curve_y)
                    if not no_dist_map:
                        _draw_grey_edge(im_edge, curve_x, curve_y)
                if not no_dist_map:
                    im_dist = cv2.distanceTransform(255 - im_edge, cv2.DIST_L1, 3)
                    im_dist = np.clip((im_dist / 3), 0, 255).astype(np.uint8)
                    dist_tensor.append(transform(crop(Image.fromarray(im_dist)), Image.BILINEAR))
        if not no_canny_edge:
            edges = feature.canny(np.array(img.convert("L")))
            edges = edges * (part_labels == 0)
            im_edges += (edges * 255).astype(np.uint8)
        edge_tensor = transform(Image.fromarray(crop(im_edges)), Image.BILINEAR)
        inputs.append(torch.cat([edge_tensor, *dist_tensor]))
        parts.append(transform(Image.fromarray(crop(part_labels.astype(np.uint8))), Image.NEAREST) * 255.0)
        images.append(transform(crop(img.convert("RGB")), Image.BICUBIC, normalize=True))
    return torch.stack(inputs), torch.stack(parts), torch.stack(images)


class GlobalWithZ(nn.Module):
    """Global_with_z, edge2face's single-image generator."""

    def __init__(self, cin, cout, nz, ngf, n_down, n_blocks):
        super().__init__()
        self.n_down = n_down
        self.model_downsample = nn.Sequential(*stem(cin + nz, ngf, "instance"), *downs(ngf, n_down, "instance"))
        width = ngf * 2 ** n_down
        self.model_resnet = nn.Sequential(*[Block(width + nz, "instance") for _ in range(n_blocks)])
        up = [nn.ConvTranspose2d(width + 2 * nz, width // 2, 3, 2, 1, 1), norm("instance", width // 2), nn.ReLU(True)]
        self.model_upsample = nn.Sequential(*up, *ups(ngf, n_down, "instance")[3:])
        self.model_upsample_conv = nn.Sequential(*final(ngf + nz, cout, nn.Tanh()))

    def forward(self, x, z):
        z_down = z
        for _ in range(self.n_down):
            z_down = pool(z_down)
        down = self.model_downsample(torch.cat([x, z], 1))
        res = self.model_resnet(torch.cat([down, z_down], 1))
        up = self.model_upsample(torch.cat([res, z_down], 1))
        return self.model_upsample_conv(torch.cat([up, z], 1))


def encode_instances(encoder, image, inst):
    """Encoder.forward: the outputs averaged over each instance id, channel by channel (torch.mean)."""
    import numpy as np
    outputs = encoder.model(image)
    outputs_mean = outputs.clone()
    for i in np.unique(inst[0].cpu().numpy().astype(int)):
        indices = (inst[0:1] == int(i)).nonzero()
        for j in range(outputs.shape[1]):
            output_ins = outputs[indices[:, 0], indices[:, 1] + j, indices[:, 2], indices[:, 3]]
            outputs_mean[indices[:, 0], indices[:, 1] + j, indices[:, 2], indices[:, 3]] = torch.mean(output_ins)
    return outputs_mean


def face_features(encoder, features, feat_num, image, inst):
    """Vid2VidModelG.get_face_features: the training image nearest to this one's encoded part features
    (squared distance over the parts it shows), its features painted on each part."""
    import numpy as np
    feat_map = encode_instances(encoder, image, inst).numpy()
    inst_np = inst.numpy().astype(int)
    num_images = features[6].shape[0]
    feat_ori = torch.zeros(7, feat_num, 1)  # the original leaves the parts not shown uninitialised
    feat_ref = torch.zeros(7, feat_num, num_images)
    for label in np.unique(inst_np):
        idx = (inst == int(label)).nonzero()
        for k in range(feat_num):
            feat_ori[label, k] = float(feat_map[idx[0, 0], idx[0, 1] + k, idx[0, 2], idx[0, 3]])
            for m in range(num_images):
                feat_ref[label, k, m] = float(features[label][m, k])
    dists = torch.sum(torch.sum((feat_ori.expand_as(feat_ref) - feat_ref) ** 2, dim=0), dim=0)
    cluster_idx = int(torch.min(dists, dim=0)[1])
    out = torch.zeros(inst.shape[0], feat_num, inst.shape[2], inst.shape[3])
    for label in np.unique(inst_np):
        feat = features[label][:, :-1]
        idx = (inst == int(label)).nonzero()
        for k in range(feat_num):
            out[idx[:, 0], idx[:, 1] + k, idx[:, 2], idx[:, 3]] = float(feat[min(cluster_idx, feat.shape[0] - 1), k])
    return out
