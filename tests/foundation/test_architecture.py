"""The folders are the architecture: dependencies point one way.

* providers know nothing of Postgres, Redis, Sanic or SAQ (raw payload in,
  canonical observations out) nor of the layers that use them;
* store knows nothing of HTTP, Redis or the layers above it;
* the pure core (model, names, status machine, reconciliation, cadence,
  automation rules, normalization helpers) imports no I/O library at all;
* SQL lives in store/: no other package hands SQL text to a connection;
* the CLI (cli.py and its command modules in commands/) sits on top: no layer
  imports it, and commands/ never imports cli.py (cli.py registers them);
* sanic/websockets/uvloop internals and the kernel's tcp_info layout are
  touched only in edge/framework.py (README "Upgrading sanic/websockets").
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IO_LIBRARIES = {"psycopg", "psycopg_pool", "redis", "sanic", "saq", "httpx", "websockets"}

CLI = {"cli", "commands"}

RULES: dict[str, set[str]] = {
    # package -> top-level modules it must not import
    "providers": {"psycopg", "psycopg_pool", "redis", "sanic", "saq", "store", "pipeline", "edge"}
    | CLI,
    "store": {"sanic", "httpx", "redis", "saq", "websockets", "edge", "pipeline", "providers"}
    | CLI,
    "livescore": {"store", "pipeline", "edge", "providers", "sanic", "saq", "psycopg"} | CLI,
    "pipeline": CLI,
    "edge": CLI,
    "commands": {"cli"},
}

PURE_MODULES = [
    "livescore/model.py",
    "livescore/names.py",
    "livescore/feeds.py",
    "livescore/limits.py",
    "livescore/webhooks.py",
    "livescore/supervise.py",
    "livescore/diagnosis.py",
    "store/write_plan.py",
    "providers/base.py",
    "providers/parsing.py",
    "providers/cursor.py",
    "providers/kinds.py",
    "providers/football_data.py",
    "providers/api_football.py",
    "providers/espn.py",
    "providers/thesportsdb.py",
    "pipeline/status_machine.py",
    "pipeline/reconcile.py",
    "pipeline/decision.py",
    "pipeline/event_merge.py",
    "pipeline/patching.py",
    "pipeline/cadence.py",
    "pipeline/automation.py",
    "pipeline/observation_codec.py",
    "edge/ws_protocol.py",
]


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_point_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & RULES[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_core_imports_no_io_library(module: str) -> None:
    assert imported_roots(ROOT / module) & (IO_LIBRARIES | {"store"}) == set()


def sql_calls(path: Path) -> list[int]:
    """Lines where a string is passed to ``.execute``/``.executemany``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"execute", "executemany"}
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
        ):
            lines.append(node.lineno)
    return lines


def test_sql_lives_in_store() -> None:
    files = [ROOT / "cli.py"] + [
        path
        for package in ("commands", "livescore", "providers", "pipeline", "edge")
        for path in sorted((ROOT / package).rglob("*.py"))
    ]
    offenders = {str(p.relative_to(ROOT)): sql_calls(p) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def provider_import_graph() -> dict[str, set[str]]:
    """Each module of providers/ -> the providers modules it imports, anywhere in
    it (imports inside functions count: a lazy import still closes a cycle)."""
    paths = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted((ROOT / "providers").rglob("*.py"))
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name.split(".")
                    if path.name != "__init__.py":
                        package.pop()
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                targets |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def test_providers_import_graph_is_acyclic() -> None:
    graph = provider_import_graph()
    assert "providers.fixture" in graph["providers.registry"]  # lazy imports are seen
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle in providers/: {' -> '.join(exc.args[1])}")


def test_providers_import_nothing_by_name_string() -> None:
    """No importlib or __import__ in providers/: every import is one mypy and the
    graph above can see."""
    offenders: dict[str, list[int]] = {}
    for path in sorted((ROOT / "providers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                (
                    isinstance(node, ast.Import)
                    and any(a.name.split(".")[0] == "importlib" for a in node.names)
                )
                or (
                    isinstance(node, ast.ImportFrom)
                    and (node.module or "").split(".")[0] == "importlib"
                )
                or (isinstance(node, ast.Name) and node.id == "__import__")
            ):
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(node.lineno)
    assert offenders == {}


#: What only edge/framework.py may name: sanic/websockets internals /ws relies on
#: (and the kernel's TCP_INFO), each checked there against the installed versions.
FRAMEWORK = ROOT / "edge" / "framework.py"
FRAMEWORK_INTERNALS = {
    "_websocket_handler",
    "is_websocket",
    "io_proto",
    "ws_proto",
    "assembler",
    "message_fetched",
    "fail_connection",
    "process_pong",
    "_state",
    "recv_buffer",
    "get_protocol",
    "TCP_INFO",
    "processed_headers",
    "_sanitize_header_value",
}


def test_framework_internals_are_touched_only_in_edge_framework() -> None:
    """An attribute, a name string or an import of Sanic's server internals
    (``sanic.server``) anywhere else is a reliance nobody checks on an upgrade."""
    files = [ROOT / "cli.py"] + [
        path for package in sorted(RULES) for path in sorted((ROOT / package).rglob("*.py"))
    ]
    offenders: dict[str, list[str]] = {}
    for path in files:
        if path == FRAMEWORK:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "sanic.server"
            ):
                name = node.module
            if name in FRAMEWORK_INTERNALS or (name or "").startswith("sanic.server"):
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(
                    f"{node.lineno}: {name}"
                )
    assert offenders == {}
