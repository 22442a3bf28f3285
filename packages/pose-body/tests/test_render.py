import numpy as np
import pytest
import torch

from pose_body import (
    SKELETON_EDGES_44,
    Mesh,
    draw_keypoints,
    render_meshes,
    rotate_about_vertical,
    side_view,
)

RED, BLUE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)


def square(center, size, depth, color, alpha=1.0):
    """A camera-facing square (two triangles, counter-clockwise as seen from the camera)."""
    cx, cy = center
    h = size / 2
    vertices = [
        [cx - h, cy - h, depth],
        [cx + h, cy - h, depth],
        [cx + h, cy + h, depth],
        [cx - h, cy + h, depth],
    ]
    return Mesh(np.array(vertices), np.array([[0, 2, 1], [0, 3, 2]]), color=color, alpha=alpha)


def render(meshes, **kwargs):
    options = dict(image_size=(60, 80), focal_px=100.0, center_px=(40.0, 30.0), ambient=1.0)
    options.update(kwargs)
    return render_meshes(meshes, **options)


def test_nearer_triangles_cover_farther_ones_in_any_order():
    near, far = square((0.0, 0.0), 0.4, 2.0, RED), square((0.2, 0.0), 0.8, 3.0, BLUE)
    for meshes in ([near, far], [far, near]):
        image = render(meshes)
        assert tuple(image[30, 40]) == (255, 0, 0)  # both cover the centre: the near one wins
        assert tuple(image[30, 55]) == (0, 0, 255)  # only the far one
        assert tuple(image[2, 2]) == (255, 255, 255)  # background


def test_z_buffer_within_one_mesh_and_intersecting_triangles():
    # One mesh, two triangles crossing in depth: each shows where it is nearer.
    vertices = np.array([
        [-1.0, -1.0, 2.0], [1.0, -1.0, 4.0], [0.0, 1.0, 3.0],  # depth grows with x
        [-1.0, -1.0, 4.0], [1.0, -1.0, 2.0], [0.0, 1.0, 3.0],  # depth shrinks with x
    ])  # fmt: skip
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    colors = render([Mesh(vertices, faces)], shading="flat")
    # Tag the triangles apart with two meshes of the same geometry to know which one won.
    a = render(
        [Mesh(vertices[:3], [[0, 1, 2]], color=RED), Mesh(vertices[3:], [[0, 1, 2]], color=BLUE)]
    )
    assert tuple(a[30, 25]) == (255, 0, 0) and tuple(a[30, 55]) == (0, 0, 255)
    assert (colors[30, 25] < 255).any() and (colors[30, 55] < 255).any()


def test_a_known_point_lands_on_the_expected_pixel():
    # X = (0.1, -0.05, 2.0), f = 500, c = (112, 112): u = 137, v = 99.5 -> row 100 (round half up
    # is avoided by moving v to 99.6), column 137.
    point = np.array([0.1, -0.0496, 2.0])
    u = 500 * point[0] / point[2] + 112
    v = 500 * point[1] / point[2] + 112
    assert (round(u), round(v)) == (137, 100)
    tiny = 0.002  # 0.5 px at 2 m
    mesh = Mesh(
        point + np.array([[-tiny, -tiny, 0.0], [tiny, -tiny, 0.0], [0.0, tiny, 0.0]]),
        np.array([[0, 1, 2]]),
        color=RED,
    )
    image = render_meshes([mesh], image_size=(224, 224), focal_px=500.0, center_px=(112.0, 112.0))
    covered = np.argwhere((image != 255).any(-1))
    assert covered.tolist() == [[100, 137]]


def test_default_principal_point_is_the_image_centre():
    mesh = square((0.0, 0.0), 0.01, 1.0, RED)  # 1 px around the optical axis
    image = render_meshes([mesh], image_size=(11, 21), focal_px=100.0, ambient=1.0)
    assert np.argwhere((image != 255).any(-1)).tolist() == [[5, 10]]


def test_transparency_blends_over_what_is_behind():
    back = square((0.0, 0.0), 1.0, 3.0, BLUE)
    front = square((0.0, 0.0), 0.4, 2.0, RED, alpha=0.5)
    image = render([front, back]).astype(int)
    np.testing.assert_allclose(image[30, 40], [128, 0, 128], atol=1)
    assert tuple(image[30, 53]) == (0, 0, 255)


def test_overlay_on_a_background_image_and_supersampling():
    background = np.zeros((60, 80, 3), dtype=np.uint8)
    background[..., 1] = 200
    image = render([square((0.0, 0.0), 0.4, 2.0, RED)], background=background, supersample=3)
    assert image.dtype == np.uint8 and image.shape == (60, 80, 3)
    assert tuple(image[30, 40]) == (255, 0, 0) and tuple(image[2, 2]) == (0, 200, 0)
    edge = image[30, 40 - 10]  # half-covered border pixels are blended by supersampling
    assert 0 < edge[0] < 255 or tuple(edge) in ((255, 0, 0), (0, 200, 0))


def test_lambert_shading_darkens_surfaces_turned_from_the_light():
    facing = square((0.0, 0.0), 0.4, 2.0, (1.0, 1.0, 1.0))
    tilted_vertices = facing.vertices.copy()
    tilted_vertices[[1, 2], 2] += 0.35  # turn the right edge away from the camera
    tilted = Mesh(tilted_vertices, facing.faces, color=(1.0, 1.0, 1.0))
    lit = dict(ambient=0.2, light_direction=(0.0, 0.0, -1.0), background_color=(0.0, 0.0, 0.0))
    bright = render([facing], **lit)[30, 40, 0]
    dim = render([tilted], **lit)[30, 40, 0]
    assert bright == 255 and 60 < dim < 250
    flat = render([tilted], shading="flat", **lit)
    assert abs(int(flat[30, 40, 0]) - int(dim)) <= 2  # a plane: flat and smooth agree


def test_renders_a_posed_body_sensibly(body_model):
    root = torch.tensor(
        [[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]
    )  # camera frame: y down, facing us
    out = body_model(
        global_orient=root,
        body_pose=torch.eye(3).expand(23, 3, 3),
        betas=torch.zeros(10),
        transl=torch.tensor([0.0, 0.0, 4.0]),
    )
    mesh = Mesh(out.vertices, body_model.faces, color=(0.9, 0.6, 0.6))
    image = render_meshes([mesh], image_size=(224, 224), focal_px=250.0)
    body = (image != 255).any(-1)
    rows, cols = np.nonzero(body)
    assert 0.02 < body.mean() < 0.2
    assert cols.max() - cols.min() > rows.max() - rows.min() > 80  # T-pose: wider than tall
    side = render_meshes(side_view([mesh]), image_size=(224, 224), focal_px=250.0)
    side_cols = np.nonzero((side != 255).any(-1))[1]
    assert side_cols.max() - side_cols.min() < 0.5 * (
        cols.max() - cols.min()
    )  # arms now point at us


def test_rotate_about_vertical():
    points = np.array([[1.0, 2.0, 5.0], [0.0, -1.0, 4.0]])
    turned = rotate_about_vertical(points, angle_deg=90.0, center=(0.0, 0.0, 4.0))
    np.testing.assert_allclose(turned, [[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], atol=1e-12)
    np.testing.assert_allclose(
        rotate_about_vertical(torch.tensor(points), angle_deg=360.0), points, atol=1e-12
    )
    default = rotate_about_vertical(points, angle_deg=180.0)  # about the bounding-box centre
    np.testing.assert_allclose(default.mean(0)[1], points.mean(0)[1])
    meshes = side_view([square((0, 0), 1.0, 3.0, RED), square((1, 0), 1.0, 3.0, BLUE, alpha=0.3)])
    assert meshes[1].alpha == 0.3 and meshes[1].color == BLUE


def test_draw_keypoints():
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    points = np.array([[10.0, 10.0, 1.0], [40.0, 10.0, 1.0], [25.0, 40.0, 0.0]])
    out = draw_keypoints(image, points, edges=[(0, 1), (1, 2)], color=(0.0, 1.0, 0.0), radius=2)
    assert image.sum() == 0  # the input is untouched
    assert out[10, 25, 1] > 100 and out[10, 10, 1] == 255  # the edge and the point
    assert out[25, 32].sum() == 0 and out[40, 25].sum() == 0  # the unconfident point and its edge
    kp44 = np.random.default_rng(0).uniform(5, 45, size=(44, 2))
    assert draw_keypoints(image, kp44).any()
    assert all(0 <= i < 44 and 0 <= j < 44 for i, j in SKELETON_EDGES_44)
    with pytest.raises(ValueError, match=r"edge \(0, 9\) indexes outside 0\.\.2"):
        draw_keypoints(image, points, edges=[(0, 9)])
    with pytest.raises(ValueError, match=r"`image` must be an \(H, W, 3\) uint8 array"):
        draw_keypoints(image.astype(float), points)


def test_rejects_bad_arguments():
    mesh = square((0, 0), 1.0, 3.0, RED)
    with pytest.raises(ValueError, match=r"`faces` must index 0\.\.3"):
        Mesh(mesh.vertices, [[0, 1, 4]])
    with pytest.raises(ValueError, match=r"`vertices` must have shape \(V, 3\)"):
        Mesh(np.zeros((4, 2)), [[0, 1, 2]])
    with pytest.raises(ValueError, match=r"`color` must be \(r, g, b\) in 0\.\.1"):
        Mesh(mesh.vertices, mesh.faces, color=(255, 0, 0))
    with pytest.raises(ValueError, match=r"`background` must have shape \(60, 80, 3\)"):
        render([mesh], background=np.zeros((80, 60, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"unknown shading 'phong'"):
        render([mesh], shading="phong")
    with pytest.raises(TypeError, match=r"`meshes\[0\]` must be a Mesh"):
        render([mesh.vertices])


def test_empty_scene_and_points_behind_the_camera():
    assert (render([]) == 255).all()
    behind = square((0, 0), 1.0, -2.0, RED)
    assert (render([behind]) == 255).all()
