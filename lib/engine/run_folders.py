"""Where runs and evaluations write: every training run its own folder, every evaluation its own
subfolder, so that no run or evaluation replaces another's files.

Layout (``OUTPUT_DIR`` is the root of all runs, as in the original experiment files)::

    OUTPUT_DIR/<dataset>/<config name>/              the experiment folder
        20261207-224501/                             a run (``new_run_name``)
        20261207-231207_END_EPOCH-2_LR-0.01/         a run with command-line overrides
        latest -> 20261207-231207_END_EPOCH-2_LR-0.01
        20261207-231207_.../eval/final_state_val_cityscapes_s0.5-1.0_flip/   an evaluation

``RUN_DIR`` names a run's folder exactly (scripts) and ``TEST.EVAL_DIR`` an evaluation's.
Resuming (TRAIN.RESUME / AUTO_RESUME) continues RUN_DIR, else the SLURM job's own run (a
requeued job finds it), else the newest run of the experiment trained with the same settings.
``tools/test.py`` evaluates RUN_DIR, else the job's own run, else the ``latest`` one, when
TEST.MODEL_FILE is not set (``run_to_evaluate``).
"""
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass

import yaml

from ..config import load_cfg
from ..utils.errors import RunError

__all__ = ["TrainingRun", "training_run", "run_to_evaluate", "experiment_dir", "overrides_name",
           "new_run_name", "slurm_job_tag", "run_to_resume", "find_run", "create_run_dir", "mark_latest",
           "tensorboard_dir", "is_run_dir", "evaluation_name", "evaluation_dir", "LATEST"]

LATEST = "latest"
RUN_CONFIG = "config.yaml"  # written when a run has started: what makes a folder a run
# Keys left out of a run's name: where it reads and writes and how it is launched, not what it
# trains.
_UNNAMED_KEYS = {"OUTPUT_DIR", "LOG_DIR", "RUN_DIR", "DATASET.ROOT", "AUTO_RESUME", "TRAIN.RESUME",
                 "WORKERS", "PRINT_FREQ", "PIN_MEMORY", "GPUS"}
_NAME_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def experiment_dir(cfg, cfg_path):
    """``OUTPUT_DIR/<dataset>/<config file name without .yaml>`` ("default" without a file)."""
    name = os.path.splitext(os.path.basename(cfg_path))[0] if cfg_path else "default"
    return os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.DATASET, name)


def _leaves(node, prefix=""):
    for key, value in node.items():
        if hasattr(value, "items"):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _value_text(value):
    if isinstance(value, (list, tuple)):
        return "-".join(_value_text(v) for v in value)
    return str(value)


def overrides_name(cfg, cfg_path):
    """A short file-name-safe name of what ``cfg`` changes in its experiment file: the keys'
    last parts and values, sorted by key, e.g. ``END_EPOCH-2_LR-0.01`` for
    ``TRAIN.END_EPOCH 2 TRAIN.LR 0.01`` ("" when nothing changes).  Folder and launch keys
    (OUTPUT_DIR, RUN_DIR, WORKERS, ...) and the evaluation's (TEST.*) are left out.  Longer
    than 64 characters, it is cut and ends with a hash of the whole."""
    base = _settings(load_cfg(cfg_path, []).dump())
    parts = [f"{key.rsplit('.', 1)[-1]}-{_value_text(value)}"
             for key, value in _settings(cfg.dump()).items() if base.get(key) != value]
    name = _UNSAFE.sub("", "_".join(parts))
    if len(name) > _NAME_LIMIT:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:_NAME_LIMIT - 9]}.{digest}"
    return name


def slurm_job_tag(environ=None):
    """``job<id>`` (``job<id>_<array task>`` in an array) under SLURM, else ""."""
    environ = os.environ if environ is None else environ
    job = environ.get("SLURM_ARRAY_JOB_ID") or environ.get("SLURM_JOB_ID")
    if not job:
        return ""
    task = environ.get("SLURM_ARRAY_TASK_ID")
    return f"job{job}_{task}" if environ.get("SLURM_ARRAY_JOB_ID") and task else f"job{job}"


def new_run_name(cfg, cfg_path, environ=None, now=None):
    """``<YYYYmmdd-HHMMSS>[_job<id>][_<overrides>]``: the start time, the SLURM job (which a
    requeued job looks for) and the overrides' short name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return "_".join(p for p in (stamp, slurm_job_tag(environ), overrides_name(cfg, cfg_path)) if p)


def is_run_dir(path):
    """True when ``path`` holds a run that has started (its ``config.yaml``)."""
    return os.path.isfile(os.path.join(path, RUN_CONFIG))


def _started_runs(experiment):
    """The runs of ``experiment`` that have started, oldest first (the names begin with the
    start time)."""
    if not os.path.isdir(experiment):
        return []
    return [os.path.join(experiment, name) for name in sorted(os.listdir(experiment))
            if name != LATEST and is_run_dir(os.path.join(experiment, name))]


def _own_runs(experiment, environ):
    tag = slurm_job_tag(environ)
    return [run for run in _started_runs(experiment) if tag and f"_{tag}" in os.path.basename(run)]


def _settings(config_text):
    """What a run trains, from its config's YAML: every key but the unnamed ones and TEST.*."""
    return {key: value for key, value in _leaves(yaml.safe_load(config_text) or {})
            if key not in _UNNAMED_KEYS and not key.startswith("TEST.")}


def run_to_resume(experiment, cfg, environ=None):
    """The run of ``experiment`` that a resuming ``cfg`` continues: the newest run of this
    SLURM job (a requeued job), else the newest run trained with the same settings (every key
    but the folder, launch and TEST.* keys, read from its config.yaml); None when there is
    none."""
    own = _own_runs(experiment, environ)
    if own:
        return own[-1]
    wanted = _settings(cfg.dump())
    for run in reversed(_started_runs(experiment)):
        with open(os.path.join(run, RUN_CONFIG)) as f:
            if _settings(f.read()) == wanted:
                return run
    return None


def find_run(experiment, environ=None):
    """The run of ``experiment`` to evaluate: the newest run of this SLURM job, else the
    ``latest`` run; None when there is none."""
    own = _own_runs(experiment, environ)
    if own:
        return own[-1]
    latest = os.path.join(experiment, LATEST)
    if os.path.isdir(latest):
        return os.path.join(experiment, os.readlink(latest)) if os.path.islink(latest) else latest
    return None


def create_run_dir(experiment, name):
    """Create ``experiment/name`` (``name-2``, ``name-3``, ... when it exists: two runs started
    in the same second) and return it; the folder is new, so no other run is in it."""
    for k in range(1, 1000):
        path = os.path.join(experiment, name if k == 1 else f"{name}-{k}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise RunError(f"OUTPUT_DIR: cannot create the run folder {path}: "
                           f"{e.strerror or e}") from None
    raise RunError(f"OUTPUT_DIR: could not create a new run folder {name} in {experiment}")


def mark_latest(run_dir):
    """Point ``<experiment>/latest`` at ``run_dir`` (a relative link, replaced atomically);
    returns False when the file system has no symbolic links."""
    experiment, name = os.path.split(os.path.abspath(run_dir))
    link = os.path.join(experiment, LATEST)
    temporary = f"{link}.{os.getpid()}.tmp"
    try:
        if os.path.lexists(temporary):
            os.remove(temporary)
        os.symlink(name, temporary)
        os.replace(temporary, link)
    except OSError:
        return False
    return True


def tensorboard_dir(cfg, cfg_path, run_dir):
    """``LOG_DIR/<dataset>/<config name>/<run name>`` for a run in its experiment folder,
    ``<run>/tensorboard`` for a run elsewhere (RUN_DIR)."""
    experiment = experiment_dir(cfg, cfg_path)
    parent, name = os.path.split(os.path.abspath(run_dir))
    if parent == os.path.abspath(experiment):
        return os.path.join(cfg.LOG_DIR, cfg.DATASET.DATASET, os.path.basename(experiment), name)
    return os.path.join(run_dir, "tensorboard")


def evaluation_name(model_file, test_set, protocol, scales, flip):
    """``<weights>_<test list>_<protocol>_s<scales>_<flip|noflip>``, e.g.
    ``final_state_val_cityscapes_s0.5-1.0_flip``."""
    weights = os.path.basename(model_file).split(".")[0]
    split = os.path.splitext(os.path.basename(test_set))[0]
    scale_text = "-".join(f"{s:g}" if s != int(s) else f"{s:.1f}" for s in scales)
    name = f"{weights}_{split}_{protocol}_s{scale_text}_{'flip' if flip else 'noflip'}"
    return _UNSAFE.sub("", name)


def evaluation_dir(run_dir, name, model_file):
    """``<run_dir>/eval/<name>``, or ``<name>-2``, ... when that folder holds the results of
    another weight file (a file of the same name elsewhere): an evaluation repeated on the
    same weights writes its own folder again, another never replaces it."""
    for k in range(1, 1000):
        path = os.path.join(run_dir, "eval", name if k == 1 else f"{name}-{k}")
        try:
            with open(os.path.join(path, "results.json")) as f:
                evaluated = json.load(f).get("model_file", "")
        except (OSError, ValueError):
            return path
        if os.path.abspath(evaluated) == os.path.abspath(model_file):
            return path
    raise RunError(f"TEST.EVAL_DIR: no free evaluation folder for {name} in {run_dir}/eval")


@dataclass(frozen=True)
class TrainingRun:
    """Where a training run writes: ``folder`` (checkpoints, weights, config, log, validation
    records), ``tensorboard`` (its events) and how it was chosen: "new", "given" (RUN_DIR),
    "resumed" (the run it continues) or "new_nothing_to_resume"."""

    folder: str
    tensorboard: str
    how: str

    def describe(self):
        what = {"new": "a new run", "given": "the run of RUN_DIR",
                "resumed": "continuing the run",
                "new_nothing_to_resume": "nothing to resume (no run of this config and these "
                                         "settings, see AUTO_RESUME), so a new run"}[self.how]
        return f"{what} in {os.path.abspath(self.folder)} (TensorBoard: " \
               f"{os.path.abspath(self.tensorboard)})"


def training_run(cfg, cfg_path, environ=None, now=None):
    """The ``TrainingRun`` of ``cfg``, its folder created (call on one process: rank 0).

    - RUN_DIR set: that folder; it may not hold a run that has started unless the run resumes
      (TRAIN.RESUME or AUTO_RESUME), so that a script never starts over an earlier run.
    - resuming: the run ``run_to_resume`` gives (the SLURM job's own, else the newest with the
      same settings), else a new one.
    - otherwise a new folder named by ``new_run_name``.
    """
    resume = bool(cfg.TRAIN.RESUME or cfg.AUTO_RESUME)
    if cfg.RUN_DIR:
        if is_run_dir(cfg.RUN_DIR) and not resume:
            raise RunError(f"RUN_DIR {cfg.RUN_DIR} holds a run already ({RUN_CONFIG}): continue "
                           f"it with AUTO_RESUME True, or give another RUN_DIR")
        os.makedirs(cfg.RUN_DIR, exist_ok=True)
        folder, how = cfg.RUN_DIR, "given"
    else:
        experiment = experiment_dir(cfg, cfg_path)
        found = run_to_resume(experiment, cfg, environ) if resume else None
        folder, how = (found, "resumed") if found else \
            (create_run_dir(experiment, new_run_name(cfg, cfg_path, environ, now)),
             "new_nothing_to_resume" if resume else "new")
    return TrainingRun(folder, tensorboard_dir(cfg, cfg_path, folder), how)


def run_to_evaluate(cfg, cfg_path, environ=None):
    """``(weights, run folder)`` of an evaluation: TEST.MODEL_FILE in the folder that holds
    it when that is a run (else RUN_DIR, else the experiment folder), or else ``final_state.pth``
    of RUN_DIR, or of the run ``find_run`` gives.  Raises ``RunError`` naming what is missing."""
    experiment = experiment_dir(cfg, cfg_path)
    if cfg.TEST.MODEL_FILE:
        holder = os.path.dirname(os.path.abspath(cfg.TEST.MODEL_FILE))
        return cfg.TEST.MODEL_FILE, holder if is_run_dir(holder) else cfg.RUN_DIR or experiment
    run = cfg.RUN_DIR or find_run(experiment, environ)
    if run is None:
        raise RunError(f"TEST.MODEL_FILE is not set and {experiment} has no run to evaluate "
                       f"(no '{LATEST}' link): train first, or give TEST.MODEL_FILE or RUN_DIR")
    weights = os.path.join(run, "final_state.pth")
    if not os.path.isfile(weights):
        raise RunError(f"TEST.MODEL_FILE is not set and the run {run} has no final_state.pth "
                       f"(it has not finished): give TEST.MODEL_FILE (e.g. its best.pth) or "
                       f"another RUN_DIR")
    return weights, run
