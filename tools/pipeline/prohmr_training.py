"""The ProHMR training loop (docs/training.md#training-step): manual generator/discriminator steps.

Per step: generator forward with mode + (N-1) samples, all losses of docs/training.md with the
configured weights, AdamW step; then the discriminator on this step's detached predictions and
a mocap batch. ActNorm is initialised on the first batch before the model is wrapped in DDP, so
every rank starts from rank 0's initialised weights. AMP (CUDA only) covers the backbone; the flow
head and the body model run in fp32.

Checkpoints (``<output>/checkpoints/last.pt`` every ``checkpoint_steps`` and at the end, written
atomically, never with non-finite values) hold the model, discriminator, both optimisers, the
grad scaler, the step, the config, the history of config changes allowed at resumes and every RNG
state; with the step-indexed data order (pipeline.data) ``--resume`` continues the run exactly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import pose_geometry as pg
import pose_losses as pl
from prohmr_model import to_device
from prohmr_model.losses import discriminator_inputs, gt_pose_6d, nll_targets, prohmr_loss
from prohmr_model.model import ProHMR, ProHMROutput

from .config import ProHMRConfig, config_to_dict
from .data import StepBatchSampler
from .run_guard import begin_training
from .runtime import (
    DistributedContext,
    capture_rng_state,
    check_finite,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
)

__all__ = ["TrainResult", "train_prohmr"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run did."""

    start_step: int
    end_step: int
    seconds: float
    checkpoint: Path | None
    losses: list[dict[str, float]]


def _loss_weights(config: ProHMRConfig) -> pl.LossWeights:
    weights = pl.LossWeights.prohmr()
    if config.train.loss_weights:
        weights = replace(weights, **config.train.loss_weights)
    return weights


def _mocap_loader(
    dataset: Any, batch_size: int, seed: int, start_step: int, ctx: DistributedContext
):
    """Endless mocap batches, index-deterministic per step like the image stream."""
    if dataset is None:
        return None
    total = len(dataset)

    class _Indexed(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2**62

        def __getitem__(self, index: int) -> Any:
            rng = np.random.default_rng([seed, 7, int(index)])
            return dataset[int(rng.integers(total))]

    sampler = StepBatchSampler(
        batch_size=batch_size,
        start_step=start_step,
        total_steps=2**40,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    return iter(DataLoader(_Indexed(), batch_sampler=sampler, num_workers=0))


def _quiet_worker(worker_id: int) -> None:
    """Data workers decode and warp with one OpenCV thread each (torch already uses one), so
    workers and the training step do not oversubscribe the cores."""
    import cv2

    cv2.setNumThreads(1)


def _unwrap(module: torch.nn.Module) -> Any:
    return module.module if isinstance(module, DistributedDataParallel) else module


def generator_step_losses(
    model: Any,
    discriminator: Any,
    batch: dict[str, Any],
    *,
    config: ProHMRConfig,
    num_samples: int,
    train: bool,
    generator: torch.Generator,
    autocast: bool,
) -> tuple[pl.CombinedLoss, ProHMROutput]:
    """Forward + every generator loss (incl. adversarial when a discriminator is given)."""
    device = batch["img"].device
    targets = nll_targets(
        batch,
        noise_std=config.train.smpl_param_noise if train else 0.0,
        generator=generator,
    )
    with torch.autocast(device_type=device.type, enabled=autocast):
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
    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / "checkpoints" / "last.pt"
    loss_log = output_dir / f"losses_rank{ctx.rank}.jsonl"
    model.to(device)
    if discriminator is not None:
        discriminator.to(device)
    use_amp = cfg.amp and device.type == "cuda"
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed * 1000 + ctx.rank)

    start_step = 0
    state = None
    if resume and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, kind="prohmr")
    history = begin_training(
        config_to_dict(config),
        state,
        kind="ProHMRConfig",
        checkpoint=checkpoint_path,
        loss_log=loss_log,
        config_path=output_dir / "config.yaml" if ctx.is_main else None,
        allow_config_change=allow_config_change,
        world_size=ctx.world_size,
    )
    if state is not None:
        load_model_state(model, state["model"], path=checkpoint_path, what="ProHMR model")
        if discriminator is not None:
            load_model_state(
                discriminator, state["discriminator"], path=checkpoint_path, what="discriminator"
            )
        start_step = int(state["step"])
    if start_step >= cfg.total_steps:
        return TrainResult(start_step, start_step, 0.0, checkpoint_path, [])

    sampler = StepBatchSampler(
        batch_size=cfg.batch_size,
        start_step=start_step,
        total_steps=cfg.total_steps,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    loader = DataLoader(
        train_data,
        batch_sampler=sampler,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        worker_init_fn=_quiet_worker,
    )
    batches = iter(loader)
    mocap = _mocap_loader(
        mocap_data, cfg.mocap_batch_multiplier * cfg.batch_size, cfg.seed, start_step, ctx
    )

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
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    if state is not None:
        opt_gen.load_state_dict(state["opt_gen"])
        if opt_disc is not None:
            opt_disc.load_state_dict(state["opt_disc"])
        scaler.load_state_dict(state["scaler"])
        if ctx.rank < len(state["rng"]):  # a rank added by an allowed world-size change: seeded
            restore_rng_state(state["rng"][ctx.rank], {"flow": generator})

    net: Any = model
    disc: Any = discriminator
    if ctx.distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
        if discriminator is not None:
            disc = DistributedDataParallel(discriminator, device_ids=ids)

    weights = _loss_weights(config)
    losses: list[dict[str, float]] = []
    started = time.perf_counter()
    bar = None
    if progress and ctx.is_main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.total_steps, initial=start_step, unit="step", dynamic_ncols=True)
    step = start_step
    last_checkpoint = None
    try:
        while step < cfg.total_steps:
            batch = first_batch if first_batch is not None else next(batches)
            first_batch = None
            batch = to_device(batch, device)
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
                autocast=use_amp,
            )
            logs = dict(combined.logs)
            check_finite(step, logs, list(batch["imgname"]), checkpoint=checkpoint_path)
            opt_gen.zero_grad(set_to_none=True)
            scaler.scale(combined.total).backward()
            scaler.step(opt_gen)
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
                check_finite(
                    step,
                    {"loss_disc": loss_disc.detach()},
                    list(batch["imgname"]),
                    checkpoint=checkpoint_path,
                )
                opt_disc.zero_grad(set_to_none=True)
                scaler.scale(weights.adversarial * loss_disc).backward()
                scaler.step(opt_disc)
            scaler.update()
            step += 1
            record = {"step": step, **{k: float(v) for k, v in logs.items()}}
            losses.append(record)
            with loss_log.open("a") as file:
                file.write(json.dumps(record) + "\n")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            if writer is not None and (step % cfg.log_steps == 0 or step == 1):
                for key, value in record.items():
                    if key != "step":
                        writer.add_scalar(f"train/{key}", value, step)
            if val_batch_fn is not None and ctx.is_main and step % cfg.val_steps == 0:
                _validate(model, discriminator, val_batch_fn, config, generator, writer, step)
            if log_image_fn is not None and ctx.is_main and step % cfg.image_log_steps == 0:
                log_image_fn(model, step)
            done = step >= cfg.total_steps or (
                stop_after_step is not None and step >= stop_after_step
            )
            if ctx.distributed and (step % cfg.checkpoint_steps == 0 or done):
                # DDP broadcasts rank 0's buffers (batch-norm statistics) at the start of each
                # forward; after the last step they still hold each rank's own update.
                _broadcast_buffers(model, discriminator)
            if step % cfg.checkpoint_steps == 0 or done:
                rng_states = _gather_rng(ctx, {"flow": generator})
                if ctx.is_main:
                    last_checkpoint = save_checkpoint(
                        checkpoint_path,
                        {
                            "step": step,
                            "model": model.state_dict(),
                            "discriminator": (
                                discriminator.state_dict() if discriminator is not None else {}
                            ),
                            "opt_gen": opt_gen.state_dict(),
                            "opt_disc": opt_disc.state_dict() if opt_disc is not None else {},
                            "scaler": scaler.state_dict(),
                            "config": config_to_dict(config),
                            "rng": rng_states,
                            "world_size": ctx.world_size,
                            "config_history": history,
                        },
                        require_finite=True,
                    )
            if stop_after_step is not None and step >= stop_after_step:
                break
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(start_step, step, time.perf_counter() - started, last_checkpoint, losses)


def _broadcast_buffers(*modules: torch.nn.Module | None) -> None:
    for module in modules:
        if module is None:
            continue
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)


def _gather_rng(ctx: DistributedContext, generators: dict[str, torch.Generator]) -> list[Any]:
    """Every rank's RNG states, indexed by rank (gathered to all ranks)."""
    mine = capture_rng_state(generators)
    if not ctx.distributed:
        return [mine]
    gathered: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(gathered, mine)
    return gathered


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
        autocast=False,
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
