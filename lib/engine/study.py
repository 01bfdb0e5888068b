"""A study: experiment files x variants x seeds, each run trained and evaluated in its own folder
by the two tools, then summarised (``tools/study.py``).

Every run is ``OUT/runs/<variant>/seed<k>`` (its RUN_DIR; TensorBoard in ``tensorboard/``), trained
with ``TRAIN.SEED k`` and ``AUTO_RESUME True``, then evaluated with the study's test overrides
into ``evaluation/`` (its TEST.EVAL_DIR).  What is
on disk says where a run is, so a study started again (or after a scheduler ran the commands of
``--print-commands``) skips what finished, evaluates what was trained and resumes the rest:

- done: ``evaluation/results.json`` evaluated the run's final_state.pth with the study's scales
  and flip;
- trained: final_state.pth exists;
- otherwise it is trained (from its last checkpoint, if it has one).

The commands are the tools' own (``python tools/train.py --cfg ... KEY VALUE ...``), so a run of a
study is a run like any other; the tool passes the scripts' paths in.
"""
import json
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..config import ConfigError, load_cfg
from ..evaluation.comparison import comparison_figures
from ..evaluation.figures import save_figure
from ..evaluation.protocols import InferenceSettings
from ..evaluation.results import upgrade
from ..evaluation.study import (
    class_differences,
    mean_results,
    study_differences,
    study_markdown,
    variant_summary,
)
from ..utils.atomic import write_json, write_text

__all__ = ["Variant", "StudyRun", "plan_study", "run_status", "StudyScripts", "run_study",
           "compact_results", "summarise_study"]

logger = logging.getLogger(__name__)

RUNS_FOLDER = "runs"
RUN_RECORD = "study_run.json"  # wall time of the run's last train + evaluation by the study


@dataclass(frozen=True)
class Variant:
    """One row of a study: an experiment file and the overrides that make the variant."""

    name: str
    cfg: str
    opts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyRun:
    """One seed of one variant.  ``opts``: the study's common overrides, then the variant's (so
    a variant's value wins); ``run_opts`` adds the seed and the run's folder."""

    name: str
    cfg: str
    opts: tuple[str, ...]
    seed: int
    folder: str  # RUN_DIR of the run
    scales: tuple[float, ...] = field(default=(), compare=False)  # of the study's evaluation
    flip: bool = field(default=False, compare=False)

    @property
    def run_opts(self) -> tuple[str, ...]:
        return (*self.opts, "TRAIN.SEED", str(self.seed), "RUN_DIR", self.folder)

    @property
    def final_weights(self) -> str:
        return os.path.join(self.folder, "final_state.pth")

    @property
    def evaluation_dir(self) -> str:
        return os.path.join(self.folder, "evaluation")

    @property
    def results_path(self) -> str:
        return os.path.join(self.evaluation_dir, "results.json")


def plan_study(variants: Sequence[Variant], seeds: Sequence[int], out: str,
               common_opts: Sequence[str] = (), test_opts: Sequence[str] = ()) -> list[StudyRun]:
    """Every (variant, seed) run, variant-major.  Each run's config is loaded here, with its
    overrides and the test overrides, so that a mistyped key or value stops the study before
    anything trains (a ``ConfigError`` naming the variant)."""
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"study variants need distinct names; repeated: {duplicates}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"study seeds must be distinct and at least one, got {list(seeds)}")
    runs = []
    for variant in variants:
        for seed in seeds:
            run = StudyRun(variant.name, variant.cfg, (*common_opts, *variant.opts), int(seed),
                           os.path.join(out, RUNS_FOLDER, variant.name, f"seed{seed}"))
            try:
                cfg = load_cfg(run.cfg, (*run.run_opts, *test_opts))
            except ConfigError as e:
                raise ConfigError(f"study variant {variant.name!r}: {e}") from None
            settings = InferenceSettings.from_config(cfg)
            runs.append(StudyRun(run.name, run.cfg, run.opts, run.seed, run.folder,
                                 scales=tuple(settings.scales), flip=settings.flip))
    return runs


def run_status(run: StudyRun) -> str:
    """"done", "trained" or "new" (see the module's docstring)."""
    try:
        with open(run.results_path) as f:
            results = json.load(f)
        if os.path.abspath(results.get("model_file", "")) == os.path.abspath(run.final_weights) \
                and tuple(results.get("scales", ())) == run.scales \
                and bool(results.get("flip")) == run.flip:
            return "done"
    except (OSError, ValueError):
        pass
    return "trained" if os.path.isfile(run.final_weights) else "new"


@dataclass(frozen=True)
class StudyScripts:
    """How to call the tools: the interpreter and the paths of tools/train.py and tools/test.py."""

    python: str
    train: str
    test: str

    def train_command(self, run: StudyRun) -> list[str]:
        return [self.python, self.train, "--cfg", run.cfg, *run.run_opts, "AUTO_RESUME", "True"]

    def test_command(self, run: StudyRun, test_opts: Sequence[str]) -> list[str]:
        return [self.python, self.test, "--cfg", run.cfg, *run.run_opts, *test_opts,
                "TEST.MODEL_FILE", run.final_weights, "TEST.EVAL_DIR", run.evaluation_dir]

    def shell_line(self, run: StudyRun, test_opts: Sequence[str]) -> str:
        """One line for a scheduler: train (resuming), then evaluate."""
        return f"{shlex.join(self.train_command(run))} && " \
               f"{shlex.join(self.test_command(run, test_opts))}"


def _run_one(run: StudyRun, scripts: StudyScripts, test_opts: Sequence[str]) -> dict:
    """Train (unless trained) and evaluate one run, each tool's output into a file of the run's
    folder.  Returns {"name", "seed", "status", "seconds", "error"}."""
    os.makedirs(run.folder, exist_ok=True)
    started = time.perf_counter()
    steps = [("test", scripts.test_command(run, test_opts))]
    if run_status(run) == "new":
        steps.insert(0, ("train", scripts.train_command(run)))
    for step, command in steps:
        log_path = os.path.join(run.folder, f"{step}.out")
        with open(log_path, "w") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        if code != 0:
            return {"name": run.name, "seed": run.seed, "status": "failed",
                    "seconds": time.perf_counter() - started,
                    "error": f"{step} exited with {code}: {_last_line(log_path)} "
                             f"(whole output: {log_path})"}
    seconds = time.perf_counter() - started
    write_json(os.path.join(run.folder, RUN_RECORD),
               {"seconds": seconds, "steps": [s for s, _ in steps]}, indent=None)
    return {"name": run.name, "seed": run.seed, "status": "done", "seconds": seconds,
            "error": None}


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "no output"
    return lines[-1][:500] if lines else "no output"


def run_study(runs: Sequence[StudyRun], scripts: StudyScripts, test_opts: Sequence[str] = (),
              jobs: int = 1) -> list[dict]:
    """Run every run that is not done, ``jobs`` at a time; a failed run does not stop the others.
    Returns the outcome of each run attempted (see ``_run_one``), in ``runs`` order."""
    todo = [run for run in runs if run_status(run) != "done"]
    logger.info("study: %d runs, %d done, %d to run, %d at a time", len(runs),
                len(runs) - len(todo), len(todo), jobs)

    def attempt(run):
        logger.info("study: %s seed %d: %s", run.name, run.seed,
                    "evaluating" if run_status(run) == "trained" else "training")
        outcome = _run_one(run, scripts, test_opts)
        logger.info("study: %s seed %d %s in %.0f s%s", run.name, run.seed, outcome["status"],
                    outcome["seconds"], f": {outcome['error']}" if outcome["error"] else "")
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(attempt, todo))


# results.json parts a study does not keep: per-class tables of every band, histograms and the
# confusion matrix (its figures are the summary's; the full files stay in the run folders).
_BULKY = {"confusion_matrix", "trimap_IoU", "boundary_IoU", "per_class", "offset_length",
          "confidence"}


def compact_results(results: dict) -> dict:
    """``results`` without the bulky blocks of ``_BULKY`` (at any depth)."""
    return {key: compact_results(value) if isinstance(value, dict) else value
            for key, value in results.items() if key not in _BULKY}


def _read_record(run):
    try:
        with open(os.path.join(run.folder, RUN_RECORD)) as f:
            return json.load(f).get("seconds")
    except (OSError, ValueError):
        return None


def summarise_study(runs: Sequence[StudyRun], out: str, command: str = "",
                    failures: Sequence[dict] = (), references: Sequence[str] = ()) -> dict:
    """Write ``OUT/study.json``, ``OUT/study.md`` and the comparison figures of the variants'
    means (iou.png, trimap.png) from the runs that are done; returns the study.json content.

    ``failures``: outcomes of ``run_study`` whose status is "failed" (listed, never averaged);
    ``references``: the variants the paired differences are taken against (default: the first).
    A run's results.json of an older layout is read in the current one (``results.upgrade``).
    """
    by_variant: dict[str, dict[int, dict]] = {}
    records = []
    for run in runs:
        results = None
        if run_status(run) == "done":
            with open(run.results_path) as f:
                results = compact_results(upgrade(json.load(f)))
            by_variant.setdefault(run.name, {})[run.seed] = results
        records.append({"name": run.name, "cfg": run.cfg, "opts": list(run.opts),
                        "seed": run.seed, "folder": run.folder, "seconds": _read_record(run),
                        "results": results})
    summary = {name: variant_summary(list(seeds.values())) for name, seeds in by_variant.items()}
    references = [r for r in references if r in by_variant]
    differences = study_differences(by_variant, references)
    per_class = class_differences(by_variant, references)
    figures = []
    if by_variant:
        means = {name: mean_results(list(seeds.values())) for name, seeds in by_variant.items()}
        for name, figure in comparison_figures(means).items():
            save_figure(figure, os.path.join(out, name))
            figures.append(name)
    study = {"command": command, "runs": records, "summary": summary,
             "differences": differences, "class_differences": per_class,
             "failed": [dict(f) for f in failures]}
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, "study.json"), json.dumps(study, indent=1, allow_nan=False))
    missing = [f"{r['name']} seed {r['seed']}" for r in records if r["results"] is None]
    text = study_markdown(summary, differences, per_class, failures, figures)
    header = ["# Study", ""]
    if command:
        header += ["Reproduce (resumes, skips finished runs):", "", "```bash", command, "```", ""]
    if missing:
        header += [f"Not finished: {', '.join(missing)}.", ""]
    write_text(os.path.join(out, "study.md"), "\n".join(header) + text)
    return study
