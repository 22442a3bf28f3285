"""The evaluation protocols' numbers pinned on a tiny fixed model and data set.

The expected values were recorded before the regression protocol was unified, with the code of
the time: the training run's report (``evaluate_regression`` called as ``pipeline.session``
calls it), the lifting evaluation and eval_regression.py's own loop. Those figures must stay the
same, random draws included; the generator's next draw after the evaluation pins how many
numbers it consumed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pose_geometry as pg
from pose_body import BodyModel
from prohmr_model.config import LiftingModelConfig, ModelConfig
from prohmr_model.evaluation import GAUSSIAN_SIGMAS_M, evaluate_lifting, evaluate_regression
from prohmr_model.lifting import build_lifting_model
from prohmr_model.model import build_prohmr

REL = 1e-6


def tiny_prohmr() -> torch.nn.Module:
    """A ResNet-18 ProHMR with a 2-layer, width-16 flow from fixed random weights."""
    torch.manual_seed(0)
    config = ModelConfig(
        backbone_depth=18,
        flow_num_layers=2,
        flow_hidden_features=16,
        fc_hidden_features=16,
        flow_num_blocks=1,
        discriminator=False,
    )
    model = build_prohmr(
        config,
        body_model=BodyModel.procedural(),
        mean_betas=np.zeros(10),
        mean_camera=np.array([0.9, 0.0, 0.0]),
    )
    model.train()
    generator = torch.Generator().manual_seed(3)
    rotations = pg.axis_angle_to_rotmat(0.5 * torch.randn(8, 24, 3, generator=generator))
    features = model.features(torch.randn(8, 3, 32, 32, generator=generator))
    pose_6d = pg.rotmat_to_rot6d(rotations).reshape(8, -1)
    model.initialize_flow(features, pose_6d, torch.ones(8, dtype=torch.bool))
    return model.eval()


def tiny_items(count: int = 5) -> tuple[list[dict[str, object]], torch.Tensor]:
    """Items like ImageDataset's (32-px crops, 44 keypoints with some zero confidences) and a
    fixed 'mean pose' for the extra-prediction baseline."""
    generator = torch.Generator().manual_seed(7)
    items = []
    for index in range(count):
        points = 0.3 * torch.randn(44, 3, generator=generator)
        confidence = (torch.rand(44, 1, generator=generator) > 0.2).float()
        image = torch.randn(3, 32, 32, generator=generator)
        items.append(
            {"img": image, "keypoints_3d": torch.cat([points, confidence], 1), "idx": index}
        )
    return items, 0.2 * torch.randn(44, 3, generator=generator)


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, list[dict[str, object]], torch.Tensor]:
    return tiny_prohmr(), *tiny_items()


def report_call(model, items, mean, *, best_of, **options):
    """``evaluate_regression`` with the arguments ``pipeline.session`` passes."""
    generator = torch.Generator().manual_seed(1234)
    evaluation = evaluate_regression(
        model,
        items,
        keypoint_list=pg.LSP14_IDX_44,
        num_samples=max(best_of),
        best_of=best_of,
        device=torch.device("cpu"),
        generator=generator,
        extra_predictions={"mean_pose": lambda batch: mean.expand(len(batch["img"]), 1, 44, 3)},
        source="the tiny model",
        **options,
    )
    return evaluation, float(torch.rand((), generator=generator))


def check(summary: dict[str, float], expected: dict[str, float]) -> None:
    assert list(summary) == list(expected)  # the report's rows, in order
    for name, value in expected.items():
        assert summary[name] == pytest.approx(value, rel=REL), name


REPORT_FULL = {
    "mode_mpjpe": 911.446484375,
    "mode_pa_mpjpe": 414.6551574707031,
    "best4_mpjpe": 842.7845703125,
    "best4_pa_mpjpe": 402.82631225585936,
    "best16_mpjpe": 753.3154174804688,
    "best16_pa_mpjpe": 386.6899841308594,
    "mean_pose_mpjpe": 906.4002868652344,
    "mean_pose_pa_mpjpe": 408.061767578125,
}
REPORT_FULL_NEXT = 0.5364875793457031
REPORT_QUICK = {
    "mode_mpjpe": 911.446484375,
    "mode_pa_mpjpe": 414.6551574707031,
    "best4_mpjpe": 851.3400512695313,
    "best4_pa_mpjpe": 394.17657470703125,
    "mean_pose_mpjpe": 906.4002868652344,
    "mean_pose_pa_mpjpe": 408.061767578125,
}
REPORT_QUICK_NEXT = 0.8922653794288635
REPORT_BATCHED = {
    "mode_mpjpe": 911.446484375,
    "mode_pa_mpjpe": 414.6551574707031,
    "best4_mpjpe": 842.7845703125,
    "best4_pa_mpjpe": 402.82630615234376,
    "best16_mpjpe": 753.3154174804688,
    "best16_pa_mpjpe": 386.689990234375,
    "mean_pose_mpjpe": 906.4002868652344,
    "mean_pose_pa_mpjpe": 408.061767578125,
}
REPORT_BATCHED_NEXT = 0.5364875793457031
# k-means drawing from the samples' generator (recorded with sample_chunk 1024; the chunk size
# now changes nothing: the latents are drawn in one go and decoded in chunks)
KMEANS = {
    "mode_mpjpe": 911.446484375,
    "mode_pa_mpjpe": 414.6551574707031,
    "best4_mpjpe": 797.5320556640625,
    "best4_pa_mpjpe": 403.5469055175781,
    "best16_mpjpe": 751.0334228515625,
    "best16_pa_mpjpe": 389.93975219726565,
    "kmeans2_mpjpe": 798.7655151367187,
    "kmeans2_pa_mpjpe": 413.5665649414062,
    "mean_pose_mpjpe": 906.4002868652344,
    "mean_pose_pa_mpjpe": 408.061767578125,
}
KMEANS_NEXT = 0.409217894077301


@pytest.mark.parametrize(
    ("best_of", "options", "expected", "next_draw"),
    [
        ((4, 16), {}, REPORT_FULL, REPORT_FULL_NEXT),
        ((4,), {}, REPORT_QUICK, REPORT_QUICK_NEXT),
        ((4, 16), {"batch_size": 2}, REPORT_BATCHED, REPORT_BATCHED_NEXT),
        (
            (4, 16),
            {"batch_size": 2, "kmeans_clusters": (2,), "sample_chunk": 5},
            KMEANS,
            KMEANS_NEXT,
        ),
    ],
    ids=["full", "quick", "batch2", "kmeans-chunk5"],
)
def test_report_figures_are_pinned(setup, best_of, options, expected, next_draw) -> None:
    model, items, mean = setup
    evaluation, draw = report_call(model, items, mean, best_of=best_of, **options)
    check(evaluation.summary, expected)
    assert draw == next_draw
    assert evaluation.accumulator.num_images == len(items)


def tiny_lifting() -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]], torch.Tensor]:
    """A width-16 ProSkeleton from fixed random weights, 5 test rows and 20 training poses."""
    torch.manual_seed(0)
    model = build_lifting_model(
        LiftingModelConfig(hidden_features=16, flow_hidden_features=16, flow_num_layers=2)
    )
    generator = torch.Generator().manual_seed(5)
    keypoints_2d = torch.randn(8, 17, 3, generator=generator)
    targets = 0.3 * torch.randn(8, 16, 3, generator=generator)
    model.train()
    model.initialize_flow(keypoints_2d, targets)
    items = [
        {
            "keypoints_2d": keypoints_2d[i],
            "keypoints_3d": torch.cat([targets[i], torch.ones(16, 1)], 1),
        }
        for i in range(5)
    ]
    return model.eval(), items, 0.3 * torch.randn(20, 16, 3, generator=generator)


LIFTING = {
    "mode_mpjpe": 395.09392700195315,
    "mode_pa_mpjpe": 374.46641235351564,
    "best1_mpjpe": 395.09392700195315,
    "best1_pa_mpjpe": 374.46641235351564,
    "best4_mpjpe": 395.09392700195315,
    "best4_pa_mpjpe": 358.9249328613281,
    "best16_mpjpe": 392.6789306640625,
    "best16_pa_mpjpe": 343.2638732910156,
    "kmeans2_mpjpe": 389.9062072753906,
    "kmeans2_pa_mpjpe": 369.0466369628906,
    "gauss1cm_best1_mpjpe": 395.09392700195315,
    "gauss1cm_best1_pa_mpjpe": 374.46641235351564,
    "gauss1cm_best4_mpjpe": 393.1357116699219,
    "gauss1cm_best4_pa_mpjpe": 372.39271850585936,
    "gauss1cm_best16_mpjpe": 390.228759765625,
    "gauss1cm_best16_pa_mpjpe": 370.02125244140626,
    "gauss20cm_best1_mpjpe": 395.09392700195315,
    "gauss20cm_best1_pa_mpjpe": 374.46641235351564,
    "gauss20cm_best4_mpjpe": 395.09392700195315,
    "gauss20cm_best4_pa_mpjpe": 374.46641235351564,
    "gauss20cm_best16_mpjpe": 395.09392700195315,
    "gauss20cm_best16_pa_mpjpe": 364.70514526367185,
    "trainset_best1_mpjpe": 612.0235961914062,
    "trainset_best1_pa_mpjpe": 394.60890502929686,
    "trainset_best4_mpjpe": 548.8826599121094,
    "trainset_best4_pa_mpjpe": 386.86296997070315,
    "trainset_best16_mpjpe": 525.9788757324219,
    "trainset_best16_pa_mpjpe": 362.49444580078125,
}


def test_lifting_figures_are_pinned() -> None:
    model, items, training = tiny_lifting()
    result = evaluate_lifting(
        model,
        items,
        ns=(1, 4, 16),
        kmeans_ns=(2,),
        gaussian_sigmas_m=(0.01, 0.2),
        training_poses=training,
        batch_size=2,
        seed=11,
    )
    check(result["summary"], LIFTING)
    assert result["ns"] == [1, 4, 16]


TOOL = {
    "mode_mpjpe": 849.0127807617188,
    "mode_pa_mpjpe": 449.1088439941406,
    "best1_mpjpe": 849.0127807617188,
    "best1_pa_mpjpe": 449.1088439941406,
    "best4_mpjpe": 728.3036499023438,
    "best4_pa_mpjpe": 440.91612548828124,
    "best16_mpjpe": 662.228759765625,
    "best16_pa_mpjpe": 427.66986083984375,
    "kmeans2_mpjpe": 704.4235595703125,
    "kmeans2_pa_mpjpe": 445.56915893554685,
    "gauss1cm_best1_mpjpe": 849.0127807617188,
    "gauss1cm_best1_pa_mpjpe": 449.1088439941406,
    "gauss1cm_best4_mpjpe": 846.6293212890625,
    "gauss1cm_best4_pa_mpjpe": 448.4912536621094,
    "gauss1cm_best16_mpjpe": 840.3605346679688,
    "gauss1cm_best16_pa_mpjpe": 448.16614990234376,
    "gauss10cm_best1_mpjpe": 849.0127807617188,
    "gauss10cm_best1_pa_mpjpe": 449.1088439941406,
    "gauss10cm_best4_mpjpe": 804.168017578125,
    "gauss10cm_best4_pa_mpjpe": 447.12490234375,
    "gauss10cm_best16_mpjpe": 772.1787109375,
    "gauss10cm_best16_pa_mpjpe": 439.9633422851563,
    "gauss20cm_best1_mpjpe": 849.0127807617188,
    "gauss20cm_best1_pa_mpjpe": 449.1088439941406,
    "gauss20cm_best4_mpjpe": 828.434912109375,
    "gauss20cm_best4_pa_mpjpe": 436.9112060546875,
    "gauss20cm_best16_mpjpe": 783.5078491210937,
    "gauss20cm_best16_pa_mpjpe": 431.033544921875,
    "trainset_best1_mpjpe": 923.8534301757812,
    "trainset_best1_pa_mpjpe": 454.32758178710935,
    "trainset_best4_mpjpe": 714.8461181640625,
    "trainset_best4_pa_mpjpe": 417.963427734375,
    "trainset_best16_mpjpe": 639.958642578125,
    "trainset_best16_pa_mpjpe": 412.9490478515625,
    "mode_pck150": 5.882352828979492,
    "mode_auc": 5.692599773406982,
}
TOOL_NEXT = 0.6493549346923828


def tool_items(items):
    """The tiny items with every joint counted, and 20 pelvis-relative training poses."""
    items = [{**item, "keypoints_3d": item["keypoints_3d"].clone()} for item in items]
    for item in items:
        item["keypoints_3d"][:, 3] = 1.0
    training = 0.3 * torch.randn(20, 44, 3, generator=torch.Generator().manual_seed(9))
    return items, training - training[:, pg.PELVIS_IDX_44 : pg.PELVIS_IDX_44 + 1]


def tool_call(model, items, training, generator, **options):
    return evaluate_regression(
        model,
        items,
        keypoint_list=pg.MPI_INF17_IDX_44,
        num_samples=16,
        best_of=(1, 4, 16),
        kmeans_clusters=(2,),
        gaussian_sigmas_m=GAUSSIAN_SIGMAS_M,
        training_poses=training,
        pck_auc=True,
        batch_size=2,
        generator=generator,
        **options,
    )


def test_eval_regression_figures_are_pinned(setup) -> None:
    """eval_regression.py's former loop (k-means, Gaussian and training-set baselines and
    PCK/AUC, all drawing from one generator) is the package's protocol with those options."""
    model, items, _ = setup
    items, training = tool_items(items)
    generator = torch.Generator().manual_seed(0)
    evaluation = tool_call(model, items, training, generator)
    check(evaluation.summary, TOOL)
    assert float(torch.rand((), generator=generator)) == TOOL_NEXT


def test_baselines_from_their_own_generator_leave_the_model_figures_alone(setup) -> None:
    model, items, mean = setup
    plain, _ = report_call(model, items, mean, best_of=(4, 16), batch_size=2)
    with_baselines, draw = report_call(
        model,
        items,
        mean,
        best_of=(4, 16),
        batch_size=2,
        kmeans_clusters=(2,),
        gaussian_sigmas_m=GAUSSIAN_SIGMAS_M,
        baseline_generator=torch.Generator().manual_seed(1),
    )
    for name, value in plain.summary.items():
        assert with_baselines.summary[name] == pytest.approx(value, rel=REL), name
    assert draw == REPORT_BATCHED_NEXT
    assert "gauss20cm_best16_mpjpe" in with_baselines.summary


def test_the_sample_chunk_changes_nothing(setup) -> None:
    model, items, mean = setup
    whole, _ = report_call(model, items, mean, best_of=(1, 16), batch_size=3)
    chunked, _ = report_call(model, items, mean, best_of=(1, 16), batch_size=3, sample_chunk=4)
    for name, value in whole.summary.items():
        assert chunked.summary[name] == pytest.approx(value, rel=1e-5), name
