"""The Validator on a hand-made offset network: non-finite outputs stop it with one clear error;
undefined metrics never reach TensorBoard."""
import logging
import math

import pytest
import torch
from tensorboardX import SummaryWriter

from lib.evaluation.finite import NonFiniteOutputError
from tests.engine.handmade import PixelOffsetNet, batches, validator


def test_a_nan_confidence_stops_validation_naming_the_iteration():
    model = PixelOffsetNet(nan_pixels=[(0, 0), (2, 3)]).eval()
    loader = batches(3)
    with pytest.raises(NonFiniteOutputError) as info:
        validator(loader)(model, iteration=17)
    # Two NaN pixels in each of the 6 images' confidence maps.
    assert str(info.value) == ("validation at iteration 17: the network's outputs are not "
                               "finite (12 NaN or infinite values on the 6 validation images)")


class _RecordingWriter(SummaryWriter):
    def __init__(self, logdir):
        super().__init__(logdir)
        self.scalars = {}

    def add_scalar(self, tag, value, step=None, *args, **kwargs):
        self.scalars[tag] = value
        return super().add_scalar(tag, value, step, *args, **kwargs)


def test_absent_classes_are_not_written_as_nan_scalars(tmp_path, caplog):
    model = PixelOffsetNet().eval()
    with torch.no_grad():
        model.conv.bias[2] = -1e3  # "car" is never predicted, and the labels have none
    writer = _RecordingWriter(str(tmp_path))
    try:
        with caplog.at_level(logging.WARNING):
            miou = validator(batches(2), writer=writer)(model, iteration=3)
    finally:
        writer.close()
    scalars = writer.scalars
    assert scalars["val/mIoU"] == pytest.approx(100 * miou)  # a percentage, as in the logs
    assert {"val_IoU/road", "val_IoU/sky"} <= set(scalars) and "val_IoU/car" not in scalars
    assert all(math.isfinite(v) for v in scalars.values()), scalars
    assert "NaN or Inf" not in caplog.text
