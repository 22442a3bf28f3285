"""Weighted mixing of datasets and resumable, rank-sharded sample streams.

See docs/training.md#data-mixing.

The training stream is a sequence of *positions* 0, 1, 2, ... Position p of a
:class:`MixedDataset` is a pure function of ``(seed, p)``: a generator
``numpy.random.default_rng([seed, p])`` picks the dataset (by weight), the row (uniformly) and
then draws that row's augmentation. :class:`MixedSampler` hands rank r of W the positions
``r, r + W, r + 2W, ...`` so ranks never share a sample, and starts at any point: after k
optimiser steps with a per-rank batch of B, resume with ``start=k * B`` and the same seed and
world size to continue the exact same stream. Nothing depends on worker count or timing.

Difference from the original (docs/original-quirks.md#mixing-keyed-by-position): the original
ignores the index and draws from torch's global generator (not reproducible across workers or
resumption) and returns None when the weights sum to less than the draw; here weights must sum
to 1 within 1e-6 and the stream is keyed by position.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "PROHMR_TRAIN_WEIGHTS",
    "PROHMR_VAL_WEIGHTS",
    "MixedDataset",
    "MixedSampler",
    "StreamSampler",
]

#: ProHMR's training mixture (``prohmr.yaml``): dataset key -> weight.
PROHMR_TRAIN_WEIGHTS: dict[str, float] = {
    "H36M-TRAIN": 0.3,
    "MPII-TRAIN": 0.1,
    "COCO-TRAIN-2014": 0.4,
    "MPI-INF-TRAIN": 0.2,
}
#: ProHMR's validation mixture.
PROHMR_VAL_WEIGHTS: dict[str, float] = {"H36M-VAL-P2": 0.5, "COCO-VAL": 0.5}


def _non_negative(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer, got bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}") from None
    if number < 0:
        raise ValueError(f"`{name}` must be >= 0, got {number}")
    return number


def _check_rank(rank: object, world_size: object) -> tuple[int, int]:
    size = _non_negative("world_size", world_size)
    if size < 1:
        raise ValueError(f"`world_size` must be >= 1, got {size}")
    index = _non_negative("rank", rank)
    if index >= size:
        raise ValueError(f"`rank` must be in 0..{size - 1} (world_size={size}), got {index}")
    return index, size


class MixedDataset(torch.utils.data.Dataset):
    """Draw each sample from one of several datasets with fixed probabilities.

    Position p (any non-negative integer: the stream is unbounded, ``len`` only sets the
    nominal epoch for samplers that need one) draws u ~ U[0, 1) and takes dataset k, the first
    whose cumulative weight exceeds u (so a dataset of weight 0 is never drawn), then a
    uniformly random row of it. Datasets with a ``get_item(index, *, rng)`` method (ImageDataset,
    MultiviewDataset) get the same generator for their augmentation; others are indexed
    normally. Dict items gain ``dataset_index`` (k).

    Args:
        datasets: the datasets (each with ``__len__``).
        weights: one probability per dataset, >= 0, summing to 1 within 1e-6 (ProHMR:
            :data:`PROHMR_TRAIN_WEIGHTS`).
        seed: non-negative seed of the stream.
        length: nominal length (default: the sum of the dataset lengths, as the original).

    Raises:
        ValueError: for mismatched counts, negative or non-finite weights, weights not summing
            to 1, or an empty dataset with a positive weight.
    """

    def __init__(
        self,
        datasets: Sequence[Any],
        weights: Sequence[float],
        *,
        seed: int = 0,
        length: int | None = None,
    ) -> None:
        super().__init__()
        datasets = list(datasets)
        weights = [float(w) for w in weights]
        if not datasets:
            raise ValueError("`datasets` must not be empty")
        if len(weights) != len(datasets):
            raise ValueError(
                f"`weights` must have one entry per dataset ({len(datasets)}), got {len(weights)}"
            )
        if any(not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError(f"`weights` must be finite and >= 0, got {weights}")
        total = math.fsum(weights)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"`weights` must sum to 1 (within 1e-6), got {total!r} from {weights}")
        for k, (dataset, weight) in enumerate(zip(datasets, weights, strict=True)):
            if weight > 0 and len(dataset) == 0:
                raise ValueError(f"dataset {k} is empty but has weight {weight}")
        self.datasets = datasets
        self.weights = tuple(weights)
        cumulative = np.cumsum(weights)
        # the last dataset with a positive weight takes every draw up to 1 (rounding-proof)
        last = max(k for k, w in enumerate(weights) if w > 0)
        cumulative[last:] = np.inf
        self._cumulative = cumulative
        self.seed = _non_negative("seed", seed)
        self.length = (
            sum(len(d) for d in datasets) if length is None else _non_negative("length", length)
        )

    def __len__(self) -> int:
        return self.length

    def rng_for(self, position: int) -> np.random.Generator:
        """The generator of stream position ``position``."""
        return np.random.default_rng([self.seed, _non_negative("position", position)])

    def _choose(self, rng: np.random.Generator) -> tuple[int, int]:
        u = rng.random()
        k = int(np.searchsorted(self._cumulative, u, side="right"))
        return k, int(rng.integers(len(self.datasets[k])))

    def choose(self, position: int) -> tuple[int, int]:
        """(dataset index, row index) of stream position ``position`` (loads nothing)."""
        return self._choose(self.rng_for(position))

    def __getitem__(self, position: int) -> Any:
        rng = self.rng_for(position)
        k, index = self._choose(rng)
        dataset = self.datasets[k]
        get_item = getattr(dataset, "get_item", None)
        item = get_item(index, rng=rng) if callable(get_item) else dataset[index]
        if isinstance(item, dict):
            item["dataset_index"] = k
        return item


class MixedSampler(torch.utils.data.Sampler[int]):
    """Stream positions of one rank: ``(start + t) * world_size + rank`` for t = 0, 1, ...

    For a :class:`MixedDataset`, whose positions are unbounded. Ranks get disjoint positions;
    ``start`` (samples this rank has already consumed, e.g. steps x per-rank batch) resumes the
    stream exactly.

    Args:
        rank, world_size: this process and the number of processes.
        start: first per-rank position.
        num_samples: positions to yield (None: unbounded; ``len`` then raises TypeError).
    """

    def __init__(
        self,
        *,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        num_samples: int | None = None,
    ) -> None:
        self.rank, self.world_size = _check_rank(rank, world_size)
        self.start = _non_negative("start", start)
        self.num_samples = (
            None if num_samples is None else _non_negative("num_samples", num_samples)
        )

    def __iter__(self) -> Iterator[int]:
        t = self.start
        stop = None if self.num_samples is None else self.start + self.num_samples
        while stop is None or t < stop:
            yield t * self.world_size + self.rank
            t += 1

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an unbounded MixedSampler has no length (pass num_samples)")
        return self.num_samples


class StreamSampler(torch.utils.data.Sampler[int]):
    """Row indices of a finite dataset as an endless, rank-sharded, resumable stream.

    The global stream concatenates epochs; epoch e is ``default_rng([seed, e]).permutation(n)``
    (or ``range(n)`` without shuffling). Rank r of W takes global positions
    ``(start + t) * W + r``. Use it for datasets without per-item randomness (the mocap
    dataset, evaluation sets); for augmented training data use :class:`MixedDataset` with
    :class:`MixedSampler`.

    Args:
        num_items: n, the dataset length (> 0).
        shuffle: permute each epoch. seed: non-negative seed of the permutations.
        rank, world_size, start, num_samples: as for :class:`MixedSampler`.
    """

    def __init__(
        self,
        num_items: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        num_samples: int | None = None,
    ) -> None:
        self.num_items = _non_negative("num_items", num_items)
        if self.num_items == 0:
            raise ValueError("`num_items` must be positive")
        self.shuffle = bool(shuffle)
        self.seed = _non_negative("seed", seed)
        self.rank, self.world_size = _check_rank(rank, world_size)
        self.start = _non_negative("start", start)
        self.num_samples = (
            None if num_samples is None else _non_negative("num_samples", num_samples)
        )

    def permutation(self, epoch: int) -> np.ndarray:
        """(n,) row order of global epoch ``epoch``."""
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.default_rng([self.seed, _non_negative("epoch", epoch)]).permutation(
            self.num_items
        )

    def __iter__(self) -> Iterator[int]:
        t = self.start
        stop = None if self.num_samples is None else self.start + self.num_samples
        epoch, order = -1, np.arange(0)
        while stop is None or t < stop:
            position = t * self.world_size + self.rank
            e, offset = divmod(position, self.num_items)
            if e != epoch:
                epoch, order = e, self.permutation(e)
            yield int(order[offset])
            t += 1

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an unbounded StreamSampler has no length (pass num_samples)")
        return self.num_samples
