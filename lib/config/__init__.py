"""Configuration: ``get_cfg()`` for the defaults, ``load_cfg(path, opts)`` for an experiment.

yacs reads the YAML file, decodes literals and checks value types.  On top of it, ``load_cfg``
merges the file and then the command-line overrides in one walk each, so that

- a misspelt key names itself and the nearest valid one;
- the spellings people use are accepted: a whole number for a float key, a bare list for a list
  key ("0.5,0.75", "fog,night", "[night]", or one value), a number for a file name;
- published experiment files load unchanged: the rules of :data:`_PUBLISHED_FILE_RULES`
  translate what they say differently (``NUM_RANCHES``, ``IGNORE_LABEL -1``, with a
  warning), and so do files and command lines of earlier releases (:data:`RENAMED_KEYS`);

and then checks the values: every key that names a choice against :data:`.choices.CHOICES`
(declared in this package, below the builders whose tables hold those names, so that the check
is the same whatever the caller imported), then the numeric domains and shapes.
"""
import difflib
import logging
import math
import os

import yaml
from yacs.config import CfgNode

from ..utils.errors import ProjectError
from ..utils.precision import amp_dtype
from .choices import CHOICES, STAGES
from .compat import coerce_to_type_of, decode_value
from .default import _C
from .published import resolve_published

__all__ = ["get_cfg", "load_cfg", "ConfigError", "amp_dtype_of", "DATASET_OWN", "CHOICES"]

logger = logging.getLogger(__name__)

# The values of a key that leave the setting to the dataset (TEST.CROP_PADDING): YAML's empty
# value (None), "" and "auto".
DATASET_OWN = (None, "", "auto")


class ConfigError(ProjectError, ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


def get_cfg():
    """A fresh, mutable copy of the documented defaults."""
    return _C.clone()


def load_cfg(path=None, opts=()):
    """Defaults, then the YAML file at ``path``, then ``opts`` (``[KEY, VALUE, ...]``); checked,
    frozen."""
    cfg = get_cfg()
    sources = [(path, resolve_published(_read(path), path))] if path else []
    sources.append(("command line", _overrides(opts)))
    for source, raw in sources:
        for rule in _PUBLISHED_FILE_RULES:
            rule(raw, source)
        _merge(cfg, raw, "", source)
    _validate(cfg)
    cfg.freeze()
    return cfg


def amp_dtype_of(cfg):
    """The autocast dtype TRAIN.AMP and TRAIN.AMP_DTYPE ask for (training, testing and
    inference alike), or None for fp32."""
    return amp_dtype(cfg.TRAIN.AMP, cfg.TRAIN.AMP_DTYPE)


def _read(path):
    """The mapping of keys in the YAML file ``path``, as yacs reads it."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        text = f.read()
    try:
        return CfgNode.load_cfg(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except AttributeError:  # yacs builds a tree with .items() of the top level
        raise ConfigError(f"{path}: expected a mapping of keys at the top level") from None
    except AssertionError as e:  # a value of a type yacs does not store
        raise ConfigError(f"{path}: {e}") from None


def _overrides(opts):
    """``[KEY, VALUE, ...]`` with dotted keys as a nested mapping, like a YAML file's."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"overrides come as KEY VALUE pairs; got an odd list: {opts}")
    tree = {}
    for key, value in zip(opts[0::2], opts[1::2]):
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"command line: {key} is given after a value for one of its "
                                  f"parents")
        node[leaf] = value
    return tree


def _rename_num_ranches(raw, source, prefix=""):
    """HRNet's published files spell STAGE1.NUM_BRANCHES as NUM_RANCHES."""
    if "NUM_RANCHES" in raw and "NUM_BRANCHES" not in raw:
        logger.warning("%s: key %sNUM_RANCHES is a known misspelling, read as %sNUM_BRANCHES",
                       source, prefix, prefix)
        raw["NUM_BRANCHES"] = raw.pop("NUM_RANCHES")
    for key, value in raw.items():
        if isinstance(value, dict):
            _rename_num_ranches(value, source, f"{prefix}{key}.")


def _ignore_label_minus_one(raw, source):
    """The HRNet master-branch PASCAL-Context files and an OVeNet VOC file ignore label -1 (their
    loaders wrote ignored pixels as -1); labels here are 8-bit and ignore 255."""
    train = raw.get("TRAIN")
    if isinstance(train, dict) and str(train.get("IGNORE_LABEL")).strip() == "-1":
        logger.warning("%s: TRAIN.IGNORE_LABEL -1 (the reference's ignored pixels) is read as "
                       "255: labels are 8-bit", source)
        train["IGNORE_LABEL"] = 255


# Keys of earlier releases of this tree -> their names now; a file or a command line that uses
# the old name is read with a warning.
RENAMED_KEYS = {"TEST.SAVE_HEADS": "TEST.SAVE_EVERY_PREDICTION"}


def _renamed_keys(raw, source):
    """The keys of ``RENAMED_KEYS`` read under their new names."""
    for old, new in RENAMED_KEYS.items():
        *path, leaf = old.split(".")
        node = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            value = node.pop(leaf)
            *new_path, new_leaf = new.split(".")
            target = raw
            for part in new_path:
                target = target.setdefault(part, {})
            if new_leaf in target:
                logger.warning("%s: %s (the name of earlier releases) is ignored: %s is given "
                               "too", source, old, new)
            else:
                logger.warning("%s: %s is now called %s; read as such", source, old, new)
                target[new_leaf] = value


# Rules for what published experiment files (HRNet, HRNet-OCR, the thesis) and files of earlier
# releases say differently from this tree.  Each rule takes the raw mapping of one source (the
# file, then the command line) and the source's name, and rewrites the mapping in place before it
# is merged; a rule may look at several keys of the mapping at once.  Every rule of this kind
# belongs in this table.
_PUBLISHED_FILE_RULES = (_rename_num_ranches, _ignore_label_minus_one, _renamed_keys)


def _merge(node, raw, prefix, source):
    """Merge the mapping ``raw`` into the config ``node`` (whose keys start with ``prefix``)."""
    for key, value in raw.items():
        key, full = str(key), f"{prefix}{key}"
        if key not in node:
            nearest = nearest_keys(full)
            hint = f"; did you mean {' or '.join(nearest)}?" if nearest else ""
            raise ConfigError(f"{source}: unknown config key {full}{hint}")
        if isinstance(node[key], CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {full} must be a mapping of keys, got {value!r}")
            _merge(node[key], value, f"{full}.", source)
        elif isinstance(value, dict):
            raise ConfigError(f"{source}: {full} is a value ({node[key]!r}), not a mapping of keys")
        else:
            # The type is the declared default's, not the value's so far: a key declared None
            # (TEST.CROP_PADDING) takes a bool or a string from the file and the command line.
            declared = _get(_C, full)
            value = _as_type_of(declared, value, full, source)
            try:  # yacs' rule of its own merges: the same type, list <-> tuple, or None
                node[key] = coerce_to_type_of(value, declared, key, full)
            except ValueError as e:
                raise ConfigError(f"{source}: {e}") from None


# How close (difflib's ratio, case ignored) a key's last name must be to a known key's for
# ``nearest_keys`` to suggest it, and the bonus of a key in the same group as the unknown one
# (TEST.SCALES: TEST.SCALE_LIST rather than MODEL.OCR.SCALE).
_NEAR = 0.6
_SAME_GROUP = 0.3


def _all_keys(node, prefix=""):
    for key, value in node.items():
        yield f"{prefix}{key}"
        if isinstance(value, CfgNode):
            yield from _all_keys(value, f"{prefix}{key}.")


def nearest_keys(full):
    """The full names of the known keys (groups included) nearest to the unknown key ``full``,
    searched in every group: the same name in another group (TRAIN.OHEMTHRES -> LOSS.OHEMTHRES,
    DATASET.IMAGE_SIZE -> TEST.IMAGE_SIZE, TRAIN.IMAGE_SIZE), else the closest spelling, a key of
    the same group first (LOSS.TERM_WEIGHT -> LOSS.TERM_WEIGHTS).  Sorted; empty when no key
    is close."""
    group, _, name = full.upper().rpartition(".")
    keys = list(_all_keys(_C))
    same_name = sorted(k for k in keys if k.rpartition(".")[2] == name)
    if same_name:
        return same_name
    scores = {}
    for key in keys:
        key_group, _, key_name = key.rpartition(".")
        ratio = difflib.SequenceMatcher(None, name, key_name).ratio()
        if ratio >= _NEAR:
            scores[key] = ratio + (_SAME_GROUP if key_group == group else 0.0)
    best = max(scores.values(), default=None)
    return sorted(k for k, s in scores.items() if s == best)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_type_of(default, value, key, source):
    """``value`` (from YAML or the command line) in the spelling of ``default``'s type.

    Strings stay strings (a file name "1" is not a number).  Other strings are decoded as
    Python literals where they are one ("0.5", "[64,32]", "True").  A float key takes a whole
    number; a list key takes a bare comma list or one value, and a list of numbers keeps the
    number type of its default's items (int stays int, int -> float).
    """
    if isinstance(default, str):
        return str(value) if _is_number(value) else value
    value = decode_value(value)
    if isinstance(default, float) and _is_number(value):
        return float(value)
    if not isinstance(default, (list, tuple)):
        return value
    if isinstance(value, str):
        items = (v.strip().strip("'\"") for v in value.strip("[]()").split(","))
        value = [decode_value(v) for v in items if v]
    elif _is_number(value):
        value = [value]
    if default and all(_is_number(v) for v in default) and isinstance(value, (list, tuple)):
        kind = float if any(isinstance(v, float) for v in default) else int
        if not all(_is_number(v) and (kind is float or isinstance(v, int)) for v in value):
            raise ConfigError(f"{source}: {key} must be a list of {kind.__name__} numbers like "
                              f"{list(default)}, got {value!r}")
        value = type(value)(kind(v) for v in value)
    return value


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


# Numeric keys with an obvious domain -> (lower bound, whether the bound itself is allowed): the
# domains of the parts that read them (SGD's learning rate, momentum and weight decay; sizes,
# counts and the divisor of PRINT_FREQ), so that a bad value names its key at load time.
_LOWER_BOUNDS = {
    "WORKERS": (0, True), "PRINT_FREQ": (1, True),
    "MODEL.EXTRA.OFFSET_THRESHOLD": (0, False),
    "TRAIN.LR": (0, False), "TRAIN.MOMENTUM": (0, True), "TRAIN.WD": (0, True),
    "TRAIN.BASE_SIZE": (1, True), "TRAIN.SCALE_FACTOR": (0, True),
    "TRAIN.DOWNSAMPLERATE": (0, False), "TRAIN.BATCH_SIZE_PER_GPU": (1, True),
    "TRAIN.NUM_SAMPLES": (0, True), "TRAIN.EVAL_INTERVAL": (0, True),
    "TRAIN.CHECKPOINT_INTERVAL": (0, True), "TRAIN.MAX_NONFINITE": (1, True),
    "TEST.BASE_SIZE": (1, True), "TEST.BATCH_SIZE_PER_GPU": (1, True),
    "TEST.NUM_SAMPLES": (0, True), "TEST.WINDOW_BATCH": (1, True),
}
# The shortest long side, in pixels, that a TEST.SCALE_LIST scale may give an image
# (int(TEST.BASE_SIZE * s + 0.5)): its short side is then at least one pixel for any aspect ratio
# up to 16:1 (below it torch fails at the first image with "sizes should be greater than 0").
_MIN_SCALED_LONG_SIDE = 8


def _validate_bounds(cfg):
    for key, (bound, inclusive) in _LOWER_BOUNDS.items():
        value = _get(cfg, key)
        if not math.isfinite(value) or not (value >= bound if inclusive else value > bound):
            raise ConfigError(f"{key} must be {'>=' if inclusive else '>'} {bound}, got {value}")
    if cfg.TRAIN.EXTRA_EPOCH > 0 and not cfg.TRAIN.EXTRA_LR > 0:
        raise ConfigError(f"TRAIN.EXTRA_LR must be > 0 for the TRAIN.EXTRA_EPOCH = "
                          f"{cfg.TRAIN.EXTRA_EPOCH} epochs of the second phase, got "
                          f"{cfg.TRAIN.EXTRA_LR}")
    if not cfg.TEST.SCALE_LIST:
        raise ConfigError("TEST.SCALE_LIST is empty")
    base = cfg.TEST.BASE_SIZE
    for scale in cfg.TEST.SCALE_LIST:
        if not (math.isfinite(scale) and scale > 0):
            raise ConfigError(f"TEST.SCALE_LIST {list(cfg.TEST.SCALE_LIST)}: scale {scale} is not "
                              f"a positive number")
        long_side = int(base * scale + 0.5)
        if long_side < _MIN_SCALED_LONG_SIDE:
            raise ConfigError(
                f"TEST.SCALE_LIST {list(cfg.TEST.SCALE_LIST)}: scale {scale} resizes the long side "
                f"to int(TEST.BASE_SIZE * scale + 0.5) = {long_side} pixels (TEST.BASE_SIZE "
                f"{base}); at least {_MIN_SCALED_LONG_SIDE} are needed, which scales of "
                f"{_MIN_SCALED_LONG_SIDE - 0.5} / TEST.BASE_SIZE or more give")


def _validate_choices(cfg):
    """Every key of CHOICES whose value is not one of its choices, named in one error."""
    wrong = [f"{key} = {_get(cfg, key)!r} is not one of {list(allowed)}"
             for key, allowed in CHOICES.items() if _get(cfg, key) not in allowed]
    if wrong:
        raise ConfigError("; ".join(wrong))


def _validate(cfg):
    _validate_choices(cfg)
    _validate_bounds(cfg)
    for key in ("TRAIN.IMAGE_SIZE", "TEST.IMAGE_SIZE"):
        size = _get(cfg, key)
        if len(size) != 2 or any(v <= 0 for v in size):
            raise ConfigError(f"{key} must be [width, height] with positive sizes, got {size}")
    if cfg.TRAIN.ACCUMULATE_STEPS < 1:
        raise ConfigError(f"TRAIN.ACCUMULATE_STEPS must be a whole number >= 1 (micro-batches per "
                          f"optimiser step), got {cfg.TRAIN.ACCUMULATE_STEPS}")
    if len(cfg.LOSS.TERM_WEIGHTS) != 4:
        raise ConfigError(f"LOSS.TERM_WEIGHTS needs 4 weights (S_i, S_s, S_f, confidence), "
                          f"got {cfg.LOSS.TERM_WEIGHTS}")
    crop = cfg.TEST.CROP_PADDING
    if not isinstance(crop, bool) and crop not in DATASET_OWN:
        raise ConfigError(f"TEST.CROP_PADDING = {crop!r} is not True, False, or empty / \"auto\" "
                          f"(the dataset's own)")
    if not 0 < cfg.TEST.STRIDE_RATIO <= 1:
        raise ConfigError(f"TEST.STRIDE_RATIO must lie in (0, 1], got {cfg.TEST.STRIDE_RATIO}")
    if cfg.MODEL.EXTRA.CONFIDENCE not in (0, 1):
        raise ConfigError(f"MODEL.EXTRA.CONFIDENCE = {cfg.MODEL.EXTRA.CONFIDENCE!r} is not 0 or 1 "
                          f"(both fuse with the learned confidence map)")
    for name in STAGES:
        _validate_stage(f"MODEL.EXTRA.{name}", cfg.MODEL.EXTRA[name])


def _validate_stage(key, stage):
    for field in ("NUM_BLOCKS", "NUM_CHANNELS"):
        if len(stage[field]) != stage.NUM_BRANCHES:
            raise ConfigError(f"{key}.{field} has {len(stage[field])} entries but "
                              f"NUM_BRANCHES is {stage.NUM_BRANCHES}")
    if stage.FUSE_METHOD != "SUM":
        raise ConfigError(f"{key}.FUSE_METHOD = {stage.FUSE_METHOD!r}: only SUM exists (the "
                          f"branches of a module are added)")
