"""Configuration: ``get_cfg()`` for the defaults, ``load_cfg(path, opts)`` for an experiment.

``load_cfg`` checks every key of the file and of the command-line overrides before merging, so a
misspelt key names itself and the nearest valid one, and known misspellings of published files
(``NUM_RANCHES``) are translated with a warning.
"""
import difflib
import logging
import os
from ast import literal_eval

import yaml
from yacs.config import CfgNode

from .default import _C
from .published import resolve_published

__all__ = ["get_cfg", "load_cfg", "ConfigError"]

logger = logging.getLogger(__name__)

# Misspellings found in published experiment files -> the key they meant.
_KNOWN_MISSPELLINGS = {"NUM_RANCHES": "NUM_BRANCHES"}

_CHOICES = {
    "MODEL.NAME": ("seg_hrnet", "branched_seg_hrnet", "seg_hrnet_ocr", "branched_seg_hrnet_ocr"),
    "DATASET.DATASET": ("cityscapes", "acdc", "ade20k"),
    "LOSS.CONFIDENCE_MODE": ("reference", "masked"),
    "TEST.ACCUMULATE": ("exp_logits", "softmax"),
    "TRAIN.OPTIMIZER": ("sgd", "adamw"),
    "MODEL.EXTRA.OFFSET_BRANCH": (2, 3, 4),
}
_LIST_KEYS_OF_NUMBERS = ("TEST.SCALE_LIST", "LOSS.TERM_WEIGHTS", "LOSS.BALANCE_WEIGHTS")


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


def get_cfg():
    """A fresh, mutable copy of the documented defaults."""
    return _C.clone()


def load_cfg(path=None, opts=()):
    """Defaults, then the YAML file at ``path``, then ``opts`` (``[KEY, VALUE, ...]``); checked, frozen."""
    cfg = get_cfg()
    if path:
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}")
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys at the top level")
        loaded = resolve_published(loaded, path)
        loaded = _check_keys(loaded, cfg, prefix="", source=path)
        _merge(cfg, CfgNode(loaded), source=path)
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"overrides come as KEY VALUE pairs; got an odd list: {opts}")
    for key, value in zip(opts[0::2], opts[1::2]):
        key = _check_dotted_key(key, cfg)
        _merge_override(cfg, key, value)
    _normalise(cfg)
    _validate(cfg)
    cfg.freeze()
    return cfg


def _nearest(name, candidates):
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {match[0]}?" if match else ""


def _check_keys(loaded, node, prefix, source):
    """Translate known misspellings and reject unknown keys, naming the nearest valid one."""
    checked = {}
    for key, value in loaded.items():
        full = prefix + key
        if key not in node and key in _KNOWN_MISSPELLINGS:
            fixed = _KNOWN_MISSPELLINGS[key]
            logger.warning("%s: key %s is a known misspelling, read as %s", source, full,
                           prefix + fixed)
            key = fixed
        if key not in node:
            raise ConfigError(f"{source}: unknown config key {full}{_nearest(key, node.keys())}")
        if isinstance(node[key], CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {full} must be a mapping of keys, got {value!r}")
            value = _check_keys(value, node[key], full + ".", source)
        else:
            value = _coerce(node[key], value)
        checked[key] = value
    return checked


def _check_dotted_key(dotted, cfg):
    node, parts = cfg, dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, CfgNode) or part not in node:
            if isinstance(node, CfgNode) and part in _KNOWN_MISSPELLINGS:
                logger.warning("override %s: %s is a known misspelling, read as %s", dotted, part,
                               _KNOWN_MISSPELLINGS[part])
                parts[i] = part = _KNOWN_MISSPELLINGS[part]
            else:
                options = node.keys() if isinstance(node, CfgNode) else ()
                raise ConfigError(f"unknown config key {dotted}{_nearest(part, options)}")
        node = node[part]
    return ".".join(parts)


def _merge(cfg, other, source):
    try:
        cfg.merge_from_other_cfg(other)
    except (ValueError, KeyError, AssertionError) as e:
        raise ConfigError(f"{source}: {e}") from None


def _merge_override(cfg, key, value):
    node, leaf = _parent(cfg, key)
    value = _coerce(node[leaf], _decode(value))
    try:
        cfg.merge_from_list([key, value])
    except (ValueError, KeyError, AssertionError) as e:
        raise ConfigError(f"override {key} {value}: {e}") from None


def _decode(value):
    """A command-line value as a Python literal when it is one ("0.5", "[64,32]", "True")."""
    if not isinstance(value, str):
        return value
    try:
        return literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(default, value):
    """Accept the spellings people use for a key of ``default``'s type.

    A whole number for a float key ("TEST.STRIDE_RATIO 1"); for a list key, a bare list
    ("0.5,0.75", "fog,night", "[night]") or a single value ("TEST.SCALE_LIST 1").
    """
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, str) and isinstance(value, (int, float)):
        return str(value)  # a file name that happens to look like a number
    if isinstance(default, list):
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [value]
        if isinstance(value, str):
            items = (v.strip().strip("'\"") for v in value.strip("[]()").split(","))
            return [_decode(v) for v in items if v]
    return value


def _normalise(cfg):
    for key in _LIST_KEYS_OF_NUMBERS:
        node, leaf = _parent(cfg, key)
        node[leaf] = [float(v) for v in node[leaf]]
    cfg.GPUS = tuple(cfg.GPUS)


def _parent(cfg, dotted):
    *path, leaf = dotted.split(".")
    node = cfg
    for part in path:
        node = node[part]
    return node, leaf


def _validate(cfg):
    for key, allowed in _CHOICES.items():
        node, leaf = _parent(cfg, key)
        if node[leaf] not in allowed:
            raise ConfigError(f"{key} = {node[leaf]!r} is not one of {list(allowed)}")
    for key in ("TRAIN.IMAGE_SIZE", "TEST.IMAGE_SIZE"):
        node, leaf = _parent(cfg, key)
        if len(node[leaf]) != 2 or any(int(v) <= 0 for v in node[leaf]):
            raise ConfigError(f"{key} must be [width, height] with positive sizes, got {node[leaf]}")
    if len(cfg.LOSS.TERM_WEIGHTS) != 4:
        raise ConfigError(f"LOSS.TERM_WEIGHTS needs 4 weights (S_i, S_s, S_f, confidence), "
                          f"got {cfg.LOSS.TERM_WEIGHTS}")
    if not cfg.TEST.SCALE_LIST:
        raise ConfigError("TEST.SCALE_LIST is empty")
    if not 0 < cfg.TEST.STRIDE_RATIO <= 1:
        raise ConfigError(f"TEST.STRIDE_RATIO must lie in (0, 1], got {cfg.TEST.STRIDE_RATIO}")
    for name in ("STAGE1", "STAGE2", "STAGE3", "STAGE4", "STAGE2_2", "STAGE3_2", "STAGE4_2"):
        stage = cfg.MODEL.EXTRA[name]
        for key in ("NUM_BLOCKS", "NUM_CHANNELS"):
            if len(stage[key]) != stage.NUM_BRANCHES:
                raise ConfigError(f"MODEL.EXTRA.{name}.{key} has {len(stage[key])} entries but "
                                  f"NUM_BRANCHES is {stage.NUM_BRANCHES}")
        if stage.BLOCK not in ("BASIC", "BOTTLENECK"):
            raise ConfigError(f"MODEL.EXTRA.{name}.BLOCK = {stage.BLOCK!r} is not BASIC or BOTTLENECK")
