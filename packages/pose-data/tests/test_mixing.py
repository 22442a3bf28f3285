import itertools
import math

import numpy as np
import pytest
import torch

from pose_data import (
    PROHMR_TRAIN_WEIGHTS,
    ImageDataset,
    MixedDataset,
    MixedSampler,
    StreamSampler,
)


class Rows(torch.utils.data.Dataset):
    def __init__(self, name, n):
        self.name, self.n = name, n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return {"name": self.name, "row": index}


def prohmr_mixture(seed=0):
    sizes = {"H36M-TRAIN": 50, "MPII-TRAIN": 7, "COCO-TRAIN-2014": 30, "MPI-INF-TRAIN": 11}
    datasets = [Rows(name, sizes[name]) for name in PROHMR_TRAIN_WEIGHTS]
    return MixedDataset(datasets, list(PROHMR_TRAIN_WEIGHTS.values()), seed=seed)


def test_frequencies_match_the_weights():
    mixed = prohmr_mixture()
    draws = 20000
    choices = [mixed.choose(p) for p in range(draws)]
    counts = np.bincount([k for k, _ in choices], minlength=4)
    for weight, count in zip(PROHMR_TRAIN_WEIGHTS.values(), counts, strict=True):
        sigma = math.sqrt(draws * weight * (1 - weight))
        assert abs(count - draws * weight) < 5 * sigma
    # rows are uniform within a dataset (chi-square on the 7 MPII rows, 5 sigma)
    rows = np.bincount([i for k, i in choices if k == 1], minlength=7)
    expected = rows.sum() / 7
    chi2 = ((rows - expected) ** 2 / expected).sum()
    assert chi2 < 6 + 5 * math.sqrt(12)


def test_items_are_a_function_of_seed_and_position():
    a, b = prohmr_mixture(seed=4), prohmr_mixture(seed=4)
    assert [a[p] for p in range(50)] == [b[p] for p in range(50)]
    assert [a[p] for p in range(50)] != [prohmr_mixture(seed=5)[p] for p in range(50)]
    item = a[3]
    assert item["dataset_index"] in range(4) and "row" in item
    assert len(a) == 50 + 7 + 30 + 11
    assert a[10**9] is not None  # the stream is unbounded


def test_zero_weight_is_never_drawn():
    mixed = MixedDataset([Rows("a", 3), Rows("b", 3), Rows("c", 3)], [0.5, 0.0, 0.5])
    assert all(mixed.choose(p)[0] != 1 for p in range(3000))
    only_first = MixedDataset([Rows("a", 3), Rows("b", 0)], [1.0, 0.0])
    assert {only_first.choose(p)[0] for p in range(100)} == {0}


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.5, 0.4], r"sum to 1 \(within 1e-6\), got 0\.9"),
        ([0.5, 0.5, 0.0], "one entry per dataset"),
        ([1.5, -0.5], ">= 0"),
        ([float("nan"), 1.0], "finite"),
    ],
)
def test_bad_weights_are_rejected(weights, match):
    with pytest.raises(ValueError, match=match):
        MixedDataset([Rows("a", 2), Rows("b", 2)], weights)


def test_weights_within_tolerance_and_empty_datasets():
    MixedDataset([Rows("a", 2), Rows("b", 2)], [0.3, 0.7 + 5e-7])
    with pytest.raises(ValueError, match="dataset 1 is empty"):
        MixedDataset([Rows("a", 2), Rows("b", 0)], [0.5, 0.5])


def test_sampler_ranks_are_disjoint_and_cover_the_stream():
    world = 3
    shards = [list(MixedSampler(rank=r, world_size=world, num_samples=20)) for r in range(world)]
    flat = sorted(itertools.chain(*shards))
    assert flat == list(range(60))
    assert shards[1][:3] == [1, 4, 7]
    with pytest.raises(ValueError, match="rank"):
        MixedSampler(rank=3, world_size=3)


def test_sampler_resumes_exactly():
    full = list(itertools.islice(iter(MixedSampler(rank=1, world_size=2)), 40))
    resumed = list(itertools.islice(iter(MixedSampler(rank=1, world_size=2, start=24)), 16))
    assert resumed == full[24:]
    with pytest.raises(TypeError, match="no length"):
        len(MixedSampler())
    assert len(MixedSampler(num_samples=5)) == 5


def test_resumed_loader_continues_the_same_batches(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    image = ImageDataset(npz, image_dir=image_dir, train=True, image_size=8)
    mixed = MixedDataset([image], [1.0], seed=9)

    def batches(start, count):
        loader = torch.utils.data.DataLoader(
            mixed, batch_size=2, sampler=MixedSampler(start=start, num_samples=2 * count)
        )
        return [batch["img"] for batch in loader]

    whole = batches(0, 4)
    resumed = batches(4, 2)  # after 2 steps of batch 2
    for x, y in zip(whole[2:], resumed, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    # augmentation is keyed by position: the same row drawn at two positions differs
    rows = [mixed.choose(p)[1] for p in range(20)]
    first, second = next((i, j) for i in range(20) for j in range(i + 1, 20) if rows[i] == rows[j])
    assert not np.allclose(mixed[first]["keypoints_2d"], mixed[second]["keypoints_2d"])


def test_stream_sampler_epochs_are_permutations_and_resume():
    sampler = StreamSampler(10, seed=1)
    stream = list(itertools.islice(iter(sampler), 30))
    for epoch in range(3):
        assert sorted(stream[10 * epoch : 10 * epoch + 10]) == list(range(10))
    assert stream[:10] != stream[10:20]
    assert list(itertools.islice(iter(StreamSampler(10, seed=1, start=13)), 5)) == stream[13:18]
    shards = [
        list(StreamSampler(10, seed=1, rank=r, world_size=2, num_samples=5)) for r in range(2)
    ]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    assert list(StreamSampler(4, shuffle=False, num_samples=6)) == [0, 1, 2, 3, 0, 1]
