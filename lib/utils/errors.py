"""The error of a run that cannot start (shared by the layers that find such a setting)."""


class RunError(RuntimeError):
    """A run that cannot start; the message names the setting or path at fault."""
