import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from mosxav.data.endoscapes import EndoScapes2023
from mosxav.data.hf import load_dataset
from mosxav.data.pairs import FramePairs


def write_coco_fixture(root):
    split = root / "train_seg"
    split.mkdir(parents=True)
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(split / "1_10.jpg")
    rle_mask = np.zeros((40, 60), np.uint8, order="F")
    rle_mask[5:10, 40:50] = 1
    rle = mask_utils.encode(rle_mask)
    rle["counts"] = rle["counts"].decode()
    coco = {
        "images": [{"id": 1, "file_name": "1_10.jpg", "height": 40, "width": 60, "video_id": 1}],
        "categories": [
            {"id": i, "name": n}
            for i, n in enumerate(
                ["cystic_plate", "calot_triangle", "cystic_artery", "cystic_duct", "gallbladder", "tool"], 1
            )
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "area": 600,
                "iscrowd": 0,
                "segmentation": [[0, 0, 30, 0, 30, 20, 0, 20]],
            },
            {"id": 2, "image_id": 1, "category_id": 6, "area": 50, "iscrowd": 0, "segmentation": rle},
            {
                "id": 3,
                "image_id": 1,
                "category_id": 3,
                "area": 16,
                "iscrowd": 0,
                "segmentation": [[10, 10, 14, 10, 14, 14, 10, 14]],
            },
        ],
    }
    (split / "annotation_coco.json").write_text(json.dumps(coco))
    return root


def test_endoscapes_coco_masks(tmp_path):
    data = EndoScapes2023(write_coco_fixture(tmp_path / "endo"), "train")
    assert data.classes[5] == "gallbladder" and data.classes[6] == "tool"
    item = data[0]
    sem = item["semantic"]
    assert sem.shape == (40, 60) and item["image"].shape == (40, 60, 3)  # laparoscopy stays colour
    assert sem[2, 2] == 5  # gallbladder polygon
    assert sem[7, 45] == 6  # tool from RLE
    assert sem[12, 12] == 3  # the small artery painted over the gallbladder
    assert sem[35, 55] == 0


def test_endoscapes_through_load_dataset(tmp_path):
    ds = load_dataset("endoscapes2023", root=write_coco_fixture(tmp_path / "endo"), split="train")
    assert ds.features["classes_present"].feature.names[6] == "tool"
    assert sorted(ds[0]["classes_present"]) == [3, 5, 6]


def test_endoscapes_bad_json(tmp_path):
    (tmp_path / "train_seg").mkdir()
    (tmp_path / "train_seg" / "annotation_coco.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match="annotation_coco.json: not a COCO file"):
        EndoScapes2023(tmp_path, "train")


def test_frame_pairs_errors(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "1.png")
    with pytest.raises(ValueError, match="1_gt.png: mask missing"):
        FramePairs(tmp_path)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "1_gt.png")
    with pytest.raises(ValueError, match="1_gt.png: mask is 9x9"):
        FramePairs(tmp_path)[0]


def test_frame_pairs_on_real_angiograms(xca_root):
    data = FramePairs(xca_root / "training")
    assert len(data) == 40 and data.ids[:3] == ["1", "2", "3"]
    item = data[0]
    assert item["image"].shape == (300, 300) and set(np.unique(item["semantic"])) <= {0, 1}
    fractions = [data[i]["semantic"].mean() for i in range(len(data))]
    assert 0.02 < np.mean(fractions) < 0.12  # vessels cover 3-11% of each image (SOURCE.md)


def test_a_dataloader_takes_mosxav_as_it_is(tiny_root):
    """Every frame of the training split, unannotated ones included: the default collate stacks the
    items, the arrays are writable (no PyTorch warning), and unannotated frames are marked, their masks
    IGNORE_INDEX (what CrossEntropyLoss(ignore_index=255) skips)."""
    import warnings

    import torch
    from torch.utils.data import DataLoader

    from mosxav import MOSXAV
    from mosxav.constants import IGNORE_INDEX

    data = MOSXAV(tiny_root, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a read-only array would warn in torch.as_tensor
        batches = list(DataLoader(data, batch_size=4))
    batch = batches[0]
    assert batch["image"].shape[0] == 4 and batch["semantic"].dtype == torch.uint8
    assert sum(len(b["frame"]) for b in batches) == len(data)
    unannotated = torch.cat([b["semantic"][~b["annotated"]] for b in batches])
    assert unannotated.numel() and (unannotated == IGNORE_INDEX).all()
    assert data[0]["image"].flags.writeable and data[0]["semantic"].flags.writeable


def test_endoscapes_example_is_colour_and_collates(tmp_path):
    import torch
    from torch.utils.data import DataLoader

    from mosxav.data.endoscapes import write_example

    root = write_example(tmp_path / "endoscapes")
    data = EndoScapes2023(root, "train")
    image = data[0]["image"]
    assert image.shape == (40, 60, 3) and abs(int(image[..., 0].mean()) - 170) < 4  # red channel kept
    assert int(image[..., 0].mean()) > int(image[..., 2].mean()) + 50
    batch = next(iter(DataLoader(data, batch_size=2)))
    assert batch["image"].shape == (2, 40, 60, 3) and batch["semantic"].dtype == torch.uint8
    grey = EndoScapes2023(root, "train", colour=False)[0]["image"]
    assert grey.shape == (40, 60)  # luminance when a method asks for it


def test_to_tensors_gives_channel_first_float_images_and_int64_masks(tiny_root):
    """torchvision and MONAI users expect (C, H, W) tensors from a transform; a sequence prints one line."""
    from mosxav import MOSXAV, ToTensors

    dataset = MOSXAV(tiny_root, split="train", task="semantic", annotated_only=True, transform=ToTensors())
    item = dataset[0]
    h, w = MOSXAV(tiny_root, split="train", task="semantic", annotated_only=True)[0]["image"].shape
    assert item["image"].shape == (1, h, w) and item["image"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert item["semantic"].dtype == torch.int64 and item["semantic"].shape == (h, w)
    sequence = dataset.sequences()[0]
    text = repr(sequence)
    assert text.startswith(f"MosxavSequence(name={sequence.name!r}, frames=") and "/" not in text
