"""Collect per-image metric values over an evaluation, grouped, with NaNs counted.

`MetricAccumulator` receives batches of per-image values (e.g. `BestOfNResult.metrics()`) with
optional group labels per image (action, sequence, dataset, ...), keeps every value, and
summarises them per group and overall as a markdown table or a JSON-ready dict. Means are taken
over finite values only, and every non-finite value (NaN or inf) is counted and shown next to
its mean, so a diverged prediction can never vanish from the report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["GroupSummary", "MetricAccumulator", "MetricSummary"]


@dataclass(frozen=True)
class MetricSummary:
    """One metric over a set of images.

    Attributes:
        mean: mean of the finite values (NaN when there is none).
        num_finite: number of images with a finite value.
        num_nonfinite: number of images whose value is NaN or inf (left out of the mean).
    """

    mean: float
    num_finite: int
    num_nonfinite: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; a NaN mean becomes None (JSON has no NaN)."""
        return {
            "mean": self.mean if math.isfinite(self.mean) else None,
            "num_finite": self.num_finite,
            "num_nonfinite": self.num_nonfinite,
        }


@dataclass(frozen=True)
class GroupSummary:
    """All metrics over one group of images (or over all images).

    Attributes:
        labels: the group's label per grouping key, e.g. {"action": "Walking"}; {} for all.
        num_images: images in the group.
        metrics: metric name -> MetricSummary, in the order the metrics were first added.
    """

    labels: Mapping[str, str]
    num_images: int
    metrics: Mapping[str, MetricSummary]

    @property
    def name(self) -> str:
        """The labels joined with " / ", or "all" for the overall summary."""
        return " / ".join(self.labels.values()) if self.labels else "all"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with labels, counts and per-metric summaries."""
        return {
            "labels": dict(self.labels),
            "num_images": self.num_images,
            "metrics": {name: summary.to_dict() for name, summary in self.metrics.items()},
        }


def _as_values(name: str, value: object) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value.detach()
    else:
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"values[{name!r}] must be a tensor or a sequence of numbers, "
                f"got {type(value).__name__}"
            ) from None
    if tensor.ndim > 1:
        raise ValueError(
            f"values[{name!r}] must have shape (B,) with one value per image, "
            f"got {tuple(tensor.shape)}"
        )
    if tensor.is_complex():
        raise TypeError(f"values[{name!r}] must be real, got dtype {tensor.dtype}")
    return tensor.reshape(-1).to(device="cpu", dtype=torch.float64)


def _as_labels(key: str, labels: object, num_images: int) -> list[str]:
    if isinstance(labels, str):
        return [labels] * num_images
    if isinstance(labels, Tensor):
        labels = labels.reshape(-1).tolist()
    if not isinstance(labels, Sequence):
        raise TypeError(
            f"groups[{key!r}] must be a string or a sequence of B labels, "
            f"got {type(labels).__name__}"
        )
    if len(labels) != num_images:
        raise ValueError(
            f"groups[{key!r}] must hold one label per image (B = {num_images}), got {len(labels)}"
        )
    return [str(label) for label in labels]


def _difference(kind: str, expected: Sequence[str], got: Sequence[str]) -> str:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    return (
        f"{kind} must be the same in every batch: expected {sorted(expected)}, "
        f"missing {missing}, unexpected {unexpected}"
    )


def _summarize(values: Mapping[str, Tensor], rows: Tensor | None) -> dict[str, MetricSummary]:
    out = {}
    for name, column in values.items():
        selected = column if rows is None else column[rows]
        finite = torch.isfinite(selected)
        num_finite = int(finite.sum())
        mean = float(selected[finite].mean()) if num_finite else float("nan")
        out[name] = MetricSummary(
            mean=mean, num_finite=num_finite, num_nonfinite=int(selected.numel()) - num_finite
        )
    return out


class MetricAccumulator:
    """Per-image metric values of an evaluation, with group labels, summarised on demand.

    Example:
        >>> acc = MetricAccumulator()
        >>> acc.add({"pa_mpjpe": torch.tensor([50.0, float("nan")])}, groups={"action": "Walk"})
        >>> acc.summarize()[0].metrics["pa_mpjpe"]
        MetricSummary(mean=50.0, num_finite=1, num_nonfinite=1)

    Every batch must carry the same metric names and the same group keys as the first one.
    Values are stored on the CPU in float64; nothing is averaged away: `values()` returns them
    all, and every summary counts the non-finite ones.
    """

    def __init__(self) -> None:
        self._metric_names: tuple[str, ...] | None = None
        self._group_keys: tuple[str, ...] | None = None
        self._values: dict[str, list[Tensor]] = {}
        self._labels: dict[str, list[str]] = {}
        self._num_images = 0

    @property
    def num_images(self) -> int:
        """Images added so far."""
        return self._num_images

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metric names, in the order of the first batch (empty before the first `add`)."""
        return self._metric_names or ()

    @property
    def group_keys(self) -> tuple[str, ...]:
        """Grouping keys, in the order of the first batch (empty if none were given)."""
        return self._group_keys or ()

    def add(
        self,
        values: Mapping[str, Tensor | Sequence[float]],
        *,
        groups: Mapping[str, str | Sequence[str]] | None = None,
    ) -> None:
        """Add one batch of B images.

        Args:
            values: metric name -> (B,) per-image values (tensor on any device, or numbers),
                e.g. `best_of_n(...).metrics()`; every metric has the same B.
            groups: optional grouping key -> B labels (any values, stored as strings), or a
                single string for the whole batch, e.g. {"action": actions, "dataset": "3DPW"}.

        Raises:
            ValueError: if the values differ in length, are not (B,), a label list is not of
                length B, or names/keys differ from the first batch.
            TypeError: for values or labels of the wrong type.
        """
        if not isinstance(values, Mapping) or not values:
            raise ValueError("`values` must be a non-empty mapping of metric name -> (B,) values")
        columns = {str(name): _as_values(str(name), value) for name, value in values.items()}
        lengths = {name: column.numel() for name, column in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"every metric needs the same number of images B, got {lengths}")
        num_images = next(iter(lengths.values()))
        labels = {
            str(key): _as_labels(str(key), value, num_images)
            for key, value in (groups or {}).items()
        }
        names, keys = tuple(columns), tuple(labels)
        if self._metric_names is None:
            self._metric_names, self._group_keys = names, keys
            self._values = {name: [] for name in names}
            self._labels = {key: [] for key in keys}
        if set(names) != set(self.metric_names):
            raise ValueError(_difference("metric names", self.metric_names, names))
        if set(keys) != set(self.group_keys):
            raise ValueError(_difference("group keys", self.group_keys, keys))
        for name, column in columns.items():
            self._values[name].append(column)
        for key, key_labels in labels.items():
            self._labels[key].extend(key_labels)
        self._num_images += num_images

    def values(self, name: str) -> Tensor:
        """(num_images,) float64 CPU tensor of every value added for metric `name`."""
        if name not in self._values:
            raise KeyError(f"unknown metric {name!r}; expected one of {list(self.metric_names)}")
        parts = self._values[name]
        if len(parts) > 1:  # concatenate once and keep the result
            self._values[name] = parts = [torch.cat(parts)]
        return parts[0].clone() if parts else torch.empty(0, dtype=torch.float64)

    def labels(self, key: str) -> tuple[str, ...]:
        """The label of every image for grouping key `key`."""
        if key not in self._labels:
            raise KeyError(f"unknown group key {key!r}; expected one of {list(self.group_keys)}")
        return tuple(self._labels[key])

    def _group_by_keys(self, group_by: str | Sequence[str] | None) -> tuple[str, ...]:
        if group_by is None:
            return ()
        keys = (group_by,) if isinstance(group_by, str) else tuple(group_by)
        for key in keys:
            if key not in self.group_keys:
                raise ValueError(
                    f"unknown group key {key!r}; expected one of {list(self.group_keys)}"
                )
        return keys

    def summarize(self, *, group_by: str | Sequence[str] | None = None) -> list[GroupSummary]:
        """Summaries per group (sorted by label), followed by the summary over all images.

        Args:
            group_by: a grouping key, several keys (one group per combination of labels), or
                None for the overall summary only.

        Returns:
            list of GroupSummary; the last one has no labels and covers every image.

        Raises:
            ValueError: for a key that no batch provided.
        """
        keys = self._group_by_keys(group_by)
        values = {name: self.values(name) for name in self.metric_names}
        summaries = []
        if keys:
            combos = list(zip(*(self._labels[key] for key in keys), strict=True))
            order = {combo: i for i, combo in enumerate(sorted(set(combos)))}
            group_ids = torch.tensor([order[c] for c in combos], dtype=torch.long)
            for combo, i in order.items():
                rows = group_ids == i
                summaries.append(
                    GroupSummary(
                        labels=dict(zip(keys, combo, strict=True)),
                        num_images=int(rows.sum()),
                        metrics=_summarize(values, rows),
                    )
                )
        summaries.append(
            GroupSummary(labels={}, num_images=self.num_images, metrics=_summarize(values, None))
        )
        return summaries

    def to_markdown(self, *, group_by: str | Sequence[str] | None = None, decimals: int = 1) -> str:
        """A markdown table: one row per group and a final "all" row; means with counts.

        A cell reads "52.3" or, when some images have a NaN/inf value, "52.3 (2 non-finite)",
        and a note under the table says so.
        """
        keys = self._group_by_keys(group_by)
        first = " / ".join(keys) if keys else "group"
        header = [first, "images", *self.metric_names]
        lines = [
            "| " + " | ".join(_escape(h) for h in header) + " |",
            "|" + "---|" + "---:|" * (len(header) - 1),
        ]
        any_nonfinite = False
        for summary in self.summarize(group_by=keys or None):
            cells = [_escape(summary.name), str(summary.num_images)]
            for name in self.metric_names:
                metric = summary.metrics[name]
                cell = f"{metric.mean:.{decimals}f}" if metric.num_finite else "nan"
                if metric.num_nonfinite:
                    any_nonfinite = True
                    cell += f" ({metric.num_nonfinite} non-finite)"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        if any_nonfinite:
            lines.append("")
            lines.append(
                "Means are over finite values; (n non-finite) counts images whose value is NaN "
                "or inf."
            )
        return "\n".join(lines) + "\n"

    def to_dict(
        self, *, group_by: str | Sequence[str] | None = None, include_per_image: bool = False
    ) -> dict[str, Any]:
        """JSON-ready summary: counts, overall and per-group means (None for NaN).

        Args:
            group_by: as `summarize`.
            include_per_image: also store every per-image value (NaN/inf as None) and label.
        """
        keys = self._group_by_keys(group_by)
        summaries = self.summarize(group_by=keys or None)
        out: dict[str, Any] = {
            "num_images": self.num_images,
            "metrics": list(self.metric_names),
            "group_by": list(keys),
            "overall": summaries[-1].to_dict(),
            "groups": [summary.to_dict() for summary in summaries[:-1]],
        }
        if include_per_image:
            out["per_image"] = {
                "values": {
                    name: [v if math.isfinite(v) else None for v in self.values(name).tolist()]
                    for name in self.metric_names
                },
                "labels": {key: list(self._labels[key]) for key in self.group_keys},
            }
        return out

    def write_json(
        self,
        path: str | os.PathLike[str],
        *,
        group_by: str | Sequence[str] | None = None,
        include_per_image: bool = False,
    ) -> None:
        """Write `to_dict(...)` as JSON to `path` atomically (temporary file, then rename).

        A reader never sees a half-written file: the JSON goes to a temporary file in the same
        folder, which then replaces `path` in one step.
        """
        text = json.dumps(
            self.to_dict(group_by=group_by, include_per_image=include_per_image),
            indent=2,
            allow_nan=False,
        )
        target = Path(path)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            # mkstemp makes the file private (0600); give it the mode open() would (0666
            # less the umask), so results are readable as any other file the user writes.
            mask = os.umask(0o022)
            os.umask(mask)
            os.chmod(temporary, 0o666 & ~mask)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
