"""Installed footprint: distributions and megabytes a package brings in, read from this environment.

Nothing is installed: :func:`footprint` walks a distribution's dependency
closure with ``importlib.metadata`` (``Requires-Dist``, environment markers
evaluated for this interpreter and the extras asked for), and sums the sizes
of the files each distribution's ``RECORD`` lists. That is what a fresh
virtualenv with only that package would hold (less pip itself), provided the
versions installed here are the ones a resolver would pick. An editable
install's RECORD lists only its hook files, so for it the package folders
named in ``top_level.txt`` are measured in the source tree instead.
"""

import json
import os
import re
from importlib import metadata
from typing import Any, Dict, List, Optional, Set, Tuple

__all__ = ["METHOD", "footprint"]

METHOD = ("dependency closure read with importlib.metadata in this environment (markers evaluated), file sizes summed from each "
          "distribution's RECORD; an editable install counts its package folders")  # fmt: skip


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_type() -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors packaging in every virtualenv
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def _editable_root(dist: metadata.Distribution) -> Optional[str]:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    info = json.loads(text)
    if not info.get("dir_info", {}).get("editable") or not info.get("url", "").startswith("file://"):
        return None
    return str(info["url"][7:])


def _dir_bytes(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _size(dist: metadata.Distribution) -> int:
    root = _editable_root(dist)
    if root is not None:
        names = (dist.read_text("top_level.txt") or "").split() or [_canon(dist.metadata["Name"]).replace("-", "_")]
        return sum(_dir_bytes(os.path.join(root, n)) for n in names if os.path.isdir(os.path.join(root, n)))
    total = 0
    for f in dist.files or ():
        try:
            total += f.size if f.size else os.path.getsize(str(dist.locate_file(f)))
        except OSError:
            pass
    return total


def footprint(name: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """``({"dists": N, "mb": M, "names": [...], "missing": [...]}, note)``; ``None`` when ``name`` is not installed."""
    requirement = _requirement_type()
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None, f"{name} not installed: skipped"
    seen: Dict[str, metadata.Distribution] = {}
    missing: List[str] = []
    todo: List[Tuple[str, Set[str]]] = [(name, set())]
    done: Set[Tuple[str, str]] = set()
    while todo:
        dname, extras = todo.pop()
        key = _canon(dname)
        if (key, ",".join(sorted(extras))) in done:
            continue
        done.add((key, ",".join(sorted(extras))))
        try:
            dist = seen.get(key) or metadata.distribution(dname)
        except metadata.PackageNotFoundError:
            missing.append(dname)
            continue
        seen[key] = dist
        for line in dist.requires or ():
            req = requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((req.name, set(req.extras)))
    total = sum(_size(d) for d in seen.values())
    note = f"missing from this environment: {', '.join(sorted(set(missing)))}" if missing else ""
    return {"dists": len(seen), "mb": total / 1e6, "names": sorted(seen), "missing": sorted(set(missing))}, note
