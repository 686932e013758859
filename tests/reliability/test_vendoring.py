"""Import and vendoring hygiene (issue 11, deliverable 6).

* ``import modelprov`` opens no socket and imports none of requests, urllib3,
  keyring or asyncio.
* A copy of the package at ``app/_vendor/modelprov`` imports and completes a
  mock chat and a chat against its own ``testing.FakeServer``: alone (no other
  modelprov importable, no modelprov metadata), and next to the installed copy
  (whose entry points name the same built-ins; they must not replace the
  vendored ones). The vendored copy never imports the top-level ``modelprov``.
* A plugin entry point that belongs to another copy of modelprov is skipped
  with a debug log; the vendored built-ins keep working.

Every check runs in a fresh ``python -I`` subprocess; each prints ``OK`` on
success, and the test asserts exit status 0 and that line.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelprov

PACKAGE_DIR = Path(modelprov.__file__).resolve().parent
TIMEOUT = 20  # generous cap for a subprocess; each run takes well under a second


def _run(code, *args, cwd=None):
    proc = subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MODELPROV"))},
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), (
        f"subprocess failed (rc={proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.stdout


def _vendor(root):
    """Copy this package to ``root/app/_vendor/modelprov`` (with ``app`` and ``app._vendor`` packages)."""
    vendor = root / "app" / "_vendor"
    vendor.mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copytree(PACKAGE_DIR, vendor / "modelprov", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return vendor / "modelprov"


def _deps_only(root):
    """A directory holding only ``requests`` and its dependencies (symlinks), no modelprov and no metadata."""
    deps = root / "deps"
    deps.mkdir()
    for name in ("requests", "urllib3", "idna", "certifi", "charset_normalizer", "chardet"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        src = Path(list(spec.submodule_search_locations)[0])
        (deps / name).symlink_to(src, target_is_directory=True)
    return deps


# Runs inside the subprocess; ``{root}`` is the tmp path holding ``app``.
CHATS = """
import sys
sys.path.insert(0, {root!r})
import app._vendor.modelprov as mp
from app._vendor.modelprov.testing import FakeServer

assert mp.__name__ == "app._vendor.modelprov", mp.__name__
reply = mp.Client().complete("mock/echo", "hi vendored")
assert reply.text == "hi vendored", reply.text
assert mp.get_registry().get_class("mock").__module__ == "app._vendor.modelprov.providers.mock"

with FakeServer() as server:
    server.add_chat("openai", "pong from fake")
    client = mp.Client(providers={{"openai": {{"api_key": "k-vendored", "base_url": server.base_url("openai")}}}})
    assert client.complete("openai/gpt-test", "ping").text == "pong from fake"
    assert server.requests[0].json["messages"][-1]["content"] == "ping"
    client.close()

leaked = sorted(m for m in sys.modules if m == "modelprov" or m.startswith("modelprov."))
assert not leaked, "the vendored copy imported the top-level modelprov: %s" % leaked[:5]
"""


def test_vendored_copy_alone_completes_mock_and_fakeserver_chats(tmp_path):
    """Pass: with only tmp_path and requests' own packages on sys.path (``-I -S``: no site-packages, no
    modelprov metadata, ``import modelprov`` fails), app._vendor.modelprov completes ``mock/echo`` and an
    openai chat against its own FakeServer, and never imports a top-level ``modelprov``."""
    _vendor(tmp_path)
    deps = _deps_only(tmp_path)
    code = (
        "import sys\n"
        f"sys.path[:] = [{str(deps)!r}] + [p for p in sys.path if 'site-packages' not in p and 'dist-packages' not in p]\n"
        "try:\n    import modelprov\nexcept ImportError:\n    pass\nelse:\n    raise AssertionError('modelprov is importable: not alone')\n"
        "import importlib.metadata as md\n"
        "_all = md.entry_points()\n"
        "def _group(name):  # Python 3.9 has no entry_points(group=...)\n"
        "    return list(_all.select(group=name)) if hasattr(_all, 'select') else list(_all.get(name, []))\n"
        "assert not _group('modelprov.providers'), 'modelprov metadata visible: not alone'\n"
        + CHATS.format(root=str(tmp_path)) + "print('OK')\n"
    )
    _run(code, "-I", "-S", cwd=tmp_path)


def test_vendored_copy_next_to_installed_copy_uses_its_own_builtins(tmp_path):
    """Pass: in the same interpreter where modelprov is installed (its entry points declare the built-ins as
    ``modelprov.providers...``), app._vendor.modelprov completes ``mock/echo`` and a FakeServer chat with its
    own built-in classes (the issue's defect was ``ConfigurationError: ... must be a ModelProvider subclass,
    not <class 'modelprov.providers.mock.MockProvider'>``) and never imports the installed copy."""
    _vendor(tmp_path)
    code = (
        "import importlib.metadata as md\n"
        "_all = md.entry_points()\n"
        "def _group(name):  # Python 3.9 has no entry_points(group=...)\n"
        "    return list(_all.select(group=name)) if hasattr(_all, 'select') else list(_all.get(name, []))\n"
        "eps = {ep.name: ep.value for ep in _group('modelprov.providers')}\n"
        "assert eps.get('mock', '').startswith('modelprov.'), 'installed copy not present: %r' % eps\n"
        + CHATS.format(root=str(tmp_path)) + "print('OK')\n"
    )
    _run(code, "-I", cwd=tmp_path)


def test_plugins_of_another_copy_are_skipped_with_a_debug_log(tmp_path):
    """Pass: next to the installed copy, with a fake distribution declaring ``other = modelprov.providers.mock:
    MockProvider`` (module of another copy) and ``fancy = fancy_plugin:Fancy`` (a subclass of the installed
    copy's ModelProvider), the vendored registry lists neither usable: ``other`` is skipped without import and
    ``fancy`` raises ConfigurationError naming 'another copy of modelprov'; both skips are logged at DEBUG,
    nothing at WARNING; the vendored mock still answers."""
    _vendor(tmp_path)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fancy_plugin.py").write_text(
        "from modelprov.providers.base import ModelProvider\n"
        "from modelprov.types import ProviderCapabilities\n"
        "class Fancy(ModelProvider):\n"
        "    name = 'fancy'\n"
        "    capabilities = ProviderCapabilities()\n"
        "    uses_http = False\n"
    )
    dist = plugins / "fancyplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fancyplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[modelprov.providers]\nfancy = fancy_plugin:Fancy\nother = modelprov.providers.mock:MockProvider\n"
        "mock = fancy_plugin:Fancy\n")
    code = f"""
import logging, sys
sys.path[:0] = [{str(tmp_path)!r}, {str(plugins)!r}]
records = []
class Collect(logging.Handler):
    def emit(self, record):
        records.append((record.levelno, record.getMessage()))
logging.getLogger().addHandler(Collect())
logging.getLogger().setLevel(logging.DEBUG)
import app._vendor.modelprov as mp
reg = mp.get_registry()
names = reg.list()
assert "other" not in names, names
assert reg.get_class("mock").__module__ == "app._vendor.modelprov.providers.mock", "a plugin replaced a built-in"
try:
    reg.get_class("fancy")
except mp.ConfigurationError as exc:
    assert "another copy of modelprov" in str(exc), str(exc)
else:
    raise AssertionError("a provider of another copy was accepted")
assert mp.Client().complete("mock/echo", "still here").text == "still here"
debug = [m for lvl, m in records if lvl == logging.DEBUG]
assert any("other" in m and "another copy" in m for m in debug), debug
assert any("fancy" in m and "another copy" in m for m in debug), debug
assert any("mock = fancy_plugin:Fancy" in m and "built-in" in m for m in debug), debug
warnings = [m for lvl, m in records if lvl >= logging.WARNING]
assert not warnings, warnings
print("OK")
"""
    _run(code, "-I", cwd=tmp_path)


IMPORT_HYGIENE = """
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("a socket was opened during import")
socket.socket = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
before = set(sys.modules)
{importer}
assert mod.__version__
loaded = set(sys.modules) - before
bad = sorted(m for m in loaded for top in ("requests", "urllib3", "keyring", "asyncio")
             if m == top or m.startswith(top + "."))
assert not bad, "import pulled in: %s" % bad
print("OK")
"""


@pytest.mark.parametrize("where", ["installed", "vendored"])
def test_import_opens_no_socket_and_imports_no_heavy_modules(tmp_path, where):
    """Pass: in a fresh ``python -I`` whose socket.socket/create_connection/getaddrinfo raise, importing the
    package (installed ``modelprov``, or ``app._vendor.modelprov``) succeeds and adds none of requests,
    urllib3, keyring, asyncio to sys.modules."""
    if where == "installed":
        importer = "import modelprov as mod"
    else:
        _vendor(tmp_path)
        importer = f"sys.path.insert(0, {str(tmp_path)!r}); import app._vendor.modelprov as mod"
    _run(IMPORT_HYGIENE.format(importer=importer), "-I", cwd=tmp_path)
