"""The SMPL body model with ProHMR's 44-keypoint layout, and a joints-only fast path.

`BodyModel` wraps smplx's ``SMPLLayer``, fed with arrays loaded by this package (smplx's
``data_struct`` argument, so smplx never opens a pickle and chumpy is never needed), and adds
the keypoints ProHMR uses (docs/conventions.md#keypoints):

- keypoints 0..24, OpenPose BODY_25 order: SMPL joints and the vertices smplx picks for the
  nose, eyes, ears, toes and heels, selected by `pose_geometry.SMPLX_JOINTS_TO_BODY25`;
- keypoints 25..43: the 19 "extra" joints, a linear regressor (``SMPL_to_J19.pkl``) applied to
  the posed vertices;
- optionally the 17 Human3.6M joints of ``J_regressor_h36m.npy``.

`BodyModel.keypoints_only` computes the same joints without the 6890 vertices: the regressors
and the vertex joints read a few hundred vertices, each moved by a few bones, so the rest
shape, shape and pose blend shapes and skinning weights of exactly those vertices are contracted
once per model into per-(keypoint, bone) coefficients (see `_FastJoints`); a forward pass is
then one small matrix product and the kinematic chain.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import smplx
import torch
from torch import Tensor, nn

from pose_body.model_files import (
    SMPLModelData,
    load_joint_regressor,
    load_smpl_model,
)
from pose_geometry import (
    NUM_KEYPOINTS_44,
    SMPLX_JOINTS_TO_BODY25,
    axis_angle_to_rotmat,
    check_floating,
    check_tensor,
)

__all__ = ["BodyModel", "BodyOutput", "JointsOutput"]

_NUM_JOINTS = 24
_NUM_BODY_JOINTS = 23
_NUM_EXTRA = 19
_NUM_H36M = 17
#: The first 11 vertex joints smplx appends (nose, eyes, ears, toes, heels); the 10 fingertips
#: that follow are not part of the 44-keypoint layout.
_NUM_VERTEX_JOINTS = 11


@dataclass(frozen=True)
class BodyOutput:
    """Result of `BodyModel.forward` (``...`` = the batch dimensions of the inputs).

    Attributes:
        vertices: (..., V, 3) posed vertices in metres (model axes, plus ``transl``).
        smpl_joints: (..., 24, 3) the SMPL kinematic-tree joints.
        keypoints: (..., 44, 3) the 44-keypoint layout (`pose_geometry.KEYPOINT_NAMES_44`).
        h36m_joints: (..., 17, 3) Human3.6M joints, or None without an H36M regressor.
    """

    vertices: Tensor
    smpl_joints: Tensor
    keypoints: Tensor
    h36m_joints: Tensor | None


@dataclass(frozen=True)
class JointsOutput:
    """Result of `BodyModel.keypoints_only`: `BodyOutput` without the vertices."""

    smpl_joints: Tensor
    keypoints: Tensor
    h36m_joints: Tensor | None


class _FastJoints(nn.Module):
    """Keypoints from the few vertices the regressors read, with coefficients contracted once.

    For a regressed point p (a vertex joint is a one-hot regressor row) with regressor row
    ``r_p`` and skinning weights ``W``, linear blend skinning gives

        p = Σ_v r_pv Σ_k W_vk (G_k v_v + t_k) = Σ_k G_k u_pk + (Σ_v r_pv W_vk) t_k,
        u_pk = Σ_v r_pv W_vk (v̄_v + S_v β + P_v f)

    with G_k, t_k the world rotation and translation of bone k, v̄ the template, S the shape
    and P the pose blend shapes and f the 207 pose features (R_j - I). Only (p, k) pairs with a
    non-zero r_pv W_vk for some v are kept; their coefficients for (1, β, f) form one matrix, so
    all u_pk come from a single matrix product; the rotations G_k are then applied per pair and
    summed per point. The rest joints are J_regressor applied to the shaped template, also
    contracted to (J̄ + J_S β); the chain then poses them joint by joint.
    """

    def __init__(
        self,
        model: SMPLModelData,
        *,
        point_regressor: np.ndarray,
        num_betas: int,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        rows = np.asarray(point_regressor, dtype=np.float64)  # (P, V)
        used = np.flatnonzero(np.abs(rows).sum(0) > 0)
        r = rows[:, used]  # (P, U)
        w = model.weights[used]  # (U, K)
        rw = r[:, :, None] * w[None, :, :]  # (P, U, K)
        pairs = np.argwhere(np.abs(rw).sum(1) > 0)  # (Q, 2): (point, bone)
        coeff = rw[pairs[:, 0], :, pairs[:, 1]]  # (Q, U): r_pv W_vk per pair
        template = coeff @ model.v_template[used]  # (Q, 3)
        shape = np.einsum("qu,ucb->qcb", coeff, model.shapedirs[used, :, :num_betas])
        pose = np.einsum("qu,ucf->qcf", coeff, model.posedirs[used])  # (Q, 3, 207)
        # Columns: 1, betas, pose features; rows: (pair, xyz) flattened.
        blend = np.concatenate([template[:, :, None], shape, pose], axis=2)  # (Q, 3, 1+B+207)
        blend = blend.reshape(len(pairs) * 3, -1).T  # (1+B+207, Q·3)
        joint_template = model.J_regressor @ model.v_template  # (24, 3)
        joint_shape = np.einsum("jv,vcb->jcb", model.J_regressor, model.shapedirs[:, :, :num_betas])
        translation_weights = np.zeros((rows.shape[0], model.weights.shape[1]))
        translation_weights[pairs[:, 0], pairs[:, 1]] = coeff.sum(1)

        def buffer(name: str, array: np.ndarray, dtype_: torch.dtype = dtype) -> None:
            self.register_buffer(name, torch.as_tensor(array, dtype=dtype_), persistent=False)

        buffer("blend", blend)
        buffer("joint_template", joint_template)
        buffer("joint_shape", joint_shape)
        buffer("translation_weights", translation_weights)
        # Bones are applied per pair (gather the pair's rotation) when pairs are few, or through a
        # dense (point, bone) layout and one batched product when most pairs exist (measured
        # crossover on CPU: about 30% of all point-bone combinations).
        num_bones = model.weights.shape[1]
        dense = (pairs[:, 0, None] * num_bones + pairs[:, 1, None]) * 3 + np.arange(3)
        buffer("dense_columns", dense.reshape(-1), torch.long)
        buffer("pair_point", pairs[:, 0], torch.long)
        buffer("pair_bone", pairs[:, 1], torch.long)
        self.dense_rotation = len(pairs) >= 0.3 * rows.shape[0] * num_bones
        self.num_bones = num_bones
        self.num_points = int(rows.shape[0])
        self.num_pairs = len(pairs)
        self.num_used_vertices = len(used)
        self.parents = [int(p) for p in model.parents]
        self._build_levels(joint_template.shape[0])

    def forward(self, rotmats: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """(M, 24, 3, 3) rotations, (M, B) betas -> (M, 24, 3) joints, (M, P, 3) points."""
        m = rotmats.shape[0]
        rest = self.joint_template + torch.einsum("jcb,mb->mjc", self.joint_shape, betas)
        world_rot, world_pos = self._chain(rotmats, rest)
        # Bone transforms x -> G_k x + t_k with t_k = posed joint - G_k · rest joint.
        translation = world_pos - torch.einsum("mkij,mkj->mki", world_rot, rest)
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        features = (rotmats[:, 1:] - eye).reshape(m, 9 * (rotmats.shape[1] - 1))
        inputs = torch.cat([torch.ones_like(betas[:, :1]), betas, features], dim=1)
        blended = inputs @ self.blend  # (M, 3Q): u_pk of every (point, bone) pair
        if self.dense_rotation:
            # Scatter into (M, P, K·3) (zeros for absent pairs); one batched product applies
            # every bone's rotation and sums over the bones of each point.
            dense = blended.new_zeros(m, self.num_points * self.num_bones * 3)
            dense.index_copy_(1, self.dense_columns, blended)  # a fresh tensor: safe in place
            stacked = world_rot.transpose(-1, -2).reshape(m, self.num_bones * 3, 3)  # [(k, j), i]
            points = torch.bmm(dense.view(m, self.num_points, self.num_bones * 3), stacked)
        else:
            u = blended.view(m, self.num_pairs, 3)
            rotated = torch.einsum("mqij,mqj->mqi", world_rot[:, self.pair_bone], u)
            points = rotated.new_zeros(m, self.num_points, 3).index_add(1, self.pair_point, rotated)
        points = points + torch.einsum("pk,mkc->mpc", self.translation_weights, translation)
        return world_pos, points

    def _build_levels(self, num_joints: int) -> None:
        """Group the joints by depth in the kinematic tree (root 0, parents before children)."""
        depth = [0] * num_joints
        for j in range(1, num_joints):
            p = self.parents[j]
            if not 0 <= p < j:
                raise ValueError(
                    f"kinematic tree: joint {j} has parent {p}; expected a parent in [0, {j})"
                )
            depth[j] = depth[p] + 1
        levels = [[j for j in range(num_joints) if depth[j] == d] for d in range(max(depth) + 1)]
        order = [j for level in levels for j in level]
        self.level_sizes = [len(level) for level in levels]
        long = {"dtype": torch.long}
        self.register_buffer("level_order", torch.tensor(order, **long), persistent=False)
        self.register_buffer(
            "level_inverse",
            torch.tensor([order.index(j) for j in range(num_joints)], **long),
            persistent=False,
        )
        parents = torch.tensor([0, *self.parents[1:]], **long)
        self.register_buffer("parent_index", parents, persistent=False)
        # A level's parents, as positions within the previous level.
        for d in range(1, len(levels)):
            previous = levels[d - 1]
            positions = torch.tensor([previous.index(self.parents[j]) for j in levels[d]], **long)
            self.register_buffer(f"level_parents_{d}", positions, persistent=False)
        # ancestors[j, k] = 1 when k is j or an ancestor of j: posed joints = ancestors · moves.
        ancestors = torch.zeros(num_joints, num_joints, dtype=self.joint_template.dtype)
        for j in range(num_joints):
            k = j
            while True:
                ancestors[j, k] = 1
                if k == 0:
                    break
                k = self.parents[k]
        self.register_buffer("ancestors", ancestors, persistent=False)

    def _chain(self, rotmats: Tensor, rest: Tensor) -> tuple[Tensor, Tensor]:
        """World rotations (M, 24, 3, 3) and posed joints (M, 24, 3) down the kinematic tree.

        Rotations compose one tree level at a time (one gathered product per level: 9 for
        SMPL instead of 23 per-joint products, which matters most for the backward pass).
        Joint j moves from its parent by G_parent·(J_j − J_parent); the posed joints are the
        sums of those moves along each joint's ancestry, one product with the ancestor matrix.
        """
        levels = rotmats.index_select(1, self.level_order).split(self.level_sizes, dim=1)
        world = [levels[0]]
        for d in range(1, len(levels)):
            parent = world[-1].index_select(1, getattr(self, f"level_parents_{d}"))
            world.append(parent @ levels[d])
        world_rot = torch.cat(world, dim=1).index_select(1, self.level_inverse)
        parent_index = self.parent_index[1:]
        offsets = (rest[:, 1:] - rest.index_select(1, parent_index)).unsqueeze(-1)
        moves = (world_rot.index_select(1, parent_index) @ offsets).squeeze(-1)
        moves = torch.cat([rest[:, :1], moves], dim=1)
        world_pos = torch.einsum("jk,mkc->mjc", self.ancestors, moves)
        return world_rot, world_pos


class BodyModel(nn.Module):
    """SMPL (through smplx) returning vertices, the 24 SMPL joints and the 44 keypoints.

    Args:
        model: the SMPL arrays (`load_smpl_model` or `procedural_body_model().model`).
        extra_regressor: (19, V) regressor of the 19 extra keypoints (``SMPL_to_J19.pkl``), or
            None: keypoints 25..43 are then NaN.
        h36m_regressor: (17, V) regressor of the Human3.6M joints (``J_regressor_h36m.npy``), or
            None (outputs carry ``h36m_joints=None``).
        num_betas: number of shape components used (at most the model's; 10 in ProHMR).
        dtype: floating dtype of the buffers (float32 as in ProHMR); inputs must match it.

    The module has buffers only (no parameters); move it with ``.to(device)``. The smplx layer
    is the attribute ``smpl``; ``joint_regressor_extra`` and ``joint_regressor_h36m`` are
    buffers. Construction prints nothing (smplx's notice about 10 shape components is
    swallowed).

    Raises:
        TypeError: if `model` is not an SMPLModelData.
        ValueError: if a regressor's shape is not (19, V) / (17, V), or `num_betas` is out of
            range.
    """

    def __init__(
        self,
        model: SMPLModelData,
        *,
        extra_regressor: np.ndarray | None,
        h36m_regressor: np.ndarray | None = None,
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not isinstance(model, SMPLModelData):
            raise TypeError(f"`model` must be an SMPLModelData, got {type(model).__name__}")
        if isinstance(num_betas, bool) or not isinstance(num_betas, int):
            raise TypeError(f"`num_betas` must be an int, got {type(num_betas).__name__}")
        if not 1 <= num_betas <= model.num_betas:
            raise ValueError(
                f"`num_betas` must be in 1..{model.num_betas} (the model's shape components), "
                f"got {num_betas}"
            )
        if not dtype.is_floating_point:
            raise TypeError(f"`dtype` must be a floating-point dtype, got {dtype}")
        num_vertices = model.num_vertices
        extra = _check_regressor("extra_regressor", extra_regressor, _NUM_EXTRA, num_vertices)
        h36m = _check_regressor("h36m_regressor", h36m_regressor, _NUM_H36M, num_vertices)

        data_struct = SimpleNamespace(
            v_template=model.v_template,
            shapedirs=model.shapedirs,
            posedirs=model.posedirs,
            J_regressor=model.J_regressor,
            weights=model.weights,
            kintree_table=model.kintree_table,
            f=model.faces,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a notice for 10 betas
            self.smpl = smplx.SMPLLayer(
                model_path="", data_struct=data_struct, num_betas=num_betas, dtype=dtype
            )
        # smplx rounds every array through float32 before casting to `dtype`; refill its buffers
        # from the float64 arrays so a float64 model is exact (a no-op for float32).
        exact = {
            "v_template": model.v_template,
            "shapedirs": model.shapedirs[:, :, :num_betas],
            "posedirs": model.posedirs.reshape(num_vertices * 3, -1).T,
            "J_regressor": model.J_regressor,
            "lbs_weights": model.weights,
        }
        with torch.no_grad():
            for name, array in exact.items():
                getattr(self.smpl, name).copy_(torch.tensor(array))
        self.num_betas = num_betas
        self.num_vertices = num_vertices
        self.has_extra_regressor = extra is not None
        self.has_h36m_regressor = h36m is not None
        self.register_buffer("joint_map", torch.as_tensor(SMPLX_JOINTS_TO_BODY25, dtype=torch.long))
        self.register_buffer(
            "joint_regressor_extra",
            torch.as_tensor(np.zeros((0, num_vertices)) if extra is None else extra, dtype=dtype),
        )
        if h36m is not None:
            self.register_buffer("joint_regressor_h36m", torch.as_tensor(h36m, dtype=dtype))
        else:
            self.joint_regressor_h36m = None

        vertex_ids = self.smpl.vertex_joint_selector.extra_joints_idxs[:_NUM_VERTEX_JOINTS]
        one_hot = np.zeros((_NUM_VERTEX_JOINTS, num_vertices))
        one_hot[np.arange(_NUM_VERTEX_JOINTS), vertex_ids.numpy()] = 1.0
        rows = [one_hot]
        if extra is not None:
            rows.append(extra)
        if h36m is not None:
            rows.append(h36m)
        self.fast = _FastJoints(
            model, point_regressor=np.concatenate(rows), num_betas=num_betas, dtype=dtype
        )

    @classmethod
    def from_files(
        cls,
        model_path: str | os.PathLike[str],
        *,
        extra_regressor_path: str | os.PathLike[str] | None,
        h36m_regressor_path: str | os.PathLike[str] | None = None,
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
    ) -> BodyModel:
        """Build from files: an SMPL ``.pkl``/``.npz``, ``SMPL_to_J19.pkl``, the H36M regressor.

        Raises:
            FileNotFoundError, ValueError: from `load_smpl_model` / `load_joint_regressor`,
                naming the file and what is wrong with it.
        """
        model = load_smpl_model(model_path)
        extra = (
            None
            if extra_regressor_path is None
            else load_joint_regressor(
                extra_regressor_path, num_joints=_NUM_EXTRA, num_vertices=model.num_vertices
            )
        )
        h36m = (
            None
            if h36m_regressor_path is None
            else load_joint_regressor(
                h36m_regressor_path, num_joints=_NUM_H36M, num_vertices=model.num_vertices
            )
        )
        return cls(
            model, extra_regressor=extra, h36m_regressor=h36m, num_betas=num_betas, dtype=dtype
        )

    @classmethod
    def procedural(cls, *, num_betas: int = 10, dtype: torch.dtype = torch.float32) -> BodyModel:
        """The procedural SMPL-format body model (`procedural_body_model`) with its extra and
        Human3.6M regressors: the body of the synthetic world, built without any file.

        Deterministic: every call in every process gives the same model.
        """
        from pose_body.procedural import procedural_body_model

        procedural = procedural_body_model()
        return cls(
            procedural.model,
            extra_regressor=procedural.extra_regressor,
            h36m_regressor=procedural.h36m_regressor,
            num_betas=num_betas,
            dtype=dtype,
        )

    @property
    def faces(self) -> Tensor:
        """(F, 3) int64 triangle vertex indices, on the module's device."""
        return self.smpl.faces_tensor

    @property
    def parents(self) -> Tensor:
        """(24,) int64 parent of each SMPL joint (-1 for the root)."""
        return self.smpl.parents

    def forward(
        self,
        *,
        global_orient: Tensor,
        body_pose: Tensor,
        betas: Tensor,
        transl: Tensor | None = None,
    ) -> BodyOutput:
        """Pose and shape the body; return vertices, SMPL joints and the 44 keypoints.

        Rotations are either all rotation matrices or all axis-angle; the form is read from
        `body_pose`.

        Args:
            global_orient: root rotation, (..., 3, 3) or (..., 1, 3, 3) matrices, or (..., 3)
                or (..., 1, 3) axis-angle (radians).
            body_pose: rotations of joints 1..23, (..., 23, 3, 3) matrices, or (..., 69) or
                (..., 23, 3) axis-angle.
            betas: (..., num_betas) shape coefficients; batch dimensions broadcast to those of
                the pose.
            transl: (..., 3) translation in metres added to every output, or None. Broadcasts
                like `betas`.

        Returns:
            BodyOutput with vertices (..., V, 3), smpl_joints (..., 24, 3), keypoints
            (..., 44, 3) and h36m_joints (..., 17, 3) or None; dtype and device of the model.

        Raises:
            TypeError: if an input is not a floating tensor of the model's dtype.
            ValueError: if a shape differs from the ones documented.
        """
        rotmats, betas_flat, transl_flat, batch = self._prepare(
            global_orient, body_pose, betas, transl
        )
        m = rotmats.shape[0]
        if m == 0:
            return BodyOutput(
                vertices=rotmats.new_zeros((*batch, self.num_vertices, 3)),
                smpl_joints=rotmats.new_zeros((*batch, _NUM_JOINTS, 3)),
                keypoints=rotmats.new_zeros((*batch, NUM_KEYPOINTS_44, 3)),
                h36m_joints=None
                if self.joint_regressor_h36m is None
                else rotmats.new_zeros((*batch, _NUM_H36M, 3)),
            )
        out = self.smpl(
            betas=betas_flat,
            global_orient=rotmats[:, :1],
            body_pose=rotmats[:, 1:],
            pose2rot=False,
        )
        vertices = out.vertices
        joints = out.joints  # (M, 45, 3): 24 SMPL joints, 21 vertex joints
        body25 = joints.index_select(1, self.joint_map)
        keypoints = torch.cat([body25, self._extra(vertices)], dim=1)
        h36m = None
        if self.joint_regressor_h36m is not None:
            h36m = torch.einsum("jv,mvc->mjc", self.joint_regressor_h36m, vertices)
        smpl_joints = joints[:, :_NUM_JOINTS]
        if transl_flat is not None:
            shift = transl_flat[:, None]
            vertices, smpl_joints, keypoints = (
                vertices + shift,
                smpl_joints + shift,
                keypoints + shift,
            )
            h36m = None if h36m is None else h36m + shift
        return BodyOutput(
            vertices=vertices.reshape(*batch, self.num_vertices, 3),
            smpl_joints=smpl_joints.reshape(*batch, _NUM_JOINTS, 3),
            keypoints=keypoints.reshape(*batch, NUM_KEYPOINTS_44, 3),
            h36m_joints=None if h36m is None else h36m.reshape(*batch, _NUM_H36M, 3),
        )

    def keypoints_only(
        self,
        *,
        global_orient: Tensor,
        body_pose: Tensor,
        betas: Tensor,
        transl: Tensor | None = None,
    ) -> JointsOutput:
        """The joints of `forward` without computing the vertices (the fast path).

        Same arguments and the same values as `forward` (up to float rounding, about 1e-6 m in
        float32), differentiable, several times to tens of times faster for large batches.

        Returns:
            JointsOutput with smpl_joints (..., 24, 3), keypoints (..., 44, 3) and h36m_joints
            (..., 17, 3) or None.
        """
        rotmats, betas_flat, transl_flat, batch = self._prepare(
            global_orient, body_pose, betas, transl
        )
        smpl_joints, points = self.fast(rotmats, betas_flat)
        vertex_joints = points[:, :_NUM_VERTEX_JOINTS]
        start = _NUM_VERTEX_JOINTS
        if self.has_extra_regressor:
            extra = points[:, start : start + _NUM_EXTRA]
            start += _NUM_EXTRA
        else:
            extra = points.new_full((points.shape[0], _NUM_EXTRA, 3), float("nan"))
        h36m = points[:, start : start + _NUM_H36M] if self.has_h36m_regressor else None
        body25 = torch.cat([smpl_joints, vertex_joints], dim=1).index_select(1, self.joint_map)
        keypoints = torch.cat([body25, extra], dim=1)
        if transl_flat is not None:
            shift = transl_flat[:, None]
            smpl_joints, keypoints = smpl_joints + shift, keypoints + shift
            h36m = None if h36m is None else h36m + shift
        return JointsOutput(
            smpl_joints=smpl_joints.reshape(*batch, _NUM_JOINTS, 3),
            keypoints=keypoints.reshape(*batch, NUM_KEYPOINTS_44, 3),
            h36m_joints=None if h36m is None else h36m.reshape(*batch, _NUM_H36M, 3),
        )

    def _extra(self, vertices: Tensor) -> Tensor:
        if not self.has_extra_regressor:
            return vertices.new_full((vertices.shape[0], _NUM_EXTRA, 3), float("nan"))
        return torch.einsum("jv,mvc->mjc", self.joint_regressor_extra, vertices)

    def _prepare(
        self,
        global_orient: Tensor,
        body_pose: Tensor,
        betas: Tensor,
        transl: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None, tuple[int, ...]]:
        """Validate; return (M, 24, 3, 3) rotations, (M, B) betas, (M, 3) transl, batch shape."""
        dtype = self.smpl.shapedirs.dtype
        named = [("global_orient", global_orient), ("body_pose", body_pose), ("betas", betas)]
        if transl is not None:
            named.append(("transl", transl))
        for name, value in named:
            check_tensor(name, value)
            check_floating(name, value)
            if value.dtype != dtype:
                raise TypeError(
                    f"`{name}` has dtype {value.dtype} but the body model's buffers are {dtype}; "
                    f"cast the input or move the model with .to({value.dtype})"
                )
        shape = tuple(body_pose.shape)
        if len(shape) >= 3 and shape[-3:] == (_NUM_BODY_JOINTS, 3, 3):
            batch = shape[:-3]
            pose_rot = body_pose
            if tuple(global_orient.shape) == (*batch, 3, 3):
                root_rot = global_orient.unsqueeze(-3)
            elif tuple(global_orient.shape) == (*batch, 1, 3, 3):
                root_rot = global_orient
            else:
                raise ValueError(
                    f"`global_orient` must have shape (..., 3, 3) or (..., 1, 3, 3) with the "
                    f"batch dimensions {batch} of `body_pose` (rotation matrices, since "
                    f"`body_pose` is {shape}), got {tuple(global_orient.shape)}"
                )
        elif len(shape) >= 1 and (
            shape[-1] == 3 * _NUM_BODY_JOINTS or shape[-2:] == (_NUM_BODY_JOINTS, 3)
        ):
            batch = shape[:-1] if shape[-1] == 3 * _NUM_BODY_JOINTS else shape[:-2]
            pose_rot = axis_angle_to_rotmat(body_pose.reshape(*batch, _NUM_BODY_JOINTS, 3))
            if tuple(global_orient.shape) == (*batch, 3):
                root_aa = global_orient.unsqueeze(-2)
            elif tuple(global_orient.shape) == (*batch, 1, 3):
                root_aa = global_orient
            else:
                raise ValueError(
                    f"`global_orient` must have shape (..., 3) or (..., 1, 3) with the batch "
                    f"dimensions {batch} of `body_pose` (axis-angle, since `body_pose` is "
                    f"{shape}), got {tuple(global_orient.shape)}"
                )
            root_rot = axis_angle_to_rotmat(root_aa)
        else:
            raise ValueError(
                "`body_pose` must have shape (..., 23, 3, 3) (rotation matrices), (..., 69) or "
                f"(..., 23, 3) (axis-angle), got {shape}"
            )
        rotmats = torch.cat([root_rot, pose_rot], dim=-3).reshape(-1, _NUM_JOINTS, 3, 3)
        m = rotmats.shape[0]
        betas_flat = _broadcast_batch("betas", betas, self.num_betas, batch).reshape(
            m, self.num_betas
        )
        transl_flat = (
            None if transl is None else _broadcast_batch("transl", transl, 3, batch).reshape(m, 3)
        )
        return rotmats, betas_flat, transl_flat, batch


def _broadcast_batch(name: str, value: Tensor, size: int, batch: tuple[int, ...]) -> Tensor:
    """Expand a (..., size) tensor to (*batch, size), or raise ValueError naming it."""
    if value.ndim < 1 or value.shape[-1] != size:
        raise ValueError(f"`{name}` must have shape (..., {size}), got {tuple(value.shape)}")
    try:
        return value.expand(*batch, size)
    except RuntimeError:
        raise ValueError(
            f"`{name}` has shape {tuple(value.shape)}, whose batch dimensions do not broadcast "
            f"to the pose's {batch}"
        ) from None


def _check_regressor(
    name: str, regressor: np.ndarray | None, num_joints: int, num_vertices: int
) -> np.ndarray | None:
    """Return `regressor` as a float64 (J, V) array (or None), or raise naming the argument."""
    if regressor is None:
        return None
    if isinstance(regressor, Tensor):
        regressor = regressor.detach().cpu().numpy()
    array = np.asarray(regressor)
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"`{name}` must be a numeric array, got dtype {array.dtype}")
    if array.shape != (num_joints, num_vertices):
        raise ValueError(
            f"`{name}` must have shape ({num_joints}, {num_vertices}), got {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` holds NaN or infinite values")
    return array
