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
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor

from vid2vid.data.tracks import OBJECT_MIN_PIXELS, eroded_mask, object_ids

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
        for track in object_ids(tracks):
            inside = eroded_mask(tracks, track)[0, 0]
            if inside.sum() < self.min_pixels:
                continue
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
