"""Per-object appearance memory when rendering (``model.appearance_memory``): each object keeps the look it
had when it was first seen.

A sequence's frames are made one after the other, and an object's colour in frame t comes from the warped
frames before it and from what G draws anew; over a long video the small changes add up, and an object that
leaves and comes back is drawn anew from its labels, in whichever colour G picks that time (the demo's
classes have two colour variants each). The memory writes each object's mean colour once, on the first
frame where its mask (eroded by a pixel) covers enough pixels, and on every later frame shifts the object's
pixels by the difference between that colour and their mean, before the frame becomes the next frame's
history. Its detail, shading and outline stay G's; its mean colour stays its first look's.

The objects are the instance ids of 1000 and above, which must name the same object in every frame
(tracks: the demo's ids are; per-frame ids such as Cityscapes' are linked by
:func:`vid2vid.data.tracks.link_tracks` first).

In training, :func:`appearance_loss` (``model.lambda_appearance``) ties each object's colours on the frames
G makes to its first look in the clip's real frames.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import torch
from torch import Tensor

from vid2vid.data.tracks import OBJECT_MIN_PIXELS, seen_objects

CAPACITY = 1024
"""objects remembered at most; beyond, the ones unseen the longest are forgotten"""


class AppearanceMemory:
    """The first look of each object of one sequence; ``memory(frame, tracks)`` anchors a frame to it."""

    def __init__(self, capacity: int = CAPACITY, min_pixels: int = OBJECT_MIN_PIXELS):
        self.capacity, self.min_pixels = capacity, min_pixels
        self.colours: OrderedDict[int, Tensor] = OrderedDict()  # the least recently seen first
        self.forgotten = 0
        """objects dropped for capacity so far"""

    def reset(self) -> None:
        """Forget every object (a new sequence, or ``--reset-memory-every``)."""
        self.colours.clear()

    @torch.no_grad()
    def __call__(self, frame: Tensor, tracks: Tensor) -> Tensor:
        """frame (1, 3, H, W) in -1..1 and its track ids (1, 1, H, W) -> the frame with every remembered
        object's mean colour moved to its first look; objects seen for the first time are remembered."""
        if frame.shape[0] != 1 or tracks.shape != (1, 1, *frame.shape[-2:]):
            raise ValueError(f"the memory anchors one frame (1, 3, H, W) with its tracks (1, 1, H, W); got "
                             f"{tuple(frame.shape)} and {tuple(tracks.shape)}")
        anchored = frame.clone()
        for track, inside in seen_objects(tracks[0], self.min_pixels):
            colour = frame[0][:, inside].float().mean(1)
            if track in self.colours:
                mask = tracks[0, 0] == track
                shift = (self.colours[track] - colour).to(frame.dtype).view(3, 1)
                anchored[0][:, mask] = (frame[0][:, mask] + shift).clamp(-1, 1)
                self.colours.move_to_end(track)
            else:
                self.colours[track] = colour
        while len(self.colours) > self.capacity:
            self.colours.popitem(last=False)
            self.forgotten += 1
        return anchored


QUANTILES = torch.linspace(0.1, 0.9, 9)
"""where an object's colour distribution is compared (appearance_loss)"""

Looks = list[dict[int, Tensor]]
"""per sample of a batch, each object's colour quantiles (3, len(QUANTILES)) at its first look"""


def _quantiles(pixels: Tensor) -> Tensor:
    """(3, len(QUANTILES)) the colour quantiles of pixels (3, N), per channel."""
    return torch.quantile(pixels.float(), QUANTILES.to(pixels.device), dim=1)


@torch.no_grad()
def first_looks(real: Tensor, tracks: Tensor, min_pixels: int = OBJECT_MIN_PIXELS) -> Looks:
    """Each object's look on the first frame of a clip where it is seen: real (B, T, 3, H, W) frames and their
    track ids (B, T, 1, H, W); an object is seen where its mask, eroded by a pixel, covers min_pixels."""
    looks: Looks = [{} for _ in range(real.shape[0])]
    for b, t in itertools.product(range(real.shape[0]), range(real.shape[1])):
        for track, inside in seen_objects(tracks[b, t], min_pixels):
            if track not in looks[b]:
                looks[b][track] = _quantiles(real[b, t][:, inside])
    return looks


def appearance_loss(fake: Tensor, tracks: Tensor, looks: Looks, min_pixels: int = OBJECT_MIN_PIXELS) -> Tensor:
    """How far each object's colours in the frames made lie from its first look in the clip.

    fake (B, T, 3, H, W) frames made, their track ids (B, T, 1, H, W), and the clip's first looks
    (:func:`first_looks` of its real frames). On every frame where an object is seen, the L1 distance between
    the quantiles (QUANTILES, per channel) of its made pixels and those of its first look: the colour
    distribution, not the pixels' places, so that what it ties is the object's look, wherever G draws its
    detail. The mean over objects and frames (0 without any)."""
    terms = [(_quantiles(fake[b, t][:, inside]) - looks[b][track]).abs().mean()
             for b, t in itertools.product(range(fake.shape[0]), range(fake.shape[1]))
             for track, inside in seen_objects(tracks[b, t], min_pixels)]
    return torch.stack(terms).mean() if terms else fake.new_zeros(())
