"""Everything that evaluates: protocols (scales, windows, flip), metrics, the evaluation loop,
prediction files, and the Python API ``Predictor``."""
from .predictor import Prediction, Predictor

__all__ = ["Predictor", "Prediction"]
