"""The project's own error types: a setting, file or input at fault, named in the message.

Every error class of the library derives from :class:`ProjectError`, so that a tool can tell them
from a bug: their message already says what is wrong and what to do, and the tools print it as
one line, ``error: <message>``, without the traceback (``tools/cli.py``).
"""


class ProjectError(Exception):
    """Base of the library's errors: the message names the setting, file or value at fault and
    says what to do."""


class RunError(ProjectError, RuntimeError):
    """A run that cannot start or go on; the message names the setting or path at fault."""
