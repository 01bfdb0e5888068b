"""OVeNet: offset-vector HRNetV2 semantic segmentation, with HRNetV2 and HRNet-OCR.

This folder is one package under two names: installed (``pip install .`` or ``-e .``), it is
``ovenet``; the tools of the checkout import it as ``lib`` (they put the repository root on
``sys.path``, and need no install).  Every import inside it is relative, so a process holds one
copy of each module, under the name it first imported the package by.  Importing this folder
under the other name as well raises ImportError, instead of making a second copy of every module
(whose classes and settings would then differ from the first copy's).
"""
import os
import sys

_NAMES = ("lib", "ovenet")


def _refuse_a_second_name():
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _NAMES:
        other = getattr(sys.modules.get(name), "__file__", None)
        if name != __name__ and other and os.path.dirname(os.path.abspath(other)) == here:
            raise ImportError(
                f"{here} is already imported as {name!r}; importing it again as {__name__!r} "
                f"would make a second copy of every module: use one name in a process "
                f"(e.g. 'from {name}.evaluation import Predictor')")


_refuse_a_second_name()
