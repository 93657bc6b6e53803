"""The layout is the architecture: which room may import which, and what the layer ships.

docs/architecture.md describes the rooms; these tests keep the code to it. Imports are read
with `ast` (every import statement, also those inside functions), so a lazy import breaks a
rule as surely as a module-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT
from upload_processor_tools.local.template import load_template

RUNTIME = ROOT / "layers" / "core" / "upload_processor"
TOOLS = ROOT / "tools" / "upload_processor_tools"

# room -> the rooms of upload_processor it may import (besides itself); nothing points upward
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "domain": {"errors"},
    "settings": {"errors", "domain"},
    "metadata": {"errors", "domain"},
    "ecephys": {"errors", "domain"},
    "adapters": {"errors", "settings", "domain"},
    "pipeline": {"errors", "settings", "domain", "metadata", "adapters", "ecephys"},
    "operations": {"errors", "settings", "domain", "adapters", "pipeline"},
    "entrypoints": {"errors", "settings", "domain"},
}
# third-party packages a room must not import
TOOLING = {"typer", "rich", "moto", "samtranslator", "yaml", "upload_processor_tools"}
AWS = {"boto3", "botocore", "s3transfer", "aws_lambda_powertools"}
BANNED: dict[str, set[str]] = {
    "errors": TOOLING | {"boto3", "s3transfer", "aws_lambda_powertools"},
    "settings": TOOLING | AWS,
    "domain": TOOLING | AWS,
    "metadata": TOOLING | AWS,
    "ecephys": TOOLING | AWS,
    "adapters": TOOLING,
    "pipeline": TOOLING,
    "operations": TOOLING,
    "entrypoints": TOOLING,
}
MAX_MODULE_LINES = 600


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in `path` names (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _room(path: Path) -> str:
    relative = path.relative_to(RUNTIME)
    return relative.parts[0].removesuffix(".py")


def _runtime_modules() -> list[Path]:
    return sorted(
        p for p in RUNTIME.rglob("*.py") if p.name != "__init__.py" or p.parent != RUNTIME
    )


def test_every_runtime_module_lives_in_a_room() -> None:
    loose = [p.name for p in RUNTIME.glob("*.py") if p.name != "__init__.py"]
    assert set(loose) <= {"errors.py", "settings.py"}, loose
    rooms = {p.name for p in RUNTIME.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert rooms <= set(MAY_IMPORT), rooms - set(MAY_IMPORT)


@pytest.mark.parametrize("path", _runtime_modules(), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_rooms_import_only_what_they_may(path: Path) -> None:
    room = _room(path)
    wrong = []
    for name in _imports(path):
        top = name.split(".")[0]
        if top in BANNED[room]:
            wrong.append(f"{name} (the {room} room imports no {top})")
        if top == "upload_processor" and "." in name:
            target = name.split(".")[1]
            if target in MAY_IMPORT and target != room and target not in MAY_IMPORT[room]:
                wrong.append(f"{name} (the {room} room may not import the {target} room)")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(sorted(wrong))


def test_handlers_import_the_runtime_package_only() -> None:
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        names = _imports(app)
        assert not {n.split(".")[0] for n in names} & TOOLING, app


def test_the_layer_ships_no_tooling() -> None:
    """What SAM builds into the layer (template.yaml's ContentUri) imports no CLI or local-mode
    library, and the tools package is not in it."""
    template = load_template(ROOT / "template.yaml")
    content = ROOT / template["Resources"]["CoreLayer"]["Properties"]["ContentUri"]
    assert content.resolve() == (ROOT / "layers" / "core").resolve()
    assert not list(content.rglob("upload_processor_tools"))
    offenders = [
        str(p.relative_to(ROOT))
        for p in content.rglob("*.py")
        if {n.split(".")[0] for n in _imports(p)} & TOOLING
    ]
    assert not offenders
    requirements = (content / "requirements.txt").read_text().lower()
    for package in ("typer", "rich", "moto", "aws-sam-translator", "pyyaml"):
        assert package not in requirements


def test_the_built_layer_holds_the_runtime_package_only() -> None:
    """After `sam build` (make test runs it before pytest): the built layer's site-packages."""
    built = ROOT / ".aws-sam" / "build" / "CoreLayer" / "python"
    if not built.is_dir():
        pytest.skip("sam build has not run (make test runs it before pytest)")
    top = {p.name for p in built.iterdir()}
    assert "upload_processor" in top
    assert not top & {"upload_processor_tools", "typer", "rich", "moto", "samtranslator"}, top
    ours = [p for p in (built / "upload_processor").rglob("*.py")]
    assert not [p for p in ours if {n.split(".")[0] for n in _imports(p)} & TOOLING]


LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # a function's code and layers, unzipped


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_the_ecephys_function_fits_lambdas_unzipped_limit() -> None:
    """After `sam build`: EcephysTransferFunction's code, the core layer and the ecephys layer
    (numcodecs, the FLAC codec; no spikeinterface, no zarr) stay inside Lambda's 250 MB."""
    build = ROOT / ".aws-sam" / "build"
    parts = [build / "EcephysTransferFunction", build / "CoreLayer", build / "EcephysLayer"]
    if not all(p.is_dir() for p in parts):
        pytest.skip("sam build has not run (make test runs it before pytest)")
    top = {p.name for p in (build / "EcephysLayer" / "python").iterdir()}
    assert {"numcodecs", "flac_numcodecs", "pyflac"} <= top, top
    assert not top & {"spikeinterface", "zarr", "upload_processor"}, top
    assert sum(_tree_bytes(p) for p in parts) < LAMBDA_UNZIPPED_LIMIT


def test_no_module_is_too_long_to_read_in_one_sitting() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for base in (RUNTIME, TOOLS, ROOT / "functions")
        for p in base.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long
