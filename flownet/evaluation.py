"""How good a flow model is: endpoint error against exact ground truth on
generated pairs, and the photometric warping error on real frame pairs, where
no ground truth exists."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from flownet.estimate import estimate
from flownet.flow_utils import endpoint_error, warping_error
from vid2vid.data.images import DatasetError


def _predictions(model: nn.Module, dataset: Dataset, batch_size: int,
                 amps: tuple[torch.dtype | None, ...]) -> Iterator[tuple[Tensor, list[Tensor]]]:
    """(the true flow, the model's flow under each of ``amps``) per batch of a dataset of ``(pair, flow)``
    items, in eval mode; an amp of None is full precision, a dtype autocast to it (on any device). Each batch
    is made once, however many precisions see it."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for pairs, flow in DataLoader(dataset, batch_size=batch_size):
            pairs, predictions = pairs.to(device), []
            for amp in amps:
                with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    predictions.append(model(pairs).float())
            yield flow.to(device), predictions
    finally:
        model.train(was_training)


def synthetic_epe(model: nn.Module, dataset: Dataset, batch_size: int = 8, amp: torch.dtype | None = None) -> float:
    """Mean endpoint error in pixels of the model (in eval mode, full resolution, under autocast to ``amp``
    where given) over a dataset of ``(pair, flow)`` items such as :class:`~flownet.synthetic.SyntheticFlowDataset`."""
    total, count = 0.0, 0
    for flow, (prediction,) in _predictions(model, dataset, batch_size, (amp,)):
        total += float(endpoint_error(prediction, flow)) * len(flow)
        count += len(flow)
    return total / count


@dataclass(frozen=True)
class PrecisionReport:
    """A flow model in full precision and under autocast, on the same pairs (mean endpoint errors, pixels)."""

    full: float
    """the float32 flow against the truth"""
    reduced: float
    """the flow under autocast against the truth"""
    between: float
    """the flow under autocast against the float32 flow: what the lower precision changes"""


def precision_report(model: nn.Module, dataset: Dataset, amp: torch.dtype, batch_size: int = 8) -> PrecisionReport:
    """What running ``model`` under autocast to ``amp`` (bfloat16 or float16) does to its flow."""
    sums, count = torch.zeros(3, dtype=torch.float64), 0
    for truth, (full, reduced) in _predictions(model, dataset, batch_size, (None, amp)):
        sums += torch.tensor([float(endpoint_error(full, truth)), float(endpoint_error(reduced, truth)),
                              float(endpoint_error(reduced, full))], dtype=torch.float64) * len(truth)
        count += len(truth)
    return PrecisionReport(*(sums / count).tolist())


def zero_flow_epe(dataset: Dataset) -> float:
    """The endpoint error a flow of zero scores: the mean flow magnitude of a dataset, the baseline to beat."""
    return float(np.mean([float(endpoint_error(torch.zeros_like(flow[None]), flow[None])) for _, flow in dataset]))


@dataclass(frozen=True)
class WarpingReport:
    """Mean photometric warping errors (RGB levels, 0..255) over consecutive frame pairs."""

    pairs: int
    model_error: float
    """frame t against frame t+1 warped back by the model's flow"""
    zero_flow_error: float
    """frame t against frame t+1 unwarped: what a flow of zero would score"""


@torch.no_grad()
def frame_pair_warping(model: nn.Module, frames: Iterable[np.ndarray], *, max_pairs: int | None = None,
                       fit: str = "resize") -> WarpingReport:
    """Warping error of the model's flow between consecutive frames.

    Args:
        frames: (H, W, 3) uint8 RGB frames in order, e.g. from :func:`vid2vid.data.frames.iter_frames`.
        max_pairs: stop after this many pairs.
        fit: how :func:`flownet.estimate` fits the frames to the network.
    """
    model_errors, zero_errors = [], []
    for previous, current in pairwise(frames):
        if max_pairs is not None and len(model_errors) >= max_pairs:
            break
        a = torch.from_numpy(np.ascontiguousarray(previous)).permute(2, 0, 1).float().unsqueeze(0)
        b = torch.from_numpy(np.ascontiguousarray(current)).permute(2, 0, 1).float().unsqueeze(0)
        flow = estimate(model, a, b, fit=fit).cpu()
        model_errors.append(float(warping_error(a, b, flow)))
        zero_errors.append(float((a - b).abs().mean()))
    if not model_errors:
        raise DatasetError("need at least two frames to measure a warping error")
    return WarpingReport(len(model_errors), float(np.mean(model_errors)), float(np.mean(zero_errors)))
