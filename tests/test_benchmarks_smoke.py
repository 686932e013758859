"""The benchmark harness still runs: ``benchmarks/run.py --quick --no-peers --tiny`` prints its whole table.

Tiny counts make every figure meaningless; the test checks that each section
(import, JSON CPU, stream CPU, concurrency, memory, footprint) reached the
table, that every contestant of modelprov and its baseline has a row, and
that ``--out`` writes the same Markdown. It never looks at a timing.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")

SECTION_TITLES = (
    "Import and start-up",
    "Client CPU per JSON chat call",
    "Client CPU per stream chunk",
    "Concurrent calls",
    "Memory",
    "Installed footprint",
)


def run_bench(tmp_path, *args):
    out = tmp_path / "bench.md"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, RUN, "--quick", "--no-peers", "--tiny", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, out.read_text(encoding="utf-8")


def table_rows(text):
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def test_tiny_run_prints_every_section_as_one_table(tmp_path):
    """Pass: one Markdown table with every section, modelprov's and the baseline's rows, machine and command on top."""
    stdout, written = run_bench(tmp_path)
    assert written.strip() == stdout.strip()
    lines = stdout.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert table == list(range(table[0], table[-1] + 1)), "the table is not one contiguous block"
    assert lines[table[0]].startswith("| Measurement | Contestant | Median | x baseline | Target | Met |")
    for title in SECTION_TITLES:
        assert f"**{title}" in stdout, f"section {title!r} missing"
    assert "- Machine:" in stdout and "- Python:" in stdout and "- Command:" in stdout and "--no-peers" in stdout
    rows = table_rows(stdout)[1:]  # past the header
    contestants = {r[1] for r in rows if len(r) == 6}
    for name in ("Client.complete", "provider.generate", "requests", "Client.stream", "provider.stream", "modelprov", "requests-threads"):
        assert name in contestants or any(c.startswith(name + " (") for c in contestants), f"no row for {name}"
    for protocol in ("openai", "anthropic", "ollama"):
        assert f"{protocol}: call" in stdout and f"{protocol}: chunk" in stdout
    targets = [r for r in rows if len(r) == 6 and r[4]]
    assert targets and all(r[5] in ("yes", "**no**") for r in targets), "a target row without a verdict"
    assert "AsyncOpenAI skipped" in stdout  # --no-peers leaves the peers out, with a note
    for peer in ("openai", "litellm"):
        assert f"| {peer}: size |" not in stdout


def test_only_selects_sections_and_rejects_unknown_ones(tmp_path):
    """Pass: --only footprint prints just that section; an unknown section is a usage error."""
    stdout, _ = run_bench(tmp_path, "--only", "footprint")
    assert "**Installed footprint" in stdout and "**Memory" not in stdout
    assert "| modelprov: distributions |" in stdout
    proc = subprocess.run([sys.executable, RUN, "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown section" in proc.stderr
