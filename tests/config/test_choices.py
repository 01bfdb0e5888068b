"""Keys that name a choice: load_cfg checks all of them whatever the caller imported, and each
key's choices are the names of the table or list that its builder reads."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from lib.config import CHOICES, get_cfg
from lib.config.choices import STAGES
from lib.datasets import base_dataset, build_dataset
from lib.engine import schedule
from lib.evaluation import protocols
from lib.evaluation.protocols import InferenceSettings, resize_and_pad, to_scores
from lib.models import MODELS, build_model, losses, offset_path
from lib.models.hrnet import BLOCKS
from lib.models.losses import build_criterion
from lib.utils.normalization import IMAGENET
from lib.utils.precision import AMP_DTYPES, amp_dtype
from tests.helpers import ROOT, tiny_cfg


def _python(code):
    """stdout of ``code`` run by a fresh interpreter in the repository root."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_only_the_config_imported_refuses_every_wrong_choice_naming_each_key_and_its_choices():
    out = _python(
        "import sys\n"
        "from lib.config import ConfigError, load_cfg\n"
        "try:\n"
        "    load_cfg(None, ['MODEL.NAME', 'unet', 'TEST.PROTOCOL', 'nonsense',\n"
        "                    'TRAIN.OPTIMIZER', 'lamb'])\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] not in\n"
        "             (['lib'], ['lib', 'config'], ['lib', 'utils']) and m.startswith('lib')))\n")
    message, imported = out.splitlines()
    assert "MODEL.NAME = 'unet' is not one of ['seg_hrnet', 'branched_seg_hrnet', " \
           "'seg_hrnet_ocr', 'branched_seg_hrnet_ocr']" in message
    assert "TEST.PROTOCOL = 'nonsense' is not one of ['', 'cityscapes', 'ade20k', 'lip']" in message
    assert "TRAIN.OPTIMIZER = 'lamb' is not one of ['sgd', 'adamw']" in message
    assert imported == "[]"  # no builder was imported


# Gives every string key "nonsense" and every whole-number key 987654, one at a time, and prints
# {key: load_cfg's error} of the keys refused; after the imports of the context.
_PROBE = """
import json
{imports}
from lib.config import ConfigError, get_cfg, load_cfg

def leaves(node, prefix=""):
    for key, value in node.items():
        if hasattr(value, "items"):
            yield from leaves(value, prefix + key + ".")
        else:
            yield prefix + key, value

refused = {{}}
for key, value in leaves(get_cfg()):
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        try:
            load_cfg(None, [key, "nonsense" if isinstance(value, str) else "987654"])
        except ConfigError as e:
            refused[key] = str(e)
print(json.dumps(refused))
"""
_TOOLS = sorted({os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "tools", "*.py"))}
                - {"__init__"})
_CONTEXTS = {
    "the config alone": "import lib.config",
    "the networks": "import lib.models",
    "every tool": "\n".join(f"import tools.{name}" for name in _TOOLS),
}


def test_the_checked_keys_and_their_errors_are_the_same_whatever_was_imported():
    refused = {name: json.loads(_python(_PROBE.format(imports=imports)))
               for name, imports in _CONTEXTS.items()}
    alone = refused.pop("the config alone")
    for name, errors in refused.items():
        assert errors == alone, name
    choice_keys = {key for key, error in alone.items() if f"{key} = " in error
                   and "is not one of" in error}
    # The probe reaches the string and whole-number keys: every key of CHOICES is one.
    assert choice_keys == set(CHOICES)


# Each choice key -> the table or list that its builder reads.
_TABLES = {
    "MODEL.NAME": MODELS,
    **{f"MODEL.EXTRA.{stage}.BLOCK": BLOCKS for stage in STAGES},
    "MODEL.EXTRA.OFFSET_BRANCH": offset_path.OFFSET_BRANCHES,
    "LOSS.CONFIDENCE_MODE": losses.CONFIDENCE_MODES,
    "LOSS.REGION_MEAN": losses.REGION_MEANS,
    "DATASET.OUT_OF_RANGE_LABELS": base_dataset.OUT_OF_RANGE_MODES,
    "TRAIN.OPTIMIZER": schedule.OPTIMIZERS,
    "TRAIN.AMP_DTYPE": AMP_DTYPES,
    "TEST.PROTOCOL": ("", *protocols.PROTOCOLS),
    "TEST.ACCUMULATE": protocols.ACCUMULATE_MODES,
    "TEST.FIRST_RESIZE": protocols.FIRST_RESIZE_MODES,
}


def test_each_keys_choices_are_the_names_of_the_table_its_builder_reads():
    assert set(_TABLES) == set(CHOICES)
    for key, table in _TABLES.items():
        assert sorted(CHOICES[key]) == sorted(table), key


def _build_with(key, value, request):
    """What the library builds from ``key`` = ``value``."""
    cfg = tiny_cfg(offset_branch=2)
    cfg.LOSS.CLASS_BALANCE = False
    if key == "MODEL.NAME":
        return build_model(tiny_cfg(value), load_pretrained=False)
    if key.endswith(".BLOCK"):
        cfg.MODEL.EXTRA[key.split(".")[2]].BLOCK = value
        return build_model(cfg, load_pretrained=False)
    if key == "MODEL.EXTRA.OFFSET_BRANCH":
        return build_model(tiny_cfg(offset_branch=value), load_pretrained=False)
    if key == "LOSS.CONFIDENCE_MODE":
        cfg.LOSS.CONFIDENCE_MODE = value
        return build_criterion(cfg)
    if key == "LOSS.REGION_MEAN":
        cfg.LOSS.USE_OHEM, cfg.LOSS.REGION_MEAN = True, value
        return build_criterion(cfg)
    if key == "DATASET.OUT_OF_RANGE_LABELS":
        cfg = get_cfg()
        cfg.DATASET.ROOT = request.getfixturevalue("synthetic_root")
        cfg.DATASET.OUT_OF_RANGE_LABELS = value
        return build_dataset(cfg, "val")[0]
    if key == "TRAIN.OPTIMIZER":
        return schedule.build_optimizer(nn.Linear(2, 2), value, 0.1, 0.9, 0.0, False)
    if key == "TRAIN.AMP_DTYPE":
        return amp_dtype(True, value)
    if key == "TEST.PROTOCOL":
        cfg.TEST.PROTOCOL = value
        return InferenceSettings.from_config(cfg)
    if key == "TEST.ACCUMULATE":
        return to_scores(torch.zeros(1, 2, 3, 3), value)
    if key == "TEST.FIRST_RESIZE":
        return resize_and_pad(torch.zeros(1, 3, 5, 7), (4, 6), mode=value, normalization=IMAGENET)
    raise AssertionError(f"no builder known for {key}")


@pytest.mark.parametrize("key, value", [(k, v) for k, values in CHOICES.items() for v in values])
def test_every_choice_builds(key, value, request):
    assert _build_with(key, value, request) is not None
