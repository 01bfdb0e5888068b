"""lib.utils.logger: a tool's messages as bare lines on the standard output."""
import io
import logging
import sys

import pytest

from lib.utils.logger import log_messages_to_stdout


@pytest.fixture
def root_logger():
    """The root logger, given back with the handlers and level it had."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in set(root.handlers) - set(handlers):
        root.removeHandler(handler)
    root.setLevel(level)


def test_messages_go_bare_to_the_stdout_of_the_moment_and_a_second_set_up_replaces_the_first(
        root_logger, monkeypatch):
    log_messages_to_stdout()
    log_messages_to_stdout()  # once more: each line is still written once
    later = io.StringIO()
    monkeypatch.setattr(sys, "stdout", later)  # redirected after the set-up
    logging.getLogger("lib.anything").info("list/a.lst: 3 images")
    logging.getLogger("lib.anything").warning("note: val skipped")
    logging.getLogger("lib.anything").debug("not shown")
    assert later.getvalue() == "list/a.lst: 3 images\nnote: val skipped\n"
