"""COCO RLE decoding (lib/datasets/conversions/rle.py) against hand-worked strings and masks
encoded from the format's definition (``tests/datasets/helpers.py``: pycocotools' rleToString,
written out)."""
import numpy as np
import pytest

from lib.datasets.conversions.rle import RLEError, decode_counts, decode_mask

from .helpers import encode_counts, mask_runs


def test_hand_worked_strings():
    # 2, 3, 1 are single groups; the fourth count, 1, is stored as 1 - 3 = -2: group 30 -> 'N'.
    assert decode_counts("231N").tolist() == [2, 3, 1, 1]
    # pycocotools' own example: M = [1 1 1 1 1 1 0] has counts [0 6 1].
    assert decode_mask({"size": [7, 1], "counts": "061"})[:, 0].tolist() == [1] * 6 + [0]
    # 100 = 3 * 32 + 4: groups 4 (more follows: 4 + 32) then 3.
    assert decode_counts("T3").tolist() == [100]


def test_masks_round_trip_in_column_major_order():
    rng = np.random.default_rng(0)
    for height, width in ((1, 1), (5, 7), (13, 4), (40, 60)):
        for density in (0.0, 0.1, 0.5, 1.0):
            mask = rng.random((height, width)) < density
            # Blocks too, so that runs span columns and counts need several groups.
            mask[height // 3:, width // 2:] = True
            rle = {"size": [height, width], "counts": encode_counts(mask_runs(mask))}
            np.testing.assert_array_equal(decode_mask(rle), mask)
            uncompressed = {"size": [height, width], "counts": mask_runs(mask)}
            np.testing.assert_array_equal(decode_mask(uncompressed), mask)


def test_large_counts_and_negative_differences():
    counts = [0, 300000, 5, 70000, 299990, 2, 1]
    assert decode_counts(encode_counts(counts)).tolist() == counts


@pytest.mark.parametrize("rle, message", [
    ({"size": [2, 2], "counts": "23"}, "cover 5 pixels"),
    ({"size": [2, 2], "counts": "2 "}, "not an RLE character"),
    ({"size": [2, 2], "counts": "T"}, "ends inside a number"),
    ({"size": [2], "counts": "4"}, "'size' must be"),
    ({"size": [2, 2], "counts": [1, -1, 4]}, "negative"),
    ([[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]], "polygon"),
])
def test_bad_rle_says_what_is_wrong(rle, message):
    with pytest.raises(RLEError, match=message):
        decode_mask(rle)
