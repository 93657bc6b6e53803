"""The compatibility corpus (issue 12): upstream AIND metadata, our verdict against AIND's.

Every JSON under tests/fixtures/aind/ (data_schema_examples/, metadata_mapper/; sources and
commits in tests/fixtures/aind/README.md) is validated twice: by aind-data-schema itself (the
core model's ``model_validate_json``) and by the project (parse, naive times, ``validate_file``:
what GatherMetadata and ``validate`` do with each file). Then sessions are assembled from the
upstream instrument + acquisition pairs that belong together and run through
``upload-processor validate``, against the library's ``Metadata`` built from the same files.

Where the verdicts differ, the case is in ``DISAGREEMENTS`` with the rule AIND states that the
library misses; any other difference fails, and so does a listed one that no longer differs.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aind_data_schema.core.metadata import Metadata
from pydantic import BaseModel
from typer.testing import CliRunner

from tests.paths import ROOT
from upload_processor.domain.naming import asset_name
from upload_processor.domain.report import Issue, Report
from upload_processor.metadata.library_log import library_output
from upload_processor.metadata.local_time import localize_naive
from upload_processor.metadata.parse import parse_file
from upload_processor.metadata.validate import MODELS, validate_file
from upload_processor_tools.cli import app

AIND = ROOT / "tests" / "fixtures" / "aind"
CORPUS = sorted(
    p
    for folder in ("data_schema_examples", "metadata_mapper")
    for p in (AIND / folder).rglob("*.json")
)
TYPE_OF = {model.model_fields["object_type"].default: name for name, model in MODELS.items()}

# case -> (AIND's verdict, ours, why they differ: the rule AIND states that the library misses).
# Empty: every file of the corpus gets the library's verdict (the session-level disagreements
# are in SESSIONS; both tables are in tests/fixtures/aind/README.md).
DISAGREEMENTS: dict[str, tuple[str, str, str]] = {}


def _case(path: Path) -> str:
    return path.relative_to(AIND).as_posix()


def _label(path: Path, core_type: str, document: dict) -> str:
    """A metadata-service response (gather_metadata_job/) is read as GatherMetadata reads one
    (an extra, labelled by its source); any other file as staged under its type's name."""
    if path.parent.name == "gather_metadata_job":
        return f"{core_type}@service:{document['subject_id']}"
    return f"{core_type}_{path.name}"


def _library_verdict(core_type: str, raw: bytes) -> str:
    try:
        with library_output():
            MODELS[core_type].model_validate_json(raw)
    except Exception:  # the library's verdict, whatever it raises
        return "invalid"
    return "valid"


def _our_verdict(label: str, core_type: str, raw: bytes) -> tuple[str, list[Issue]]:
    issues: list[Issue] = []
    data = parse_file(label, raw, issues)
    if data is not None:
        data = localize_naive(label, data, "UTC", issues)
        validate_file(label, data, core_type, issues)
    verdict = "invalid" if any(i.severity == "error" for i in issues) else "valid"
    return verdict, issues


@pytest.mark.parametrize("path", CORPUS, ids=_case)
def test_each_file_gets_aind_s_verdict(path: Path) -> None:
    raw = path.read_bytes()
    document = json.loads(raw)
    core_type = TYPE_OF[document["object_type"]]
    theirs = _library_verdict(core_type, raw)
    label = _label(path, core_type, document)
    ours, issues = _our_verdict(label, core_type, raw)
    expected = DISAGREEMENTS.get(_case(path))
    if expected is None:
        assert ours == theirs, [i.model_dump() for i in issues]
    else:
        assert (theirs, ours) == expected[:2]
    for issue in issues:  # whatever the verdict, every entry names its file
        assert issue.file == label


def test_the_corpus_is_aind_data_schema_2() -> None:
    """Only 2.x documents are kept (1.x ones are skipped, see the README)."""
    versions = {json.loads(p.read_bytes())["schema_version"].split(".")[0] for p in CORPUS}
    assert versions == {"2"}
    assert len(CORPUS) >= 30


# ---------------------------------------------------------------------- sessions


def _load(name: str) -> dict:
    return json.loads((AIND / "data_schema_examples" / name).read_text())


def _stream_modalities(acquisition: dict) -> list[str]:
    found = {
        m["abbreviation"] for stream in acquisition["data_streams"] for m in stream["modalities"]
    }
    return sorted(found)


def _session(folder: Path, instrument: str, acquisitions: list[str]) -> dict[str, Any]:
    """A session staged from an upstream instrument and its acquisition(s): the examples'
    subject and procedures carry the acquisition's subject_id (they describe another mouse
    upstream), the example data description named for the asset, a job from the acquisition
    (its subject, start time, stream modalities) and one small data file per modality. Returns the documents, by file name."""
    folder.mkdir()
    documents: dict[str, Any] = {f"instrument_{instrument}": _load(instrument)}
    for name in acquisitions:
        documents[f"acquisition_{name}"] = _load(name)
    first = documents[f"acquisition_{acquisitions[0]}"]
    subject_id = first["subject_id"]
    for name in ("subject.json", "procedures.json"):
        documents[name] = {**_load(name), "subject_id": subject_id}
    modalities = sorted({m for n in acquisitions for m in _stream_modalities(_load(n))})
    start = datetime.fromisoformat(first["acquisition_start_time"]).replace(microsecond=0)
    job = {
        "job_type": "default",
        "project_name": "Corpus",
        "subject_id": subject_id,
        "acq_datetime": start.isoformat(),
        "modalities": modalities,
    }
    name = asset_name(subject_id, start)
    documents["data_description.json"] = {
        **_load("data_description.json"),
        "subject_id": subject_id,
        "name": name,
        "creation_time": start.isoformat(),
        "modalities": [_modality(m) for m in modalities],
    }
    for name, document in documents.items():
        (folder / name).write_text(json.dumps(document, indent=1))
    (folder / "upload_job.json").write_text(json.dumps(job))
    for modality in modalities:
        (folder / modality).mkdir()
        (folder / modality / "data.bin").write_bytes(b"\x00" * 16)
    return {**documents, "_asset": asset_name(subject_id, start)}


def _modality(abbreviation: str) -> dict:
    from aind_data_schema_models.modalities import Modality

    return Modality.from_abbreviation(abbreviation).model_dump(mode="json")


def _library_session_verdict(documents: dict[str, Any]) -> str:
    """AIND's verdict on the session: each file validated by its model, instruments and
    acquisitions merged with the library's "+", then the whole as one Metadata ("crash":
    the library raised something else than its verdict)."""
    models: dict[str, list[BaseModel]] = {}
    try:
        with library_output():
            for name, document in sorted(documents.items()):
                if name.startswith("_"):
                    continue
                core_type = TYPE_OF[document["object_type"]]
                models.setdefault(core_type, []).append(MODELS[core_type].model_validate(document))
            merged = {}
            for core_type, found in models.items():
                whole = found[0]
                for other in found[1:]:
                    whole = whole + other
                merged[core_type] = whole
            Metadata(name=documents["_asset"], location="s3://corpus", **merged)
    except ValueError as exc:  # pydantic's ValidationError too: the library's verdict
        print(f"AIND: {type(exc).__name__}: {exc}")  # shown when the case fails
        return "invalid"
    except Exception as exc:  # no verdict: the library failed on the session
        print(f"AIND raised {type(exc).__name__}: {exc}")
        return "crash"
    return "valid"


# The upstream examples' instrument + acquisition pairs (same instrument_id, or the one
# instrument of a modality): session -> (instrument, acquisitions, AIND's verdict, our error
# rules). None of these pairs is a valid session in AIND's own eyes: the examples were written
# one file at a time. Each verdict below is the library's, and ours names the same cause.
SESSIONS: dict[str, tuple[str, list[str], str, set[str]]] = {
    # the instrument's calibration_date (2023-10-02) is after the acquisition (2023-04-25)
    "ephys": ("ephys_instrument.json", ["ephys_acquisition.json"], "invalid", {"metadata.invalid"}),
    # a calibration dated at the acquisition's start, which the library requires to be before
    "exaspim": (
        "exaspim_instrument.json",
        ["exaspim_acquisition.json"],
        "invalid",
        {"metadata.invalid"},
    ),
    # two acquisitions of different acquisition_type: the library's "+" refuses them
    "slap2": (
        "slap2_instrument.json",
        ["slap2_acquisition.json", "slap2_structure_acquisition.json"],
        "invalid",
        {"merge.key_field_conflict"},
    ),
    # the acquisition's active devices (lasers, patch cords) are not in the FIP instrument
    "fip_ophys": (
        "fip_ophys_instrument.json",
        ["ophys_acquisition.json"],
        "invalid",
        {"metadata.invalid"},
    ),
    # instrument_id MESO.1 against 'mesoscope'; we also name the behavior-videos stream the
    # instrument does not declare (AIND's modality rule, which the library does not check)
    "multiplane_ophys": (
        "multiplane_ophys_instrument.json",
        ["multiplane_ophys_acquisition.json"],
        "invalid",
        {"merge.acquisition_instrument_id", "merge.modalities_mismatch"},
    ),
    # DISAGREEMENT: the library gives no verdict, it raises AttributeError (the acquisition's
    # streams are all external); ours names the cause its Metadata check would have reached:
    # the acquisition's instrument_id (none) matches no staged instrument ('Dogwood')
    "barseq": (
        "barseq_instrument.json",
        ["barseq_acquisition.json"],
        "crash",
        {"merge.acquisition_instrument_id"},
    ),
}


@pytest.mark.parametrize("session", sorted(SESSIONS))
def test_sessions_of_upstream_pairs(session: str, tmp_path: Path) -> None:
    instrument, acquisitions, theirs, rules = SESSIONS[session]
    folder = tmp_path / session
    documents = _session(folder, instrument, acquisitions)
    assert _library_session_verdict(documents) == theirs
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 1, run.output
    report = Report.model_validate_json(run.stdout)
    assert {i.rule for i in report.errors} == rules, [i.model_dump() for i in report.errors]
    assert "library.crash" not in {i.rule for i in report.issues}


def test_the_multiplane_ophys_record_804670_is_valid(tmp_path: Path) -> None:
    """AIND's real record (aind-metadata-mapper tests/resources/v2_metadata, subject 804670):
    the library validates it whole, and `validate` accepts it, with the job AIND's
    transfer service would have run (platform multiplane-ophys, the three modalities of its
    data description, acq_datetime at the acquisition's start second)."""
    record = AIND / "metadata_mapper" / "v2_metadata"
    folder = tmp_path / "804670"
    folder.mkdir()
    documents: dict[str, Any] = {}
    for path in sorted(record.glob("*.json")):
        (folder / path.name).write_bytes(path.read_bytes())
        documents[path.name] = json.loads(path.read_bytes())
    job = {
        "job_type": "default",
        "project_name": "Learning mFISH-V1omFISH",
        "platform": "multiplane-ophys",
        "subject_id": "804670",
        "acq_datetime": "2025-09-17T10:26:00-07:00",
        "modalities": ["pophys", "behavior", "behavior-videos"],
    }
    (folder / "upload_job.json").write_text(json.dumps(job))
    for modality in job["modalities"]:
        (folder / modality).mkdir()
        (folder / modality / "data.bin").write_bytes(b"\x00" * 16)
    name = "multiplane-ophys_804670_2025-09-17_10-26-00"
    assert _library_session_verdict({**documents, "_asset": name}) == "valid"
    run = CliRunner().invoke(app, ["validate", str(folder), "--offline", "--json"])
    assert run.exit_code == 0, run.output
    report = Report.model_validate_json(run.stdout)
    assert report.asset_name == name
    assert report.errors == []
    warned = {i.rule for i in report.warnings}
    # AIND's modality policy: behavior and behavior-videos have no stream, the instrument
    # declares no modalities; each is a warning, not a rejection
    assert {"merge.modality_without_stream", "merge.instrument_without_modalities"} <= warned
    # every older-2.x file is a note naming its version
    older = {i.file for i in report.issues if i.rule == "schema.version_older"}
    assert older == {path.name for path in record.glob("*.json")}
