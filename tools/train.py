"""Train a segmentation network.

    python tools/train.py --cfg experiments/cityscapes/<name>.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=4 tools/train.py --cfg ...
    torchrun --nproc_per_node=4 tools/train.py --cfg ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging
import random
import signal

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Subset
from tqdm import tqdm

from lib.core.criterion import build_criterion
from lib.core.function import (
    Phase,
    PolySchedule,
    StepSettings,
    TrainState,
    build_optimizer,
    nonfinite_tensors,
    train_one_epoch,
    validate,
)
from lib.core.metrics import format_table
from lib.datasets import build_dataset, seed_worker
from lib.datasets.sampler import TrainSampler
from lib.datasets.transforms import MEAN, STD
from lib.models import build_model
from lib.utils import distributed as dist
from lib.utils.benchmark import count_flops
from lib.utils.checkpoint import atomic_save, model_state, unwrap_model
from lib.utils.logger import create_writer, setup_logging
from lib.utils.run import (
    RunError,
    amp_dtype,
    configure_cudnn,
    init_process,
    make_writable_dir,
    run_dirs,
    seed_everything,
)
from lib.utils.visualize import denormalize, prediction_panels

logger = logging.getLogger("train")

CHECKPOINT = "checkpoint.pth.tar"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a segmentation network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    # torch.distributed.launch passes --local-rank (newer) or --local_rank (older); torchrun
    # sets LOCAL_RANK, which is what is used.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def forward_flops(model, crop_hw, device):
    """Forward FLOPs of one image at the training crop, counted in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        flops = count_flops(lambda: model(torch.zeros(1, 3, *crop_hw, device=device)))
    model.train(was_training)
    return flops


def rng_states():
    np_state = np.random.get_state()
    return {"python": random.getstate(), "numpy": (np_state[0], torch.from_numpy(np_state[1]),
                                                   *np_state[2:]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def restore_rng_states(states):
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])  # the current device only


def train_loader(dataset, cfg, rank, world_size, device):
    batch = cfg.TRAIN.BATCH_SIZE_PER_GPU
    sampler = TrainSampler(len(dataset), batch, rank, world_size, seed=max(cfg.TRAIN.SEED, 0),
                           shuffle=cfg.TRAIN.SHUFFLE)
    if sampler.batches_per_epoch == 0:
        raise RunError(f"TRAIN.BATCH_SIZE_PER_GPU = {batch} x {world_size} processes is more than "
                       f"the {len(dataset)} training samples of {dataset.list_file}")
    loader = DataLoader(dataset, batch_sampler=BatchSampler(sampler, batch, drop_last=True),
                        num_workers=cfg.WORKERS, pin_memory=cfg.PIN_MEMORY and device.type == "cuda",
                        persistent_workers=cfg.WORKERS > 0, worker_init_fn=seed_worker)
    return loader, sampler


def val_loader(dataset, cfg, device):
    shard = Subset(dataset, dist.shard_indices(len(dataset)))
    return DataLoader(shard, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU, shuffle=False,
                      num_workers=cfg.WORKERS, pin_memory=cfg.PIN_MEMORY and device.type == "cuda",
                      worker_init_fn=seed_worker)


class Trainer:
    """Holds what the epoch loop, the checkpoints and validation share."""

    def __init__(self, cfg, cfg_path, device, rank, world_size):
        self.cfg, self.device, self.rank, self.world_size = cfg, device, rank, world_size
        self.output_dir, log_dir = run_dirs(cfg, cfg_path)
        if rank == 0:
            make_writable_dir(self.output_dir, "OUTPUT_DIR")
            make_writable_dir(log_dir, "LOG_DIR")
        dist.barrier()
        setup_logging(self.output_dir, rank, "train")
        if rank == 0:
            with open(os.path.join(self.output_dir, "config.yaml"), "w") as f:
                f.write(cfg.dump())
            logger.info("config (also in %s):\n%s", os.path.join(self.output_dir, "config.yaml"),
                        cfg.dump())
        self.writer = create_writer(log_dir, rank)
        seed_everything(cfg.TRAIN.SEED)
        configure_cudnn(cfg.CUDNN)

        self.train_set = build_dataset(cfg, "train")
        self.val_set = build_dataset(cfg, "val")
        self.val_loader = val_loader(self.val_set, cfg, device)
        self.phase_loaders = [train_loader(self.train_set, cfg, rank, world_size, device)]
        phases = [Phase("main", cfg.TRAIN.LR, cfg.TRAIN.END_EPOCH, len(self.loader))]
        if cfg.TRAIN.EXTRA_EPOCH > 0:
            if not cfg.DATASET.EXTRA_TRAIN_SET:
                raise RunError("TRAIN.EXTRA_EPOCH > 0 needs DATASET.EXTRA_TRAIN_SET")
            extra = build_dataset(cfg, "train", list_path=cfg.DATASET.EXTRA_TRAIN_SET)
            self.phase_loaders.append(train_loader(extra, cfg, rank, world_size, device))
            phases.append(Phase("extra", cfg.TRAIN.EXTRA_LR, cfg.TRAIN.EXTRA_EPOCH,
                                len(self.phase_loaders[-1][0])))
        self.schedule = PolySchedule(phases)

        model = build_model(cfg).to(device)
        crop_hw = (cfg.TRAIN.IMAGE_SIZE[1], cfg.TRAIN.IMAGE_SIZE[0])
        logger.info("%s: %.2fM parameters, %.1f GFLOPs per %dx%d image (forward)", cfg.MODEL.NAME,
                    sum(p.numel() for p in model.parameters()) / 1e6,
                    forward_flops(model, crop_hw, device) / 1e9, *crop_hw)
        if world_size > 1 and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if cfg.TRAIN.CHANNELS_LAST:
            model = model.to(memory_format=torch.channels_last)
        if world_size > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.model = torch.compile(model) if cfg.TRAIN.COMPILE else model
        self.criterion = build_criterion(cfg, self.train_set.class_weights).to(device)
        self.optimizer = build_optimizer(unwrap_model(self.model), cfg.TRAIN.OPTIMIZER,
                                         cfg.TRAIN.LR, cfg.TRAIN.MOMENTUM, cfg.TRAIN.WD,
                                         cfg.TRAIN.NESTEROV)
        self.state = TrainState(iteration=cfg.TRAIN.BEGIN_EPOCH * len(self.loader))
        self.settings = StepSettings(amp_dtype(cfg.TRAIN.AMP), cfg.TRAIN.CHANNELS_LAST,
                                     cfg.PRINT_FREQ, cfg.TRAIN.MAX_NONFINITE,
                                     cfg.TRAIN.CHECKPOINT_INTERVAL)

    @property
    def loader(self):
        """The training loader of the main phase."""
        return self.phase_loaders[0][0]

    # -- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self):
        """Collective (the finiteness check): every rank calls it, rank 0 writes."""
        model = unwrap_model(self.model)
        bad = nonfinite_tensors([*model.named_parameters(), *model.named_buffers()])
        if dist.any_rank(bool(bad), self.device):
            raise RuntimeError(f"the model holds non-finite values (on this rank: {bad[:3]}); "
                               f"no checkpoint written")
        if self.rank != 0:
            return
        atomic_save({
            "model": model_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "iteration": self.state.iteration,
            "iters_per_epoch": [p.iters_per_epoch for p in self.schedule.phases],
            "best_mIoU": self.state.best_miou,
            "rng": rng_states(),
            "config": self.cfg.dump(),
        }, os.path.join(self.output_dir, CHECKPOINT))
        logger.info("saved %s at iteration %d", CHECKPOINT, self.state.iteration)

    def resume(self):
        path = os.path.join(self.output_dir, CHECKPOINT)
        if not (self.cfg.TRAIN.RESUME or self.cfg.AUTO_RESUME) or not os.path.isfile(path):
            return
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        expected = [p.iters_per_epoch for p in self.schedule.phases]
        if ckpt["iters_per_epoch"] != expected:
            raise RunError(f"{path} was written with {ckpt['iters_per_epoch']} iterations per "
                           f"epoch, this run has {expected}: batch size, world size or data "
                           f"changed; use another OUTPUT_DIR or TRAIN.RESUME False")
        unwrap_model(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state.iteration, self.state.best_miou = ckpt["iteration"], ckpt["best_mIoU"]
        restore_rng_states(ckpt["rng"])
        logger.info("resumed from %s at iteration %d", path, self.state.iteration)

    # -- validation ------------------------------------------------------------------------
    def validate(self):
        cfg = self.cfg
        # The bare network: evaluation needs no gradient synchronisation, and a rank with an
        # empty shard must not be left out of a collective inside the DDP wrapper.
        ev = validate(unwrap_model(self.model), self.val_loader, self.device, cfg.DATASET.NUM_CLASSES,
                      cfg.TRAIN.IGNORE_LABEL, cfg.MODEL.ALIGN_CORNERS, self.settings.amp_dtype,
                      condition_of=self.val_set.condition if self.val_set.conditions else None,
                      on_first_batch=self.image_summary)
        results = ev.results(self.val_set.class_names)
        logger.info("validation at iteration %d:\n%s", self.state.iteration,
                    format_table(results, self.val_set.class_names))
        if self.writer is not None:
            self.writer.add_scalar("val/mIoU", results["mIoU"], self.state.iteration)
            for name, iou in results["IoU"].items():
                self.writer.add_scalar(f"val_IoU/{name.replace(' ', '_')}", iou,
                                       self.state.iteration)
        return results["mIoU"]

    def image_summary(self, images):
        if self.writer is None:
            return
        output = unwrap_model(self.model)(images[:1])  # called inside validate(): no gradients
        panels = prediction_panels(denormalize(images[0].cpu(), MEAN, STD), output,
                                   self.val_set.palette,
                                   align_corners=self.cfg.MODEL.ALIGN_CORNERS)
        for name, rgb in panels.items():
            self.writer.add_image(f"val/{name}", rgb, self.state.iteration, dataformats="HWC")

    def end_epoch(self, epoch, last):
        """Validation when it is due (best.pth when it improves), then the checkpoint."""
        interval = self.cfg.TRAIN.EVAL_INTERVAL
        if last or (interval > 0 and (epoch + 1) % interval == 0):
            miou = self.validate()
            if miou > self.state.best_miou:
                self.state.best_miou = miou
                if self.rank == 0:
                    atomic_save(model_state(self.model), os.path.join(self.output_dir, "best.pth"))
        self.save_checkpoint()

    def check_replicas(self):
        """Collective: fail loudly if the ranks' weights have drifted apart."""
        if self.world_size == 1:
            return
        params = unwrap_model(self.model).parameters()
        checksum = torch.stack([p.detach().double().sum() for p in params])
        if not dist.all_equal(checksum):
            raise RuntimeError("the final weights differ between ranks")
        logger.info("final weights identical on all %d ranks", self.world_size)

    # -- the run ---------------------------------------------------------------------------
    def fit(self):
        self.resume()
        epochs_before = 0
        for index, (phase, (loader, sampler)) in enumerate(zip(self.schedule.phases,
                                                               self.phase_loaders)):
            while True:
                at, epoch, batch = self.schedule.locate(self.state.iteration)
                if at != index:
                    break
                sampler.set_epoch(epochs_before + epoch, start_batch=batch)
                label = f"{phase.name} epoch {epoch + 1}/{phase.epochs}"
                # A progress bar only where a person watches: rank 0 on a terminal.
                batches = tqdm(loader, desc=label, leave=False,
                               disable=self.rank != 0 or not sys.stderr.isatty())
                finished = train_one_epoch(self.model, self.criterion, self.optimizer, batches,
                                           self.device, self.schedule, self.state, self.settings,
                                           self.writer, self.save_checkpoint, label)
                if finished:
                    last = epoch + 1 == phase.epochs and index + 1 == len(self.schedule.phases)
                    self.end_epoch(epoch, last)
                if self.state.stop_agreed:
                    logger.info("stop requested: checkpoint saved at iteration %d, exiting",
                                self.state.iteration)
                    return False
            epochs_before += phase.epochs
        self.check_replicas()
        if self.rank == 0:
            atomic_save(model_state(self.model), os.path.join(self.output_dir, "final_state.pth"))
            logger.info("done: best mIoU %.4f; weights in %s", self.state.best_miou,
                        self.output_dir)
        return True


def main(argv=None):
    args = parse_args(argv)
    cfg, device, rank, world_size = init_process(args.cfg, args.opts, args.local_rank)
    try:
        trainer = Trainer(cfg, args.cfg, device, rank, world_size)
        signal.signal(signal.SIGTERM, lambda *_: setattr(trainer.state, "stop_requested", True))
        trainer.fit()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
