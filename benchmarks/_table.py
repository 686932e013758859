"""The Markdown the benchmark prints: the machine it ran on, then one table with a row per figure.

A row is a :class:`Row` (a measurement, the contestant, its median, its ratio
to the section's baseline, and a target with whether it was met) or a section
heading; :func:`render` lays them out as one GitHub-flavoured Markdown table.
"""

import os
import platform
import re
import sys
from typing import Iterable, List, Optional, Union

__all__ = ["Heading", "Note", "Row", "machine", "ratio_text", "render"]


class Row:
    """One figure of the table."""

    def __init__(self, measure: str, contestant: str, value: str, ratio: str = "", target: str = "", met: Optional[bool] = None) -> None:
        self.measure, self.contestant, self.value, self.ratio, self.target, self.met = measure, contestant, value, ratio, target, met


class Heading:
    """A section heading row: its title and how its figures were measured."""

    def __init__(self, title: str, method: str) -> None:
        self.title, self.method = title, method


class Note:
    """A row that says why something was left out (a peer not installed, say)."""

    def __init__(self, text: str) -> None:
        self.text = text


Item = Union[Row, Heading, Note]


def ratio_text(value: Optional[float], baseline: bool = False) -> str:
    """``0.45x``; ``1.00x (baseline)`` for the baseline itself; ``-`` when there is no ratio."""
    if baseline:
        return "1.00x (baseline)"
    return "-" if value is None else f"{value:.2f}x"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(items: Iterable[Item]) -> str:
    """The items as one Markdown table (header, then a row each)."""
    lines = ["| Measurement | Contestant | Median | x baseline | Target | Met |", "|---|---|---:|---:|---|:---:|"]
    for it in items:
        if isinstance(it, Heading):
            lines.append(f"| **{_cell(it.title)}** | {_cell(it.method)} | | | | |")
        elif isinstance(it, Note):
            lines.append(f"| | _{_cell(it.text)}_ | | | | |")
        else:
            met = "" if it.met is None else ("yes" if it.met else "**no**")
            lines.append(f"| {_cell(it.measure)} | {_cell(it.contestant)} | {_cell(it.value)} | {_cell(it.ratio)} | {_cell(it.target)} | {met} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(command: List[str], peers: Iterable[str]) -> str:
    """Markdown lines naming the machine, the interpreter, the library versions and the command."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    versions = ", ".join(f"{n} {_version(n)}" for n in ("modelprov", "requests", "urllib3", *peers))
    return "\n".join([
        f"- Machine: {_cpu_model()}, {cores} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"- Versions: {versions}",
        f"- Command: `{' '.join(command)}`",
    ])  # fmt: skip
