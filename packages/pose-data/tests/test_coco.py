import json

import numpy as np
import pytest

from pose_data import ImageDataset, convert_coco, read_prohmr_npz
from pose_geometry import COCO17_TO_44

COCO_JSON = "coco/annotations/person_keypoints_val2017_subset.json"


def test_real_coco_sample(shared_data, tmp_path):
    source = shared_data / COCO_JSON
    arrays = convert_coco(source, tmp_path / "coco.npz", image_dir=shared_data / "coco/val2017")
    raw = json.loads(source.read_text())
    kept = [a for a in raw["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert len(arrays["imgname"]) == len(kept) == 7
    first = next(a for a in kept if a["id"] == arrays["annotation_id"][0])
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(arrays["center"][0], [x + w / 2, y + h / 2], rtol=1e-6)
    assert arrays["scale"][0] == pytest.approx(1.2 * max(w, h))
    points = np.asarray(first["keypoints"], dtype=float).reshape(17, 3)
    body = arrays["body_keypoints_2d"][0]
    for coco_index, slot in enumerate(COCO17_TO_44):
        if points[coco_index, 2] > 0:
            np.testing.assert_allclose(body[slot], [*points[coco_index, :2], 1.0])
        else:
            assert body[slot].tolist() == [0.0, 0.0, 0.0]
    assert body[[1, 8, *range(19, 25)], 2].sum() == 0  # neck, mid-hip and feet: not in COCO
    assert not arrays["extra_keypoints_2d"].any()

    written = read_prohmr_npz(tmp_path / "coco.npz")
    assert written.imgname.tolist() == arrays["imgname"].tolist()
    dataset = ImageDataset(
        tmp_path / "coco.npz", image_dir=shared_data / "coco/val2017", train=True, image_size=32
    )
    item = dataset[0]
    assert item["img"].shape == (3, 32, 32)
    assert item["img_size"].tolist() == [640.0, 425.0]


def _coco_file(path, annotations, file_name="img.jpg"):
    data = {
        "images": [{"id": 1, "file_name": file_name, "width": 10, "height": 10}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}],
    }
    path.write_text(json.dumps(data))
    return path


def _annotation(id_, visible, *, crowd=0, bbox=(0, 0, 4, 8)):
    keypoints = []
    for k in range(17):
        keypoints += [k + 1.0, 2.0 * k, 2 if k in visible else 0]
    return {
        "id": id_,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": crowd,
        "bbox": list(bbox),
        "keypoints": keypoints,
    }


def test_filters_crowd_sparse_and_degenerate_people(tmp_path):
    path = _coco_file(
        tmp_path / "a.json",
        [
            _annotation(1, range(17)),
            _annotation(2, range(17), crowd=1),
            _annotation(3, []),
            _annotation(4, range(5)),  # face only
            _annotation(5, range(17), bbox=(0, 0, 0, 5)),
        ],
    )
    arrays = convert_coco(path, image_prefix="val/")
    assert arrays["annotation_id"].tolist() == [1, 4]
    assert arrays["imgname"].tolist() == ["val/img.jpg"] * 2
    assert convert_coco(path, min_body_keypoints=12)["annotation_id"].tolist() == [1]
    assert convert_coco(path, include_crowd=True)["annotation_id"].tolist() == [1, 2, 4]
    np.testing.assert_allclose(convert_coco(path, rescale=1.0)["scale"], [8.0, 8.0])


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        convert_coco(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert_coco(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['annotations', 'categories'\]"):
        convert_coco(tmp_path / "partial.json")
    broken = _annotation(7, range(17))
    broken["keypoints"] = broken["keypoints"][:-3]
    with pytest.raises(ValueError, match=r"annotation 7 .* 51 numbers"):
        convert_coco(_coco_file(tmp_path / "k.json", [broken]))
    path = _coco_file(tmp_path / "i.json", [_annotation(1, range(17))])
    with pytest.raises(FileNotFoundError, match=r"1 of 1 images .* missing"):
        convert_coco(path, image_dir=tmp_path)
