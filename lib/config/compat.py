"""The private yacs internals the config reader relies on, in one place (checked against yacs
0.1.8, the latest release): its literal decoder and its type check of merged values."""
from yacs.config import CfgNode, _check_and_coerce_cfg_value_type

__all__ = ["decode_value", "coerce_to_type_of"]


def decode_value(value):
    """A YAML or command-line value as yacs decodes it: Python literals from strings
    ("0.5", "[64,32]", "True"), anything else unchanged."""
    return CfgNode._decode_cfg_value(value)


def coerce_to_type_of(value, default, key, full_key):
    """``value`` in the type of ``default`` by yacs' merge rule (the same type, list <-> tuple,
    or None); raises ValueError naming ``full_key`` otherwise."""
    return _check_and_coerce_cfg_value_type(value, default, key, full_key)
