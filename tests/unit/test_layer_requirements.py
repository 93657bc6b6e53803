"""The layer's requirements (what Lambda runs) agree with pyproject's (what the tests run)."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from tests.paths import ROOT


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_every_layer_pin_satisfies_the_projects_own_requirement() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines()
    wanted, shipped = _requirements(project), _requirements(layer)
    assert "boto3" in shipped  # not the runtime's own: conditional writes need a recent one
    for name, req in shipped.items():
        assert name in wanted, f"{name} is in the layer but not in pyproject.toml"
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        if pinned:
            assert wanted[name].specifier.contains(pinned[0]), (name, str(wanted[name]))


def test_the_ecephys_layer_ships_what_the_ecephys_extra_pins() -> None:
    """layers/ecephys/requirements.txt (what the ecephys function runs) equals pyproject's
    `ecephys` extra (what the tests run), and ships no reader or tooling."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["ecephys"]
    layer = (ROOT / "layers" / "ecephys" / "requirements.txt").read_text().splitlines()
    wanted, shipped = _requirements(extra), _requirements(layer)
    assert {n: str(r.specifier) for n, r in shipped.items()} == {
        n: str(r.specifier) for n, r in wanted.items()
    }
    assert not set(shipped) & {"spikeinterface", "probeinterface", "zarr", "wavpack-numcodecs"}
