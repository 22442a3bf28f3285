"""The three-line API: load a checkpoint, regress bodies in images, fit them to 2D keypoints.

    import prohmr_model
    model = prohmr_model.load("checkpoint.pt")
    result = model.predict("photo.jpg", box=(x, y, w, h), num_samples=16)
    fitted = model.fit("photo.jpg", keypoints_2d=person)

Inputs: an image is a file path or an (H, W, 3) uint8 RGB array; the person is a box
``(x, y, w, h)`` in image pixels (the crop is a square of 1.2 x its longer side, centred on it,
as the demo), or OpenPose keypoints (the square box 1.2 x their extent). The crop is the one the
datasets and the demo make (``pose_data``'s affine crop, ImageNet normalisation), at the crop
size the checkpoint was trained on (its config's ``data.image_size``, else 224).

Outputs are in the frame of the FULL image: a pinhole camera with the principal point at the
image centre and the focal length ``5000 px · max(W, H) / 224`` (the model's 5000-px camera on
its 224-px virtual crop, scaled to the image's longer side), or the one given with
``focal_length=``. The crop's weak-perspective camera becomes a translation in that camera with
``pose_geometry.crop_camera_to_full_frame_translation``; keypoints_2d are the projections of
keypoints_3d + camera_translation, in image pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import pose_data as pdata
import pose_geometry as pg
from pose_body import BodyModel
from pose_fitting import FittingCamera, KeypointFittingOptions, SequenceFittingOptions

from .fitting import fit_mode, fit_sequence, freeze, keypoint_error, mesh_vertices
from .loading import BodyModelLike, crop_size_from_config, load_prohmr_model
from .model import VIRTUAL_CROP_PX, ProHMR, ProHMROutput

__all__ = ["DEFAULT_BOX_RESCALE", "FitResult", "Prediction", "Predictor", "load"]

#: Box side = this x the longer side of a given box, or of the keypoints' extent (as the demo).
DEFAULT_BOX_RESCALE = 1.2
#: Outer L-BFGS iterations of `Predictor.fit` (the original demo's 10).
DEFAULT_FIT_ITERATIONS = 10
#: Outer L-BFGS iterations of `Predictor.fit_sequence` (a sequence has T times the variables).
DEFAULT_SEQUENCE_FIT_ITERATIONS = 30


def load(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    body_model: BodyModelLike = None,
    precision: str = "fp32",
) -> Predictor:
    """Load a ProHMR checkpoint of this project (weights only) as a `Predictor`.

    Args:
        path: a training run's checkpoint, or an official ProHMR checkpoint imported with the
            repository's ``tools/import_official_checkpoint.py``.
        device: where the model runs ("cpu", "cuda", "cuda:1", a torch.device).
        body_model: a ``pose_body.BodyModel`` or the path of an SMPL file (read with the extra
            and H36M regressor files of the checkpoint's config); default the body model the
            checkpoint's config names ("procedural": pose-body's procedural model, no file).
        precision: "fp32", "bf16" or "fp16" (``ProHMR.set_precision``; bf16 falls back to
            fp32 with a warning where the device has no native bf16).

    Raises:
        FileNotFoundError: if the checkpoint or a body-model file does not exist.
        CheckpointError (a ValueError): naming the file, if it is unreadable, not a ProHMR
            checkpoint of this project, or its weights do not fit its config.
        ConfigError (a ValueError): if its stored config is malformed.
    """
    model, config = load_prohmr_model(path, body_model=body_model)
    crop_size = crop_size_from_config(config, source=f"checkpoint {path}")
    predictor = Predictor(model, crop_size=crop_size, device=device, config=config)
    predictor.model.set_precision(precision)
    return predictor


@dataclass(frozen=True)
class Prediction:
    """Bodies regressed (or fitted) in images, in the full image's camera frame.

    Shapes are for a single image; a list of images adds a leading image axis B (and
    ``result[i]`` is image i's result, as if it had been given alone). N is the number of
    samples, sample 0 the mode (z = 0). Tensors are on the predictor's device.

    Attributes:
        global_orient: (N, 3, 3) rotation matrix of the body (SMPL's root), camera axes.
        body_pose: (N, 23, 3, 3) rotation matrices of SMPL's 23 body joints (parent-relative).
        global_orient_axis_angle: (N, 3) the same as axis-angle vectors (radians).
        body_pose_axis_angle: (N, 69) the same, SMPL's flat layout (23 joints x 3).
        betas: (N, 10) SMPL shape coefficients.
        keypoints_3d: (N, 44, 3) metres, camera axes (x right, y down, z forward), before the
            translation: the body's own frame as the network predicts it. The 44-keypoint
            layout of ``pose_geometry.KEYPOINT_NAMES_44`` (0..24 OpenPose BODY_25).
        camera_translation: (N, 3) metres: ``keypoints_3d + camera_translation`` are the
            keypoints in the camera frame of the full image.
        keypoints_2d: (N, 44, 2) pixels of the full image (x right, y down).
        log_prob: (N,) log-density of each sample's pose under the image-conditioned flow
            (nats).
        z: (N, 144) the flow's latent of each sample (0 for the mode).
        crop_camera: (N, 3) the weak-perspective camera (s, tx, ty) on the crop.
        focal_length: () the focal length in image pixels used for the full frame.
        image_size: (2,) the image's (width, height) in pixels.
        box_center: (2,) centre of the square crop box, image pixels.
        box_size: () side of the square crop box, image pixels.
        vertices: (N, 6890, 3) metres, the body frame of keypoints_3d; None unless asked for.
        batched: True for the result of a list of images.
    """

    global_orient: Tensor
    body_pose: Tensor
    global_orient_axis_angle: Tensor
    body_pose_axis_angle: Tensor
    betas: Tensor
    keypoints_3d: Tensor
    camera_translation: Tensor
    keypoints_2d: Tensor
    log_prob: Tensor
    z: Tensor
    crop_camera: Tensor
    focal_length: Tensor
    image_size: Tensor
    box_center: Tensor
    box_size: Tensor
    vertices: Tensor | None = None
    batched: bool = field(default=False, kw_only=True)

    def __len__(self) -> int:
        if not self.batched:
            raise TypeError("a single image's result has no image axis (len() is for lists)")
        return int(self.box_size.shape[0])

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        faces: Tensor | None = None,
        samples: bool = False,
    ) -> list[Path]:
        """Write this image's bodies in the full image's camera frame (``prohmr_model.export``).

        ``<path>.npz`` and ``<path>.json``: the SMPL parameters (smplx names: global_orient,
        body_pose, betas, transl; the camera's focal_length and image_size; keypoints); with
        ``faces`` (``Predictor.faces``) also ``<path>.obj`` (needs ``return_vertices=True``).
        ``samples=True`` writes every sample: records with a leading N axis and
        ``<path>_sample001.obj``...; otherwise the mode only.

        Returns:
            The written paths.

        Raises:
            TypeError: for a list of images' result (save ``result[i]``).
            ValueError: if ``faces`` is given but the prediction has no vertices.
        """
        from .export import prediction_record, save_meshes, save_params

        if self.batched:
            raise TypeError("save one image's result at a time: `result[i].save(...)`")
        written = list(save_params(path, prediction_record(self, samples=samples)))
        if faces is not None:
            if self.vertices is None:
                raise ValueError("no vertices to save: predict with return_vertices=True")
            pick = slice(None) if samples else slice(0, 1)
            written += save_meshes(
                path, self.vertices[pick].cpu(), self.camera_translation[pick].cpu(), faces.cpu()
            )
        return written

    def __getitem__(self, index: int) -> Prediction:
        """Image ``index``'s result of a list of images."""
        if not self.batched:
            raise TypeError("a single image's result has no image axis to index")
        values = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "batched":
                value = False
            elif isinstance(value, Tensor | tuple):
                value = value[index]
            values[item.name] = value
        return type(self)(**values)


@dataclass(frozen=True)
class FitResult(Prediction):
    """`Predictor.fit`'s result: one sample (N = 1), the fit, plus what the fit did.

    Attributes:
        keypoint_error_before: () mean distance in image pixels between the regression's mode
            and the target keypoints (those with confidence > 0).
        keypoint_error_after: () the same for the fit.
        iterations: () outer L-BFGS iterations done.
        stopping: why the fit stopped ("relative_change", "max_iterations", ...; a tuple of
            one reason per image for a list of images).
    """

    keypoint_error_before: Tensor = field(kw_only=True)
    keypoint_error_after: Tensor = field(kw_only=True)
    iterations: Tensor = field(kw_only=True)
    stopping: str | tuple[str, ...] = field(kw_only=True)


@dataclass(frozen=True)
class _Person:
    """One image to process: RGB pixels, the crop box, the OpenPose keypoints if any."""

    rgb: np.ndarray
    center: np.ndarray
    size: float
    keypoints: np.ndarray | None  # (44, 3) image pixels + confidence


class Predictor:
    """A loaded ProHMR model with ``predict`` and ``fit`` on images (see the module docstring).

    Args:
        model: the ProHMR model (frozen here: eval mode, no parameter gradients).
        crop_size: the crop side in pixels the network was trained on.
        device: where it runs.
        config: the checkpoint's stored config (kept for reference).
    """

    def __init__(
        self,
        model: ProHMR,
        *,
        crop_size: int = 224,
        device: str | torch.device = "cpu",
        config: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, ProHMR):
            raise TypeError(f"`model` must be a ProHMR, got {type(model).__name__}")
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f"`crop_size` must be an integer >= 1, got {crop_size!r}")
        self.device = torch.device(device)
        self.model = freeze(model.to(self.device))
        self.crop_size = crop_size
        self.config = config or {}

    @property
    def body_model(self) -> BodyModel:
        return self.model.body_model

    @property
    def faces(self) -> Tensor:
        """(F, 3) int64 triangles of the body mesh (for rendering ``vertices``)."""
        return self.model.body_model.faces

    def to(self, device: str | torch.device) -> Predictor:
        """Move the model to ``device``; returns self."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @torch.no_grad()
    def predict(
        self,
        image: Any,
        *,
        box: Any = None,
        keypoints_2d: Any = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        return_vertices: bool = False,
        focal_length: float | None = None,
        rescale: float = DEFAULT_BOX_RESCALE,
    ) -> Prediction:
        """Regress N bodies per image: the mode (sample 0) and N - 1 samples from the flow.

        Args:
            image: a path, an (H, W, 3) uint8 RGB array, or a list of them.
            box: (x, y, w, h) of the person in image pixels (a list of them, or of None, for
                a list of images); default: from ``keypoints_2d``, else the whole image.
            keypoints_2d: the person's OpenPose keypoints: a (25, 3) BODY_25 array (x, y,
                confidence) in image pixels, a (44, 3) array in the 44-keypoint layout, or a
                ``pose_data.OpenPoseFrame`` with one person (a list for a list of images).
                Used for the box when ``box`` is not given.
            num_samples: N >= 1.
            generator: random source of the samples (on the predictor's device), or ``seed``
                to make one. The samples of an image depend on the others drawn with it; the
                mode does not.
            return_vertices: also return the (N, 6890, 3) mesh vertices.
            focal_length: the full image's focal length in pixels; default
                ``5000 · max(W, H) / 224``.
            rescale: box side = rescale x the longer side of the box or keypoint extent.

        Raises:
            FileNotFoundError: naming ``image`` if a path does not exist.
            TypeError, ValueError: naming the argument (``image``, ``box``, ``keypoints_2d``,
                ``num_samples``, ...) when it is not what is described above.
        """
        _check_count("num_samples", num_samples)
        generator = self._generator(generator, seed)
        people, batched = self._people(image, box, keypoints_2d, rescale)
        focal = self._focal(people, focal_length)
        output = self._regress(people, num_samples, generator)
        translation = _full_frame_translation(output.camera.float(), people, focal, self.device)
        vertices = None
        if return_vertices:
            vertices = mesh_vertices(
                self.body_model, output.global_orient, output.body_pose, output.betas
            )
        result = _prediction(
            people,
            focal,
            global_orient=output.global_orient[:, :, 0],
            body_pose=output.body_pose,
            betas=output.betas,
            keypoints_3d=output.keypoints_3d,
            translation=translation,
            log_prob=output.log_prob,
            z=output.z,
            crop_camera=output.camera,
            vertices=vertices,
            device=self.device,
        )
        return result if batched else result[0]

    def fit(
        self,
        image: Any,
        *,
        keypoints_2d: Any,
        box: Any = None,
        max_iterations: int = DEFAULT_FIT_ITERATIONS,
        options: KeypointFittingOptions | None = None,
        return_vertices: bool = False,
        focal_length: float | None = None,
        rescale: float = DEFAULT_BOX_RESCALE,
    ) -> FitResult:
        """Fit the body to 2D keypoints with the image-conditioned prior (ProHMR's fitting).

        The regression's mode starts the fit; L-BFGS then optimises the flow's latent z (prior
        ``‖z‖²``), the betas (prior ``‖β‖²``) and the camera translation against the
        keypoints (Geman–McClure, weighted by confidence), in the full image's camera.

        Args:
            image: as for `predict`.
            keypoints_2d: the targets, as for `predict` (required).
            box: as for `predict`; default from the keypoints.
            max_iterations: outer L-BFGS iterations at most (overrides ``options``').
            options: pose-fitting's ``KeypointFittingOptions`` (prior weights, robust scale,
                ``use_hips``, ...); default ProHMR's.
            return_vertices, focal_length, rescale: as for `predict`.

        Raises:
            As `predict`; ValueError naming ``keypoints_2d`` if it is missing.
        """
        if keypoints_2d is None:
            raise ValueError("`keypoints_2d` is required: fit() fits the body to 2D keypoints")
        _check_count("max_iterations", max_iterations)
        options = KeypointFittingOptions() if options is None else options
        stopping = replace(options.stopping, max_iterations=max_iterations)
        options = replace(options, stopping=stopping)
        people, batched = self._people(image, box, keypoints_2d, rescale)
        missing = [i for i, person in enumerate(people) if person.keypoints is None]
        if missing:
            raise ValueError(
                f"`keypoints_2d[{missing[0]}]` is None: fit() fits every image to its keypoints"
            )

        def run(output: ProHMROutput, targets: Tensor, camera: FittingCamera):
            fit = fit_mode(self.model, output, targets, camera, options=options)
            return fit, fit.report.iterations, tuple(fit.report.reasons)

        result = self._fit_people(people, focal_length, run, return_vertices)
        return result if batched else result[0]

    def fit_sequence(
        self,
        images: Sequence[Any],
        *,
        keypoints_2d: Sequence[Any],
        box: Sequence[Any] | None = None,
        smoothness_weight: float | None = None,
        max_iterations: int = DEFAULT_SEQUENCE_FIT_ITERATIONS,
        options: SequenceFittingOptions | None = None,
        return_vertices: bool = False,
        focal_length: float | None = None,
        rescale: float = DEFAULT_BOX_RESCALE,
    ) -> FitResult:
        """Fit one person through T consecutive frames jointly (docs/fitting.md#temporal-fitting).

        As `fit` for every frame (the regression's mode starts it; z, camera translation and the
        keypoint term per frame, in each full image's camera), but the betas are shared by all
        frames and a smoothness term penalises the accelerations of the 3D keypoints
        (pose-fitting's ``fit_keypoints_sequence``).

        Args:
            images: T >= 3 frames in order (paths or (H, W, 3) uint8 RGB arrays).
            keypoints_2d: T entries as for `fit` (one person per frame); an entry may be None
                for a frame where the person was not detected (give that frame's ``box``; the
                default is the whole image): the frame is then fitted from its image, the
                priors and its neighbours.
            box: T boxes (x, y, w, h) or None entries; default from the keypoints.
            smoothness_weight: weight of the squared accelerations (overrides ``options``').
            max_iterations: outer L-BFGS iterations at most (overrides ``options``').
            options: pose-fitting's ``SequenceFittingOptions``; default: smoothness 100,
                shared betas, ProHMR's per-frame terms.
            return_vertices, focal_length, rescale: as for `predict`.

        Returns:
            A `FitResult` with a leading frame axis T (``result[t]`` is frame t); every frame
            reports its own 2D errors before and after, and the sequence's iterations and
            stopping reason.

        Raises:
            As `fit`; ValueError naming ``images`` or ``keypoints_2d`` for fewer than 3 frames
            or lists of other lengths.
        """
        if not isinstance(images, list | tuple):
            raise TypeError(f"`images` must be a list of frames, got {type(images).__name__}")
        if len(images) < 3:
            raise ValueError(
                f"`images` must hold at least 3 frames (the smoothness term needs three), got "
                f"{len(images)}"
            )
        if not isinstance(keypoints_2d, list | tuple) or len(keypoints_2d) != len(images):
            got = len(keypoints_2d) if isinstance(keypoints_2d, list | tuple) else None
            raise ValueError(
                f"`keypoints_2d` must be a list of {len(images)} entries (one per frame), got "
                f"{type(keypoints_2d).__name__}" + (f" of length {got}" if got is not None else "")
            )
        _check_count("max_iterations", max_iterations)
        options = SequenceFittingOptions() if options is None else options
        if not isinstance(options, SequenceFittingOptions):
            raise TypeError(
                f"`options` must be a SequenceFittingOptions, got {type(options).__name__}"
            )
        stopping = replace(options.frame.stopping, max_iterations=max_iterations)
        options = replace(options, frame=replace(options.frame, stopping=stopping))
        if smoothness_weight is not None:
            options = replace(options, smoothness_weight=smoothness_weight)
        people, _ = self._people(list(images), box, list(keypoints_2d), rescale)
        frames = len(people)

        def run(output: ProHMROutput, targets: Tensor, camera: FittingCamera):
            fit = fit_sequence(self.model, output, targets, camera, options=options)
            iterations = fit.report.iterations.expand(frames)
            return fit, iterations, tuple(fit.report.reasons) * frames

        return self._fit_people(people, focal_length, run, return_vertices)

    def _fit_people(
        self,
        people: list[_Person],
        focal_length: float | None,
        run: Callable[[ProHMROutput, Tensor, FittingCamera], tuple[Any, Tensor, tuple[str, ...]]],
        return_vertices: bool,
    ) -> FitResult:
        """Regress, fit with ``run`` (a fit of B frames with fit_keypoints' result fields) and
        make the batched `FitResult`."""
        focal = self._focal(people, focal_length)
        with torch.no_grad():
            output = self._regress(people, 1, None)
        targets = torch.from_numpy(
            np.stack([np.zeros((44, 3), np.float32) if p.keypoints is None else p.keypoints
                      for p in people])
        ).to(self.device)  # fmt: skip
        centers, sizes, image_sizes = _boxes(people, self.device)
        camera_in = output.camera[:, 0].float()
        _check_scale(camera_in[:, None], people)
        camera = FittingCamera.full_frame(
            camera_in,
            box_center_px=centers,
            box_size_px=sizes,
            image_size_px=image_sizes,
            focal_length_px=focal,
        )
        fit, iterations, reasons = run(output, targets, camera)
        with torch.no_grad():
            mode_projected = pg.project_points(
                output.keypoints_3d[:, 0].float(),
                focal_px=camera.focal_px,
                center_px=camera.center_px,
                translation=camera.translation,
            )
            refit = self.model.decode(output.features, num_samples=1, z=fit.z[:, None])
            vertices = None
            if return_vertices:
                vertices = mesh_vertices(
                    self.body_model, fit.global_orient, fit.body_pose, fit.betas
                )[:, None]
            crop_camera = _crop_camera(fit.camera_translation, centers, sizes, image_sizes, focal)
        result = _prediction(
            people,
            focal,
            global_orient=fit.global_orient,
            body_pose=fit.body_pose[:, None],
            betas=fit.betas[:, None],
            keypoints_3d=fit.keypoints_3d[:, None],
            translation=fit.camera_translation[:, None],
            log_prob=refit.log_prob,
            z=fit.z[:, None],
            crop_camera=crop_camera[:, None],
            vertices=vertices,
            device=self.device,
            keypoints_2d=fit.projected_keypoints_2d[:, None],
        )
        return FitResult(
            **{item.name: getattr(result, item.name) for item in fields(result)},
            keypoint_error_before=keypoint_error(mode_projected, targets),
            keypoint_error_after=keypoint_error(fit.projected_keypoints_2d, targets),
            iterations=iterations.to(self.device),
            stopping=reasons,
        )

    # -- inputs ----------------------------------------------------------------------------------

    def _generator(
        self, generator: torch.Generator | None, seed: int | None
    ) -> torch.Generator | None:
        if generator is not None and seed is not None:
            raise ValueError("give `generator` or `seed`, not both")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
            return torch.Generator(device=self.device).manual_seed(seed)
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise TypeError(
                    f"`generator` must be a torch.Generator, got {type(generator).__name__}"
                )
            if generator.device.type != self.device.type:
                raise ValueError(
                    f"`generator` is on {generator.device}, the model on {self.device}: make it "
                    f"with torch.Generator(device={str(self.device)!r})"
                )
        return generator

    def _people(
        self, image: Any, box: Any, keypoints_2d: Any, rescale: float
    ) -> tuple[list[_Person], bool]:
        if isinstance(rescale, bool) or not _finite_number(rescale) or rescale <= 0:
            raise ValueError(f"`rescale` must be a finite number > 0, got {rescale!r}")
        batched = isinstance(image, list | tuple)
        images = list(image) if batched else [image]
        if not images:
            raise ValueError("`image` is an empty list: give at least one image")
        boxes = _per_image("box", box, len(images), batched)
        people = _per_image("keypoints_2d", keypoints_2d, len(images), batched)
        out = []
        for i, (value, box_i, person_i) in enumerate(zip(images, boxes, people, strict=True)):
            suffix = f"[{i}]" if batched else ""
            rgb = _read_rgb(value, f"image{suffix}")
            keypoints = None
            if person_i is not None:
                keypoints = _keypoints_44(person_i, f"keypoints_2d{suffix}")
            if box_i is not None:
                center, size = _square_box(box_i, f"box{suffix}", rescale)
            elif keypoints is not None:
                centers, sizes, has_box = pdata.openpose_boxes(keypoints[None], rescale=rescale)
                if not has_box[0]:
                    raise ValueError(
                        f"`keypoints_2d{suffix}` has fewer than two keypoints with confidence > 0 "
                        "(or they all coincide): no box can be made from it; give `box=`"
                    )
                center, size = centers[0].astype(np.float64), float(sizes[0])
            else:
                height, width = rgb.shape[:2]
                center, size = np.array([width / 2.0, height / 2.0]), float(max(width, height))
            out.append(_Person(rgb=rgb, center=center, size=size, keypoints=keypoints))
        return out, batched

    def _focal(self, people: list[_Person], focal_length: float | None) -> Tensor:
        """(B,) focal length of each full image in pixels."""
        if focal_length is None:
            sides = [max(p.rgb.shape[:2]) for p in people]
            values = [self.model.focal_length * side / VIRTUAL_CROP_PX for side in sides]
        elif isinstance(focal_length, bool) or not _finite_number(focal_length):
            raise ValueError(f"`focal_length` must be a finite number > 0, got {focal_length!r}")
        elif focal_length <= 0:
            raise ValueError(f"`focal_length` must be a finite number > 0, got {focal_length!r}")
        else:
            values = [float(focal_length)] * len(people)
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    def _regress(
        self, people: list[_Person], num_samples: int, generator: torch.Generator | None
    ) -> ProHMROutput:
        crops = []
        for person in people:
            matrix = pdata.crop_affine_matrix(
                person.center, person.size, output_size=self.crop_size
            )
            crop = pdata.crop_image(person.rgb, matrix, output_size=self.crop_size)
            crops.append(pdata.normalize_image(crop))
        images = torch.from_numpy(np.stack(crops)).to(self.device)
        features = self.model.features(images).float()
        return self.model.decode(features, num_samples=num_samples, generator=generator)


# -- helpers ---------------------------------------------------------------------------------------


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")


def _per_image(name: str, value: Any, count: int, batched: bool) -> list[Any]:
    """One entry per image: ``value`` itself for one image, its items for a list of images."""
    if not batched:
        return [value]
    if value is None:
        return [None] * count
    if not isinstance(value, list | tuple | np.ndarray) or len(value) != count:
        got = f"a {type(value).__name__}" + (
            f" of length {len(value)}" if isinstance(value, list | tuple | np.ndarray) else ""
        )
        raise ValueError(
            f"for a list of {count} images, `{name}` must be a list of {count} entries (one per "
            f"image, None for none), got {got}"
        )
    if name == "box" and all(_finite_number(v) for v in value):
        raise ValueError(
            f"for a list of images, `box` must be a list of one (x, y, w, h) per image, got the "
            f"single box {tuple(value)}"
        )
    return list(value)


def _read_rgb(value: Any, name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of a path or an array."""
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        try:
            bgr = pdata.read_image(str(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"`{name}`: no image file {path}") from None
        except ValueError as error:
            raise ValueError(f"`{name}`: {error}") from None
        return np.ascontiguousarray(bgr[..., ::-1])
    if isinstance(value, np.ndarray):
        if value.ndim != 3 or value.shape[2] != 3 or value.dtype != np.uint8:
            raise ValueError(
                f"`{name}` must be an (H, W, 3) uint8 RGB array, got shape {value.shape} dtype "
                f"{value.dtype}"
            )
        if value.shape[0] < 1 or value.shape[1] < 1:
            raise ValueError(f"`{name}` is empty (shape {value.shape})")
        return value
    raise TypeError(
        f"`{name}` must be an image path or an (H, W, 3) uint8 RGB numpy array, got "
        f"{type(value).__name__}"
    )


def _square_box(box: Any, name: str, rescale: float) -> tuple[np.ndarray, float]:
    """(x, y, w, h) -> the square crop box: centre, side = rescale x max(w, h)."""
    try:
        values = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape != (4,) or not np.all(np.isfinite(values)) or min(values[2:]) <= 0:
        raise ValueError(
            f"`{name}` must be (x, y, w, h) in image pixels: 4 finite numbers with w, h > 0, got "
            f"{box!r}"
        )
    x, y, w, h = values
    return np.array([x + w / 2.0, y + h / 2.0]), rescale * float(max(w, h))


def _keypoints_44(person: Any, name: str) -> np.ndarray:
    """(44, 3) float32 keypoints (image pixels, confidence) of an OpenPose person."""
    if isinstance(person, pdata.OpenPoseFrame):
        if len(person) != 1:
            raise ValueError(
                f"`{name}` is an OpenPose frame of {len(person)} people ({person.source}); give "
                "one person: frame.keypoints[i]"
            )
        person = person.keypoints[0]
    if isinstance(person, Tensor):
        person = person.detach().cpu().numpy()
    try:
        array = np.asarray(person, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a (25, 3) OpenPose BODY_25 array or (44, 3) keypoints, got "
            f"{type(person).__name__}"
        ) from None
    if array.shape not in ((25, 3), (44, 3)):
        raise ValueError(
            f"`{name}` must be a (25, 3) OpenPose BODY_25 array (x, y, confidence) or (44, 3) "
            f"keypoints in the 44-keypoint layout, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array[:, 2] < 0):
        raise ValueError(f"`{name}` must be finite with confidences >= 0")
    if array.shape[0] == 44:
        return array
    keypoints = np.zeros((44, 3), dtype=np.float32)
    keypoints[list(pg.BODY25_TO_44)] = array
    return keypoints


def _boxes(people: Sequence[_Person], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(B, 2) box centres, (B,) sides, (B, 2) image sizes (W, H), float32 on ``device``."""
    centers = torch.tensor(np.stack([p.center for p in people]), dtype=torch.float32)
    sizes = torch.tensor([p.size for p in people], dtype=torch.float32)
    image_sizes = torch.tensor(
        [[p.rgb.shape[1], p.rgb.shape[0]] for p in people], dtype=torch.float32
    )
    return centers.to(device), sizes.to(device), image_sizes.to(device)


def _check_scale(camera: Tensor, people: Sequence[_Person]) -> None:
    """A camera scale s <= 0 has no camera translation: an error naming the image."""
    scale = camera[..., 0]
    bad = ~(torch.isfinite(scale) & (scale > 0))
    if bool(bad.any()):
        index = int(bad.any(dim=-1).nonzero()[0, 0])
        raise ValueError(
            f"the model's weak-perspective camera scale for image {index} is "
            f"{float(scale[index].min()):.4g}, not > 0: it places no body in front of the camera "
            "(an untrained model, or a box without a person)"
        )


def _full_frame_translation(
    camera: Tensor, people: Sequence[_Person], focal: Tensor, device: torch.device
) -> Tensor:
    """(B, N, 3) translations in the full images' cameras of (B, N, 3) crop cameras."""
    _check_scale(camera, people)
    centers, sizes, image_sizes = _boxes(people, device)
    return pg.crop_camera_to_full_frame_translation(
        camera,
        box_center_px=centers[:, None],
        box_size_px=sizes[:, None],
        image_size_px=image_sizes[:, None],
        focal_length_px=focal[:, None],
    )


def _crop_camera(
    translation: Tensor, centers: Tensor, sizes: Tensor, image_sizes: Tensor, focal: Tensor
) -> Tensor:
    """(B, 3) crop cameras of (B, 3) full-frame translations; NaN where the depth is <= 0."""
    depth = translation[:, 2]
    valid = torch.isfinite(translation).all(dim=-1) & (depth > 0)
    safe = torch.where(valid[:, None], translation, torch.ones_like(translation))
    camera = pg.full_frame_translation_to_crop_camera(
        safe,
        box_center_px=centers,
        box_size_px=sizes,
        image_size_px=image_sizes,
        focal_length_px=focal,
    )
    return torch.where(valid[:, None], camera, torch.full_like(camera, math.nan))


def _prediction(
    people: Sequence[_Person],
    focal: Tensor,
    *,
    global_orient: Tensor,
    body_pose: Tensor,
    betas: Tensor,
    keypoints_3d: Tensor,
    translation: Tensor,
    log_prob: Tensor,
    z: Tensor,
    crop_camera: Tensor,
    vertices: Tensor | None,
    device: torch.device,
    keypoints_2d: Tensor | None = None,
) -> Prediction:
    """A batched Prediction from (B, N, ...) tensors; keypoints_2d projected unless given."""
    centers, sizes, image_sizes = _boxes(people, device)
    batch, samples = translation.shape[:2]
    if keypoints_2d is None:
        keypoints_2d = pg.project_points(
            keypoints_3d.float(),
            focal_px=focal[:, None].expand(batch, samples),
            center_px=(0.5 * image_sizes)[:, None].expand(batch, samples, 2),
            translation=translation,
        )
    return Prediction(
        global_orient=global_orient,
        body_pose=body_pose,
        global_orient_axis_angle=pg.rotmat_to_axis_angle(global_orient),
        body_pose_axis_angle=pg.rotmat_to_axis_angle(body_pose).reshape(batch, samples, -1),
        betas=betas,
        keypoints_3d=keypoints_3d,
        camera_translation=translation,
        keypoints_2d=keypoints_2d,
        log_prob=log_prob,
        z=z,
        crop_camera=crop_camera,
        focal_length=focal,
        image_size=image_sizes,
        box_center=centers,
        box_size=sizes,
        vertices=vertices,
        batched=True,
    )
