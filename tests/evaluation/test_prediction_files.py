"""PredictionWriter: the files of each image: the label ids of the final prediction and of every
prediction."""
import os
from types import SimpleNamespace

import cv2
import numpy as np
import torch

from lib.evaluation.loop import Batch
from lib.evaluation.prediction_files import PredictionFiles, PredictionWriter

LABEL_IDS = np.array([7, 8, 11], dtype=np.uint8)  # label id of train ids 0, 1, 2
DATASET = SimpleNamespace(train_id_to_label=LABEL_IDS.tolist(),
                          palette=[(128, 64, 128), (244, 35, 232), (70, 70, 70)])


def _read(path):
    picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert picture is not None, path
    return picture


def _batch(preds, names):
    """A batch of an unlabelled set, images of zeros."""
    n, h, w = next(iter(preds.values())).shape
    return Batch(torch.zeros(n, 3, h, w), names, preds, None, None, None, None)


def test_save_every_prediction_writes_the_label_ids_of_every_prediction_in_its_own_folder(tmp_path):
    generator = torch.Generator().manual_seed(0)
    predictions = ("logits", "seed_logits", "fused_logits", "region_logits")
    preds = {field: torch.randint(0, 3, (2, 4, 6), generator=generator) for field in predictions}
    files = PredictionFiles(save_pred=True, visualize=False, base_size=6, align_corners=False,
                            save_every_prediction=True)
    writer = PredictionWriter(str(tmp_path), DATASET, None, files)
    writer.process(_batch(preds, ["a", "b"]))
    for i, name in enumerate(("a", "b")):
        for field in predictions:
            written = _read(tmp_path / "predictions" / field / f"{name}.png")
            np.testing.assert_array_equal(written, LABEL_IDS[preds[field][i].numpy()],
                                          err_msg=f"{field} {name}")
        # The submission files stay those of the final prediction, S_f.
        np.testing.assert_array_equal(_read(tmp_path / "predictions" / "labelIds" / f"{name}.png"),
                                      LABEL_IDS[preds["fused_logits"][i].numpy()])
    assert sorted(os.listdir(tmp_path / "predictions")) == sorted(
        ["color", "labelIds", *predictions])


def test_without_save_every_prediction_only_the_final_prediction_is_written(tmp_path):
    preds = {"logits": torch.zeros(1, 4, 6, dtype=torch.long),
             "fused_logits": torch.ones(1, 4, 6, dtype=torch.long)}
    files = PredictionFiles(save_pred=True, visualize=False, base_size=6, align_corners=False)
    PredictionWriter(str(tmp_path), DATASET, None, files).process(_batch(preds, ["a"]))
    assert sorted(os.listdir(tmp_path / "predictions")) == ["color", "labelIds"]
    assert (_read(tmp_path / "predictions" / "labelIds" / "a.png") == 8).all()
