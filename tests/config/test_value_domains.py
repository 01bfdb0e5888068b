"""Numeric values outside their key's domain fail in load_cfg naming the key, from a YAML file and
from the command line, instead of deep inside a run (torch's "sizes should be greater than 0" at
the first test image for a scale of 0)."""
import pytest

from lib.config import ConfigError, load_cfg
from lib.utils.geometry import scaled_size
from tests.helpers import OFFSET_CFG


def _write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("scales, culprit", [
    ("0.5,0", "scale 0.0 is not a positive number"),
    ("-0.5,1.0", "scale -0.5 is not a positive number"),
    # 2048 * 0.001 = 2 pixels on the long side.
    ("0.001", r"scale 0.001 resizes the long side to int\(TEST.BASE_SIZE \* scale \+ 0.5\) = 2 "
              r"pixels \(TEST.BASE_SIZE 2048\); at least 8"),
])
def test_a_scale_of_zero_below_zero_or_too_small_names_the_key(scales, culprit):
    with pytest.raises(ConfigError, match=rf"TEST.SCALE_LIST \[.*\]: {culprit}"):
        load_cfg(OFFSET_CFG, ["TEST.BASE_SIZE", "2048", "TEST.SCALE_LIST", scales])


def test_the_smallest_scale_gives_a_long_side_of_8_pixels_at_the_base_size():
    # TEST.BASE_SIZE 16: scale 0.46 -> int(7.36 + 0.5) = 7 pixels, 0.47 -> int(7.52 + 0.5) = 8.
    with pytest.raises(ConfigError, match=r"= 7 pixels \(TEST.BASE_SIZE 16\)"):
        load_cfg(None, ["TEST.BASE_SIZE", "16", "TEST.SCALE_LIST", "0.46,1.0"])
    assert load_cfg(None, ["TEST.BASE_SIZE", "16", "TEST.SCALE_LIST", "0.47"]).TEST.SCALE_LIST == \
        [0.47]
    # The bound's reason: 8 pixels on the long side leave the short side at least one pixel up to
    # an aspect ratio of 16:1 (int(1 * 8 / 16 + 0.5) = 1).
    assert all(min(scaled_size(h, 16, 8)) >= 1 for h in range(1, 17))


def test_a_bad_scale_in_a_yaml_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"TEST.SCALE_LIST \[0.75, 0.0, 1.25\]: scale 0.0"):
        load_cfg(_write(tmp_path, "TEST:\n  SCALE_LIST: [0.75, 0.0, 1.25]\n"))
    with pytest.raises(ConfigError, match=r"TEST.SCALE_LIST \[nan\]: scale nan is not"):
        load_cfg(_write(tmp_path, "TEST:\n  SCALE_LIST: [.nan]\n"))


@pytest.mark.parametrize("key, value, rule", [
    ("TRAIN.LR", "0.0", "> 0"), ("TRAIN.LR", "-0.01", "> 0"),
    ("TRAIN.BATCH_SIZE_PER_GPU", "0", ">= 1"), ("TEST.BATCH_SIZE_PER_GPU", "0", ">= 1"),
    ("PRINT_FREQ", "0", ">= 1"), ("MODEL.EXTRA.OFFSET_THRESHOLD", "0.0", "> 0"),
    ("MODEL.EXTRA.OFFSET_THRESHOLD", "-0.5", "> 0"), ("TRAIN.WD", "-0.0005", ">= 0"),
    ("TRAIN.MOMENTUM", "-0.9", ">= 0"), ("TEST.WINDOW_BATCH", "0", ">= 1"),
    ("TRAIN.MAX_NONFINITE", "0", ">= 1"), ("WORKERS", "-1", ">= 0"),
    ("TEST.BASE_SIZE", "0", ">= 1"), ("TRAIN.BASE_SIZE", "-2048", ">= 1"),
    ("TRAIN.DOWNSAMPLERATE", "0", "> 0"), ("TRAIN.SCALE_FACTOR", "-1", ">= 0"),
    ("TRAIN.EVAL_INTERVAL", "-1", ">= 0"), ("TRAIN.CHECKPOINT_INTERVAL", "-100", ">= 0"),
    ("TRAIN.NUM_SAMPLES", "-1", ">= 0"), ("TEST.NUM_SAMPLES", "-1", ">= 0"),
])
def test_a_number_outside_its_domain_names_the_key_the_rule_and_the_value(key, value, rule):
    with pytest.raises(ConfigError, match=rf"^{key} must be {rule}, got {value}$"):
        load_cfg(OFFSET_CFG, [key, value])


def test_an_infinite_learning_rate_and_a_second_phase_without_one_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"TRAIN.LR must be > 0, got inf"):
        load_cfg(_write(tmp_path, "TRAIN:\n  LR: .inf\n"))
    with pytest.raises(ConfigError, match=r"TRAIN.EXTRA_LR must be > 0 for the TRAIN.EXTRA_EPOCH"):
        load_cfg(None, ["TRAIN.EXTRA_EPOCH", "2", "TRAIN.EXTRA_LR", "0"])
    # Without a second phase EXTRA_LR is not read.
    assert load_cfg(None, ["TRAIN.EXTRA_LR", "0"]).TRAIN.EXTRA_LR == 0


def test_the_edges_of_the_domains_load():
    cfg = load_cfg(None, ["TRAIN.LR", "1e-8", "WORKERS", "0", "PRINT_FREQ", "1",
                          "TRAIN.CHECKPOINT_INTERVAL", "0", "TRAIN.EVAL_INTERVAL", "0",
                          "TRAIN.MOMENTUM", "0", "TRAIN.WD", "0", "TRAIN.SCALE_FACTOR", "0",
                          "TRAIN.BATCH_SIZE_PER_GPU", "1", "TEST.SCALE_LIST", "0.5,1.0,2.0"])
    assert cfg.TRAIN.LR == 1e-8 and cfg.WORKERS == 0 and cfg.TEST.SCALE_LIST == [0.5, 1.0, 2.0]
