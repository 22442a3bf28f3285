"""Tests for pose_geometry.keypoints: layout tables and the flip / remap functions."""

from __future__ import annotations

import pytest
import torch

from pose_geometry.keypoints import (
    BODY25_TO_44,
    COCO17_NAMES,
    COCO17_TO_44,
    FLIP_PERMUTATION_44,
    H36M17_IDX_44,
    H36M32_TO_44,
    KEYPOINT_NAMES_44,
    LIFTING_2D_IDX_44,
    LIFTING_3D_IDX_44,
    LSP14_IDX_44,
    MPI_INF17_IDX_44,
    MPII16_NAMES,
    MPII16_TO_44,
    NUM_KEYPOINTS_44,
    OPENPOSE_BODY25_NAMES,
    PELVIS_IDX_44,
    SMPL_FLIP_PERMUTATION,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLX_JOINTS_TO_BODY25,
    flip_keypoints,
    remap_keypoints,
)

# The 44-layout flip permutation and the 69-d body-pose flip index list, written out as in the
# ProHMR reference (docs/conventions.md#flips).
EXPECTED_FLIP_44 = [
    0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20, 21,
    30, 29, 28, 27, 26, 25, 36, 35, 34, 33, 32, 31, 37, 38, 39, 40, 41, 42, 43,
]  # fmt: skip
EXPECTED_BODY_POSE_FLIP_69 = [
    3, 4, 5, 0, 1, 2, 6, 7, 8, 12, 13, 14, 9, 10, 11, 15, 16, 17, 21, 22, 23, 18, 19, 20,
    24, 25, 26, 30, 31, 32, 27, 28, 29, 33, 34, 35, 39, 40, 41, 36, 37, 38, 42, 43, 44,
    48, 49, 50, 45, 46, 47, 54, 55, 56, 51, 52, 53, 60, 61, 62, 57, 58, 59,
    66, 67, 68, 63, 64, 65,
]  # fmt: skip

# Names of the body model's vertex joints 24..34 (after the 24 SMPL joints).
SMPLX_VERTEX_JOINT_NAMES = [
    "nose", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
]  # fmt: skip

DTYPES = [torch.float32, torch.float64]
BATCH_SHAPES = [(), (5,), (2, 5)]

# ---------------------------------------------------------------------------------------------
# Name normalisation used to compare layouts: (side, body part), side in {"left", "right", None}.
# ---------------------------------------------------------------------------------------------

_OPENPOSE_PARTS = {
    "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear",
    "bigtoe", "smalltoe", "heel",
}  # fmt: skip
_PART_ALIASES = {"upper neck": "neck", "top of head": "head top", "midhip": "pelvis"}


def side_and_part(name: str) -> tuple[str | None, str]:
    """Reduce a keypoint name of any layout here to (side, part), e.g. "OP LEye" -> (left, eye)."""
    text = name.lower()
    for tag in ("(lsp)", "(mpii)", "(h36m)"):
        text = text.replace(tag, "")
    text = text.replace("_", " ").strip()
    if text.startswith("op "):
        text = text[3:]
    side = None
    if text[:1] in ("l", "r") and text[1:] in _OPENPOSE_PARTS:
        side, text = ("left" if text[0] == "l" else "right"), text[1:]
    else:
        first, _, rest = text.partition(" ")
        if first in ("left", "right") and rest:
            side, text = first, rest
    return side, _PART_ALIASES.get(text, text)


def mirrored_name(name: str) -> str:
    """The name of the mirror keypoint in the 44 layout (itself for a centre keypoint)."""
    for left, right in (("Left ", "Right "), ("OP L", "OP R")):
        if name.startswith(left) and name[len(left)].isupper():
            return right + name[len(left) :]
        if name.startswith(right) and name[len(right)].isupper():
            return left + name[len(right) :]
    return name


def test_side_and_part_normalisation():
    assert side_and_part("OP LEye") == ("left", "eye")
    assert side_and_part("Right Ankle") == ("right", "ankle")
    assert side_and_part("upper_neck") == side_and_part("Neck (LSP)") == (None, "neck")
    assert side_and_part("head_top") == side_and_part("Top of Head (LSP)") == (None, "head top")
    assert side_and_part("OP Nose") == side_and_part("nose") == (None, "nose")
    assert side_and_part("OP LSmallToe") == ("left", "smalltoe")


# ---------------------------------------------------------------------------------------------
# Table sizes and names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "length"),
    [
        (KEYPOINT_NAMES_44, NUM_KEYPOINTS_44),
        (FLIP_PERMUTATION_44, 44),
        (SMPL_JOINT_NAMES, 24),
        (SMPL_PARENTS, 24),
        (SMPL_FLIP_PERMUTATION, 24),
        (OPENPOSE_BODY25_NAMES, 25),
        (BODY25_TO_44, 25),
        (SMPLX_JOINTS_TO_BODY25, 25),
        (COCO17_NAMES, 17),
        (COCO17_TO_44, 17),
        (MPII16_NAMES, 16),
        (MPII16_TO_44, 16),
        (H36M32_TO_44, 17),
        (LSP14_IDX_44, 14),
        (H36M17_IDX_44, 17),
        (MPI_INF17_IDX_44, 17),
        (LIFTING_2D_IDX_44, 17),
        (LIFTING_3D_IDX_44, 16),
    ],
)
def test_table_lengths(table, length):
    assert len(table) == length


@pytest.mark.parametrize(
    "table",
    [
        KEYPOINT_NAMES_44, FLIP_PERMUTATION_44, SMPL_JOINT_NAMES, SMPL_PARENTS,
        SMPL_FLIP_PERMUTATION, OPENPOSE_BODY25_NAMES, BODY25_TO_44, SMPLX_JOINTS_TO_BODY25,
        COCO17_NAMES, COCO17_TO_44, MPII16_NAMES, MPII16_TO_44, H36M32_TO_44, LSP14_IDX_44,
        H36M17_IDX_44, MPI_INF17_IDX_44, LIFTING_2D_IDX_44, LIFTING_3D_IDX_44,
    ],
)  # fmt: skip
def test_tables_are_immutable_tuples(table):
    assert isinstance(table, tuple)


@pytest.mark.parametrize(
    "names",
    [KEYPOINT_NAMES_44, SMPL_JOINT_NAMES, OPENPOSE_BODY25_NAMES, COCO17_NAMES, MPII16_NAMES],
)
def test_names_are_unique(names):
    assert len(set(names)) == len(names)


def test_44_layout_starts_with_body25_and_has_pelvis_at_39():
    assert [name.removeprefix("OP ") for name in KEYPOINT_NAMES_44[:25]] == list(
        OPENPOSE_BODY25_NAMES
    )
    assert KEYPOINT_NAMES_44[PELVIS_IDX_44] == "Pelvis (MPII)"
    assert KEYPOINT_NAMES_44[25] == "Right Ankle"
    assert KEYPOINT_NAMES_44[43] == "Head (H36M)"
    assert BODY25_TO_44 == tuple(range(25))


# ---------------------------------------------------------------------------------------------
# Flip permutations
# ---------------------------------------------------------------------------------------------


def test_flip_permutation_44_matches_reference_list():
    assert list(FLIP_PERMUTATION_44) == EXPECTED_FLIP_44


@pytest.mark.parametrize("perm", [FLIP_PERMUTATION_44, SMPL_FLIP_PERMUTATION])
def test_flip_permutations_are_involutions(perm):
    assert sorted(perm) == list(range(len(perm)))
    assert all(perm[perm[i]] == i for i in range(len(perm)))


def test_flip_permutation_44_swaps_left_and_right_names():
    for i, source in enumerate(FLIP_PERMUTATION_44):
        assert KEYPOINT_NAMES_44[source] == mirrored_name(KEYPOINT_NAMES_44[i])
    centre = [i for i, name in enumerate(KEYPOINT_NAMES_44) if mirrored_name(name) == name]
    assert [KEYPOINT_NAMES_44[i] for i in centre][:3] == ["OP Nose", "OP Neck", "OP MidHip"]
    assert len(centre) == 3 + 7  # Nose, Neck, MidHip + extra 12..18
    assert all(FLIP_PERMUTATION_44[i] == i for i in centre)


def test_smpl_flip_permutation_swaps_left_and_right_names():
    for j, source in enumerate(SMPL_FLIP_PERMUTATION):
        name = SMPL_JOINT_NAMES[j]
        if name.startswith("left_"):
            expected = "right_" + name.removeprefix("left_")
        elif name.startswith("right_"):
            expected = "left_" + name.removeprefix("right_")
        else:
            expected = name
        assert SMPL_JOINT_NAMES[source] == expected


def test_smpl_flip_permutation_expands_to_body_pose_index_list():
    expanded = [3 * (p - 1) + m for p in SMPL_FLIP_PERMUTATION[1:] for m in range(3)]
    assert expanded == EXPECTED_BODY_POSE_FLIP_69
    assert SMPL_FLIP_PERMUTATION[0] == 0


# ---------------------------------------------------------------------------------------------
# SMPL tree and BODY_25 selection
# ---------------------------------------------------------------------------------------------


def test_smpl_parents_form_a_tree_rooted_at_zero():
    assert SMPL_PARENTS[0] == -1
    assert all(0 <= SMPL_PARENTS[j] < j for j in range(1, 24))


def test_smplx_joints_to_body25_match_names():
    smplx_names = [*SMPL_JOINT_NAMES, *SMPLX_VERTEX_JOINT_NAMES]
    for body25_name, joint in zip(OPENPOSE_BODY25_NAMES, SMPLX_JOINTS_TO_BODY25, strict=True):
        source_name = smplx_names[joint]
        if body25_name == "MidHip":
            assert source_name == "pelvis"  # OpenPose's mid-hip is approximated by the pelvis
            continue
        if body25_name == "Neck":
            assert source_name == "neck"
            continue
        side, part = side_and_part("OP " + body25_name)
        expected = part if side is None else f"{side}_{part}"
        expected = expected.replace("bigtoe", "big_toe").replace("smalltoe", "small_toe")
        assert source_name == expected, (body25_name, joint)
    assert all(j < 24 for j in SMPLX_JOINTS_TO_BODY25[1:15])


# ---------------------------------------------------------------------------------------------
# COCO / MPII / H36M maps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "mapping"), [(COCO17_NAMES, COCO17_TO_44), (MPII16_NAMES, MPII16_TO_44)]
)
def test_maps_to_44_keep_side_and_body_part(names, mapping):
    for name, target in zip(names, mapping, strict=True):
        assert side_and_part(name) == side_and_part(KEYPOINT_NAMES_44[target]), (name, target)


@pytest.mark.parametrize("mapping", [COCO17_TO_44, MPII16_TO_44, BODY25_TO_44])
def test_maps_to_44_are_injective_and_in_range(mapping):
    assert len(set(mapping)) == len(mapping)
    assert all(0 <= t < NUM_KEYPOINTS_44 for t in mapping)


def test_mpii_map_uses_the_extra_part():
    assert all(t >= 25 for t in MPII16_TO_44)
    assert MPII16_TO_44[MPII16_NAMES.index("pelvis")] == PELVIS_IDX_44


def test_h36m32_map_targets_extra_joints_except_head_top_and_thorax():
    sources = [s for s, _ in H36M32_TO_44]
    targets = [t for _, t in H36M32_TO_44]
    assert H36M32_TO_44[0] == (11, PELVIS_IDX_44)  # pelvis first: the root-centring joint
    assert all(0 <= s < 32 for s in sources)
    assert len(set(sources)) == len(sources)
    assert len(set(targets)) == len(targets)
    assert set(targets) == set(range(25, 44)) - {38, 40}


# ---------------------------------------------------------------------------------------------
# Subsets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subset",
    [LSP14_IDX_44, H36M17_IDX_44, MPI_INF17_IDX_44, LIFTING_2D_IDX_44, LIFTING_3D_IDX_44],
)
def test_subsets_are_distinct_and_in_range(subset):
    assert len(set(subset)) == len(subset)
    assert all(25 <= i < NUM_KEYPOINTS_44 for i in subset)
    assert list(subset) == sorted(subset)


def test_subset_contents():
    assert LSP14_IDX_44 == (*range(25, 38), 43)
    assert H36M17_IDX_44 == (*range(25, 38), 39, 41, 42, 43)
    assert MPI_INF17_IDX_44 == (*range(25, 40), 41, 42)
    assert LIFTING_2D_IDX_44 == H36M17_IDX_44
    assert LIFTING_3D_IDX_44 == (*range(25, 38), 41, 42, 43)


def test_pelvis_in_h36m17_and_lifting_2d_but_not_lifting_3d():
    assert PELVIS_IDX_44 in H36M17_IDX_44
    assert PELVIS_IDX_44 in LIFTING_2D_IDX_44
    assert PELVIS_IDX_44 not in LIFTING_3D_IDX_44
    assert set(LIFTING_2D_IDX_44) - set(LIFTING_3D_IDX_44) == {PELVIS_IDX_44}


# ---------------------------------------------------------------------------------------------
# flip_keypoints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCH_SHAPES)
@pytest.mark.parametrize("channels", [3, 4])
def test_flip_keypoints_twice_is_identity(dtype, batch, channels):
    x = torch.randn(*batch, 44, channels, dtype=dtype)
    once = flip_keypoints(x)
    assert once.shape == x.shape
    assert once.dtype == dtype
    torch.testing.assert_close(flip_keypoints(once), x, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_flip_keypoints_negates_x_keeps_other_channels(dtype, batch):
    x = torch.randn(*batch, 44, 4, dtype=dtype)
    x[..., 3] = torch.rand(*batch, 44, dtype=dtype)  # confidences
    original = x.clone()
    flipped = flip_keypoints(x)
    perm = list(FLIP_PERMUTATION_44)
    torch.testing.assert_close(flipped[..., 0], -x[..., perm, 0], rtol=0, atol=0)
    torch.testing.assert_close(flipped[..., 1:], x[..., perm, 1:], rtol=0, atol=0)
    torch.testing.assert_close(x, original, rtol=0, atol=0)  # input untouched


def test_flip_keypoints_keeps_confidence_and_swaps_sides():
    x = torch.zeros(44, 3)
    left_wrist = KEYPOINT_NAMES_44.index("Left Wrist")
    right_wrist = KEYPOINT_NAMES_44.index("Right Wrist")
    x[left_wrist] = torch.tensor([0.2, -0.1, 0.7])
    flipped = flip_keypoints(x)
    torch.testing.assert_close(flipped[right_wrist], torch.tensor([-0.2, -0.1, 0.7]))
    assert flipped[left_wrist].abs().sum() == 0


def test_flip_keypoints_custom_permutation_smpl_joints():
    joints = torch.randn(3, 24, 3, dtype=torch.float64)
    flipped = flip_keypoints(joints, permutation=SMPL_FLIP_PERMUTATION)
    torch.testing.assert_close(flipped[:, 1, 0], -joints[:, 2, 0])  # left hip <- right hip
    torch.testing.assert_close(flip_keypoints(flipped, permutation=SMPL_FLIP_PERMUTATION), joints)


def test_flip_keypoints_gradient():
    x = torch.randn(2, 44, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(flip_keypoints, (x,))
    flip_keypoints(x)[..., 0].sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad[..., 0], -torch.ones(2, 44, dtype=torch.float64))
    torch.testing.assert_close(x.grad[..., 1:], torch.zeros(2, 44, 2, dtype=torch.float64))


def test_flip_keypoints_rejects_permutation_of_wrong_length():
    with pytest.raises(ValueError, match=r"`permutation` has 44 entries but `keypoints` has 17"):
        flip_keypoints(torch.zeros(2, 17, 3))


def test_flip_keypoints_rejects_non_permutation():
    with pytest.raises(ValueError, match=r"`permutation` must be a permutation of 0\.\.2"):
        flip_keypoints(torch.zeros(3, 2), permutation=[0, 0, 1])


@pytest.mark.parametrize("shape", [(44,), ()])
def test_flip_keypoints_rejects_missing_keypoint_dim(shape):
    with pytest.raises(ValueError, match=r"`keypoints` must have shape \(\.\.\., K, C\)"):
        flip_keypoints(torch.zeros(shape))


def test_flip_keypoints_rejects_single_channel():
    with pytest.raises(ValueError, match=r"C >= 2 .*got \(44, 1\)"):
        flip_keypoints(torch.zeros(44, 1))


def test_flip_keypoints_rejects_non_tensor_and_integer_input():
    with pytest.raises(TypeError, match=r"`keypoints` must be a torch\.Tensor, got list"):
        flip_keypoints([[0.0, 0.0]] * 44)
    with pytest.raises(TypeError, match=r"`keypoints` must be a floating-point tensor"):
        flip_keypoints(torch.zeros(44, 3, dtype=torch.int64))


# ---------------------------------------------------------------------------------------------
# remap_keypoints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_remap_per_source_places_and_zero_fills(dtype, batch):
    x = torch.randn(*batch, 17, 3, dtype=dtype)
    out = remap_keypoints(x, COCO17_TO_44)
    assert out.shape == (*batch, 44, 3)
    assert out.dtype == dtype
    for source, target in enumerate(COCO17_TO_44):
        torch.testing.assert_close(out[..., target, :], x[..., source, :], rtol=0, atol=0)
    unmapped = sorted(set(range(44)) - set(COCO17_TO_44))
    assert torch.count_nonzero(out[..., unmapped, :]) == 0


def test_remap_per_source_drops_minus_one():
    x = torch.arange(12.0).reshape(4, 3)
    out = remap_keypoints(x, [2, -1, 0, 5], num_target=6)
    expected = torch.zeros(6, 3)
    expected[2], expected[0], expected[5] = x[0], x[2], x[3]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_remap_pairs_places_and_zero_fills(batch):
    x = torch.randn(*batch, 32, 3, dtype=torch.float64)
    out = remap_keypoints(x, H36M32_TO_44)
    assert out.shape == (*batch, 44, 3)
    for source, target in H36M32_TO_44:
        torch.testing.assert_close(out[..., target, :], x[..., source, :], rtol=0, atol=0)
    unmapped = sorted(set(range(44)) - {t for _, t in H36M32_TO_44})
    assert 38 in unmapped and 40 in unmapped
    assert torch.count_nonzero(out[..., unmapped, :]) == 0


def test_remap_pairs_may_copy_one_source_twice():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = remap_keypoints(x, [(1, 0), (1, 2)], num_target=3)
    torch.testing.assert_close(out, torch.tensor([[3.0, 4.0], [0.0, 0.0], [3.0, 4.0]]))


def test_remap_accepts_tensor_mappings():
    x = torch.randn(5, 17, 3)
    expected = remap_keypoints(x, COCO17_TO_44)
    torch.testing.assert_close(remap_keypoints(x, torch.tensor(COCO17_TO_44)), expected)
    pairs = torch.tensor([[i, t] for i, t in enumerate(COCO17_TO_44)])
    torch.testing.assert_close(remap_keypoints(x, pairs), expected)


def test_remap_coco_round_trip():
    coco = torch.randn(2, 5, 17, 3)
    back = remap_keypoints(coco, COCO17_TO_44)[..., list(COCO17_TO_44), :]
    torch.testing.assert_close(back, coco, rtol=0, atol=0)


def test_remap_mpii_then_flip_matches_flipped_mpii_names():
    mpii = torch.randn(16, 3)
    flipped = flip_keypoints(remap_keypoints(mpii, MPII16_TO_44))
    left_knee = MPII16_TO_44[MPII16_NAMES.index("left_knee")]
    torch.testing.assert_close(flipped[left_knee, 0], -mpii[MPII16_NAMES.index("right_knee"), 0])


def test_remap_empty_pair_list_gives_zeros():
    out = remap_keypoints(torch.ones(3, 5, 2), [], num_target=4)
    assert out.shape == (3, 4, 2)
    assert torch.count_nonzero(out) == 0


def test_remap_gradient():
    x = torch.randn(2, 17, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: remap_keypoints(t, COCO17_TO_44), (x,))
    y = torch.randn(32, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: remap_keypoints(t, H36M32_TO_44), (y,))


def test_remap_rejects_per_source_length_mismatch():
    with pytest.raises(ValueError, match=r"`mapping` has 17 target indices .* `keypoints` has 16"):
        remap_keypoints(torch.zeros(16, 3), COCO17_TO_44)


def test_remap_rejects_target_out_of_range():
    with pytest.raises(ValueError, match=r"`mapping` entry 1 has target index 44, expected -1 "):
        remap_keypoints(torch.zeros(2, 3), [0, 44])
    with pytest.raises(ValueError, match=r"target index -2, expected -1 \(dropped\) or 0\.\.43"):
        remap_keypoints(torch.zeros(2, 3), [0, -2])
    with pytest.raises(ValueError, match=r"entry 0 has target index 7, expected 0\.\.4 "):
        remap_keypoints(torch.zeros(2, 3), [(0, 7)], num_target=5)


def test_remap_rejects_source_out_of_range():
    with pytest.raises(ValueError, match=r"entry 1 has source index 31, expected 0\.\.30"):
        remap_keypoints(torch.zeros(31, 3), [(0, 0), (31, 1)])
    with pytest.raises(ValueError, match=r"source index -1, expected 0\.\.1"):
        remap_keypoints(torch.zeros(2, 3), [(-1, 0)])


def test_remap_rejects_duplicate_targets():
    with pytest.raises(ValueError, match=r"source keypoints 0 and 2 to the same target index 5"):
        remap_keypoints(torch.zeros(3, 3), [5, -1, 5])
    with pytest.raises(ValueError, match=r"same target index 1; targets must be unique"):
        remap_keypoints(torch.zeros(3, 3), [(0, 1), (2, 1)])


def test_remap_rejects_bad_types_and_shapes():
    with pytest.raises(ValueError, match=r"must have shape \(\.\.\., K, C\), got \(17,\)"):
        remap_keypoints(torch.zeros(17), COCO17_TO_44)
    with pytest.raises(TypeError, match=r"`mapping` entry 1 must be an integer index, got float"):
        remap_keypoints(torch.zeros(2, 3), [0, 1.5])
    with pytest.raises(TypeError, match=r"`mapping` mixes forms"):
        remap_keypoints(torch.zeros(2, 3), [(0, 1), 1])
    with pytest.raises(TypeError, match=r"`mapping` must be a sequence"):
        remap_keypoints(torch.zeros(2, 3), {0: 1})
    with pytest.raises(TypeError, match=r"`num_target` must be an int, got float"):
        remap_keypoints(torch.zeros(2, 3), [0, 1], num_target=4.0)
    with pytest.raises(ValueError, match=r"`num_target` must be positive, got 0"):
        remap_keypoints(torch.zeros(2, 3), [0, 1], num_target=0)
