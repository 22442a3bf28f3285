"""Everything a ProHMR run needs, built from a config: world, data, body model, model, logging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

import pose_data as pdata
import pose_geometry as pg
import pose_losses as pl
from pose_body import load_mean_params
from prohmr_model.evaluation import (
    GAUSSIAN_SIGMAS_M,
    calibration_plot,
    error_vs_n_plot,
    evaluate_regression,
    mean_pose_keypoints,
)
from prohmr_model.loading import body_model_from_config, model_from_checkpoint
from prohmr_model.model import ProHMR, build_prohmr
from prohmr_model.visualize import save_prediction_grid

from .config import ProHMRConfig
from .data import DatasetEntry, DatasetRegistry, load_registry
from .prohmr_training import TrainResult, train_prohmr
from .runtime import DistributedContext
from .synthetic import generate_synthetic_world

__all__ = [
    "ProHMRSession",
    "check_config_datasets",
    "config_registry",
    "load_prohmr_checkpoint",
    "registry_entry",
    "report_ns",
    "training_keypoints",
]

# The report's protocol (eval_regression.py's defaults, with --baselines --kmeans 5 10 25).
REPORT_SEED = 1234
REPORT_NS = (1, 4, 16, 64, 256, 1024, 4096)
REPORT_KMEANS = (5, 10, 25)


def report_ns(max_samples: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(best-of-n values, k-means n values) of a report drawing ``max_samples`` per image:
    the k-means n of ``REPORT_KMEANS`` up to it; best-of-n for n = 1, 4, 16, ... up to it, it,
    and the k-means n (k-means n is compared with n random samples)."""
    kmeans = tuple(k for k in REPORT_KMEANS if k <= max_samples)
    ns = {n for n in (4**k for k in range(32)) if n <= max_samples} | {max_samples, *kmeans}
    return tuple(sorted(ns)), kmeans


class ProHMRSession:
    """Builds the run's parts on construction; ``train`` and ``evaluate_and_report`` use them."""

    def __init__(
        self, config: ProHMRConfig, *, ctx: DistributedContext, progress: bool = False
    ) -> None:
        self.config = config
        self.ctx = ctx
        # The names first: a misspelled one fails before the synthetic world is generated.
        self.registry = config_registry(config)
        check_config_datasets(config, self.registry)
        synthetic_dir = ""
        self.world = None
        if config.synthetic is not None:
            synthetic_dir = config.synthetic.output_dir
            if ctx.is_main:
                self.world = generate_synthetic_world(config.synthetic, progress=progress)
            if ctx.distributed:
                torch.distributed.barrier()
            if not ctx.is_main:
                self.world = generate_synthetic_world(config.synthetic)
        self.synthetic_dir = synthetic_dir
        self.body_model = body_model_from_config(config.body)
        mean_path = config.body.mean_params_path.format(synthetic_dir=synthetic_dir)
        self.mean_params = load_mean_params(mean_path)
        self.model: ProHMR = build_prohmr(
            config.model,
            body_model=self.body_model,
            mean_betas=self.mean_params.betas,
            mean_camera=self.mean_params.camera,
        )
        self.discriminator = pl.PoseDiscriminator() if config.model.discriminator else None
        self.train_data = pdata.MixedDataset(
            [self._image_dataset(self._entry(name), train=True) for name in config.data.train],
            list(config.data.train.values()),
            seed=config.train.seed,
        )
        self.mocap = None
        if config.data.mocap and self.discriminator is not None:
            self.mocap = pdata.MocapDataset(self._entry(config.data.mocap).require_file())
        self.val_data = pdata.MixedDataset(
            [self._image_dataset(self._entry(name), train=False) for name in config.data.val],
            list(config.data.val.values()),
            seed=config.train.seed + 1,
        )
        self.writer = None
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(config.output_dir) / "tensorboard"))

    def _entry(self, name: str) -> DatasetEntry:
        return self.registry.entry(name, key="data")

    def _image_dataset(self, entry: DatasetEntry, *, train: bool) -> pdata.ImageDataset:
        if entry.type != "image":
            raise ValueError(f"dataset '{entry.name}' has type {entry.type!r}; expected 'image'")
        return pdata.ImageDataset(
            entry.require_file(),
            image_dir=entry.image_dir,
            train=train and self.config.data.augment,
            image_size=self.config.data.image_size,
            keypoint_list=entry.keypoint_list,
            use_hips=entry.use_hips,
            seed=self.config.train.seed,
        )

    def describe(self) -> str:
        model = self.model
        counts = {
            "backbone": sum(p.numel() for p in model.backbone.parameters()),
            "pose head": sum(p.numel() for p in model.flow.parameters()),
        }
        lines = [
            f"output: {self.config.output_dir} | device: {self.ctx.device} | "
            f"world size: {self.ctx.world_size}",
            f"train: {dict(self.config.data.train)} ({len(self.train_data)} items), "
            f"val: {dict(self.config.data.val)}",
            "parameters: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in counts.items()),
        ]
        if self.world is not None:
            info = self.world.info
            lines.append(
                f"synthetic world: {self.world.root} ({info.get('train_images')} train / "
                f"{info.get('val_images')} val images, poses from {info.get('pose_source')})"
            )
        return "\n".join(lines)

    def val_batch(self) -> dict[str, Any]:
        """The same validation batch every time (first ``batch_size`` stream positions)."""
        size = min(self.config.train.batch_size, 64)
        return default_collate([self.val_data[i] for i in range(size)])

    def log_images(self, model: ProHMR, step: int) -> None:
        path = Path(self.config.output_dir) / "images" / f"step_{step:07d}.png"
        batch = default_collate([self.val_data[i] for i in range(4)])
        grid = save_prediction_grid(model, batch, path, num_samples=8)
        if self.writer is not None:
            self.writer.add_image("val/predictions", grid, step, dataformats="HWC")

    def train(
        self,
        *,
        resume: bool,
        progress: bool = True,
        stop_after_step: int | None = None,
        allow_config_change: bool = False,
    ) -> TrainResult:
        return train_prohmr(
            self.config,
            model=self.model,
            discriminator=self.discriminator,
            train_data=self.train_data,
            mocap_data=self.mocap,
            val_batch_fn=self.val_batch,
            ctx=self.ctx,
            resume=resume,
            log_image_fn=self.log_images,
            writer=self.writer,
            progress=progress,
            stop_after_step=stop_after_step,
            allow_config_change=allow_config_change,
        )

    def evaluate_and_report(self, *, progress: bool = True) -> dict[str, Any]:
        """Held-out evaluation with the paper's protocol (eval_regression.py's, with its
        defaults and ``--baselines --kmeans`` of ``REPORT_KMEANS``): mode and best-of-n
        (``report_ns``) from one draw of ``report.max_samples`` samples per image (4096 by
        default, as the paper), k-means n, the Gaussian, training-set and mean-pose baselines;
        an error-versus-n plot per dataset and a prediction figure; the uncertainty metrics
        (docs/evaluation.md#uncertainty-metrics) of 100 random samples of the same draw and a
        calibration plot per dataset. Returns {"results": {dataset: summary}, "uncertainty":
        {dataset: dict or None}, "plots", "calibration_plots", "figure", "markdown"}; writes
        only the figures."""
        from tqdm import tqdm

        config = self.config
        device = self.ctx.device
        self.model.to(device).eval()
        results: dict[str, Any] = {}
        ns, kmeans = report_ns(config.report.max_samples)
        extra_predictions = {}
        smpl = training_smpl([self._entry(name).file for name in config.data.train])
        if smpl is not None:
            mean_keypoints = mean_pose_keypoints(self.body_model, *smpl).to(device)
            extra_predictions["mean_pose"] = lambda batch: mean_keypoints.expand(
                len(batch["img"]), 1, 44, 3
            )
        training_poses = training_keypoints(config, self.registry)
        generator = torch.Generator(device=device).manual_seed(REPORT_SEED)
        baseline_generator = torch.Generator(device=device).manual_seed(REPORT_SEED + 1)
        lines = ["| dataset | metric | value (mm) |", "|---|---|---|"]
        plots = {}
        uncertainty: dict[str, Any] = {}
        calibration_plots = {}
        uncertainty_sections = []
        for name in config.data.val:
            entry = self._entry(name)
            dataset = self._image_dataset(entry, train=False)
            with tqdm(
                total=len(dataset), desc=f"evaluating {name}", unit="image", disable=not progress
            ) as bar:
                evaluation = evaluate_regression(
                    self.model,
                    dataset,
                    keypoint_list=entry.keypoint_list or tuple(range(44)),
                    num_samples=max(ns),
                    best_of=ns,
                    kmeans_clusters=kmeans,
                    gaussian_sigmas_m=GAUSSIAN_SIGMAS_M,
                    training_poses=training_poses,
                    device=device,
                    generator=generator,
                    baseline_generator=baseline_generator,
                    extra_predictions=extra_predictions,
                    source=f"the model trained in {config.output_dir}",
                    on_batch=bar.update,
                )
            results[name] = evaluation.summary
            for metric, value in evaluation.summary.items():
                lines.append(f"| {name} | {metric} | {value:.1f} |")
            plots[name] = str(
                error_vs_n_plot(
                    evaluation.summary,
                    ns,
                    Path(config.output_dir) / f"{name}_error_vs_n.png",
                    title=f"{name}: best-of-n, k-means and baselines",
                )
            )
            uncertainty[name] = None
            if evaluation.uncertainty is not None:
                uncertainty[name] = evaluation.uncertainty.to_dict()
                calibration = calibration_plot(
                    evaluation.uncertainty,
                    Path(config.output_dir) / f"{name}_calibration.png",
                    title=f"{name}: calibration of the samples",
                )
                calibration_plots[name] = str(calibration)
                uncertainty_sections.append(
                    f"### Uncertainty on {name}\n\n{evaluation.uncertainty.to_markdown()}\n"
                    f"![calibration]({calibration.name})"
                )
        figure = Path(config.output_dir) / "predictions.png"
        first_val = self.val_data
        batch = default_collate([first_val[i] for i in range(4)])
        save_prediction_grid(self.model, batch, figure, num_samples=8)
        if smpl is None:
            lines.append("")
            lines.append("(no mean-pose baseline: no training set has ground-truth SMPL poses)")
        return {
            "results": results,
            "uncertainty": uncertainty,
            "plots": plots,
            "calibration_plots": calibration_plots,
            "figure": str(figure),
            "markdown": "\n\n".join(["\n".join(lines), *uncertainty_sections]),
        }

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def training_smpl(files: list[Path]) -> tuple[np.ndarray, np.ndarray] | None:
    """Poses (N, 72) of the training rows that have them, and the mean of their betas,
    for the mean-pose baseline; None when no training set has SMPL poses (COCO, MPII)."""
    poses, betas = [], []
    for file in files:
        arrays = pdata.read_npz(file, what="training set")
        if "body_pose" not in arrays or "betas" not in arrays:
            continue
        has_pose = arrays.get("has_body_pose", np.ones(len(arrays["body_pose"])))
        has_betas = arrays.get("has_betas", np.ones(len(arrays["betas"])))
        poses.append(arrays["body_pose"][has_pose > 0])
        betas.append(arrays["betas"][has_betas > 0])
    if not poses or not sum(len(p) for p in poses) or not sum(len(b) for b in betas):
        return None
    return np.concatenate(poses), np.concatenate(betas).mean(axis=0)


def training_keypoints(config: ProHMRConfig, registry: DatasetRegistry) -> torch.Tensor | None:
    """(M, 44, 3) pelvis-relative 3D keypoints (metres) of the training rows that have them (a
    valid pelvis): the training-set baseline's poses; None when no training set has any."""
    poses = []
    for name in config.data.train:
        entry = registry.entry(name, key="data.train", kinds=("image",))
        annotations = pdata.read_prohmr_npz(entry.require_file())
        keypoints = torch.from_numpy(np.asarray(annotations.keypoints_3d)).float()
        keypoints = keypoints[keypoints[:, pg.PELVIS_IDX_44, 3] > 0, :, :3]
        poses.append(keypoints - keypoints[:, pg.PELVIS_IDX_44 : pg.PELVIS_IDX_44 + 1])
    if not sum(len(p) for p in poses):
        return None
    return torch.cat(poses)


def config_registry(config: ProHMRConfig) -> DatasetRegistry:
    """The dataset registry of a run's config (``{synthetic_dir}`` = its synthetic world).

    Raises:
        FileNotFoundError, ValueError: as ``load_registry``, naming ``data.registry``'s file.
    """
    synthetic_dir = config.synthetic.output_dir if config.synthetic is not None else ""
    return load_registry(
        config.data.registry, data_root=config.data.data_root, synthetic_dir=synthetic_dir
    )


def check_config_datasets(config: ProHMRConfig, registry: DatasetRegistry) -> None:
    """Check that ``data.train``, ``data.val`` and ``data.mocap`` name registry entries of the
    right type (image sets; a mocap set, when the discriminator is on).

    Raises:
        ValueError: naming the config key, the name, the registry file and the valid names.
    """
    for name in config.data.train:
        registry.entry(name, key="data.train", kinds=("image",))
    for name in config.data.val:
        registry.entry(name, key="data.val", kinds=("image",))
    if config.data.mocap and config.model.discriminator:
        registry.entry(config.data.mocap, key="data.mocap", kinds=("mocap",))


def registry_entry(
    registry: DatasetRegistry, name: str, *, kinds: tuple[str, ...] = ()
) -> DatasetEntry:
    """The entry `name` of a dataset registry (`config_registry`), for the command-line tools.

    Raises:
        SystemExit: naming ``--dataset``, the name, the registry file and the valid names (of
            the wanted ``kinds``), if it is absent or of another type.
        FileNotFoundError: naming the file and the program that makes it, if it is absent.
    """
    try:
        entry = registry.entry(name, key="--dataset", kinds=kinds)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    entry.require_file()
    return entry


def load_prohmr_checkpoint(
    path: str | Path,
    *,
    device: torch.device,
    overrides: list[str] | None = None,
    precision: str = "fp32",
) -> tuple[ProHMR, ProHMRConfig]:
    """Rebuild the model of a training (or imported official) checkpoint.

    The checkpoint's stored config gives the model sizes and the body model; ``overrides``
    (``key=value``) change it, e.g. ``body.model_path=/data/smpl/SMPL_NEUTRAL.pkl`` for an
    imported official checkpoint evaluated with the real SMPL. The model itself is rebuilt by
    ``prohmr_model.loading.model_from_checkpoint`` (as ``prohmr_model.load`` does); what is added
    here is the program's side: relative run paths, overrides, and the synthetic world
    regenerated when the config names one (the evaluation programs read its datasets). The
    model runs in `precision` (``ProHMR.set_precision``: bf16 falls back to fp32 with a warning
    on a device without native bf16).

    Raises:
        FileNotFoundError: if the checkpoint does not exist.
        CheckpointError (a ValueError): naming the file, if it is unreadable, truncated, not a
            ProHMR checkpoint of this project (a bare state dict, a lifting checkpoint, ...), if
            its weights do not fit the model its config describes (missing, unexpected or
            mis-shaped keys) or its flow was never initialised.
        ConfigError (a ValueError): if its stored config is malformed.
    """
    from .config import _build, apply_overrides
    from .runtime import load_checkpoint

    state = load_checkpoint(path, kind="prohmr")
    config = _build(ProHMRConfig, state["config"], "", str(path))
    config = _resolve_run_paths(config, Path(path))
    config = apply_overrides(config, overrides or [])
    if config.synthetic is not None and config.body.model_path == "procedural":
        generate_synthetic_world(config.synthetic)
    model = model_from_checkpoint(
        state, path=path, body_model=body_model_from_config(config.body), model_config=config.model
    )
    model = model.to(device).eval()
    model.set_precision(precision)
    return model, config


def _resolve_run_paths(config: ProHMRConfig, checkpoint: Path) -> ProHMRConfig:
    """Relative world/body paths of a checkpoint resolve against the folder the run was started
    in (``<there>/<output_dir>/checkpoints/last.pt``) when they do not exist from here."""
    from dataclasses import replace

    output = Path(config.output_dir)
    run_dir = checkpoint.resolve().parent.parent
    if output.is_absolute() or run_dir.parts[-len(output.parts) :] != output.parts:
        return config
    base = Path(*run_dir.parts[: -len(output.parts)])

    def fix(value: str) -> str:
        candidate = Path(value)
        if value in ("", "procedural") or candidate.is_absolute() or "{" in value:
            return value
        if candidate.exists() or not (base / candidate).exists():
            return value
        return str(base / candidate)

    synthetic = config.synthetic
    if synthetic is not None:
        synthetic = replace(synthetic, output_dir=fix(synthetic.output_dir))
    body = replace(
        config.body,
        model_path=fix(config.body.model_path),
        extra_regressor_path=fix(config.body.extra_regressor_path),
        mean_params_path=fix(config.body.mean_params_path),
    )
    data = replace(config.data, registry=fix(config.data.registry))
    return replace(config, synthetic=synthetic, body=body, data=data)
