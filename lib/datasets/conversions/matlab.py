"""Label maps stored in MATLAB files (COCO-Stuff-10k's annotations, SBD's class maps), read with
SciPy (MATLAB format 5 to 7.2, which these releases use)."""
import numpy as np
from scipy.io import loadmat

from ..files import DatasetError

__all__ = ["load_mat", "label_values"]


def load_mat(path):
    """The variables of the MATLAB file ``path`` ({name: array}); raises DatasetError naming the
    file when it is missing or SciPy cannot read it."""
    try:
        return loadmat(path)
    except FileNotFoundError:
        raise DatasetError(f"MATLAB file not found: {path}") from None
    except Exception as e:  # SciPy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise DatasetError(f"cannot read {path} as a MATLAB file: {e}") from None


def label_values(array, path, name, max_value):
    """``array`` (the variable or field ``name`` of ``path``) as a uint8 (h, w) label map.

    Raises DatasetError naming the file and the variable when it is not a 2-D array of whole
    numbers in 0..max_value (listing the values that are not).
    """
    values = np.asarray(array)
    if values.ndim != 2 or values.dtype.kind not in "uif" or 0 in values.shape:
        raise DatasetError(f"{path}: {name} must be a 2-D numeric label map, got shape "
                           f"{values.shape} and dtype {values.dtype}")
    found = np.unique(values)
    bad = found[(found < 0) | (found > max_value) | (found != np.round(found))]
    if bad.size:
        raise DatasetError(f"{path}: {name} holds values outside 0..{max_value}: "
                           f"{bad[:10].tolist()}")
    return values.astype(np.uint8)
