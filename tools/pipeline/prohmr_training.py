"""The ProHMR training loop (docs/training.md#training-step): manual generator/discriminator steps.

Per step: generator forward with mode + (N-1) samples, all losses of docs/training.md with the
configured weights, AdamW step; then the discriminator on this step's detached predictions and
a mocap batch. ActNorm is initialised on the first batch before the model is wrapped in DDP, so
every rank starts from rank 0's initialised weights. AMP (CUDA only) covers the backbone; the flow
head and the body model run in fp32.

Checkpoints (``<output>/checkpoints/last.pt`` every ``checkpoint_steps`` and at the end, written
atomically, never with non-finite values) hold the model, discriminator, both optimisers, the
grad scaler, the step, the config, the history of config changes allowed at resumes and every RNG
state; pipeline.training_run does this plumbing and the position-keyed data order with which
``--resume`` continues the run exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

import pose_geometry as pg
import pose_losses as pl
from prohmr_model import to_device
from prohmr_model.losses import discriminator_inputs, gt_pose_6d, nll_targets, prohmr_loss
from prohmr_model.model import ProHMR, ProHMROutput

from .config import ProHMRConfig
from .runtime import DistributedContext
from .training_run import TrainingRun, TrainResult

__all__ = ["TrainResult", "train_prohmr"]


def _loss_weights(config: ProHMRConfig) -> pl.LossWeights:
    weights = pl.LossWeights.prohmr()
    if config.train.loss_weights:
        weights = replace(weights, **config.train.loss_weights)
    return weights


def _quiet_worker(worker_id: int) -> None:
    """Data workers decode and warp with one OpenCV thread each (torch already uses one), so
    workers and the training step do not oversubscribe the cores."""
    import cv2

    cv2.setNumThreads(1)


def generator_step_losses(
    model: Any,
    discriminator: Any,
    batch: dict[str, Any],
    *,
    config: ProHMRConfig,
    num_samples: int,
    train: bool,
    generator: torch.Generator,
) -> tuple[pl.CombinedLoss, ProHMROutput]:
    """Forward + every generator loss (incl. adversarial when a discriminator is given).

    The model runs in its own precision (``ProHMR.set_precision``: the backbone under autocast);
    the losses are computed in float32."""
    targets = nll_targets(
        batch,
        noise_std=config.train.smpl_param_noise if train else 0.0,
        generator=generator,
    )
    output = model(
        batch["img"], num_samples=num_samples, generator=generator, target_pose_6d=targets
    )
    combined, _ = prohmr_loss(
        batch, output, weights=_loss_weights(config), discriminator=discriminator
    )
    return combined, output


def train_prohmr(
    config: ProHMRConfig,
    *,
    model: ProHMR,
    discriminator: pl.PoseDiscriminator | None,
    train_data: Any,
    mocap_data: Any,
    val_batch_fn: Callable[[], dict[str, Any]] | None,
    ctx: DistributedContext,
    resume: bool,
    log_image_fn: Callable[[ProHMR, int], None] | None = None,
    writer: Any = None,
    progress: bool = True,
    stop_after_step: int | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Train (or resume) until ``config.train.total_steps``.

    Args:
        model, discriminator: freshly built modules on the CPU (moved to ``ctx.device`` here).
        train_data: index-deterministic mixture (pose_data.MixedDataset).
        mocap_data: dataset of {'body_pose' (69,), 'betas' (10,)} or None.
        val_batch_fn: returns one validation batch (on the CPU) or None to skip validation.
        ctx: distributed context (rank, world size, device).
        resume: continue from ``<output_dir>/checkpoints/last.pt`` if it exists.
        log_image_fn: called on the main rank every ``image_log_steps`` with (model, step).
        writer: TensorBoard SummaryWriter (main rank) or None.
        stop_after_step: stop (with a checkpoint) after this step, for tests and time limits.
        allow_config_change: resume even when the config differs from the checkpoint's in keys
            that change the result (pipeline.run_guard.RESULT_NEUTRAL_KEYS lists the others);
            the change is recorded in the checkpoints and config.yaml.

    Before training, the config is checked against the checkpoint's, this rank's loss log is
    cut back to the checkpoint's step (each step once) and the main rank writes config.yaml.
    Call it while holding the output folder's lock (pipeline.run_guard.open_run_folder).

    Raises:
        ResumeConfigError: resuming with result-changing config differences, not allowed.
        NonFiniteLossError: a loss became non-finite (the message says what the last
            checkpoint holds); NonFiniteWeightsError: the weights did, at a checkpoint (which
            is then not written).
    """
    cfg = config.train
    device = ctx.device
    model.to(device)
    if discriminator is not None:
        discriminator.to(device)
    precision = model.set_precision(cfg.precision)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed * 1000 + ctx.rank)
    run = TrainingRun(
        config,
        kind="prohmr",
        ctx=ctx,
        resume=resume,
        total_steps=cfg.total_steps,
        checkpoint_steps=cfg.checkpoint_steps,
        loss_log=Path(config.output_dir) / f"losses_rank{ctx.rank}.jsonl",
        scale_losses=precision == "fp16",
        progress=progress,
        stop_after_step=stop_after_step,
        allow_config_change=allow_config_change,
    )
    run.track(model=model, discriminator=discriminator)
    if not run.running:
        return run.result()
    batches = run.batches(
        train_data,
        cfg.batch_size,
        seed=cfg.seed,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_quiet_worker,
    )
    mocap = None
    if mocap_data is not None:
        mocap = run.batches(mocap_data, cfg.mocap_batch_multiplier * cfg.batch_size, seed=cfg.seed)

    # ActNorm initialisation on the first batch (before DDP broadcasts rank 0's weights).
    first_batch = None
    if not bool(model.initialized):
        first_batch = to_device(next(batches), device)
        model.train()
        with torch.no_grad():
            features = model.features(first_batch["img"]).float()
            valid = first_batch["has_smpl_params"]["body_pose"].bool()
            model.initialize_flow(features, gt_pose_6d(first_batch["smpl_params"]), valid)

    gen_params = [p for p in model.parameters() if p.requires_grad]
    opt_gen = torch.optim.AdamW(gen_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_disc = (
        torch.optim.AdamW(discriminator.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if discriminator is not None
        else None
    )
    run.track(opt_gen=opt_gen, opt_disc=opt_disc)
    run.track_rng(flow=generator)

    net: Any = model
    disc: Any = discriminator
    if ctx.distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
        if discriminator is not None:
            disc = DistributedDataParallel(discriminator, device_ids=ids)

    weights = _loss_weights(config)
    with run:
        while run.running:
            batch = first_batch if first_batch is not None else next(batches)
            first_batch = None
            batch = to_device(batch, device)
            names = list(batch["imgname"])
            net.train()
            # The generator's adversarial term uses the plain discriminator: its gradients on
            # the discriminator are discarded (zero_grad below), so they need no all-reduce.
            combined, output = generator_step_losses(
                net,
                discriminator,
                batch,
                config=config,
                num_samples=cfg.num_train_samples,
                train=True,
                generator=generator,
            )
            logs = dict(combined.logs)
            run.check_finite(logs, names)
            run.optimizer_step(combined.total, opt_gen)
            if disc is not None and mocap is not None:
                real = to_device(next(mocap), device)
                real_pose = pg.axis_angle_to_rotmat(real["body_pose"].float().reshape(-1, 23, 3))
                body_pose, betas = discriminator_inputs(output)
                # one call for fake and real (no batch-dependent layers): one DDP forward
                scores = disc(
                    torch.cat([body_pose.detach(), real_pose]),
                    torch.cat([betas.detach(), real["betas"].float()]),
                )
                fake_scores, real_scores = scores[: len(body_pose)], scores[len(body_pose) :]
                loss_disc = pl.lsgan_discriminator_loss(real_scores, fake_scores)
                logs["loss_disc"] = loss_disc.detach()
                run.check_finite({"loss_disc": loss_disc.detach()}, names)
                run.optimizer_step(weights.adversarial * loss_disc, opt_disc)
            record = run.end_step(logs)
            step = run.step
            if writer is not None and (step % cfg.log_steps == 0 or step == 1):
                for key, value in record.items():
                    if key != "step":
                        writer.add_scalar(f"train/{key}", value, step)
            if val_batch_fn is not None and ctx.is_main and step % cfg.val_steps == 0:
                _validate(model, discriminator, val_batch_fn, config, generator, writer, step)
            if log_image_fn is not None and ctx.is_main and step % cfg.image_log_steps == 0:
                log_image_fn(model, step)
            if run.checkpoint_due:
                if ctx.distributed:
                    # DDP broadcasts rank 0's buffers (batch-norm statistics) at the start of
                    # each forward; after the last step they still hold each rank's own update.
                    _broadcast_buffers(model, discriminator)
                run.save()
    return run.result()


def _broadcast_buffers(*modules: torch.nn.Module | None) -> None:
    for module in modules:
        if module is None:
            continue
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)


@torch.no_grad()
def _validate(
    model: ProHMR,
    discriminator: Any,
    val_batch_fn: Callable[[], dict[str, Any]],
    config: ProHMRConfig,
    generator: torch.Generator,
    writer: Any,
    step: int,
) -> dict[str, float]:
    """One validation batch with ``num_val_samples`` (docs/training.md#training-step)."""
    device = next(model.parameters()).device
    state = generator.get_state()
    batch = to_device(val_batch_fn(), device)
    model.eval()
    combined, _ = generator_step_losses(
        model,
        None,
        batch,
        config=config,
        num_samples=config.train.num_val_samples,
        train=False,
        generator=generator,
    )
    generator.set_state(state)  # validation must not change the training stream
    model.train()
    logs = {k: float(v) for k, v in combined.logs.items()}
    if writer is not None:
        for key, value in logs.items():
            writer.add_scalar(f"val/{key}", value, step)
    if not all(math.isfinite(v) for v in logs.values()):
        raise RuntimeError(f"non-finite validation loss at step {step}: {logs}")
    return logs
