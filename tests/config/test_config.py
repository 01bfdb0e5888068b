import ast
import glob
import logging
import os
import re

import pytest

from lib.config import ConfigError, get_cfg, load_cfg
from tests.helpers import ROOT

EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "**", "*.yaml"), recursive=True))


def _write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[os.path.relpath(p, ROOT) for p in EXPERIMENTS])
def test_every_experiment_file_loads(path):
    cfg = load_cfg(path)
    assert cfg.is_frozen()
    assert cfg.MODEL.NAME in ("seg_hrnet", "branched_seg_hrnet", "seg_hrnet_ocr", "branched_seg_hrnet_ocr")


def test_experiment_files_exist_for_every_width_and_both_networks():
    names = {os.path.basename(p) for p in EXPERIMENTS}
    for width in ("w18_small_v1", "w18_small_v2", "w18", "w32", "w48"):
        for batch in (8, 12):
            assert f"seg_hrnet_{width}_train_512x1024_sgd_lr1e-2_wd5e-4_bs_{batch}_epoch484.yaml" \
                in names


def test_main_recipe_is_the_offset_network_with_ohem():
    cfg = load_cfg(os.path.join(
        ROOT, "experiments/cityscapes/seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml"))
    assert cfg.MODEL.NAME == "branched_seg_hrnet"
    assert cfg.MODEL.EXTRA.OFFSET_BRANCH == 4 and cfg.MODEL.EXTRA.OFFSET_THRESHOLD == 0.5
    assert cfg.MODEL.EXTRA.STAGE4_2.NUM_MODULES == 2
    assert cfg.LOSS.USE_OHEM and cfg.LOSS.OHEMTHRES == 0.9 and cfg.LOSS.OHEMKEEP == 131072
    assert cfg.TRAIN.BATCH_SIZE_PER_GPU == 2 and cfg.TRAIN.END_EPOCH == 484
    assert cfg.MODEL.PRETRAINED.endswith("hrnetv2_w48_imagenet_pretrained.pth")
    assert cfg.MODEL.OFFSET_PRETRAINED == ""  # the same ImageNet file initialises both paths


DEFAULT_PY = os.path.join(ROOT, "lib", "config", "default.py")


def _attribute_path(node):
    """["_C", "MODEL", "NAME"] for the expression ``_C.MODEL.NAME``; None for anything else."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    return [node.id, *reversed(names)] if isinstance(node, ast.Name) and names else None


NO_EFFECT_BLOCK = "# Keys that nothing reads."


def _definitions_in_default_py():
    """{key path: whether it is documented}, from the source: the line directly above its
    assignment is a comment, or, in the block of keys that nothing reads at the end of the
    file, the block's one comment names the key.

    Stage keys are assigned inside ``_stage`` (``stage.NUM_MODULES = ...``) and belong to every
    ``_C....STAGEk = _stage(...)``.
    """
    with open(DEFAULT_PY) as f:
        source = f.read()
    lines = source.splitlines()
    block = next(i for i, line in enumerate(lines) if line.startswith(NO_EFFECT_BLOCK))
    end = next(i for i in range(block, len(lines)) if not lines[i].startswith("#"))
    block_comment = "\n".join(lines[block:end])

    def commented(statement):
        if statement.lineno - 1 >= block:
            name = _attribute_path(statement.targets[0])[-1]
            return re.search(rf"\b{name}\b", block_comment) is not None
        return statement.lineno >= 2 and lines[statement.lineno - 2].lstrip().startswith("#")

    tree = ast.parse(source)
    stage_fields = {}
    for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for statement in ast.walk(function):
            if isinstance(statement, ast.Assign):
                path = _attribute_path(statement.targets[0])
                if path and path[0] == "stage":
                    stage_fields[".".join(path[1:])] = commented(statement)
    definitions = {}
    for statement in (n for n in tree.body if isinstance(n, ast.Assign)):
        path = _attribute_path(statement.targets[0])
        if not path or path[0] != "_C":
            continue
        key = ".".join(path[1:])
        definitions[key] = commented(statement)
        call = statement.value
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "_stage":
            definitions.update({f"{key}.{field}": ok for field, ok in stage_fields.items()})
    return definitions


def _config_keys(node, prefix=""):
    for key, value in node.items():
        yield prefix + key
        if isinstance(value, type(node)):
            yield from _config_keys(value, f"{prefix}{key}.")


def test_every_config_key_has_its_own_comment_directly_above_its_definition():
    definitions = _definitions_in_default_py()
    keys = set(_config_keys(get_cfg()))
    assert keys == set(definitions), (
        f"keys of the tree not assigned literally in {DEFAULT_PY}: {sorted(keys - set(definitions))}; "
        f"assigned but not in the tree: {sorted(set(definitions) - keys)}")
    undocumented = sorted(key for key, ok in definitions.items() if not ok)
    assert not undocumented, f"keys without a comment line directly above them: {undocumented}"


def test_the_comment_check_finds_a_key_without_its_own_comment(tmp_path, monkeypatch):
    with open(DEFAULT_PY) as f:
        source = f.read()
    # Delete the comment of MODEL.ALIGN_CORNERS (all its lines): its definition now follows
    # FREEZED_PAR's.
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("_C.MODEL.ALIGN_CORNERS ="))
    start = at
    while lines[start - 1].startswith("#"):
        start -= 1
    assert start < at
    broken = tmp_path / "default.py"
    broken.write_text("\n".join(lines[:start] + lines[at:]) + "\n")
    monkeypatch.setattr(f"{__name__}.DEFAULT_PY", str(broken))
    definitions = _definitions_in_default_py()
    assert [key for key, ok in definitions.items() if not ok] == ["MODEL.ALIGN_CORNERS"]


def test_original_typo_num_ranches_is_accepted_with_a_warning(tmp_path, caplog):
    path = _write(tmp_path, "MODEL:\n  EXTRA:\n    STAGE1:\n      NUM_RANCHES: 1\n")
    with caplog.at_level(logging.WARNING):
        cfg = load_cfg(path)
    assert cfg.MODEL.EXTRA.STAGE1.NUM_BRANCHES == 1
    assert "NUM_RANCHES" in caplog.text


def test_a_key_of_an_earlier_release_is_read_under_its_new_name(tmp_path, caplog):
    path = _write(tmp_path, "TEST:\n  SAVE_HEADS: true\n")
    with caplog.at_level(logging.WARNING):
        from_file = load_cfg(path)
        from_command_line = load_cfg(None, ["TEST.SAVE_HEADS", "True"])
    assert from_file.TEST.SAVE_EVERY_PREDICTION is True
    assert from_command_line.TEST.SAVE_EVERY_PREDICTION is True
    assert caplog.text.count("TEST.SAVE_HEADS is now called TEST.SAVE_EVERY_PREDICTION") == 2
    assert load_cfg(path, ["TEST.SAVE_HEADS", "False"]).TEST.SAVE_EVERY_PREDICTION is False
    # The new name wins over the old one in the same source.
    both = load_cfg(None, ["TEST.SAVE_EVERY_PREDICTION", "True", "TEST.SAVE_HEADS", "False"])
    assert both.TEST.SAVE_EVERY_PREDICTION is True


@pytest.mark.parametrize("text, key, hint", [
    ("MODEL:\n  EXTRA:\n    OFFSET_TRESHOLD: 0.3\n", "MODEL.EXTRA.OFFSET_TRESHOLD", "OFFSET_THRESHOLD"),
    ("TRAIN:\n  BATCH_SIZE_PER_GP: 2\n", "TRAIN.BATCH_SIZE_PER_GP", "BATCH_SIZE_PER_GPU"),
    ("DATASETS:\n  ROOT: x\n", "DATASETS", "DATASET"),
])
def test_misspelt_key_names_the_key_and_the_nearest_valid_one(tmp_path, text, key, hint):
    with pytest.raises(ConfigError) as err:
        load_cfg(_write(tmp_path, text))
    assert key in str(err.value) and hint in str(err.value)


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="TRAIN.IMAGE_SIZE"):
        load_cfg(_write(tmp_path, "TRAIN:\n  IMAGE_SIZE: wide\n"))


def test_invalid_choice_names_the_key():
    with pytest.raises(ConfigError, match="MODEL.NAME"):
        load_cfg(None, ["MODEL.NAME", "unet"])


def test_command_line_overrides_parse_like_the_original_test_command():
    cfg = load_cfg(None, ["TEST.SCALE_LIST", "0.5,0.75,1.0,1.25,1.5,1.75", "TEST.FLIP_TEST", "True",
                          "TEST.MODEL_FILE", "a.pth"])
    assert cfg.TEST.SCALE_LIST == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert cfg.TEST.FLIP_TEST is True and cfg.TEST.MODEL_FILE == "a.pth"
    assert load_cfg(None, ["TEST.SCALE_LIST", "1"]).TEST.SCALE_LIST == [1.0]


def test_unknown_override_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"did you mean TEST\.FLIP_TEST\?"):
        load_cfg(None, ["TEST.FLIP_TST", "True"])


@pytest.mark.parametrize("written, suggested", [
    ("LOSS.TERM_WEIGHT", "LOSS.TERM_WEIGHTS"),  # a typo in the right group
    ("TRAIN.OHEMTHRES", "LOSS.OHEMTHRES"),  # the right name in the wrong group
    ("TRAIN.OHEMTHRESH", "LOSS.OHEMTHRES"),  # both
    ("DATASET.IMAGE_SIZE", "TEST.IMAGE_SIZE or TRAIN.IMAGE_SIZE"),  # two groups have it
    ("TRIAN.LR", "TRAIN"),  # a misspelt group
    ("MODEL.EXTRA.STAGE4.NUM_BRANCH", "MODEL.EXTRA.STAGE4.NUM_BRANCHES"),
])
def test_the_suggestion_searches_every_group_and_names_the_full_key(written, suggested):
    with pytest.raises(ConfigError) as info:
        load_cfg(None, [written, "1"])
    assert str(info.value).endswith(f"unknown config key {written.split('.LR')[0]}; did you mean "
                                    f"{suggested}?")


def test_a_key_like_no_other_gets_no_suggestion(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_cfg(_write(tmp_path, "TRAIN:\n  XYZZY: 1\n"))
    assert str(info.value).endswith("unknown config key TRAIN.XYZZY")


def test_odd_override_list_is_an_error():
    with pytest.raises(ConfigError, match="KEY VALUE"):
        load_cfg(None, ["TEST.FLIP_TEST"])


def test_original_gpus_tuple_loads_and_missing_file_is_named(tmp_path):
    assert load_cfg(_write(tmp_path, "GPUS: (0,1,2,3)\n")).GPUS == (0, 1, 2, 3)
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_cfg(str(tmp_path / "nope.yaml"))


def test_get_cfg_returns_an_independent_copy():
    a = get_cfg()
    a.TRAIN.LR = 123.0
    assert get_cfg().TRAIN.LR != 123.0


def test_stage_list_lengths_are_checked_against_num_branches(tmp_path):
    with pytest.raises(ConfigError, match="STAGE2.NUM_CHANNELS"):
        load_cfg(_write(tmp_path, "MODEL:\n  EXTRA:\n    STAGE2:\n      NUM_CHANNELS: [48]\n"))


def test_list_and_number_overrides_accept_the_usual_spellings():
    cfg = load_cfg(None, ["DATASET.CONDITIONS", "[night]", "TEST.STRIDE_RATIO", "1",
                          "TRAIN.IMAGE_SIZE", "[64,32]", "TEST.MODEL_FILE", "weights/1.pth"])
    assert cfg.DATASET.CONDITIONS == ["night"]
    assert cfg.TEST.STRIDE_RATIO == 1.0 and isinstance(cfg.TEST.STRIDE_RATIO, float)
    assert cfg.TRAIN.IMAGE_SIZE == [64, 32] and cfg.TEST.MODEL_FILE == "weights/1.pth"
    assert load_cfg(None, ["DATASET.CONDITIONS", "fog,night"]).DATASET.CONDITIONS == ["fog", "night"]
    assert load_cfg(None, ["DATASET.CONDITIONS", "['rain']"]).DATASET.CONDITIONS == ["rain"]


def test_whole_numbers_are_accepted_for_float_keys_in_yaml(tmp_path):
    cfg = load_cfg(_write(tmp_path, "TRAIN:\n  LR: 1\nTEST:\n  STRIDE_RATIO: 1\n"))
    assert cfg.TRAIN.LR == 1.0 and isinstance(cfg.TRAIN.LR, float) and cfg.TEST.STRIDE_RATIO == 1.0


def test_ohem_default_keeps_131072_pixels_as_the_reference():
    assert get_cfg().LOSS.OHEMKEEP == 131072


THESIS_STYLE = """\
GPUS: (0,1,2,3,4)
WORKERS: 5
DATASET:
  TEST_SET: 'list/cityscapes/val.lst'
  TRAIN_SET: 'list/cityscapes/trainval.lst'
MODEL:
  NAME: branched_seg_hrnet
  NUM_OUTPUTS: 2
  FREEZED_PAR: false
  PRETRAINED: "pretrained_models/hrnetv2_w48_imagenet_pretrained.pth"
  OFFSET_PRETRAINED: 'pretrained_models/hrnetv2_w48_imagenet_pretrained.pth'
  EXTRA:
    FINAL_CONV_KERNEL: 1
    FINAL_CONV_SEED: 1
    OFFSET_THRESHOLD: 0.2
    CONFIDENCE: 0
    ITERATIVE_REFINEMENT: 0
    LOGITS: true
    STAGE1: {NUM_MODULES: 1, NUM_RANCHES: 1, BLOCK: BOTTLENECK, NUM_BLOCKS: [4],
             NUM_CHANNELS: [64], FUSE_METHOD: SUM}
    OFFSET_BRANCH: 4
    STAGE3_2: {NUM_MODULES: 3, NUM_BRANCHES: 3, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4],
               NUM_CHANNELS: [48, 96, 192], FUSE_METHOD: SUM}
LOSS:
  OHEMKEEP: 131072
  BALANCE_WEIGHTS: [0.4, 1]
TEST:
  VISUALIZATION: true
  MULTI_SCALE: false
"""


def test_a_thesis_style_experiment_file_loads_unchanged(tmp_path):
    cfg = load_cfg(_write(tmp_path, THESIS_STYLE))
    assert cfg.MODEL.EXTRA.OFFSET_THRESHOLD == 0.2 and cfg.MODEL.EXTRA.CONFIDENCE == 0
    assert cfg.MODEL.EXTRA.STAGE3_2.NUM_MODULES == 3 and cfg.LOSS.BALANCE_WEIGHTS == [0.4, 1.0]
    assert cfg.GPUS == (0, 1, 2, 3, 4) and cfg.TEST.VISUALIZATION is True


def test_a_number_is_a_file_name_for_a_string_key_in_yaml_and_on_the_command_line(tmp_path):
    cfg = load_cfg(_write(tmp_path, "TEST:\n  MODEL_FILE: 1\nDATASET:\n  TRAIN_SET: 2.5\n"))
    assert cfg.TEST.MODEL_FILE == "1" and cfg.DATASET.TRAIN_SET == "2.5"
    cfg = load_cfg(None, ["TEST.MODEL_FILE", "1", "DATASET.TEST_SET", "007"])
    assert cfg.TEST.MODEL_FILE == "1" and cfg.DATASET.TEST_SET == "007"


def test_bare_lists_in_yaml_and_a_list_of_ints_that_gets_floats_are_refused_by_name(tmp_path):
    cfg = load_cfg(_write(tmp_path, "DATASET:\n  CONDITIONS: fog,night\nTEST:\n  SCALE_LIST: 1\n"))
    assert cfg.DATASET.CONDITIONS == ["fog", "night"] and cfg.TEST.SCALE_LIST == [1.0]
    assert load_cfg(None, ["GPUS", "0,1"]).GPUS == (0, 1)
    with pytest.raises(ConfigError, match=r"TRAIN.IMAGE_SIZE must be a list of int"):
        load_cfg(None, ["TRAIN.IMAGE_SIZE", "[64.5,32]"])


def test_the_known_misspelling_is_read_on_the_command_line_too(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = load_cfg(None, ["MODEL.EXTRA.STAGE2.NUM_RANCHES", "2"])
    assert cfg.MODEL.EXTRA.STAGE2.NUM_BRANCHES == 2 and "NUM_RANCHES" in caplog.text


def test_a_dataset_name_outside_the_built_in_ones_is_left_to_build_dataset():
    assert load_cfg(None, ["DATASET.DATASET", "my_fields"]).DATASET.DATASET == "my_fields"


@pytest.mark.parametrize("key, value, message", [
    ("TRAIN.OPTIMIZER", "lamb", r"TRAIN.OPTIMIZER = 'lamb' is not one of \['sgd', 'adamw'\]"),
    ("LOSS.CONFIDENCE_MODE", "mean", r"'reference', 'masked'"),
    ("TEST.ACCUMULATE", "max", r"'exp_logits', 'softmax'"),
    ("MODEL.EXTRA.OFFSET_BRANCH", "1", r"OFFSET_BRANCH = 1 is not one of \[2, 3, 4\]"),
    ("MODEL.EXTRA.STAGE3.FUSE_METHOD", "CAT", r"STAGE3.FUSE_METHOD = 'CAT': only SUM"),
    ("MODEL.EXTRA.CONFIDENCE", "2", r"CONFIDENCE = 2 is not 0 or 1"),
])
def test_values_outside_their_builders_choices_are_errors_naming_key_and_choices(key, value,
                                                                                 message):
    with pytest.raises(ConfigError, match=message):
        load_cfg(None, [key, value])


def test_a_non_mapping_file_and_a_value_below_a_value_are_errors_naming_the_culprit(tmp_path):
    with pytest.raises(ConfigError, match=r"list.yaml: expected a mapping"):
        load_cfg(_write(tmp_path, "- 1\n- 2\n", name="list.yaml"))
    with pytest.raises(ConfigError,
                       match=r"command line: TEST.FLIP_TEST is a value \(False\), not a mapping"):
        load_cfg(None, ["TEST.FLIP_TEST.X", "1"])
    with pytest.raises(ConfigError, match=r"TRAIN must be a mapping of keys"):
        load_cfg(_write(tmp_path, "TRAIN: 1\n"))


def test_the_comment_check_finds_a_key_of_the_no_effect_block_that_its_comment_omits(
        tmp_path, monkeypatch):
    with open(DEFAULT_PY) as f:
        source = f.read()
    broken = tmp_path / "default.py"
    broken.write_text(source.replace("# - TRAIN.LR_FACTOR, LR_STEP:", "# - TRAIN.LR_FACTOR:"))
    monkeypatch.setattr(f"{__name__}.DEFAULT_PY", str(broken))
    definitions = _definitions_in_default_py()
    assert [key for key, ok in definitions.items() if not ok] == ["TRAIN.LR_STEP"]


def test_keys_that_nothing_reads_stand_in_one_block_at_the_end():
    with open(DEFAULT_PY) as f:
        lines = f.read().splitlines()
    block = next(i for i, line in enumerate(lines) if line.startswith(NO_EFFECT_BLOCK))
    before = "\n".join(lines[:block])
    assert "no effect" not in before.lower()
    assert all(line.startswith(("#", "_C.")) for line in lines[block:])


@pytest.mark.parametrize("value", ["0", "-2", "2.5", "two"])
def test_accumulate_steps_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(ConfigError, match="TRAIN.ACCUMULATE_STEPS"):
        load_cfg(None, ["TRAIN.ACCUMULATE_STEPS", value])
    assert load_cfg(None, ["TRAIN.ACCUMULATE_STEPS", "4"]).TRAIN.ACCUMULATE_STEPS == 4
    assert get_cfg().TRAIN.ACCUMULATE_STEPS == 1
