"""Conversions of the benchmark datasets' releases into the layouts their loaders read.

One module per release format, each turning the files users download into ours (the tools
``tools/convert_*.py`` call them):

- :mod:`.pascal_context`: PASCAL-Context from the Detail API's ``trainval_merged.json`` (COCO RLE
  masks, decoded by :mod:`.rle`) and the VOC 2010 images;
- :mod:`.coco_stuff`: COCO-Stuff-10k (MATLAB label maps) or COCO-Stuff-164k (stuffthingmaps PNGs);
- :mod:`.lip`: LIP's unpacked archives, found and placed;
- :mod:`.voc_sbd`: VOC 2012 with the SBD labels (MATLAB structs): SegmentationClassAug and the
  10,582 ``train_aug`` ids.

:mod:`.output` places images and writes labels (whole files or none), :mod:`.matlab` reads MATLAB
label maps.  Bad input raises :class:`~lib.datasets.files.DatasetError` naming the file and what is
wrong with it.
"""
