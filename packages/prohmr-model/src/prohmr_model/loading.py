"""Rebuild a ProHMR model from this project's checkpoint: the one implementation of loading.

A ProHMR checkpoint (``prohmr_model.checkpoint``) holds the model's state dict under ``model``
and the config that built it under ``config``, with the sections ``model`` (`ModelConfig`),
``body`` (`BodyConfig`) and, from the training program, ``data`` (``image_size``: the crop side
the network was trained on), ``train``, ... Rebuilding needs the checkpoint and, when its body
is a real SMPL model, the SMPL files; nothing is downloaded. The mean-parameters file of the
body config is not read: it only initialises the FC head's ``init_betas`` / ``init_cam``
buffers, which the state dict overwrites.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pose_body import BodyModel

from .checkpoint import CheckpointError, load_checkpoint, load_model_state
from .config import BodyConfig, ConfigError, ModelConfig, config_from_dict
from .model import ProHMR, build_prohmr

__all__ = [
    "DEFAULT_CROP_SIZE",
    "body_model_from_config",
    "crop_size_from_config",
    "load_prohmr_model",
    "model_from_checkpoint",
    "resolve_body_model",
]

#: The crop side when a checkpoint's config does not say (the published model's 224 px).
DEFAULT_CROP_SIZE = 224

BodyModelLike = BodyModel | str | os.PathLike[str] | None


def body_model_from_config(body: BodyConfig) -> BodyModel:
    """The body model a config names: ``model_path: procedural`` is pose-body's procedural
    model (`BodyModel.procedural`); otherwise the SMPL file with the config's extra and
    Human3.6M regressor files (paths as given, relative ones from the working folder).

    Raises:
        FileNotFoundError, ValueError: from `BodyModel.from_files`, naming the file.
    """
    if body.model_path == "procedural":
        return BodyModel.procedural()
    return BodyModel.from_files(
        body.model_path,
        extra_regressor_path=body.extra_regressor_path,
        h36m_regressor_path=body.h36m_regressor_path or None,
    )


def resolve_body_model(
    body_model: BodyModelLike, body: BodyConfig, *, source: str = "the checkpoint"
) -> BodyModel:
    """The body model to use: ``body_model`` when given, else the one ``body`` names.

    Args:
        body_model: a `BodyModel`; the path of an SMPL file (``.pkl`` / ``.npz``), read with the
            extra and Human3.6M regressor files of ``body``; or None.
        body: the checkpoint's body config.
        source: what ``body`` came from, for messages.

    Raises:
        TypeError: naming ``body_model`` if it is neither a BodyModel, a path nor None.
        FileNotFoundError: naming the missing file, where it was named, and ``body_model=``.
    """
    if isinstance(body_model, BodyModel):
        return body_model
    if body_model is not None and not isinstance(body_model, str | os.PathLike):
        raise TypeError(
            "`body_model` must be a pose_body.BodyModel, the path of an SMPL file or None, got "
            f"{type(body_model).__name__}"
        )
    if body_model is not None:
        body = BodyConfig(
            model_path=os.fspath(body_model),
            extra_regressor_path=body.extra_regressor_path,
            h36m_regressor_path=body.h36m_regressor_path,
            mean_params_path=body.mean_params_path,
        )
        where = "`body_model`"
    else:
        where = f"{source}'s config (body.model_path)"
    try:
        return body_model_from_config(body)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error} (the body model of {where}, looked up from {Path.cwd()}); pass "
            "`body_model=` a pose_body.BodyModel or the path of an SMPL file"
        ) from None


def crop_size_from_config(config: Mapping[str, Any], *, source: str = "the checkpoint") -> int:
    """The crop side in pixels the network was trained on: the config's ``data.image_size``,
    or `DEFAULT_CROP_SIZE` when the config has no ``data`` section or no ``image_size``.

    Raises:
        ConfigError: naming ``source`` if ``data.image_size`` is not an integer >= 1.
    """
    data = config.get("data")
    if not isinstance(data, Mapping) or "image_size" not in data:
        return DEFAULT_CROP_SIZE
    size = data["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{source}: `data.image_size` must be an integer >= 1, got {size!r}")
    return size


def model_from_checkpoint(
    state: Mapping[str, Any],
    *,
    path: str | os.PathLike[str],
    body_model: BodyModel,
    model_config: ModelConfig | None = None,
) -> ProHMR:
    """Build the ProHMR model a loaded checkpoint describes and load its weights (strict).

    Args:
        state: what ``load_checkpoint(path, kind="prohmr")`` returned.
        path: the checkpoint, for messages.
        body_model: the body model to attach.
        model_config: the sizes to build (a program's config after its overrides); default
            the checkpoint's own ``config.model``.

    Returns:
        The model in eval mode, on the CPU.

    Raises:
        ConfigError (a ValueError): naming the file, if ``config.model`` is malformed.
        CheckpointError (a ValueError): naming the file, if the weights do not fit the model
            (missing, unexpected or mis-shaped keys) or its flow was never initialised.
    """
    if model_config is None:
        model_config = config_from_dict(
            ModelConfig, state["config"].get("model", {}), source=f"checkpoint {path}: model"
        )
    model = build_prohmr(model_config, body_model=body_model, load_weights=False)
    load_model_state(model, state["model"], path=path, what="ProHMR model")
    if not bool(model.initialized):
        raise CheckpointError(
            f"checkpoint {path}: the model's `initialized` flag is False (untrained flow)"
        )
    return model.eval()


def load_prohmr_model(
    path: str | os.PathLike[str], *, body_model: BodyModelLike = None
) -> tuple[ProHMR, dict[str, Any]]:
    """Read a ProHMR checkpoint of this project (weights only) and rebuild its model.

    Args:
        path: the ``.pt`` file (a training run's checkpoint, or an official checkpoint imported
            with the repository's ``tools/import_official_checkpoint.py``).
        body_model: see `resolve_body_model`; default the body of the checkpoint's config.

    Returns:
        (model in eval mode on the CPU, the checkpoint's stored config).

    Raises:
        FileNotFoundError: if the checkpoint or a body-model file does not exist.
        CheckpointError (a ValueError): naming the file, if it is unreadable, not a ProHMR
            checkpoint of this project, or its weights do not fit its config.
        ConfigError (a ValueError): if its stored config is malformed.
    """
    state = load_checkpoint(path, kind="prohmr")
    config = state["config"]
    body = config_from_dict(BodyConfig, config["body"], source=f"checkpoint {path}: body")
    body_model = resolve_body_model(body_model, body, source=f"checkpoint {path}")
    return model_from_checkpoint(state, path=path, body_model=body_model), dict(config)
