"""ACDC (Adverse Conditions Dataset with Correspondences): conditions and file naming.

Layout under ``<DATASET.ROOT>/acdc/``::

    rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png
    gt/<condition>/<split>/<sequence>/<stem>_gt_labelIds.png

with conditions fog, night, rain and snow.  The normal-condition reference images (folders ending
in ``_ref``) are never used.  Labels are Cityscapes label ids; the class tables are those of
:mod:`lib.datasets.cityscapes`.
"""
from .base_dataset import BaseDataset
from .cityscapes import CityscapesTables
from .files import DatasetError

__all__ = ["ACDC", "CONDITIONS", "path_condition"]

CONDITIONS = ("fog", "night", "rain", "snow")


def path_condition(rel_path, where=""):
    """The condition folder of an ACDC path such as ``rgb_anon/fog/train/GOPR0475/x.png``.

    Raises DatasetError for a path in a ``*_ref`` folder or with no condition folder.
    """
    parts = rel_path.replace("\\", "/").split("/")
    for part in parts[:-1]:
        if part.endswith("_ref"):
            raise DatasetError(f"{where}reference images (folders ending in _ref) are not part of "
                               f"ACDC training or evaluation: {rel_path}")
    for part in parts[:-1]:
        if part in CONDITIONS:
            return part
    raise DatasetError(f"{where}no condition folder ({', '.join(CONDITIONS)}) in path {rel_path}")


class ACDC(CityscapesTables, BaseDataset):
    """ACDC semantic segmentation, 19 Cityscapes classes.

    ACDC's benchmark expects predictions as Cityscapes label ids, exactly like Cityscapes: map
    trainIds with ``train_id_to_label``.  Items are named by the image stem without
    ``_rgb_anon.png`` (e.g. ``GOPR0475_frame_000041``).

    Args:
        conditions: the conditions to keep from the list (any of fog, night, rain, snow);
            empty = all four.  The condition of an item is the condition folder of its image path.
            Selection happens before ``num_samples`` is applied.
        Other arguments: as :class:`lib.datasets.base_dataset.BaseDataset`.
    """

    folder = "acdc"
    image_suffix = "_rgb_anon.png"
    same_size_images = True  # 1920 x 1080

    def __init__(self, root: str, list_path: str, split: str, *,
                 conditions: tuple[str, ...] | list[str] = (), **kwargs):
        unknown = sorted(set(conditions) - set(CONDITIONS))
        if unknown:
            raise DatasetError(f"unknown ACDC condition(s) {unknown}; valid: {list(CONDITIONS)}")
        self.conditions = tuple(c for c in CONDITIONS if c in conditions) or CONDITIONS
        super().__init__(root, list_path, split, **kwargs)
        self._condition_by_name = {}
        for name, entry in zip(self.names, self.entries, strict=True):
            condition = path_condition(entry.image)
            # A stem found under two conditions is ambiguous; remember that instead of guessing.
            known = self._condition_by_name.setdefault(name, condition)
            if known != condition:
                self._condition_by_name[name] = None

    def _select(self, entries):
        kept = [entry for entry in entries
                if path_condition(entry.image, f"{self.list_file}:{entry.line}: ")
                in self.conditions]
        if not kept:
            raise DatasetError(f"{self.list_file}: no item has a selected condition "
                               f"{list(self.conditions)}")
        return kept

    def condition(self, name):
        """The condition (fog, night, rain or snow) of the item called ``name``."""
        if name not in self._condition_by_name:
            raise KeyError(f"{name!r} is not an item of {self.list_file}")
        condition = self._condition_by_name[name]
        if condition is None:
            raise DatasetError(f"{self.list_file}: item name {name!r} occurs under several "
                               f"conditions")
        return condition
