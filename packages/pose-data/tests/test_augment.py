import math

import cv2
import numpy as np
import pytest
import torch

from pose_data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMPL_BODY_POSE_FLIP_INDEX_69,
    AugmentationConfig,
    AugmentationParams,
    crop_affine_matrix,
    crop_and_augment,
    crop_image,
    extreme_crop_box,
    flip_keypoints_2d_pixels,
    flip_keypoints_3d,
    flip_smpl_pose,
    in_plane_rotation_matrix,
    normalize_image,
    rotate_global_orient,
    rotate_keypoints_3d,
    sample_augmentation,
    transform_points_2d,
)
from pose_geometry import FLIP_PERMUTATION_44, axis_angle_to_rotmat


def rotmat(aa):
    return axis_angle_to_rotmat(torch.as_tensor(aa, dtype=torch.float64)).numpy()


# --- configuration and sampling -------------------------------------------------------------


def test_default_config_matches_prohmr():
    c = AugmentationConfig()
    assert (c.scale_factor, c.rotation_factor_deg, c.rotation_probability) == (0.3, 30.0, 0.6)
    assert (c.translation_factor, c.flip_probability) == (0.02, 0.5)
    assert (c.extreme_crop_probability, c.color_scale) == (0.10, 0.2)
    assert not c.is_identity
    assert AugmentationConfig.none().is_identity


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("flip_probability", 1.5, "flip_probability"),
        ("scale_factor", -0.1, "scale_factor"),
        ("scale_factor", 1.0, "scale_factor"),
        ("color_scale", float("nan"), "color_scale"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        AugmentationConfig(**{field: value})


def test_sampling_is_reproducible_and_within_the_original_ranges():
    config = AugmentationConfig()
    params = [sample_augmentation(config, np.random.default_rng([7, i])) for i in range(4000)]
    again = [sample_augmentation(config, np.random.default_rng([7, i])) for i in range(50)]
    assert params[:50] == again
    scales = np.array([p.scale for p in params])
    rotations = np.array([p.rotation_deg for p in params])
    translations = np.array([p.translation for p in params])
    colors = np.array([p.color for p in params])
    assert scales.min() >= 0.7 - 1e-12 and scales.max() <= 1.3 + 1e-12
    assert np.abs(rotations).max() <= 60 + 1e-9
    assert np.abs(translations).max() <= 0.02 + 1e-12
    assert colors.min() >= 0.8 and colors.max() <= 1.2
    # probabilities within 5 binomial standard deviations
    for rate, observed in (
        (0.6, np.mean(rotations != 0)),
        (0.5, np.mean([p.flip for p in params])),
        (0.1, np.mean([p.extreme_crop for p in params])),
    ):
        assert abs(observed - rate) < 5 * math.sqrt(rate * (1 - rate) / len(params))


def test_sampling_with_no_augmentation_gives_the_identity():
    rng = np.random.default_rng(0)
    assert sample_augmentation(AugmentationConfig.none(), rng) == AugmentationParams()


def test_sampling_draws_the_same_count_whatever_the_outcome():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    sample_augmentation(AugmentationConfig(), a)
    sample_augmentation(AugmentationConfig.none(), b)
    assert a.random() == b.random()


# --- flips -------------------------------------------------------------------------------------


def test_flip_twice_is_identity_on_keypoints_and_smpl_pose():
    rng = np.random.default_rng(0)
    keypoints_2d = rng.uniform(0, 100, size=(5, 44, 3))
    keypoints_3d = rng.normal(size=(5, 44, 4))
    pose = rng.normal(size=(5, 72))
    twice_2d = flip_keypoints_2d_pixels(
        flip_keypoints_2d_pixels(keypoints_2d, image_width=120), image_width=120
    )
    np.testing.assert_allclose(twice_2d, keypoints_2d, atol=1e-12)
    np.testing.assert_allclose(flip_keypoints_3d(flip_keypoints_3d(keypoints_3d)), keypoints_3d)
    np.testing.assert_allclose(flip_smpl_pose(flip_smpl_pose(pose)), pose)
    assert not np.allclose(flip_smpl_pose(pose), pose)


def test_flip_2d_mirrors_pixels_and_swaps_sides():
    keypoints = np.zeros((44, 3))
    keypoints[2] = (10.0, 5.0, 1.0)  # OP RShoulder
    out = flip_keypoints_2d_pixels(keypoints, image_width=100)
    np.testing.assert_allclose(out[5], (89.0, 5.0, 1.0))  # becomes OP LShoulder at W - x - 1
    assert out[2, 2] == 0


def test_smpl_flip_of_a_rotation_is_the_mirrored_rotation():
    rng = np.random.default_rng(1)
    pose = rng.normal(size=72) * 0.7
    flipped = flip_smpl_pose(pose).reshape(24, 3)
    mirror = np.diag([-1.0, 1.0, 1.0])
    # joint j of the flipped pose = mirror of source joint perm[j]: M R M
    from pose_geometry import SMPL_FLIP_PERMUTATION

    for j, source in enumerate(SMPL_FLIP_PERMUTATION):
        expected = mirror @ rotmat(pose.reshape(24, 3)[source]) @ mirror
        np.testing.assert_allclose(rotmat(flipped[j]), expected, atol=1e-12)


def test_smpl_body_pose_flip_index_matches_the_original():
    expected_start = [3, 4, 5, 0, 1, 2, 6, 7, 8, 12, 13, 14, 9, 10, 11, 15, 16, 17]
    assert list(SMPL_BODY_POSE_FLIP_INDEX_69[:18]) == expected_start
    assert list(SMPL_BODY_POSE_FLIP_INDEX_69[-6:]) == [66, 67, 68, 63, 64, 65]


# --- rotation ----------------------------------------------------------------------------------


def test_in_plane_rotation_is_r_z_of_minus_the_angle():
    np.testing.assert_allclose(
        in_plane_rotation_matrix(90), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15
    )


def test_rotating_global_orient_composes_with_r_z():
    aa = np.array([0.3, -1.2, 0.5])
    out = rotate_global_orient(aa, 37.0)
    np.testing.assert_allclose(rotmat(out), in_plane_rotation_matrix(37.0) @ rotmat(aa), atol=1e-6)
    np.testing.assert_allclose(rotate_global_orient(aa, 0.0), aa)


def _projected_body(rng, *, focal, center):
    """A random rigid 'body': canonical points, orientation, translation; and its projection."""
    canonical = rng.normal(size=(44, 3)) * 0.4
    orient = rng.normal(size=3)
    translation = np.array([0.1, -0.2, 6.0])
    points = canonical @ rotmat(orient).T + translation
    pixels = focal * points[:, :2] / points[:, 2:] + center
    keypoints_2d = np.concatenate([pixels, np.ones((44, 1))], axis=1)
    keypoints_3d = np.concatenate([points, np.ones((44, 1))], axis=1)
    return canonical, orient, translation, keypoints_2d, keypoints_3d


@pytest.mark.parametrize("rotation", [90.0, -90.0, 33.0])
def test_rotation_moves_keypoints_and_global_orient_consistently(rotation):
    """Rotating the crop by r equals rotating the body by R_z(-r) before projecting it."""
    rng = np.random.default_rng(2)
    focal, center, box = 900.0, np.array([150.0, 120.0]), 240.0
    canonical, orient, translation, kp2d, kp3d = _projected_body(rng, focal=focal, center=center)
    image = np.zeros((240, 300, 3), dtype=np.uint8)
    out = crop_and_augment(
        image,
        center=center,
        box_size=box,
        keypoints_2d=kp2d,
        keypoints_3d=kp3d,
        global_orient=orient,
        body_pose=np.zeros(69),
        params=AugmentationParams(rotation_deg=rotation),
        output_size=64,
    )
    # the rotated body, rebuilt from the augmented global orientation
    R_z = in_plane_rotation_matrix(rotation)
    rebuilt = canonical @ rotmat(out.global_orient.astype(np.float64)).T + R_z @ translation
    np.testing.assert_allclose(out.keypoints_3d[:, :3], rebuilt, atol=1e-4)
    # projecting it with the crop's normalised focal length gives the augmented 2D keypoints
    projected = (focal / box) * rebuilt[:, :2] / rebuilt[:, 2:]
    np.testing.assert_allclose(out.keypoints_2d[:, :2], projected, atol=1e-5)
    if rotation == 90.0:  # a quarter turn: crop (u, v) = (y, -x) of the unrotated crop
        plain = (focal / box) * kp3d[:, :2] / kp3d[:, 2:3]
        np.testing.assert_allclose(out.keypoints_2d[:, 0], plain[:, 1], atol=1e-5)
        np.testing.assert_allclose(out.keypoints_2d[:, 1], -plain[:, 0], atol=1e-5)


def test_flip_scale_and_rotation_keep_3d_and_2d_keypoints_consistent():
    rng = np.random.default_rng(3)
    focal, center, box = 700.0, np.array([80.0, 90.0]), 150.0
    *_, kp2d, kp3d = _projected_body(rng, focal=focal, center=center)
    for flip in (False, True):
        params = AugmentationParams(scale=1.2, rotation_deg=-25.0, flip=flip)
        out = crop_and_augment(
            np.zeros((200, 160, 3), np.uint8),
            center=center,
            box_size=box,
            keypoints_2d=kp2d,
            keypoints_3d=kp3d,
            global_orient=np.zeros(3),
            body_pose=np.zeros(69),
            params=params,
            output_size=32,
        )
        projected = (focal / (box * 1.2)) * out.keypoints_3d[:, :2] / out.keypoints_3d[:, 2:3]
        np.testing.assert_allclose(out.keypoints_2d[:, :2], projected, atol=1e-5)


def test_rotate_keypoints_3d_keeps_confidence():
    kp = np.array([[1.0, 0.0, 2.0, 0.5]])
    out = rotate_keypoints_3d(kp, 90.0)
    np.testing.assert_allclose(out, [[0.0, -1.0, 2.0, 0.5]], atol=1e-12)


# --- crop --------------------------------------------------------------------------------------


def test_affine_matrix_sends_box_to_crop():
    M = crop_affine_matrix((50.0, 40.0), 20.0, output_size=64)
    corners = transform_points_2d(np.array([[50.0, 40.0], [40.0, 30.0], [60.0, 50.0]]), M)
    np.testing.assert_allclose(corners, [[32, 32], [0, 0], [64, 64]], atol=1e-12)
    flipped = crop_affine_matrix((50.0, 40.0), 20.0, output_size=64, flip=True)
    np.testing.assert_allclose(
        transform_points_2d(np.array([[40.0, 30.0]]), flipped), [[64, 0]], atol=1e-12
    )


def test_affine_matrix_equals_the_three_point_construction():
    """The original builds the map from the centre and the two rotated half-axes."""
    center, side, rot, size = np.array([123.0, 77.0]), 90.0, 25.0, 224
    r = math.radians(rot)

    def rotate(p):
        return np.array(
            [p[0] * math.cos(r) - p[1] * math.sin(r), p[0] * math.sin(r) + p[1] * math.cos(r)]
        )

    src = np.float32([center, center + rotate((0, side / 2)), center + rotate((side / 2, 0))])
    dst = np.float32([[size / 2, size / 2], [size / 2, size], [size, size / 2]])
    expected = cv2.getAffineTransform(src, dst)
    actual = crop_affine_matrix(center, side, output_size=size, rotation_deg=rot)
    np.testing.assert_allclose(actual, expected, atol=1e-3)


def test_flip_inside_the_matrix_equals_mirroring_the_image_first():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    center, side = np.array([30.0, 20.0]), 40.0
    ours = crop_image(
        image,
        crop_affine_matrix(center, side, output_size=32, rotation_deg=15, flip=True),
        output_size=32,
    )
    mirrored_center = np.array([70 - center[0] - 1, center[1]])
    original = crop_image(
        np.ascontiguousarray(image[:, ::-1]),
        crop_affine_matrix(mirrored_center, side, output_size=32, rotation_deg=15),
        output_size=32,
    )
    assert np.abs(ours.astype(int) - original.astype(int)).max() <= 1


@pytest.mark.parametrize("seed", range(12))
def test_keypoints_follow_the_image_content_under_augmentation(seed):
    """A bright blob drawn at one keypoint ends up where the augmented keypoint says."""
    rng = np.random.default_rng(seed)
    height, width, size = 96, 128, 64
    joint = int(rng.integers(44))
    x, y = rng.uniform(45, 85), rng.uniform(30, 65)
    grid_y, grid_x = np.mgrid[0:height, 0:width]
    blob = 255 * np.exp(-((grid_x - x) ** 2 + (grid_y - y) ** 2) / (2 * 2.5**2))
    image = np.repeat(blob[:, :, None], 3, axis=2).astype(np.uint8)
    keypoints = np.zeros((44, 3))
    keypoints[joint] = (x, y, 1.0)
    config = AugmentationConfig(extreme_crop_probability=0.0, color_scale=0.0)
    params = sample_augmentation(config, rng)
    out = crop_and_augment(
        image,
        center=(64.0, 48.0),
        box_size=70.0,
        keypoints_2d=keypoints,
        keypoints_3d=np.zeros((44, 4)),
        global_orient=np.zeros(3),
        body_pose=np.zeros(69),
        params=params,
        output_size=size,
        mean=(0.0, 0.0, 0.0),
        std=(1 / 255, 1 / 255, 1 / 255),
    )
    (index,) = np.flatnonzero(out.keypoints_2d[:, 2] > 0)
    expected_joint = FLIP_PERMUTATION_44.index(joint) if params.flip else joint
    assert index == expected_joint
    weights = out.image[0].astype(np.float64)
    weights = np.where(weights > 0.3 * weights.max(), weights, 0)
    v, u = np.mgrid[0:size, 0:size]
    centroid = np.array([(u * weights).sum(), (v * weights).sum()]) / weights.sum()
    expected = (out.keypoints_2d[index, :2] + 0.5) * size
    np.testing.assert_allclose(centroid, expected, atol=0.6)


def test_reduced_decoding_maps_to_the_same_crop():
    grid_y, grid_x = np.mgrid[0:120, 0:160].astype(float)
    smooth = 127 + 100 * np.sin(grid_x / 9.0) * np.cos(grid_y / 7.0)
    full = np.repeat(smooth[:, :, None], 3, axis=2).astype(np.float32)
    reduced = cv2.resize(full, (80, 60), interpolation=cv2.INTER_AREA)
    common = {
        "center": (80.0, 60.0),
        "box_size": 100.0,
        "keypoints_2d": np.zeros((44, 3)),
        "keypoints_3d": np.zeros((44, 4)),
        "global_orient": np.zeros(3),
        "body_pose": np.zeros(69),
        "output_size": 32,
    }
    a = crop_and_augment(full, **common).image
    b = crop_and_augment(reduced, image_reduction=2, **common).image
    assert np.abs(a - b).mean() < 0.02  # normalised units (about 1 grey level)


def test_identity_crop_is_the_normalised_warp():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    out = crop_and_augment(
        image,
        center=(25.0, 20.0),
        box_size=30.0,
        keypoints_2d=np.zeros((44, 3)),
        keypoints_3d=np.zeros((44, 4)),
        global_orient=np.zeros(3),
        body_pose=np.zeros(69),
        output_size=16,
    )
    crop = crop_image(image, crop_affine_matrix((25.0, 20.0), 30.0, output_size=16), output_size=16)
    expected = (crop[:, :, ::-1].astype(np.float32) - 255 * np.float32(IMAGENET_MEAN)) / (
        255 * np.float32(IMAGENET_STD)
    )
    np.testing.assert_allclose(out.image, expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)
    assert out.image.dtype == np.float32 and out.image.flags.c_contiguous


def test_color_factors_scale_and_clip():
    image = np.full((2, 2, 3), 200.0)
    out = normalize_image(image, color=(1.2, 1.0, 0.5), mean=(0, 0, 0), std=(1 / 255,) * 3)
    # float32 output (1.2 and 255 * (1/255) are rounded to float32): a float32 tolerance, not
    # NumPy's default rtol 1e-7 (the 240 here is 0.6e-7 off).
    np.testing.assert_allclose(out[:, 0, 0], [240.0, 200.0, 100.0], rtol=1e-6)
    out = normalize_image(
        np.full((1, 1, 3), 250.0), color=(1.2, 1.2, 1.2), mean=(0, 0, 0), std=(1 / 255,) * 3
    )
    np.testing.assert_allclose(out.ravel(), [255.0] * 3, rtol=1e-6)


# --- extreme crop --------------------------------------------------------------------------------


def _full_body():
    keypoints = np.zeros((44, 3))
    rng = np.random.default_rng(8)
    keypoints[:, :2] = rng.uniform(0, 100, size=(44, 2))
    keypoints[:, 2] = 1.0
    return keypoints


def test_extreme_crop_to_hips_uses_the_remaining_keypoints():
    keypoints = _full_body()
    center, side = extreme_crop_box(np.array([50.0, 50.0]), 120.0, keypoints, draw=0.5)
    kept = np.ones(44, bool)
    kept[[10, 11, 13, 14, *range(19, 25), 25, 26, 29, 30]] = False
    points = keypoints[kept, :2]
    low, high = points.min(0), points.max(0)
    np.testing.assert_allclose(center, (low + high) / 2)
    assert side == pytest.approx(1.1 * 1.2 * (high - low).max())


def test_extreme_crop_choices_and_fallbacks():
    keypoints = _full_body()
    _, hips = extreme_crop_box(np.zeros(2), 1.0, keypoints, draw=0.1)
    _, shoulders = extreme_crop_box(np.zeros(2), 1.0, keypoints, draw=0.8)
    _, head = extreme_crop_box(np.zeros(2), 1.0, keypoints, draw=0.95)
    assert len({hips, shoulders, head}) == 3
    # nothing visible: unchanged
    center, side = extreme_crop_box(np.array([3.0, 4.0]), 9.0, np.zeros((44, 3)), draw=0.1)
    np.testing.assert_allclose(center, [3.0, 4.0])
    assert side == 9.0
    # upper body only (no lower legs): shoulders for draw < 0.9
    upper = _full_body()
    upper[[10, 11, 13, 14, 25, 26, 29, 30], 2] = 0
    _, side_upper = extreme_crop_box(np.zeros(2), 1.0, upper, draw=0.5)
    kept = np.ones(44, bool)
    kept[[3, 4, *range(6, 15), *range(19, 25)]] = False
    kept[[25 + k for k in (*range(8), 10, 11, 14, 15, 16)]] = False
    points = upper[kept & (upper[:, 2] > 0), :2]
    assert side_upper == pytest.approx(1.2 * 1.2 * (points.max(0) - points.min(0)).max())
    # an upper body is never cropped to the hips
    _, side_head = extreme_crop_box(np.zeros(2), 1.0, upper, draw=0.95)
    assert side_head not in (1.0, side_upper)


def test_crop_rejects_a_non_positive_side():
    with pytest.raises(ValueError, match="side"):
        crop_affine_matrix((0.0, 0.0), 0.0, output_size=8)


def test_image_size_from_header_and_decode_reduction(tmp_path):
    from pose_data.augment import decode_reduction, image_size_from_header, read_image

    image = np.zeros((37, 51, 3), np.uint8)
    for suffix in (".jpg", ".png"):
        cv2.imwrite(str(tmp_path / f"x{suffix}"), image)
        assert image_size_from_header(tmp_path / f"x{suffix}") == (51, 37)
    (tmp_path / "x.bin").write_bytes(b"nothing")
    assert image_size_from_header(tmp_path / "x.bin") is None
    assert image_size_from_header(tmp_path / "missing.jpg") is None
    assert decode_reduction(1000.0, 224, max_reduction=8) == 4
    assert decode_reduction(1000.0, 224, max_reduction=2) == 2
    assert decode_reduction(300.0, 224, max_reduction=8) == 1
    assert read_image(str(tmp_path / "x.jpg"), reduction=2).shape == (19, 26, 3)
    with pytest.raises(ValueError, match="reduction"):
        read_image(str(tmp_path / "x.jpg"), reduction=3)


def test_uint8_table_path_equals_the_float_arithmetic():
    rng = np.random.default_rng(9)
    image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)[:, :, ::-1]
    for color in ((1.0, 1.0, 1.0), (1.19, 0.81, 1.05)):
        fast = normalize_image(image, color=color)
        slow = normalize_image(image.astype(np.float32), color=color)
        np.testing.assert_array_equal(fast, slow)
        assert fast.shape == (3, 20, 30) and fast.flags.c_contiguous
