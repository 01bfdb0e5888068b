"""The Validator on a hand-made offset network: non-finite outputs stop it with one clear error."""
import pytest

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
