"""Fixtures of the dataset tests: small synthetic Cityscapes and ACDC sets on disk."""
import pytest

from tools.make_synthetic_dataset import make_synthetic_dataset

from .helpers import SYNTHETIC_COUNTS, SYNTHETIC_SIZE


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """DATASET.ROOT holding small synthetic Cityscapes and ACDC sets with their lists."""
    root = tmp_path_factory.mktemp("synthetic")
    for dataset, counts in SYNTHETIC_COUNTS.items():
        make_synthetic_dataset(str(root), dataset, counts, SYNTHETIC_SIZE, seed=0)
    return root
