"""ProHMR and its 2D-to-3D lifting model, assembled from this project's library packages.

The three-line API (``prohmr_model.predictor``)::

    model = prohmr_model.load("checkpoint.pt")
    result = model.predict("photo.jpg", box=(x, y, w, h), num_samples=16)
    fitted = model.fit("photo.jpg", keypoints_2d=person)

The modules:

- ``prohmr_model.model``: ``ProHMR`` (ResNet -> conditional Glow pose head -> SMPL -> 2D) and
  ``build_prohmr``; ``prohmr_model.lifting``: the lifting model ``ProSkeleton``.
- ``prohmr_model.config``: their size configs and the body-model files.
- ``prohmr_model.losses``: the training losses, combined once with the loss weights.
- ``prohmr_model.checkpoint``: this project's checkpoint format; ``prohmr_model.loading``: the
  model rebuilt from one; ``prohmr_model.official``: the official checkpoints' key tables.
- ``prohmr_model.evaluation``: the evaluation protocols (regression, lifting);
  ``prohmr_model.fitting``: the decoder and body callables that pose-fitting takes, and the
  fitting metrics; ``prohmr_model.visualize``: rendering of hypotheses.
- ``prohmr_model.export``: bodies as files other tools open (SMPL parameters as npz and JSON,
  meshes as OBJ, in the full image's camera frame).
"""

from .batch import to_device
from .config import BodyConfig, LiftingModelConfig, ModelConfig
from .lifting import ProSkeleton, build_lifting_model
from .model import ProHMR, ProHMROutput, build_prohmr
from .predictor import FitResult, Prediction, Predictor, load

__all__ = [
    "BodyConfig",
    "FitResult",
    "LiftingModelConfig",
    "ModelConfig",
    "Prediction",
    "Predictor",
    "ProHMR",
    "ProHMROutput",
    "ProSkeleton",
    "build_lifting_model",
    "build_prohmr",
    "load",
    "to_device",
]
