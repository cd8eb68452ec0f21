"""Object tracks from per-frame instance maps: Cityscapes-style instance ids (``class * 1000 + k``) name the
objects of one frame, not the same object from frame to frame; a per-object memory of appearance needs ids
that are. :func:`link_tracks` links them along the flow, frame by frame, in two passes:

1. Overlap. Each object's pixels, followed along the backward flow (frame t -> t-1, to the nearest pixel,
   within a pixel of the track's mask there), land on the previous frame's tracks; the pixels that land on
   a track are the pair's score, and a pair needs ``min_overlap`` of the object's pixels.
2. Proximity, for what the overlap left: an object that shows up near where a track was expected, within
   ``reach`` pixels plus the track's size (the square root of the most pixels it has covered). A track
   that found no object (it left the frame or went behind another object) is kept for ``memory`` frames,
   expected where its last mask moves on at its last velocity (the mean motion over it). The part of an
   object seen beside an occluder can also change all at once as the occluder passes (it went behind on
   one side and comes out on the other): its pixels land on the occluder, not on the track, and as far
   from its last visible part as the object is large.

Only objects and tracks of one class are paired, and each pass assigns one to one (scipy's
``linear_sum_assignment``, the Hungarian method). An object that matches nothing starts a new track.
:class:`TrackLinker` links frame by frame as the frames come (rendering, along G's own flow).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from scipy.optimize import linear_sum_assignment
from torch import Tensor

IDS_PER_CLASS = 1000
"""Cityscapes-style instance ids: an object's id is ``class * IDS_PER_CLASS + k``; smaller ids are whole
classes of stuff (no objects)"""
MIN_OVERLAP = 0.1
"""an object continues a track when at least this share of its pixels lands on it"""
MEMORY = 8
"""frames a track that found no object is kept for (an object passing behind another comes back within)"""
REACH = 4.0
"""pixels (beyond the track's size) from where a track was expected within which an object that overlaps
nothing continues it"""


@dataclass
class _Seen:
    """A track as last seen."""

    mask: Tensor
    """(H, W) bool, on the frame it was last seen"""
    velocity: Tensor
    """(2,) pixels per frame (x, y), its mean motion into that frame"""
    frame: int
    """that frame's index"""
    size: float
    """the square root of the most pixels it has covered on any frame"""

    def predicted(self, t: int) -> Tensor:
        """Its last mask moved on at its velocity to frame t (what leaves the frame is gone)."""
        dx, dy = (self.velocity * (t - self.frame)).round().long().tolist()
        moved = torch.zeros_like(self.mask)
        height, width = self.mask.shape
        if abs(dx) < width and abs(dy) < height:
            moved[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
                self.mask[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
        return moved


def object_ids(instances: Tensor) -> list[int]:
    """The object ids (of IDS_PER_CLASS and above) in instance maps of any shape, sorted."""
    return torch.unique(instances[instances >= IDS_PER_CLASS]).tolist()


def object_class(object_id: int) -> int:
    """The class of an object id (``class * IDS_PER_CLASS + k``)."""
    return object_id // IDS_PER_CLASS


OBJECT_MIN_PIXELS = 16
"""an object's colour is read on the frames where it covers at least this many pixels after erosion"""


def eroded_mask(instances: Tensor, object_id: int) -> Tensor:
    """(B, 1, H, W) bool: where ``instances`` (B, 1, H, W) is ``object_id``, eroded by one pixel (so that the
    anti-aliased, warped and blurred outline's mixed colours do not count when its colour is read)."""
    mask = (instances == object_id).float()
    return (1 - F.max_pool2d(1 - mask, 3, 1, 1)) > 0


def seen_objects(tracks: Tensor, min_pixels: int = OBJECT_MIN_PIXELS) -> Iterator[tuple[int, Tensor]]:
    """(object id, its eroded mask (H, W) bool) for every object of one frame's ids (1, H, W) that is seen
    there: whose mask, eroded by a pixel (:func:`eroded_mask`), keeps ``min_pixels``, where its colour is read."""
    for object_id in object_ids(tracks):
        inside = eroded_mask(tracks[None], object_id)[0, 0]
        if inside.sum() >= min_pixels:
            yield object_id, inside


def _near(region: Tensor) -> Tensor:
    """(H, W) bool: within a pixel of region (flows rounded to pixels miss slivers by one)."""
    return F.max_pool2d(region[None, None].float(), 3, 1, 1)[0, 0] > 0


def _landing(flow: Tensor) -> tuple[Tensor, Tensor]:
    """(y, x) (H, W) each: the pixel of the previous frame each pixel of the current frame comes from along
    the backward flow (2, H, W), the nearest, clamped into the frame (a pixel that comes in from outside
    comes from beside the border, where an object entering the frame was on the previous frame)."""
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((ys + flow[1]).round().long().clamp(0, height - 1),
            (xs + flow[0]).round().long().clamp(0, width - 1))


def _nearest(region: Tensor, masks: list[Tensor], within: float) -> list[float]:
    """For each mask (H, W) bool, the distance (pixels) from its nearest pixel to the nearest pixel of region
    (H, W) bool, where it is at most ``within``; inf beyond, or if region is empty. Computed (scipy's
    distance transform) on region's bounding box grown by ``within`` only, which holds every pixel that near."""
    if not region.any():
        return [float("inf")] * len(masks)
    ys, xs = torch.nonzero(region, as_tuple=True)
    grow = int(within) + 1
    top, left = max(int(ys.min()) - grow, 0), max(int(xs.min()) - grow, 0)
    bottom, right = int(ys.max()) + grow + 1, int(xs.max()) + grow + 1
    distance = torch.from_numpy(distance_transform_edt(~region[top:bottom, left:right].numpy())).float()
    nearest = []
    for mask in masks:
        inside = mask[top:bottom, left:right]
        closest = float(distance[inside].min()) if inside.any() else float("inf")
        nearest.append(closest if closest <= within else float("inf"))
    return nearest


def _assign(score: Tensor, accept) -> list[tuple[int, int]]:
    """The one-to-one pairs (row, column) that maximise the total score, those that ``accept(score)``."""
    if score.numel() == 0:
        return []
    rows, columns = linear_sum_assignment(score.numpy(), maximize=True)
    return [(i, j) for i, j in zip(rows.tolist(), columns.tolist()) if accept(float(score[i, j]))]


class TrackLinker:
    """Links one sequence's instance maps into tracks frame by frame, as they come (rendering):
    ``linker(instances, flow)`` -> the frame's track ids; :func:`link_tracks` for a whole sequence."""

    def __init__(self, *, min_overlap: float = MIN_OVERLAP, memory: int = MEMORY, reach: float = REACH,
                 max_width: int | None = None):
        """``max_width``: link on the maps subsampled to at most this width (every stride-th pixel), and give
        each full-size object its object's track there: a frame costs what a map that wide costs, however
        large the frames (rendering). An object that no sample hits (narrower than the stride) gets a new
        track on every frame. ``reach`` is in the linked map's pixels."""
        self.min_overlap, self.memory, self.reach, self.max_width = min_overlap, memory, reach, max_width
        self.reset()

    def reset(self) -> None:
        """Start a new sequence."""
        self.frame = 0
        self.created: dict[int, int] = {}  # tracks started so far, per class
        self.seen: dict[int, _Seen] = {}  # every live track, as last seen

    def __call__(self, instances: Tensor, flow: Tensor | None) -> Tensor:
        """Track ids (H, W) for the next frame's instance map (H, W) of Cityscapes-style ids and its backward
        flow (2, H, W) to the frame before, in pixels (None on a sequence's first frame, or where no flow is
        known: then the objects overlap where they were)."""
        instances = instances.long()
        stride = -(-instances.shape[-1] // self.max_width) if self.max_width else 1
        if stride == 1:
            return self._link(instances, flow)
        sampled = instances[::stride, ::stride]
        linked = self._link(sampled, None if flow is None else flow[:, ::stride, ::stride] / stride)
        # each id's track, looked up by id (an object is one id, so all its samples hold the same track)
        lookup = torch.arange(int(instances.max()) + 1)
        lookup[sampled.flatten()] = linked.flatten()
        missed = torch.zeros(len(lookup), dtype=torch.bool)
        missed[instances.flatten()] = True
        missed[sampled.flatten()] = False
        for object_id in torch.flatten(torch.nonzero(missed[IDS_PER_CLASS:])).add(IDS_PER_CLASS).tolist():
            lookup[object_id] = self._new_track(object_class(object_id))  # no sample hit it
        return lookup[instances]

    def _new_track(self, cls: int) -> int:
        """A new track id of class ``cls``."""
        self.created[cls] = self.created.get(cls, 0) + 1
        return cls * IDS_PER_CLASS + self.created[cls] - 1

    def _link(self, instances: Tensor, flow: Tensor | None) -> Tensor:
        """__call__ on the maps as they are."""
        t, seen = self.frame, self.seen
        if t and flow is None:
            flow = torch.zeros(2, *instances.shape)
        if t and flow.shape != (2, *instances.shape):
            raise ValueError(f"the flow of a {tuple(instances.shape)} instance map is (2, H, W); got "
                             f"{tuple(flow.shape)}")
        objects = object_ids(instances)
        masks = [instances == o for o in objects]
        candidates = list(seen)
        same_class = torch.tensor([[object_class(o) == object_class(c) for c in candidates] for o in objects]).view(
            len(objects), len(candidates))
        matched: dict[int, int] = {}
        if t and objects and candidates:
            flow = flow.float()
            y, x = _landing(flow)
            # each pixel's object (len(objects) where there is none), counted where it lands on each track
            index = torch.full(instances.shape, len(objects), dtype=torch.long)
            for i, mask in enumerate(masks):
                index[mask] = i
            overlap = torch.zeros(len(objects), len(candidates))
            for j, track in enumerate(candidates):
                last = seen[track]
                if last.frame == t - 1:  # a track seen on frame t-1 (the others wait for the second pass)
                    lands = _near(last.mask)[y, x]
                    overlap[:, j] = torch.bincount(index[lands], minlength=len(objects) + 1)[:-1].float()
            overlap = overlap * same_class
            share = overlap / torch.stack([mask.sum() for mask in masks]).view(-1, 1)
            # the most pixels in all (a sliver landing wholly on a big track must not take it from the
            # object that continues it), each pair holding at least min_overlap of its object
            matched = {i: j for i, j in _assign(overlap, lambda n: n > 0) if share[i, j] >= self.min_overlap}
            left = [i for i in range(len(objects)) if i not in matched]
            free = [j for j in range(len(candidates)) if j not in matched.values()] if left else []
            closeness = torch.zeros(len(left), len(free))
            for b, j in enumerate(free):
                last = seen[candidates[j]]
                within = self.reach + last.size + 1
                nearest = _nearest(last.predicted(t), [masks[i] for i in left], within)
                for a, i in enumerate(left):
                    if same_class[i, j]:
                        closeness[a, b] = max(0.0, within - nearest[a])
            matched.update((left[a], free[b]) for a, b in _assign(closeness, lambda s: s >= 1))
        tracks = instances.clone()
        for i, (o, mask) in enumerate(zip(objects, masks)):
            if i in matched:
                track = candidates[matched[i]]
            else:
                track = self._new_track(object_class(o))
            tracks[mask] = track
            velocity = -flow[:, mask].mean(1) if t else torch.zeros(2)
            size = max(float(mask.sum()) ** 0.5, seen[track].size if track in seen else 0.0)
            seen[track] = _Seen(mask, velocity, t, size)
        self.seen = {track: last for track, last in seen.items() if t - last.frame < self.memory}
        self.frame += 1
        return tracks


def link_tracks(instances: Tensor, flows: Tensor, *, min_overlap: float = MIN_OVERLAP, memory: int = MEMORY,
                reach: float = REACH) -> Tensor:
    """Track ids (T, H, W) for instance maps (T, H, W) of Cityscapes-style ids and the backward flows
    (T-1, 2, H, W) from each frame to the one before (in pixels). Objects (ids of 1000 and above) get track
    ids ``class * 1000 + n``, one per object for as long as it stays in view or comes back within ``memory``
    frames (n counts the class's tracks from 0); smaller ids (stuff, whole classes) are kept as they are."""
    if instances.dim() != 3 or flows.shape != (len(instances) - 1, 2, *instances.shape[1:]):
        raise ValueError(f"link_tracks takes instance maps (T, H, W) and flows (T-1, 2, H, W); got "
                         f"{tuple(instances.shape)} and {tuple(flows.shape)}")
    linker = TrackLinker(min_overlap=min_overlap, memory=memory, reach=reach)
    return torch.stack([linker(frame, flows[t - 1] if t else None) for t, frame in enumerate(instances)])
