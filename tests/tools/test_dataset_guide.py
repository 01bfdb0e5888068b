"""The conversion commands of docs/datasets.md parse as written and reach their conversion with the
paths they name (the conversions themselves: tests/datasets/test_conversions_*.py)."""
import importlib
import os
import re
import shlex

import pytest

from tests.helpers import ROOT

GUIDE = os.path.join(ROOT, "docs", "datasets.md")
# Each conversion tool: the library function it calls (named as the tool) and what that returns.
TOOLS = {"convert_pascal_context": {"train": 4998, "val": 5105},
         "convert_coco_stuff": {"train": 9000, "val": 1000},
         "convert_lip": {"train": 30462, "val": 10000},
         "convert_voc_sbd": {"train_aug": 10582, "val": 1449, "from VOC": 2913, "from SBD": 9118}}


def guide_commands(prefix="python tools/convert_"):
    """The commands of the guide's code blocks that start with ``prefix``, continuation lines
    joined."""
    text = open(GUIDE).read()
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("  #")[0].strip()
            if command.startswith(prefix):
                commands.append(command)
    return commands


def test_the_guide_converts_every_dataset():
    assert {shlex.split(c)[1][len("tools/"):-len(".py")] for c in guide_commands()} == set(TOOLS)


@pytest.mark.parametrize("command", guide_commands())
def test_a_guide_command_parses_and_names_its_paths(command, monkeypatch):
    words = shlex.split(command)
    tool = words[1][len("tools/"):-len(".py")]
    module = importlib.import_module(f"tools.{tool}")
    calls = []
    monkeypatch.setattr(module, tool, lambda *args: calls.append(args) or TOOLS[tool])
    assert module.main(words[2:]) is None
    call, = calls
    paths = [words[k + 1] for k, word in enumerate(words) if word in ("--json", "--images",
                                                                       "--src", "--voc", "--sbd")]
    flat = [x for arg in call for x in (arg if isinstance(arg, list) else [arg])]
    assert all(path in flat for path in paths), (paths, call)
