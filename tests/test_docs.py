"""The documentation stays true: every relative link and #anchor of the READMEs and docs/ points to a
file and a heading that exist (GitHub's anchor rules), the commands of docs/get_started.md parse
and name tools, options, experiment files and config keys that exist, every tool and experiment
file the pages name exists, .ci/run runs the README's test command, and docs/code_layout.md lists
every file of lib/ and tools/."""
import argparse
import glob
import importlib
import os
import re
import shlex
import subprocess

import pytest

from lib.config import load_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The guides.  A study's study_*.md is the record tools/study.py wrote, kept as written: its figure
# links name the files as the tool wrote them beside it (the study's README links the renamed copies).
PAGES = sorted(page for page in [*(os.path.join(ROOT, name) for name in
                                   ("README.md", "data/README.md", "pretrained_models/README.md")),
                                 *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)]
               if not re.fullmatch(r"study_.*\.md", os.path.basename(page)))
GET_STARTED = os.path.join(ROOT, "docs", "get_started.md")
CODE_LAYOUT = os.path.join(ROOT, "docs", "code_layout.md")
# Written beside these pages on another branch; its links are checked once it is here.
DATASETS_GUIDE = os.path.join(ROOT, "docs", "datasets.md")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _prose(text):
    """The text without fenced code blocks and inline code spans (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_slug(heading):
    """The anchor GitHub gives a heading: its rendered text (inline code kept, emphasis and link
    syntax dropped) lower-cased, every character that is not a letter, digit, '_', '-' or space
    removed, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link's text
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*)", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path):
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen, found = {}, set()
    for heading in HEADING.findall(FENCE.sub("", open(path, encoding="utf-8").read())):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path):
    """(target file, anchor or None) of every link that is not to another site."""
    for target in LINK.findall(_prose(open(path, encoding="utf-8").read())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                    if file_part else path)
        yield target, resolved, anchor or None


def broken_links(pages, skip=lambda resolved: False):
    broken = []
    for page in pages:
        for target, resolved, anchor in relative_links(page):
            if skip(resolved):
                continue
            where = f"{os.path.relpath(page, ROOT)}: {target}"
            if not os.path.exists(resolved):
                broken.append(f"{where} (no file {os.path.relpath(resolved, ROOT)})")
            elif anchor is not None and (not resolved.endswith(".md")
                                         or anchor not in anchors(resolved)):
                broken.append(f"{where} (no heading #{anchor})")
    return broken


def test_github_slugs_of_hand_made_headings():
    assert github_slug("Fitting on your GPU") == "fitting-on-your-gpu"
    assert github_slug("Training the recipe's batch on fewer GPUs") == \
        "training-the-recipes-batch-on-fewer-gpus"
    assert github_slug("Published experiment files: the `seg_hrnet_ocr` name clash") == \
        "published-experiment-files-the-seg_hrnet_ocr-name-clash"
    assert github_slug("CPU only (laptops, CI)") == "cpu-only-laptops-ci"
    assert github_slug("Does it **really** help?") == "does-it-really-help"
    assert github_slug("See [the guide](docs/x.md) now") == "see-the-guide-now"


def test_repeated_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Usage\n\n```\n# not a heading\n```\n\n## Usage\n\n### Usage ##\n")
    assert anchors(str(page)) == {"usage", "usage-1", "usage-2"}


def test_links_in_code_are_not_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](missing.md) `[b](nowhere.md)`\n\n```\n[c](gone.md)\n```\n![d](x.png)\n")
    assert [t for t, _, _ in relative_links(str(page))] == ["missing.md", "x.png"]
    assert len(broken_links([str(page)])) == 2


def test_every_relative_link_and_anchor_of_the_docs_exists():
    # Links to docs/datasets.md are checked by the next test, also while it is not here yet.
    skip = (lambda resolved: resolved == DATASETS_GUIDE) if not os.path.exists(DATASETS_GUIDE) \
        else (lambda resolved: False)
    assert len(PAGES) > 5
    assert broken_links(PAGES, skip) == []


def test_links_to_the_datasets_guide():
    linked = [page for page in PAGES
              if any(resolved == DATASETS_GUIDE for _, resolved, _ in relative_links(page))]
    assert linked, "the pages link docs/datasets.md"
    if not os.path.exists(DATASETS_GUIDE):
        pytest.skip("docs/datasets.md is written on another branch; its links are checked once "
                    "it is merged")
    assert broken_links(linked, skip=lambda resolved: resolved != DATASETS_GUIDE) == []


# Files the guides have the reader write (docs/datasets.md, "your own dataset", step 3).
READERS_FILES = {"experiments/custom/mydata.yaml"}


def test_every_tool_and_experiment_file_the_docs_name_exists():
    named = set()
    for page in PAGES:
        text = open(page, encoding="utf-8").read()
        named.update(re.findall(r"(?<![\w/.])((?:tools|experiments)/[\w./-]+\.(?:py|yaml|sbatch))",
                                text))
    missing = sorted(path for path in named - READERS_FILES
                     if not os.path.exists(os.path.join(ROOT, path)))
    assert any(p.startswith("experiments/") for p in named) and missing == []


def bash_blocks(path):
    return re.findall(r"^```bash\n(.*?)^```", open(path, encoding="utf-8").read(), re.S | re.M)


def commands(block):
    """The simple commands of a bash block, each a list of words (continuations joined, comments
    dropped, split at line ends and at && || ; | &)."""
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command = []
        for token in lexer:
            if token in ("&&", "||", ";", "|", "&"):
                if command:
                    yield command
                command = []
            else:
                command.append(token)
        if command:
            yield command


class _Parsed(Exception):
    def __init__(self, namespace):
        super().__init__()
        self.namespace = namespace


def _parsed_arguments(tool, argv, monkeypatch):
    """The namespace that ``tools/<tool>.py``'s own parser makes of ``argv``; nothing runs."""
    for method in ("parse_args", "parse_intermixed_args"):
        original = getattr(argparse.ArgumentParser, method)

        def stop(self, args=None, namespace=None, _original=original):
            raise _Parsed(_original(self, args, namespace))

        monkeypatch.setattr(argparse.ArgumentParser, method, stop)
    module = importlib.import_module(f"tools.{tool}")
    try:
        module.main(argv)
    except _Parsed as parsed:
        return parsed.namespace
    except SystemExit as e:
        raise AssertionError(f"tools/{tool}.py does not accept {argv}: exit {e.code}") from e
    raise AssertionError(f"tools/{tool}.py ran without parsing its arguments")


def tool_calls(path):
    """(tool name, its arguments) of every `python tools/X.py ...` of the page's bash blocks."""
    for block in bash_blocks(path):
        for words in commands(block):
            for i, word in enumerate(words[:-1]):
                if os.path.basename(word) in ("python", "python3") and \
                        re.fullmatch(r"tools/\w+\.py", words[i + 1]):
                    yield words[i + 1][len("tools/"):-len(".py")], words[i + 2:]


def test_the_get_started_bash_blocks_parse():
    blocks = bash_blocks(GET_STARTED)
    assert len(blocks) >= 5
    for block in blocks:
        proc = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
        assert proc.returncode == 0, f"{block}\n{proc.stderr}"


def test_the_get_started_commands_name_tools_options_files_and_keys_that_exist(monkeypatch):
    calls = list(tool_calls(GET_STARTED))
    assert {tool for tool, _ in calls} >= {"make_synthetic_dataset", "train", "test",
                                           "make_lists", "gpu_check"}
    for tool, argv in calls:
        assert os.path.exists(os.path.join(ROOT, "tools", f"{tool}.py")), tool
        args = _parsed_arguments(tool, argv, monkeypatch)
        if getattr(args, "cfg", None):
            assert os.path.exists(os.path.join(ROOT, args.cfg)), args.cfg
            load_cfg(os.path.join(ROOT, args.cfg), args.opts)  # raises on a key or value at fault


@pytest.mark.slow
def test_the_get_started_synthetic_dataset_command_runs_as_written(monkeypatch, tmp_path):
    # The one command of the page that fits CI (seconds); the others train for minutes, or need
    # Cityscapes, a download or a GPU.
    (argv,) = [argv for tool, argv in tool_calls(GET_STARTED) if tool == "make_synthetic_dataset"]
    monkeypatch.chdir(tmp_path)
    importlib.import_module("tools.make_synthetic_dataset").main(argv)
    counts = {split: len(open(tmp_path / "data" / "synthetic" / "list" / "cityscapes" /
                             f"{split}.lst").read().splitlines())
              for split in ("train", "val", "test")}
    assert counts == {"train": 300, "val": 30, "test": 10}
    images = glob.glob(str(tmp_path / "data" / "synthetic" / "cityscapes" / "leftImg8bit" / "*"
                           / "*" / "*_leftImg8bit.png"))
    assert len(images) == 340


def test_a_mistyped_option_or_key_of_a_command_is_caught(monkeypatch):
    with pytest.raises(AssertionError, match="does not accept"):
        _parsed_arguments("make_synthetic_dataset", ["--root", "x", "--dataset", "cityscapes",
                                                     "--sizes", "1", "2"], monkeypatch)
    args = _parsed_arguments("test", ["--cfg", "experiments/synthetic/"
                                      "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40.yaml",
                                      "TEST.SCALE_LIST", "1.0", "TEST.FLIPTEST", "True"],
                             monkeypatch)
    with pytest.raises(Exception, match="TEST.FLIP_TEST"):
        load_cfg(os.path.join(ROOT, args.cfg), args.opts)


def test_commands_are_split_at_operators_and_continuations():
    block = "a --x 1 \\\n  --y 2 && b 'c d' # note\npython tools/t.py --cfg f.yaml K V | tee log\n"
    assert list(commands(block)) == [["a", "--x", "1", "--y", "2"], ["b", "c d"],
                                     ["python", "tools/t.py", "--cfg", "f.yaml", "K", "V"],
                                     ["tee", "log"]]


def _one_line(script):
    return " ".join(script.replace("\\\n", " ").split())


def test_ci_runs_exactly_the_readmes_test_command():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    tests = readme[readme.index("\nTests ("):]
    command = re.search(r"```bash\n(.*?)```", tests, re.S).group(1)
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "python -m pytest" in command and _one_line(command) in _one_line(ci)


def layout_paths():
    block = re.search(r"^```\n(.*?)^```", open(CODE_LAYOUT, encoding="utf-8").read(),
                      re.S | re.M).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    for line in lines:
        path, _, description = line.partition(" ")
        assert description.strip() and "," not in path, f"one file and its description: {line!r}"
    return [line.split()[0] for line in lines]


def test_the_code_layout_lists_every_file_of_lib_and_tools_once():
    listed = layout_paths()
    assert len(listed) == len(set(listed)), "a file listed twice"
    tree = set()
    for top in ("lib", "tools"):
        for folder, subfolders, files in os.walk(os.path.join(ROOT, top)):
            subfolders[:] = [d for d in subfolders if d != "__pycache__"]
            tree.update(os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
                        for name in files if not name.endswith((".pyc", ".pyo")))
    assert sorted(tree - set(listed)) == [], "files missing from docs/code_layout.md"
    assert sorted(set(listed) - tree) == [], "docs/code_layout.md lists files that do not exist"
