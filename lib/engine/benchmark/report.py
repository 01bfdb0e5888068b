"""What a benchmark run reports: the printed page (header lines, the table, the notes) and the
record of its figures (``--json``)."""
from dataclasses import dataclass

__all__ = ["BenchReport"]


@dataclass
class BenchReport:
    """The outcome of a benchmark run of ``mode``: ``header`` {key: value} (what was measured,
    where), the Markdown ``table``, ``notes`` (lines saying what the columns mean) and the
    ``figures`` behind them."""

    mode: str
    header: dict
    table: str
    notes: list
    figures: dict

    def text(self):
        """The printed page: a title, the header's keys aligned, the table, the notes."""
        lines = [f"## tools/benchmark.py --mode {self.mode}"]
        lines += [f"{key + ':':<18}{value}" for key, value in self.header.items()]
        return "\n".join(lines + ["", self.table, "", *self.notes])

    def record(self):
        """The figures with the mode and the header, as ``--json`` writes them."""
        return {"mode": self.mode, "header": self.header, **self.figures}
