"""Multimodal synthesis with pix2pixHD's instance features (Wang et al. 2018, Sec. 3.4).

After training, the encoder's feature of every training instance is collected
per class and clustered with K-means; at test time each instance (or each
class) gets the centre of a cluster, chosen at random or by index, so one label
map gives several plausible images."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from torch import Tensor, nn

from vid2vid.data.images import DatasetError

FINGERPRINT_KEYS = ("label_nc", "feat_num", "nef", "n_downsample_E", "use_instance")


@torch.no_grad()
def instance_features(encoder: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> dict[int, np.ndarray]:
    """The encoder's (instance-averaged) feature of every instance, grouped by class:
    {class id: (N, feat_num)}. An instance's class is the most frequent label under it."""
    collected: dict[int, list[np.ndarray]] = {}
    for batch in batches:
        features = encoder(batch["image"], batch["instance"])
        for b in range(features.shape[0]):
            instances, labels = batch["instance"][b, 0], batch["label"][b, 0]
            for instance_id in torch.unique(instances):
                mask = instances == instance_id
                classes, counts = torch.unique(labels[mask], return_counts=True)
                cls = int(classes[counts.argmax()])
                # every pixel of an instance holds the same feature after the pooling
                collected.setdefault(cls, []).append(features[b, :, mask].mean(1).cpu().numpy())
    return {cls: np.stack(vectors) for cls, vectors in collected.items()}


def cluster_features(features: Mapping[int, np.ndarray], n_clusters: int = 10, seed: int = 0) -> dict[int, np.ndarray]:
    """K-means centres per class: {class: (k, feat_num)}, k = min(n_clusters, instances of the class)."""
    centres = {}
    for cls, vectors in features.items():
        k = min(n_clusters, len(vectors))
        found, _ = kmeans2(vectors.astype(np.float64), k, minit="++", seed=np.random.default_rng([seed, cls]))
        centres[cls] = found.astype(np.float32)
    return centres


def save_clusters(path: str | os.PathLike, centres: Mapping[int, np.ndarray], model_config: Mapping) -> None:
    """An .npz of the centres and the encoder settings they belong to."""
    fingerprint = json.dumps({k: model_config[k] for k in FINGERPRINT_KEYS}, sort_keys=True)
    np.savez(path, fingerprint=np.array(fingerprint), **{f"class_{cls}": c for cls, c in centres.items()})


def load_clusters(path: str | os.PathLike, model_config: Mapping) -> dict[int, np.ndarray]:
    """The centres of a cluster file; DatasetError naming the file if it is unreadable or was
    made for other encoder settings (another label_nc, feat_num, ...)."""
    path = Path(path)
    try:
        with np.load(path) as data:
            saved = json.loads(str(data["fingerprint"]))
            centres = {int(k[len("class_"):]): data[k] for k in data.files if k.startswith("class_")}
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"cannot read the cluster file {path}: {e}") from None
    expected = {k: model_config[k] for k in FINGERPRINT_KEYS}
    differing = [f"{k} {saved.get(k)!r} != {expected[k]!r}" for k in FINGERPRINT_KEYS if saved.get(k) != expected[k]]
    if differing:
        raise DatasetError(f"the cluster file {path} was made for another config ({', '.join(differing)}); "
                           f"run scripts/encode_features.py for this run")
    return centres


def sample_feature_map(label: Tensor, instance: Tensor, centres: Mapping[int, np.ndarray], feat_num: int,
                       generator: torch.Generator, per_class: bool = False, index: int | None = None) -> Tensor:
    """A feature map (B, feat_num, H, W) for label/instance maps (B, 1, H, W): every instance
    (every class, with per_class) gets the centre of a cluster of its class drawn from generator,
    or with ``index`` the centre number index (modulo the class's clusters), the same in every
    frame of a video; classes without clusters get zeros."""
    out = torch.zeros(label.shape[0], feat_num, *label.shape[-2:], device=label.device)
    for b in range(label.shape[0]):
        groups = label[b, 0] if per_class else instance[b, 0]
        for group in torch.unique(groups).tolist():
            mask = groups == group
            classes, counts = torch.unique(label[b, 0][mask], return_counts=True)
            cls = int(classes[counts.argmax()])
            if cls not in centres:
                continue
            if index is None:
                k = int(torch.randint(len(centres[cls]), (1,), generator=generator))
            else:
                k = index % len(centres[cls])
            out[b][:, mask] = torch.as_tensor(centres[cls][k], device=label.device).view(feat_num, 1)
    return out


class NearestFeatures(nn.Module):
    """Features of the training image nearest to an image's own (NVIDIA/vid2vid's edge2face first
    frames): ``bank`` (parts, images, feat_num) holds each training image's feature of each part
    (its features.npy). An image's encoded, part-averaged features pick the training image at the
    least squared distance over the parts it shows; every part then takes that image's feature."""

    def __init__(self, parts: int, images: int, feat_num: int):
        super().__init__()
        self.register_buffer("bank", torch.zeros(parts, images, feat_num))

    def forward(self, encoded: Tensor, parts: Tensor) -> Tensor:
        """encoded (B, feat_num, H, W) constant over each part of parts (B, 1, H, W) -> the chosen
        features, same shape."""
        out = torch.empty_like(encoded)
        for b in range(encoded.shape[0]):
            labels = torch.unique(parts[b, 0])
            if int(labels.max()) >= self.bank.shape[0]:
                raise DatasetError(f"a part label {int(labels.max())} has no features: the bank holds "
                                   f"{self.bank.shape[0]} parts")
            masks = [parts[b, 0] == label for label in labels]
            own = torch.stack([encoded[b][:, mask][:, 0] for mask in masks])  # (L, feat_num)
            distances = ((self.bank[labels] - own[:, None]) ** 2).sum((0, 2))  # (images,)
            nearest = int(distances.argmin())
            for label, mask in zip(labels, masks):
                out[b][:, mask] = self.bank[label, nearest].view(-1, 1).to(encoded.dtype)
        return out
