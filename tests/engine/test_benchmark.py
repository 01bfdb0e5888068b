"""lib.engine.benchmark: the rules of the benchmark's rows and of its memory table (the modes
themselves run through tools/benchmark.py in tests/tools/test_benchmark.py)."""
import pytest

from lib.config import load_cfg
from lib.engine.benchmark.memory_tables import one_gpu_settings
from lib.engine.benchmark.variants import row_settings
from tests.helpers import OFFSET_CFG


@pytest.mark.parametrize("effective, largest, expected", [
    (8, 5, (4, 2)), (12, 5, (4, 3)), (12, 40, (12, 1)), (7, 6, (1, 7)), (8, 0, None)])
def test_one_gpu_settings_keep_the_effective_batch(effective, largest, expected):
    assert one_gpu_settings(effective, largest) == expected


def test_compile_with_checkpointing_is_left_out_and_said():
    settings, notes = row_settings(["fp32", "bf16_cl_compile"], [False, True],
                                   load_cfg(OFFSET_CFG))
    assert [(v.name, on) for v, on in settings] == [("fp32", False), ("fp32", True),
                                                    ("bf16_cl_compile", False)]
    assert notes == ["bf16_cl_compile with checkpointing: not run (TRAIN.COMPILE refuses "
                     "TRAIN.GRAD_CHECKPOINTING)"]
    cfg = load_cfg(OFFSET_CFG, ["TRAIN.GRAD_CHECKPOINTING", "True"])  # None: the config's
    assert [v.name for v, _ in row_settings(["bf16_cl_compile"], [None], cfg)[0]] == []
