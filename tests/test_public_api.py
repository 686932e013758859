"""The public surface: __all__, lazy imports, layering, docstrings, module-level calls."""

import ast
import pathlib
import subprocess
import sys

import pytest

import modelprov

PKG = pathlib.Path(modelprov.__file__).parent

# Lower number = lower layer. A module may import only from its own layer or below (every import counts:
# relative, ``from modelprov...``, ``import modelprov...``, inside functions and TYPE_CHECKING blocks too).
# Providers are codecs: they sit below the I/O layers, and PROVIDERS_MAY_NOT_IMPORT names what is off limits
# even at their own layer.
LAYERS = {
    "_version": 0, "_redact": 0, "_singleton": 0,
    "exceptions": 1,
    "parts": 2, "types": 2, "deadline": 2, "_log": 2, "validation": 2, "messages": 2, "stream_handle": 2,
    "_collect": 3, "streaming": 3,
    "providers": 4, "config": 4, "retry": 4, "circuit_breaker": 4, "async_bridge": 4, "_bridge_channel": 4, "_bridge_pool": 4,
    "ratelimit": 4, "usage": 4, "breaker_api": 4,
    "transport": 5,
    "engine": 6, "engine_stream": 6,
    "registry": 7,
    "testing": 8,
    "fallback": 9, "batch": 9, "client": 9, "api": 9, "hooks": 9, "conversation_log": 9, "batch_jobs": 9, "client_settings": 9,
    "cli": 10, "__main__": 10,
}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top not in LAYERS:
        raise AssertionError(f"module {module!r} has no layer in tests/test_public_api.py")
    return LAYERS[top]


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def test_all_is_sorted_unique_and_importable():
    names = modelprov.__all__
    assert names == sorted(names), "__all__ must be sorted"
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(modelprov, name) is not None, name


def test_all_covers_every_lazy_name():
    assert set(modelprov._LAZY) | {"__version__"} == set(modelprov.__all__)
    with pytest.raises(AttributeError):
        modelprov.not_a_name  # noqa: B018


def test_import_is_lazy_in_a_fresh_interpreter():
    heavy = ["requests", "urllib3", "keyring", "asyncio", "concurrent", "http", "ssl", "logging", "typing"]
    # Only what ``import modelprov`` itself loads counts: some virtualenvs' start-up (.pth files) import typing.
    code = (
        "import sys; before = set(sys.modules); import modelprov; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & set(%r)));"
        "print(sorted(m for m in sys.modules if m.startswith('modelprov.')))" % heavy
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]", f"import modelprov loaded {out[0]}"
    assert out[1] == "['modelprov._version']"


def test_every_public_object_is_documented():
    for name in modelprov.__all__:
        obj = getattr(modelprov, name)
        if name == "__version__":
            continue
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_every_module_has_a_docstring_and_stays_small():
    for name, path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{name} has no module docstring"
        assert len(path.read_text().splitlines()) <= 500, f"{name} is too long"


#: What a provider (a codec) may never import: the I/O layers, the engine and everything above them.
PROVIDERS_MAY_NOT_IMPORT = ("transport", "retry", "circuit_breaker", "async_bridge", "_bridge_channel", "config",
                            "engine", "engine_stream", "registry", "testing", "fallback", "batch", "client", "api",
                            "hooks", "cli")


def test_imports_point_downward_only():
    modules = dict(_modules())
    for name, path in modules.items():
        if not name:
            continue  # the package root re-exports lazily
        here = _layer(name)
        for target in sorted(_package_imports(name, path, modules)):
            assert _layer(target) <= here, f"{name} imports {target}, a higher layer"


def test_providers_import_no_io_layer():
    modules = dict(_modules())
    providers = [name for name in modules if name.split(".")[0] == "providers"]
    assert len(providers) > 10
    for name in providers:
        for target in _package_imports(name, modules[name], modules):
            assert target.split(".")[0] not in PROVIDERS_MAY_NOT_IMPORT, f"{name} (a codec) imports {target}"
        tree = ast.parse(modules[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for mod in names:
                    if not getattr(node, "level", 0):
                        assert mod.split(".")[0] not in ("requests", "urllib3", "socket", "http", "ssl", "asyncio"), (
                            f"{name} (a codec) imports {mod}"
                        )


def _package_imports(name, path, modules):
    """The package modules ``name`` imports: every relative or ``modelprov`` import, inside functions and
    ``if TYPE_CHECKING:`` blocks too; ``from . import x`` is an import of module ``x`` when it is one."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join(base + ([node.module] if node.module else []))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "modelprov":
            target = node.module[len("modelprov."):]
        elif isinstance(node, ast.Import):
            found.update(a.name[len("modelprov."):] for a in node.names if a.name.startswith("modelprov.") and a.name[len("modelprov."):] in modules)
            continue
        else:
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}" if target else alias.name
            if sub in modules:
                found.add(sub)  # from package import submodule
            elif target in modules:
                found.add(target)  # from module import name
    found.discard(name)
    found.discard("")  # the package root only re-exports, lazily
    return found


def test_the_import_graph_has_no_cycle():
    modules = dict(_modules())
    graph = {name: _package_imports(name, path, modules) for name, path in modules.items() if name}
    state = {}  # name -> 1 while on the DFS stack, 2 once done

    def visit(name, stack):
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_only_transport_imports_requests():
    for name, path in _modules():
        if name.split(".")[0] in ("transport",) or name.startswith("_transport"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or ""]
            for m in mods:
                assert m.split(".")[0] not in ("requests", "urllib3"), f"{name} imports {m}"


def test_module_level_complete_and_stream_with_mock():
    resp = modelprov.complete("mock/echo", "Hello")
    assert resp.text == "Hello" and resp.provider == "mock" and resp.model == "echo"
    assert "".join(c.text for c in modelprov.stream("mock/echo", "Hello world")) == "Hello world"
    assert modelprov.embed("mock/echo", ["a"]).embeddings


def test_version_matches_metadata_file():
    from modelprov._version import __version__

    assert modelprov.__version__ == __version__ and __version__.count(".") == 2
