"""The one configuration tree of the project, with every key documented.

Key names follow the experiment files of the original HRNetV2 segmentation code and of the
offset-vector thesis code, so that those files load unchanged.  Sizes given as two numbers
(``TRAIN.IMAGE_SIZE``, ``TEST.IMAGE_SIZE``) are ``[width, height]``, as in the original.

The keys that nothing reads, accepted so that published files load, stand together at the end.
"""
from yacs.config import CfgNode as CN

_C = CN()

# Root of all runs: a training run writes into a new folder
# ``<OUTPUT_DIR>/<dataset>/<config name>/<YYYYmmdd-HHMMSS>[_<overrides>]/`` with a ``latest`` link
# beside it, and each evaluation into ``<run>/eval/<what it evaluated>/``
# (lib/engine/run_folders.py).
_C.OUTPUT_DIR = "output"
# The exact folder of the run ("" = a new folder under OUTPUT_DIR): for scripts, and to resume or
# evaluate one run by name.  A folder that holds a run is only continued (AUTO_RESUME True).
_C.RUN_DIR = ""
# Root of the TensorBoard events, laid out like OUTPUT_DIR
# (``<LOG_DIR>/<dataset>/<config name>/<run name>/``; ``<RUN_DIR>/tensorboard`` for a RUN_DIR).
_C.LOG_DIR = "log"
# DataLoader worker processes per training/evaluation process (0 = load in the main process).
_C.WORKERS = 4
# Write one log line every PRINT_FREQ training iterations.
_C.PRINT_FREQ = 20
# Continue a run from its ``checkpoint.pth.tar`` (same as TRAIN.RESUME): the run of RUN_DIR, else
# this SLURM job's own run (a requeued job), else the newest run of the config trained with the
# same settings (all keys but the folder, launch and TEST.* ones); a new run when there is none.
_C.AUTO_RESUME = False
# Pin host memory in the DataLoaders (only used when training on CUDA).
_C.PIN_MEMORY = True

# cuDNN switches, applied once per process.
_C.CUDNN = CN()
# torch.backends.cudnn.benchmark: autotune convolution algorithms for fixed input sizes.
_C.CUDNN.BENCHMARK = True
# torch.backends.cudnn.deterministic: deterministic convolution algorithms (slower).
_C.CUDNN.DETERMINISTIC = False
# torch.backends.cudnn.enabled.
_C.CUDNN.ENABLED = True

# The network and its initialisation.
_C.MODEL = CN()
# Network: "seg_hrnet" (HRNetV2), "branched_seg_hrnet" (offset-vector HRNetV2), "seg_hrnet_ocr"
# (HRNetV2 + OCR) or "branched_seg_hrnet_ocr" (offset-vector HRNet-OCR, OVeNet's main network).
# Published files that say "seg_hrnet_ocr" and also set MODEL.EXTRA.OFFSET_BRANCH or STAGE4_2 (the
# OVeNet repository's) build "branched_seg_hrnet_ocr" (see lib/config/published.py).
_C.MODEL.NAME = "seg_hrnet"
# Weights that initialise the network (ImageNet HRNet classification file, an official HRNetV2
# segmentation checkpoint, a thesis checkpoint or one of ours); "" = random initialisation.
_C.MODEL.PRETRAINED = ""
# Weights for the duplicated offset-path stages (renamed stage4 -> stage4_2, ...);
# "" = take them from MODEL.PRETRAINED.
_C.MODEL.OFFSET_PRETRAINED = ""
# Also take the offset head (offset_layer / aux_head_offset) from MODEL.OFFSET_PRETRAINED when that
# file has one.  False = the reference: only the duplicated stages, the head starts fresh.
_C.MODEL.OFFSET_PRETRAINED_HEAD = False
# Train only the duplicated offset-path stages and the offset head (offset_layer /
# aux_head_offset); the rest is frozen and kept in eval mode so its batch-norm statistics do not
# drift.
_C.MODEL.FREEZED_PAR = False
# align_corners of every bilinear resize of features and logits (the HRNetV2 reference experiments
# use False, the HRNet-OCR and OVeNet-OCR ones True).  Not of the confidence loss: it resizes the
# confidence map and the offsets to the label size with False in every network, as the OVeNet
# code does.
_C.MODEL.ALIGN_CORNERS = False
# Momentum of every batch norm's running statistics: 0.01 in the HRNetV2 reference, 0.1 in
# HRNet-OCR and OVeNet-OCR.
_C.MODEL.BN_MOMENTUM = 0.01

# The OCR head of seg_hrnet_ocr / branched_seg_hrnet_ocr (defaults: the published HRNet-OCR).
_C.MODEL.OCR = CN()
# Width of the OCR features (conv3x3_ocr, ocr_distri_head, input of cls_head).
_C.MODEL.OCR.MID_CHANNELS = 512
# Width of the queries, keys and values of the pixel-to-object attention.
_C.MODEL.OCR.KEY_CHANNELS = 256
# Dropout2d probability after the OCR fusion convolution (ocr_distri_head.conv_bn_dropout).
_C.MODEL.OCR.DROPOUT = 0.05
# The soft-region logits are multiplied by SCALE before the softmax over pixels that pools one
# representation per class (ocr_gather_head); 1 = the published network.  The HRNet-OCR code
# defines this key but reads it nowhere: it fixes both of its "scale"s at 1, this temperature and
# the pooling factor inside the object attention, which has no key here.
_C.MODEL.OCR.SCALE = 1.0

def _stage(num_modules, num_branches, block, num_blocks, num_channels):
    stage = CN()
    # Number of HighResolutionModules stacked in this stage.
    stage.NUM_MODULES = num_modules
    # Number of parallel resolution branches (1/4, 1/8, 1/16, 1/32).
    stage.NUM_BRANCHES = num_branches
    # Residual block: "BASIC" (two 3x3 convs) or "BOTTLENECK" (1x1-3x3-1x1, expansion 4).
    stage.BLOCK = block
    # Blocks per branch in each module.
    stage.NUM_BLOCKS = num_blocks
    # Width of each branch (before the block expansion).
    stage.NUM_CHANNELS = num_channels
    # How a module fuses its branches: "SUM" (upsampled or strided branches are added), the only
    # method of HRNet; any other value is an error.
    stage.FUSE_METHOD = "SUM"
    return stage

# Architecture of the network.  Defaults are HRNetV2-W48; experiment files spell out every stage.
_C.MODEL.EXTRA = CN()
# Kernel size of the last classifier convolution (1 or 3) of seg_hrnet / branched_seg_hrnet; the
# OCR networks' classifiers are 1x1, as published.
_C.MODEL.EXTRA.FINAL_CONV_KERNEL = 1
# Stage 1 of the main path: bottleneck blocks at 1/4 resolution.
_C.MODEL.EXTRA.STAGE1 = _stage(1, 1, "BOTTLENECK", [4], [64])
# Stage 2 of the main path: branches at 1/4 and 1/8.
_C.MODEL.EXTRA.STAGE2 = _stage(1, 2, "BASIC", [4, 4], [48, 96])
# Stage 3 of the main path: branches at 1/4, 1/8 and 1/16.
_C.MODEL.EXTRA.STAGE3 = _stage(4, 3, "BASIC", [4, 4, 4], [48, 96, 192])
# Stage 4 of the main path: branches at 1/4 to 1/32.
_C.MODEL.EXTRA.STAGE4 = _stage(3, 4, "BASIC", [4, 4, 4, 4], [48, 96, 192, 384])
# Offset path: its own copies of the stages from OFFSET_BRANCH on (STAGE<k>_2 for k >=
# OFFSET_BRANCH). Offset-path copy of stage 2 (used when OFFSET_BRANCH is 2).
_C.MODEL.EXTRA.STAGE2_2 = _stage(1, 2, "BASIC", [4, 4], [48, 96])
# Offset-path copy of stage 3 (used when OFFSET_BRANCH is 2 or 3).
_C.MODEL.EXTRA.STAGE3_2 = _stage(3, 3, "BASIC", [4, 4, 4], [48, 96, 192])
# Offset-path copy of stage 4 (always used by branched_seg_hrnet).
_C.MODEL.EXTRA.STAGE4_2 = _stage(2, 4, "BASIC", [4, 4, 4, 4], [48, 96, 192, 384])
# First stage that the offset path duplicates: 2, 3 or 4 (all published configs use 4).
_C.MODEL.EXTRA.OFFSET_BRANCH = 4
# Largest offset, in normalised grid units (2 = the whole width): o = tanh(raw) * OFFSET_THRESHOLD.
_C.MODEL.EXTRA.OFFSET_THRESHOLD = 0.5
# Extra refinement passes that follow offset chains: o <- o + o(p + o), N times (0 = none).
_C.MODEL.EXTRA.ITERATIVE_REFINEMENT = 0
# True: seeds gather and fuse logits.  False: they gather and fuse class probabilities, and the
# network returns the logarithm of the fused probabilities so every consumer still sees logits.
_C.MODEL.EXTRA.LOGITS = True
# align_corners of the seed sampling grid (grid_sample); True matches the offset units above.
_C.MODEL.EXTRA.GRID_ALIGN_CORNERS = True

# The training loss.
_C.LOSS = CN()
# Online hard example mining cross-entropy instead of plain cross-entropy.
_C.LOSS.USE_OHEM = False
# OHEM keeps pixels whose true-class probability is below max(OHEMTHRES, k-th smallest probability).
_C.LOSS.OHEMTHRES = 0.9
# OHEM keeps at least this many pixels per process batch.
_C.LOSS.OHEMKEEP = 131072
# Weight classes with the dataset's class weights (Cityscapes / ACDC table).
_C.LOSS.CLASS_BALANCE = True
# Weights of the two heads of the OCR networks, [soft regions, OCR], applied inside each of S_i,
# S_s, S_f (the published [0.4, 1]); the one-head networks do not read it.
_C.LOSS.BALANCE_WEIGHTS = [0.4, 1.0]
# With OHEM, how the OCR networks average the soft-region cross-entropy: "all_pixels" (the
# reference: over every pixel, unlabelled ones counting as zeros) or "labelled" (over labelled
# pixels, as every other cross-entropy here).  Without OHEM both heads use the labelled mean.
_C.LOSS.REGION_MEAN = "all_pixels"
# Weights of the offset network's loss terms: CE(S_i), CE(S_s), CE(S_f), confidence (for the OCR
# networks each CE term is the LOSS.BALANCE_WEIGHTS pair over the two heads).
_C.LOSS.TERM_WEIGHTS = [0.5, 0.5, 1.0, 1.0]
# Confidence loss: "reference" (ignored pixels count as class 0, sum / (H*W)) or "masked"
# (pixels or seeds on ignored labels left out, mean over the rest).
_C.LOSS.CONFIDENCE_MODE = "reference"

# The data: which dataset, where, and which lists.
_C.DATASET = CN()
# Folder that holds one sub-folder per dataset (``<ROOT>/cityscapes``, ``<ROOT>/acdc``) and
# ``list/``.
_C.DATASET.ROOT = "data/"
# Dataset name: "cityscapes", "acdc", "ade20k", "pascal_ctx", "cocostuff", "lip", "pascal_voc",
# or the name of a dataset of your own (folder <ROOT>/<name>/, lists <ROOT>/list/<name>/),
# described by CLASS_NAMES, LABEL_MAP, PALETTE and CLASS_WEIGHTS; lib.datasets.build_dataset
# checks it against its table.
_C.DATASET.DATASET = "cityscapes"
# Number of classes predicted (19 trainIds for Cityscapes and ACDC).  It also picks the variant of
# pascal_ctx (59: background ignored; 60: with it) and pascal_voc (21: with the background; 20:
# the object classes, background ignored).
_C.DATASET.NUM_CLASSES = 19
# Training list, relative to DATASET.ROOT; a split name ("train", "val", "trainval", "testval" =
# "val", "test"), as some reference files give, stands for list/<DATASET>/<split>.lst (the list
# tools/make_lists.py writes; LIP's are named trainList.txt, valList.txt as in the reference).
_C.DATASET.TRAIN_SET = "list/cityscapes/train.lst"
# Training list of the second phase (TRAIN.EXTRA_EPOCH), or a split name as for TRAIN_SET;
# "" = no second phase.
_C.DATASET.EXTRA_TRAIN_SET = ""
# Evaluation list, relative to DATASET.ROOT (a test list without labels gives predictions only);
# a split name stands for its list, as for TRAIN_SET.
_C.DATASET.TEST_SET = "list/cityscapes/val.lst"
# ACDC conditions to use (any of fog, night, rain, snow); empty = all four.
_C.DATASET.CONDITIONS = []
# Class names in class-index order; required for a dataset that is not built in (one name per
# class, NUM_CLASSES of them).  For a built-in dataset it may be given only as that dataset's own
# table.
_C.DATASET.CLASS_NAMES = []
# Label map of a dataset that is not built in: [raw value, class index] pairs, raw values 0..255 as
# stored in the label PNGs; unlisted raw values are ignored (TRAIN.IGNORE_LABEL).  Empty = the raw
# value is the class index; values >= NUM_CLASSES other than 255 and TRAIN.IGNORE_LABEL are out of
# range (OUT_OF_RANGE_LABELS).
_C.DATASET.LABEL_MAP = []
# Colour of each class, [R, G, B] triples 0..255 in class-index order (a dataset not built in);
# empty = a fixed palette of distinct colours.
_C.DATASET.PALETTE = []
# Loss weight of each class in class-index order, used when LOSS.CLASS_BALANCE is true (a dataset
# not built in); empty = none, then LOSS.CLASS_BALANCE must be false.
_C.DATASET.CLASS_WEIGHTS = []
# Stored label values that are neither a class nor void (255, TRAIN.IGNORE_LABEL, the dataset's
# void ids such as Cityscapes' 0-6 or ADE20K's 0, values a LABEL_MAP leaves out), e.g. 5..7 in a
# 5-class dataset without LABEL_MAP or Cityscapes ids above 33: "error" stops the run naming the
# label file, its list line and the values, when the item is read; "ignore" trains and evaluates
# with those pixels ignored.  Every split and dataset; a training epoch whose labels are all
# ignored stops the run in both modes.
_C.DATASET.OUT_OF_RANGE_LABELS = "error"

# Training: transform, schedule, optimiser and run control.
_C.TRAIN = CN()
# Training crop [width, height].
_C.TRAIN.IMAGE_SIZE = [1024, 512]
# Long side of an image at scale 1 before random scaling.
_C.TRAIN.BASE_SIZE = 2048
# Downsample the training crop by this factor after cropping (1 = no downsampling).
_C.TRAIN.DOWNSAMPLERATE = 1
# Random horizontal flip with probability 0.5.
_C.TRAIN.FLIP = True
# Random scaling 0.5 + randint(0, SCALE_FACTOR) / 10 of BASE_SIZE and a random crop; False = the
# whole image, neither scaled nor cropped (the reference).
_C.TRAIN.MULTI_SCALE = True
# Largest k of the training scales 0.5 + k / 10, k = 0..SCALE_FACTOR (16: scales 0.5 to 2.1).
_C.TRAIN.SCALE_FACTOR = 16
# Parameters whose name contains one of these words (the heads: ['last_layer'] for HRNetV2,
# ['cls', 'aux', 'ocr'] for the OCR networks in HRNet-OCR's PASCAL-Context and COCO-Stuff files)
# train at NONBACKBONE_MULT times the schedule's learning rate; [] = one learning rate for all.
_C.TRAIN.NONBACKBONE_KEYWORDS = []
# Learning-rate factor of the NONBACKBONE_KEYWORDS parameters (HRNet-OCR's schedule applies 10,
# the value of every published file).
_C.TRAIN.NONBACKBONE_MULT = 10
# Base learning rate of the poly schedule lr = LR * (1 - it / max_it) ** 0.9.
_C.TRAIN.LR = 0.01
# Base learning rate of the second phase (EXTRA_EPOCH).
_C.TRAIN.EXTRA_LR = 0.001
# Optimiser: "sgd" (the reference) or "adamw".
_C.TRAIN.OPTIMIZER = "sgd"
# SGD momentum (AdamW does not read it).
_C.TRAIN.MOMENTUM = 0.9
# Weight decay.
_C.TRAIN.WD = 0.0005
# Nesterov momentum of SGD.
_C.TRAIN.NESTEROV = False
# Label value excluded from losses and metrics (labels are 8-bit: NUM_CLASSES..255).  The -1 of
# some reference files (their loaders wrote ignored pixels as -1) is read as 255, with a warning.
_C.TRAIN.IGNORE_LABEL = 255
# First epoch of the main phase.
_C.TRAIN.BEGIN_EPOCH = 0
# End (exclusive) of the main phase, in epochs.
_C.TRAIN.END_EPOCH = 484
# Epochs of the second phase on DATASET.EXTRA_TRAIN_SET with TRAIN.EXTRA_LR (0 = none).
_C.TRAIN.EXTRA_EPOCH = 0
# Continue a run from its ``checkpoint.pth.tar``, found as for AUTO_RESUME (the same switch, under
# the name the original experiment files use).
_C.TRAIN.RESUME = False
# Images per process per forward pass (a micro-batch when ACCUMULATE_STEPS > 1).
_C.TRAIN.BATCH_SIZE_PER_GPU = 32
# Micro-batches of BATCH_SIZE_PER_GPU per optimiser step (gradient accumulation), whole number
# >= 1: the effective batch is BATCH_SIZE_PER_GPU x processes x ACCUMULATE_STEPS, e.g. 3 x 1 x 4
# for the 12-image recipes (3 x 4 GPUs) on one GPU.  Iterations, the schedule, PRINT_FREQ,
# CHECKPOINT_INTERVAL and MAX_NONFINITE count optimiser steps; batch norm sees a micro-batch.
_C.TRAIN.ACCUMULATE_STEPS = 1
# Shuffle the training set each epoch.
_C.TRAIN.SHUFFLE = True
# Use only the first NUM_SAMPLES training images (0 = all).
_C.TRAIN.NUM_SAMPLES = 0
# Autocast (in TRAIN.AMP_DTYPE) of the network's forward passes in training, validation,
# tools/test.py and tools/infer.py, on CUDA and on the CPU (losses and softmax stay fp32).  False
# (fp32) reproduces the reference exactly.
_C.TRAIN.AMP = False
# Autocast dtype when TRAIN.AMP is on: "bfloat16" or "float16" (GPUs without bf16, e.g. V100;
# training then scales the loss with a GradScaler, whose state the checkpoint keeps).
_C.TRAIN.AMP_DTYPE = "bfloat16"
# Keep activations in channels_last memory format (faster convolutions on tensor cores).
_C.TRAIN.CHANNELS_LAST = False
# Compile the network with torch.compile.
_C.TRAIN.COMPILE = False
# Activation checkpointing in training: the networks recompute the activations of their
# stages and heads in the backward pass instead of keeping them (``set_grad_checkpointing``);
# the W48 networks at 512x1024 keep 0.24-0.29 of the activations, at a longer step.
# Evaluation, tools/test.py, the Predictor and export are not affected.
_C.TRAIN.GRAD_CHECKPOINTING = False
# Validate every EVAL_INTERVAL epochs (and after the last one); 0 = only after the last one.
_C.TRAIN.EVAL_INTERVAL = 1
# Also write checkpoint.pth.tar every CHECKPOINT_INTERVAL iterations (0 = only at epoch ends).
_C.TRAIN.CHECKPOINT_INTERVAL = 0
# Seed of python, numpy and torch random generators and of the training transform (the draws for
# item (index, epoch) are a function of (SEED, epoch, index)); -1 = not seeded.
_C.TRAIN.SEED = 304
# Stop with an error after this many consecutive non-finite losses (each one skips its step).
_C.TRAIN.MAX_NONFINITE = 5

# Evaluation: validation, tools/test.py and tools/infer.py.
_C.TEST = CN()
# Sliding-window size [width, height] for scales above 1.
_C.TEST.IMAGE_SIZE = [2048, 1024]
# Long side of an image at scale 1.
_C.TEST.BASE_SIZE = 2048
# Images per process per evaluation step (validation during training).
_C.TEST.BATCH_SIZE_PER_GPU = 32
# Use only the first NUM_SAMPLES evaluation images (0 = all).
_C.TEST.NUM_SAMPLES = 0
# Weights evaluated by tools/test.py (and used by tools/infer.py and tools/export.py); "" =
# final_state.pth of RUN_DIR, else of the config's ``latest`` run.
_C.TEST.MODEL_FILE = ""
# Average the prediction of the mirrored image.
_C.TEST.FLIP_TEST = False
# Scales of multi-scale testing ([1.0] = single scale); on the command line "0.5,0.75,1.0".  Each
# must give a long side int(TEST.BASE_SIZE * scale + 0.5) of at least 8 pixels.
_C.TEST.SCALE_LIST = [1.0]
# Write S_i, S_s, S_f, confidence and offset images of every evaluated image.
_C.TEST.VISUALIZATION = False
# Sliding windows per network forward (twice as many images with flipping); raise it for speed
# when the GPU memory allows (the reference runs one window at a time).
_C.TEST.WINDOW_BATCH = 1
# Sliding-window stride as a fraction of the window (1.0 = the reference, no overlap).
_C.TEST.STRIDE_RATIO = 1.0
# How windows and scales are added: "exp_logits" (the reference) or "softmax".
_C.TEST.ACCUMULATE = "exp_logits"
# Evaluation protocol of tools/test.py: "cityscapes" (long side to BASE_SIZE * scale, windows
# moved inside, STRIDE_RATIO), "ade20k" (HRNet-OCR testval of ADE20K, PASCAL-Context and
# COCO-Stuff, also used for PASCAL VOC: short side to BASE_SIZE first, windows at 2/3 stride
# padded with black), "lip" (image resized to IMAGE_SIZE, then as "ade20k"), or "" = the
# protocol of DATASET.DATASET.  Flip testing swaps the left/right classes of a dataset that has
# them (LIP), under any protocol.
_C.TEST.PROTOCOL = ""
# ade20k protocol only: cut the multiple-of-8 padding off the summed scores before the resize to
# the label size.  Empty (null in YAML, the default), "" or "auto" = the dataset's own, as in the
# reference: on for PASCAL-Context and COCO-Stuff (HRNet-OCR's testval items carry their
# border_padding) and PASCAL VOC, off for ADE20K (whose items carry none, so the padded map is
# resized padding included); True / False set it for any dataset.
_C.TEST.CROP_PADDING = None
# How the ade20k and lip protocols resize the image first (short side to BASE_SIZE, or to
# IMAGE_SIZE): "opencv" = the references' testval (cv2.resize INTER_LINEAR on the 8-bit image
# and, for ade20k, padding with the mean rounded to whole grey levels; on the CPU); "device" =
# bilinear on the normalised float image on the evaluation device, exact mean padding (up to
# about one grey level away from the reference).
_C.TEST.FIRST_RESIZE = "opencv"
# Write label-id and colour predictions under <evaluation folder>/predictions (also --save-pred).
_C.TEST.SAVE_PRED = False
# The exact folder of tools/test.py's results.json, figures, log and predictions ("" =
# ``<run>/eval/<weights>_<test list>_<protocol>_s<scales>_<flip|noflip>/``).
_C.TEST.EVAL_DIR = ""
# Also write every prediction of the network, for a study of where they differ: the dataset label
# ids of each as <output folder>/predictions/<field>/<image>.png, <field> the output field
# (logits = S_i, seed_logits = S_s, fused_logits = S_f, region_logits, region_seed_logits,
# region_fused_logits for the OCR networks), each by the whole TEST procedure (scales, flip).
# Called TEST.SAVE_HEADS in earlier releases (still read, with a warning).
_C.TEST.SAVE_EVERY_PREDICTION = False
# Trimap band widths in pixels of the label map: the mIoU of the labelled pixels within each
# Chebyshev distance of a ground-truth boundary pixel (lib.evaluation.boundary); increasing.
_C.TEST.TRIMAP_BANDS = [1, 2, 4, 8, 16, 32]
# Boundary IoU band width as a fraction of the image diagonal (Cheng et al.: 0.02), rounded to
# whole pixels, at least 1.
_C.TEST.BOUNDARY_IOU_RATIO = 0.02


# -------------------------------------------------------------------------------------------------
# Keys that nothing reads.  They are accepted so that experiment files written for the original
# HRNet, HRNet-OCR, thesis and OVeNet codes load unchanged:
# - GPUS, RANK: the processes and their ranks come from the launcher (torchrun,
#   torch.distributed.launch, srun);
# - MODEL.NUM_OUTPUTS, TEST.OUTPUT_INDEX: the networks return named fields (SegOutput, OCROutput)
#   and evaluation takes their ``final`` (S_f of the OCR head for OVeNet-OCR), not a list item;
# - MODEL.EXTRA.FINAL_CONV_SEED: the seed prediction has no convolution of its own;
# - MODEL.EXTRA.CONFIDENCE: both of the thesis' values, 0 and 1, fuse with the learned
#   confidence map F, as the thesis code did; any other value is an error;
# - TRAIN.FREEZE_LAYERS, FREEZE_EPOCHS: the original's layer freezing (MODEL.FREEZED_PAR
#   freezes here);
# - TRAIN.RANDOM_BRIGHTNESS, RANDOM_BRIGHTNESS_SHIFT_VALUE: the original's brightness
#   augmentation, off in every published file;
# - TRAIN.LR_FACTOR, LR_STEP: the original's step schedule (the schedule is poly, TRAIN.LR);
# - TRAIN.OFFSET_DIR: a folder of the thesis code that nothing read;
# - TEST.MULTI_SCALE: as in the reference, TEST.SCALE_LIST alone sets the evaluation scales;
# - TEST.CENTER_CROP_TEST: off in every published file;
# - DEBUG.DEBUG, SAVE_BATCH_IMAGES_GT, SAVE_BATCH_IMAGES_PRED, SAVE_HEATMAPS_GT,
#   SAVE_HEATMAPS_PRED: the original's debug dumps.
_C.GPUS = (0,)
_C.RANK = 0
_C.MODEL.NUM_OUTPUTS = 1
_C.MODEL.EXTRA.FINAL_CONV_SEED = 1
_C.MODEL.EXTRA.CONFIDENCE = 1
_C.TRAIN.FREEZE_LAYERS = ""
_C.TRAIN.FREEZE_EPOCHS = -1
_C.TRAIN.RANDOM_BRIGHTNESS = False
_C.TRAIN.RANDOM_BRIGHTNESS_SHIFT_VALUE = 10
_C.TRAIN.LR_FACTOR = 0.1
_C.TRAIN.LR_STEP = [90, 110]
_C.TRAIN.OFFSET_DIR = ""
_C.TEST.MULTI_SCALE = False
_C.TEST.OUTPUT_INDEX = -1
_C.TEST.CENTER_CROP_TEST = False
_C.DEBUG = CN()
_C.DEBUG.DEBUG = False
_C.DEBUG.SAVE_BATCH_IMAGES_GT = False
_C.DEBUG.SAVE_BATCH_IMAGES_PRED = False
_C.DEBUG.SAVE_HEATMAPS_GT = False
_C.DEBUG.SAVE_HEATMAPS_PRED = False
