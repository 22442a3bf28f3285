"""The fitting tools end to end on a tiny trained checkpoint: eval_fitting, eval_multiview, demo,
visualize_latent, bench_fitting, and the glue in tools/pipeline/fitting.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pipeline.testing import load_tool, run_train_prohmr, tiny_prohmr_overrides

import pose_geometry as pg
from pose_fitting.testing import cxx_compiler
from prohmr_model.precision import native_bf16

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
SPIN_EXAMPLE = ROOT / "assets" / "demo" / "spin_example"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny problems: one CPU thread is as fast and does not suffer from a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ProHMR checkpoint trained for 3 steps on a tiny synthetic world (about 10 s)."""
    world = tmp_path_factory.mktemp("world")
    out = tmp_path_factory.mktemp("run")
    overrides = tiny_prohmr_overrides(world, out, steps=3, checkpoint_steps=3)
    result = run_train_prohmr(["--no-eval", "--set", *overrides])
    assert result.returncode == 0, result.stderr[-3000:]
    path = out / "checkpoints" / "last.pt"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint: Path):
    from pipeline.session import load_prohmr_checkpoint

    from prohmr_model.fitting import freeze

    model, config = load_prohmr_checkpoint(checkpoint, device=torch.device("cpu"))
    return freeze(model), config


def test_decoder_and_body_paths_match_the_model(loaded) -> None:
    from prohmr_model.fitting import body_keypoints, flow_decoder

    model, _ = loaded
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, model.backbone.num_features, generator=generator)
    z = torch.randn(3, 144, generator=generator)
    with torch.no_grad():
        reference = model.decode(features, num_samples=1, z=z[:, None])
    decoder = flow_decoder(model, features)
    z_var = z.clone().requires_grad_(True)
    orient, pose = decoder(z_var)
    torch.testing.assert_close(orient, reference.global_orient[:, 0])
    torch.testing.assert_close(pose, reference.body_pose[:, 0])
    betas = reference.betas[:, 0]
    fast = body_keypoints(model.body_model, path="fast")(orient, pose, betas)
    full = body_keypoints(model.body_model, path="full")(orient, pose, betas)
    torch.testing.assert_close(fast, reference.keypoints_3d[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=0)
    fast.square().sum().backward()
    assert z_var.grad is not None and bool(z_var.grad.abs().sum() > 0)
    assert all(not p.requires_grad for p in model.parameters())  # frozen: no weight gradients
    with pytest.raises(ValueError, match="rows"):
        decoder(torch.zeros(2, 144))


def test_frozen_decoder_equals_the_live_path_and_follows_the_weights(loaded) -> None:
    from prohmr_model.fitting import flow_decoder

    model, _ = loaded
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, model.backbone.num_features, generator=generator)
    z = torch.randn(2, 144, generator=generator)
    weights = torch.randn(2, 24, 3, 3, generator=generator)
    glow = model.flow.flow
    frozen = flow_decoder(model, features)  # frozen model: cached LU inverses

    def value_and_grad(decoder):
        latent = z.clone().requires_grad_(True)
        orient, pose = decoder(latent)
        rotations = torch.cat([orient, pose], dim=1)
        (rotations * weights).sum().backward()
        return rotations.detach(), latent.grad

    expected = value_and_grad(frozen)
    glow.requires_grad_(True)  # parameters that need grad: LU computed live
    try:
        actual = value_and_grad(flow_decoder(model, features))
    finally:
        glow.requires_grad_(False)
        model.zero_grad(set_to_none=True)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)
    # The decoder reads the flow at every call: a changed weight shows at once.
    shift = glow.actnorms[0].shift
    saved = shift.detach().clone()
    with torch.no_grad():
        shift.add_(0.1)
    try:
        changed = torch.cat(frozen(z), dim=1)
        assert not torch.allclose(changed, expected[0])
        torch.testing.assert_close(changed, torch.cat(flow_decoder(model, features)(z), dim=1))
    finally:
        with torch.no_grad():
            shift.copy_(saved)


NEEDS_COMPILER = pytest.mark.skipif(
    cxx_compiler() is None,
    reason="torch.compile on CPU needs a C++ compiler (none found: install g++ or set CXX)",
)


@NEEDS_COMPILER
def test_a_compiled_fit_traces_the_decoder(loaded) -> None:
    from pose_fitting import KeypointFittingOptions, LBFGSOptions, StoppingRules, fit_keypoints
    from prohmr_model.fitting import body_keypoints, flow_decoder

    model, _ = loaded
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(2, model.backbone.num_features, generator=generator)
    keypoints = torch.cat(
        [112 + 40 * torch.randn(2, 44, 2, generator=generator), torch.ones(2, 44, 1)], dim=-1
    )
    settings = {
        "stopping": StoppingRules(max_iterations=1),
        "lbfgs": LBFGSOptions(max_inner_iterations=3),
    }
    results = []
    for compile in (False, True):
        decoder = flow_decoder(model, features)
        results.append(
            fit_keypoints(
                decoder=decoder,
                body_model=body_keypoints(model.body_model, path="fast"),
                keypoints_2d=keypoints,
                init_z=torch.zeros(2, 144),
                init_betas=torch.zeros(2, 10),
                init_camera_translation=torch.tensor([[0.0, 0.2, 12.0]]).repeat(2, 1),
                focal_px=500.0,
                image_size_px=torch.full((2, 2), 224.0),
                options=KeypointFittingOptions(compile=compile, **settings),
            )
        )
    eager, compiled = results
    assert (compiled.loss < compiled.report.initial_loss).all()
    torch.testing.assert_close(compiled.loss, eager.loss, rtol=1e-3, atol=0)
    assert compiled.report.objective_calls > 1


def test_load_pose_prior_reads_pickles_and_npz(tmp_path: Path) -> None:
    from pose_fitting import fit_pose_gmm
    from prohmr_model.fitting import load_pose_prior

    rng = np.random.default_rng(0)
    means = np.array([[2.0, 0.0, 0.0], [-2.0, 1.0, 0.0]])
    samples = np.concatenate(
        [rng.normal(means[0], 0.1, size=(600, 3)), rng.normal(means[1], 0.2, size=(200, 3))]
    )
    gmm = fit_pose_gmm(samples, num_components=2, seed=1, regularization=1e-6)
    # the file paths: a gmm_08.pkl-style pickle (restricted unpickler) and an npz
    pickled = tmp_path / "gmm.pkl"
    pickled.write_bytes(pickle.dumps({k: np.asarray(v) for k, v in gmm.items()}))
    prior, source = load_pose_prior(pickled)
    assert prior.num_components == 2 and str(pickled) in source
    energy = prior(torch.tensor(means))
    assert energy[0] < prior(torch.tensor([[0.0, 5.0, 5.0]]))[0]
    np.savez(tmp_path / "gmm.npz", **gmm)
    assert load_pose_prior(tmp_path / "gmm.npz")[0].num_components == 2
    with pytest.raises(FileNotFoundError, match="gmm_08"):
        load_pose_prior(tmp_path / "missing.pkl")
    with pytest.raises(ValueError, match="no GMM file"):
        load_pose_prior(None)


def test_eval_fitting_reduces_the_reprojection_error(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("eval_fitting")
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--limit", "4", "--batch-size", "2",
            "--max-iters", "3", "--smplify-iters", "5", "--out", str(tmp_path),
            "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "fitting_summary.json").read_text())
    summary = report["summary"]
    for method in ("mode", "prohmr_fit", "smplify"):
        for metric in ("pa_mpjpe", "mpjpe", "reproj_px"):
            assert np.isfinite(summary[f"{method}_{metric}"]), (method, metric)
        assert len(report["per_image"][f"{method}_pa_mpjpe"]) == 4
    assert summary["prohmr_fit_reproj_px"] < summary["mode_reproj_px"]
    assert "EM fit" in report["smplify_prior"]
    assert "| ProHMR fitting |" in (tmp_path / "fitting_summary.md").read_text()


@NEEDS_COMPILER
def test_eval_fitting_compiled_gives_the_eager_numbers(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("eval_fitting")
    summaries = []
    for extra in ([], ["--compile"]):
        out = tmp_path / ("compiled" if extra else "eager")
        code = tool.main(
            [
                "--checkpoint", str(checkpoint), "--limit", "2", "--batch-size", "2",
                "--max-iters", "2", "--no-smplify", "--out", str(out), "--device", "cpu", *extra,
            ]
        )  # fmt: skip
        assert code == 0
        summaries.append(json.loads((out / "fitting_summary.json").read_text())["summary"])
    eager, compiled = summaries
    # The compiled pieces equal the eager ones to float rounding (tests above and in
    # pose-fitting); L-BFGS amplifies rounding differences over its ~40 inner iterations
    # (line-search decisions flip), so the fits are close, not equal. Measured on machines of
    # this project: PA-MPJPE 0.2-0.3% apart, MPJPE 1.2-5.3% (it includes the global depth,
    # which 2D keypoints barely constrain), reprojection 2-7% (the smallest of the three
    # numbers, about 1 px, so its relative spread is the largest). This checks the tool's
    # wiring: both fits take the reprojection error far below the regression's, and land on
    # fits of the same quality.
    assert compiled["mode_mpjpe"] == eager["mode_mpjpe"]  # the regression is not compiled
    for summary in (eager, compiled):
        assert summary["prohmr_fit_reproj_px"] < 0.5 * summary["mode_reproj_px"]
    assert compiled["prohmr_fit_reproj_px"] == pytest.approx(
        eager["prohmr_fit_reproj_px"], rel=0.25
    )
    for metric, rel in (("pa_mpjpe", 5e-2), ("mpjpe", 0.15)):
        key = f"prohmr_fit_{metric}"
        assert compiled[key] == pytest.approx(eager[key], rel=rel), key


def test_eval_multiview_pulls_the_views_together(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("eval_multiview")
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--limit", "2", "--frames-per-batch", "2",
            "--max-iters", "3", "--reprojection", "--out", str(tmp_path), "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "multiview_summary.json").read_text())
    summary = report["summary"]
    assert report["images"] == 8  # 2 frames of 4 views
    assert summary["refined_view_spread"] < summary["mode_view_spread"]
    for name in ("mode", "refined", "refined_2d"):
        assert np.isfinite(summary[f"{name}_pa_mpjpe"]) and np.isfinite(summary[f"{name}_mpjpe"])


def test_demo_on_the_spin_openpose_example(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("demo")
    size = 96
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--image", str(SPIN_EXAMPLE / "im1010.jpg"),
            "--openpose", str(SPIN_EXAMPLE / "im1010_openpose.json"), "--out", str(tmp_path),
            "--num-samples", "3", "--max-iters", "3", "--display-size", str(size),
            "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    for suffix, shape in (
        ("regression", (size, 4 * size, 3)),
        ("fit", (size, 4 * size, 3)),
        ("summary", (2 * size, 4 * size, 3)),
        ("fullframe", (192, 153, 3)),
    ):
        image = cv2.imread(str(tmp_path / f"im1010_p0_{suffix}.png"))
        assert image is not None and image.shape == shape, suffix
    record = json.loads((tmp_path / "demo_summary.json").read_text())[0]
    assert record["keypoint_error_crop224_px_after"] < record["keypoint_error_crop224_px_before"]


def test_demo_with_a_box_regresses_without_fitting(loaded, checkpoint: Path, tmp_path) -> None:
    _, config = loaded
    image = Path(config.synthetic.output_dir) / "images" / "val" / "000000_0.jpg"
    tool = load_tool("demo")
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--image", str(image), "--box", "8", "4", "40", "56",
            "--out", str(tmp_path), "--num-samples", "2", "--display-size", "64",
            "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    assert cv2.imread(str(tmp_path / "000000_0_p0_regression.png")).shape == (64, 256, 3)
    assert not (tmp_path / "000000_0_p0_fit.png").exists()
    record = json.loads((tmp_path / "demo_summary.json").read_text())[0]
    assert record["fit"].startswith("no keypoints")
    assert record["box_size"] == pytest.approx(1.2 * 56)


def test_demo_exports_params_meshes_and_humandata(loaded, checkpoint: Path, tmp_path) -> None:
    from pose_body import read_obj
    from pose_data.humandata import read_humandata

    model, _ = loaded
    tool = load_tool("demo")
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--image", str(SPIN_EXAMPLE / "im1010.jpg"),
            "--openpose", str(SPIN_EXAMPLE / "im1010_openpose.json"), "--out", str(tmp_path),
            "--num-samples", "3", "--max-iters", "2", "--display-size", "64", "--device", "cpu",
            "--save-params", "--save-mesh", "--save-samples", "--save-humandata",
        ]
    )  # fmt: skip
    assert code == 0
    names = {path.name for path in tmp_path.iterdir()}
    expected = {f"im1010_p0_regression{s}" for s in (".npz", ".json", ".obj")}
    expected |= {f"im1010_p0_fit{s}" for s in (".npz", ".json", ".obj")}
    expected |= {"im1010_p0_regression_sample001.obj", "im1010_p0_regression_sample002.obj"}
    assert expected | {"demo_humandata.npz"} <= names
    faces = model.body_model.faces.numpy()
    for name in ("im1010_p0_fit.obj", "im1010_p0_regression_sample002.obj"):
        vertices, read_faces = read_obj(tmp_path / name)
        assert vertices.shape == (6890, 3) and vertices[:, 2].min() > 0  # in front of the camera
        np.testing.assert_array_equal(read_faces, faces)
    # the fit is exported in the FULL image's camera: its keypoints fall on the OpenPose ones
    # as closely as the fit's own error (measured in the 224-px crop) says
    fit = np.load(tmp_path / "im1010_p0_fit.npz")
    regression = np.load(tmp_path / "im1010_p0_regression.npz")
    assert regression["body_pose"].shape == (3, 69) and fit["body_pose"].shape == (69,)
    vertices, _ = read_obj(tmp_path / "im1010_p0_fit.obj")
    summary = json.loads((tmp_path / "demo_summary.json").read_text())[0]
    target = json.loads((SPIN_EXAMPLE / "im1010_openpose.json").read_text())
    openpose = np.asarray(target["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    seen = openpose[:, 2] > 0
    error = np.linalg.norm(fit["keypoints_2d"][:25][seen] - openpose[seen, :2], axis=1).mean()
    crop_error = summary["keypoint_error_crop224_px_after"] * summary["box_size"] / 224
    assert error == pytest.approx(crop_error, rel=0.05)
    humandata = read_humandata(tmp_path / "demo_humandata.npz")
    np.testing.assert_allclose(humandata["smpl"]["transl"][0], fit["transl"])
    np.testing.assert_allclose(humandata["smpl"]["body_pose"][0].reshape(69), fit["body_pose"])
    trimesh = pytest.importorskip("trimesh")  # hatch.toml's test env has it
    mesh = trimesh.load(tmp_path / "im1010_p0_fit.obj", process=False)
    assert mesh.vertices.shape == (6890, 3)
    np.testing.assert_array_equal(mesh.faces, faces)


def test_eval_fitting_exports_the_fits_in_the_full_image(checkpoint: Path, tmp_path) -> None:
    from pose_body import read_obj
    from pose_data.humandata import read_humandata

    code = load_tool("eval_fitting").main(
        [
            "--checkpoint", str(checkpoint), "--limit", "2", "--batch-size", "2",
            "--max-iters", "2", "--no-smplify", "--out", str(tmp_path), "--device", "cpu",
            "--save-params", "--save-mesh", "--save-humandata",
        ]
    )  # fmt: skip
    assert code == 0
    exports = tmp_path / "exports"
    records = sorted(exports.glob("0*.npz"))
    assert [p.name for p in records] == ["00000_000000_0.npz", "00001_000001_0.npz"]
    assert (exports / "fits_humandata.npz").is_file()
    vertices, _ = read_obj(records[1].with_suffix(".obj"))
    assert vertices.shape == (6890, 3) and vertices[:, 2].min() > 0
    record = np.load(records[1])
    # the record's 2D keypoints are its 3D keypoints seen by the full image's camera
    projected = pg.project_points(
        torch.from_numpy(record["keypoints_3d"]),
        focal_px=float(record["focal_length"]),
        center_px=torch.from_numpy(record["image_size"] / 2),
    )
    np.testing.assert_allclose(projected.numpy(), record["keypoints_2d"], atol=1e-3)
    humandata = read_humandata(exports / "fits_humandata.npz")
    assert humandata["image_path"].tolist() == ["val/000000_0.jpg", "val/000001_0.jpg"]
    np.testing.assert_allclose(humandata["smpl"]["transl"][1], record["transl"], rtol=1e-6)


def test_visualize_latent_grid(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("visualize_latent")
    z, directions = tool.latent_grid(144, grid=3, radius=2.0, generator=torch.Generator())
    torch.testing.assert_close(directions @ directions.T, torch.eye(2), atol=1e-5, rtol=0)
    assert z.shape == (3, 3, 144) and float(z[1, 1].abs().max()) == 0.0  # the mode at the centre
    torch.testing.assert_close(z[0, 2] - z[0, 0], 4.0 * directions[0], atol=1e-5, rtol=0)
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--grid", "3", "--cell", "48",
            "--views", "side", "front", "--out", str(tmp_path), "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    for view in ("side", "front"):
        picture = cv2.imread(str(tmp_path / f"latent_{view}.png"))
        assert picture.shape == (28 + 3 * 48, 3 * 48, 3)
        cells = picture[28:].reshape(3, 48, 3, 48, 3)
        assert all((cells[r, :, c] < 200).any() for r in range(3) for c in range(3))  # a body


def test_bench_fitting_runs_every_path(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("bench_fitting")
    out = tmp_path / "bench.json"
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--batch-sizes", "2", "--iterations", "1",
            "--threads", "1", "--component-repeats", "2", "--repeats", "3", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    # the bf16 path only where the CPU computes bf16 natively (AVX-512 BF16 / AMX)
    bf16 = {tool.BF16} if native_bf16("cpu")[0] else set()
    assert report["bf16"] == bool(bf16)
    paths = {tool.FULL, tool.PLAIN, tool.STAND_IN} | bf16
    assert {row["path"] for row in report["fits"]} == paths
    assert all(row["evaluations"] > 0 and row["seconds_total"] > 0 for row in report["fits"])
    assert all(len(row["rounds_seconds"]) == 3 for row in report["fits"])
    assert set(report["evaluation_ms"]) == {"2"} and len(report["evaluation_ms"]["2"]) == 3
    # the bound is the stand-in body's per-evaluation speed-up over the full path
    stand_in = next(row for row in report["fits"] if row["path"] == tool.STAND_IN)
    assert report["bound_per_evaluation"]["2"] == stand_in["ratio_per_evaluation_vs_full"] > 0
    assert report["compiled"] is False and report["compile_warmup_seconds"] == {}


@NEEDS_COMPILER
def test_bench_fitting_compiles_its_path_before_timing(checkpoint: Path, tmp_path: Path) -> None:
    tool = load_tool("bench_fitting")
    out = tmp_path / "bench.json"
    code = tool.main(
        [
            "--checkpoint", str(checkpoint), "--batch-sizes", "2", "--iterations", "1",
            "--threads", "1", "--component-repeats", "1", "--repeats", "1", "--compile",
            "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["compiled"] is True
    assert report["compile_warmup_seconds"]["2"] > 0
    assert tool.COMPILED in {row["path"] for row in report["fits"]}
    assert all(row["evaluations"] > 0 for row in report["fits"])
