"""Job types: presets of `tasks`, and an upload's own `tasks` merged over them field by field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from upload_processor.domain.job_types import (
    DEFAULT_JOB_TYPES,
    MODALITY_TASKS,
    OPT_IN_TASKS,
    TASK_IDS,
    deep_merge,
    resolve,
    resolve_job,
    validate_preset,
)
from upload_processor.domain.upload_job import UploadJob, parse_upload_job
from upload_processor.errors import UnknownJobTypeError, UploadJobError

BASE: dict[str, Any] = {
    "job_type": "default",
    "project_name": "Example Foraging Project",
    "subject_id": "750101",
    "acq_datetime": "2025-06-12T15:03:00-07:00",
    "modalities": ["behavior", "ecephys"],
    "user_email": "scientist@example.org",
}
TASK_DEFAULTS = {"skip_task": False, "image_version": None, "job_settings": None}


def _job(**changes: Any) -> UploadJob:
    job, _ = parse_upload_job(json.dumps({**BASE, **changes}).encode())
    return job


# --- deep_merge ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [
        ({}, {}, {}),
        ({"a": 1}, {}, {"a": 1}),
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}),
        (
            {"a": {"x": {"p": 1, "q": 2}, "y": 2}},
            {"a": {"x": {"q": 9}}},
            {"a": {"x": {"p": 1, "q": 9}, "y": 2}},
        ),
        ({"a": {"x": 1}}, {"a": {"z": 2}}, {"a": {"x": 1, "z": 2}}),
        ({"a": {"x": 1}}, {"a": 5}, {"a": 5}),  # a scalar replaces a dict
        ({"a": 5}, {"a": {"x": 1}}, {"a": {"x": 1}}),  # a dict replaces a scalar
        ({"a": {"x": 1}}, {"a": None}, {"a": None}),  # null is a value, not "no override"
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists are replaced, not concatenated
        ({"a": {"x": 1}}, {"a": {}}, {"a": {"x": 1}}),
    ],
)
def test_deep_merge(
    base: dict[str, Any], override: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert deep_merge(base, override) == expected


def test_deep_merge_copies_and_never_mutates() -> None:
    base = {"a": {"x": [1]}, "b": {"y": 1}}
    override = {"b": {"z": [2]}, "c": {"w": 3}}
    before = copy.deepcopy((base, override))
    out = deep_merge(base, override)
    assert (base, override) == before
    out["a"]["x"].append(9)
    out["b"]["z"].append(9)
    out["c"]["w"] = 0
    assert (base, override) == before


# --- resolve: presets ----------------------------------------------------------------------------


def test_default_preset_resolves_every_task() -> None:
    resolved = resolve(_job())
    tasks = resolved["tasks"]
    assert set(tasks) == set(TASK_IDS)
    assert tasks["gather_preliminary_metadata"] == {
        **TASK_DEFAULTS,
        "job_settings": {"raise_if_invalid": True},
    }
    assert tasks["check_s3_folder_exists"] == TASK_DEFAULTS
    assert tasks["gather_final_metadata"] == TASK_DEFAULTS
    assert tasks["remove_source_folders"] == {**TASK_DEFAULTS, "skip_task": True}  # opt-in
    # modality tasks resolve to one entry per declared modality
    compress = tasks["modality_transformation_settings"]
    assert list(compress) == ["behavior", "ecephys"]
    for entry in compress.values():
        assert entry == {**TASK_DEFAULTS, "job_settings": {"codec": "zstd", "level": 3}}


def test_resolved_job_carries_every_field_as_json() -> None:
    resolved = resolve(_job(email_notification_types=["retry", "begin"], platform="ecephys"))
    assert json.loads(json.dumps(resolved)) == resolved
    assert resolved["job_type"] == "default"
    assert resolved["subject_id"] == "750101"
    assert resolved["project_name"] == "Example Foraging Project"
    assert resolved["acq_datetime"] == "2025-06-12T15:03:00-07:00"
    assert resolved["modalities"] == ["behavior", "ecephys"]
    assert resolved["platform"] == "ecephys"
    assert resolved["user_email"] == "scientist@example.org"
    assert resolved["email_notification_types"] == ["begin", "retry"]
    assert resolved["s3_bucket"] == "default"


@pytest.mark.parametrize(("job_type", "level"), [("default", 3), ("behavior", 3)])
def test_shipped_presets(job_type: str, level: int) -> None:
    resolved = resolve(_job(job_type=job_type, modalities=["ecephys"]))
    assert resolved["tasks"]["modality_transformation_settings"]["ecephys"]["job_settings"] == {
        "codec": "zstd",
        "level": level,
    }


def test_the_ecephys_job_type_archives_ecephys_as_flac_and_the_rest_at_zstd_5() -> None:
    resolved = resolve(_job(job_type="ecephys", modalities=["behavior", "ecephys"]))
    settings = resolved["tasks"]["modality_transformation_settings"]
    assert settings["ecephys"]["job_settings"] == {"codec": "flac"}
    assert settings["behavior"]["job_settings"] == {"codec": "zstd", "level": 5}


def test_resolve_never_mutates_presets_or_job() -> None:
    presets_before = copy.deepcopy(DEFAULT_JOB_TYPES)
    job = _job(
        tasks={
            "gather_preliminary_metadata": {"job_settings": {"raise_if_invalid": False}},
            "modality_transformation_settings": {"ecephys": {"job_settings": {"level": 9}}},
        }
    )
    job_before = job.model_dump()
    first = resolve(job)
    first["tasks"]["gather_preliminary_metadata"]["job_settings"]["x"] = 1
    first["tasks"]["modality_transformation_settings"]["behavior"]["job_settings"]["level"] = 0
    assert presets_before == DEFAULT_JOB_TYPES
    assert job.model_dump() == job_before
    assert resolve(_job())["tasks"]["gather_preliminary_metadata"]["job_settings"] == {
        "raise_if_invalid": True
    }


# --- resolve: an upload's overrides ----------------------------------------------------------


CUSTOM = {
    "custom": {
        "tasks": {
            "gather_preliminary_metadata": {
                "image_version": "1.0",
                "job_settings": {
                    "raise_if_invalid": True,
                    "instrument_settings": {"instrument_id": "RIG-1"},
                    "data_description_settings": {"group": "G", "tags": ["a", "b"]},
                },
            },
            "check_s3_folder_exists": {},
            "modality_transformation_settings": {"job_settings": {"codec": "zstd", "level": 3}},
        }
    }
}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({}, CUSTOM["custom"]["tasks"]["gather_preliminary_metadata"]),
        (
            {"job_settings": {"raise_if_invalid": False}},
            {
                "image_version": "1.0",
                "job_settings": {
                    "raise_if_invalid": False,
                    "instrument_settings": {"instrument_id": "RIG-1"},
                    "data_description_settings": {"group": "G", "tags": ["a", "b"]},
                },
            },
        ),
        (
            {"job_settings": {"data_description_settings": {"group": "H"}}},
            {
                "image_version": "1.0",
                "job_settings": {
                    "raise_if_invalid": True,
                    "instrument_settings": {"instrument_id": "RIG-1"},
                    "data_description_settings": {"group": "H", "tags": ["a", "b"]},
                },
            },
        ),
        (
            {
                "image_version": "2.0",
                "job_settings": {"instrument_settings": {"instrument_id": "R2"}},
            },
            {
                "image_version": "2.0",
                "job_settings": {
                    "raise_if_invalid": True,
                    "instrument_settings": {"instrument_id": "R2"},
                    "data_description_settings": {"group": "G", "tags": ["a", "b"]},
                },
            },
        ),
        (
            {"skip_task": True},
            {**CUSTOM["custom"]["tasks"]["gather_preliminary_metadata"], "skip_task": True},
        ),
    ],
)
def test_task_override_merges_field_by_field(
    override: dict[str, Any], expected: dict[str, Any]
) -> None:
    job = _job(job_type="custom", tasks={"gather_preliminary_metadata": override})
    resolved = resolve(job, CUSTOM)
    assert resolved["tasks"]["gather_preliminary_metadata"] == {**TASK_DEFAULTS, **expected}
    # everything else still comes from the job type
    assert resolved["tasks"]["check_s3_folder_exists"] == TASK_DEFAULTS


def test_default_gather_override_keeps_raise_if_invalid() -> None:
    job = _job(
        tasks={
            "gather_preliminary_metadata": {
                "job_settings": {"instrument_settings": {"instrument_id": "RIG-7"}}
            }
        }
    )
    assert resolve(job)["tasks"]["gather_preliminary_metadata"]["job_settings"] == {
        "raise_if_invalid": True,
        "instrument_settings": {"instrument_id": "RIG-7"},
    }


@pytest.mark.parametrize("task_id", ["check_s3_folder_exists", "gather_final_metadata"])
def test_skip_task_carried_through(task_id: str) -> None:
    resolved = resolve(_job(tasks={task_id: {"skip_task": True}}))
    assert resolved["tasks"][task_id]["skip_task"] is True
    others = [
        t for t in TASK_IDS if t != task_id and t not in MODALITY_TASKS and t not in OPT_IN_TASKS
    ]
    assert all(resolved["tasks"][t]["skip_task"] is False for t in others)
    assert all(resolved["tasks"][t]["skip_task"] is True for t in OPT_IN_TASKS)


def test_per_modality_override_changes_only_that_modality() -> None:
    job = _job(
        tasks={"modality_transformation_settings": {"ecephys": {"job_settings": {"level": 9}}}}
    )
    compress = resolve(job)["tasks"]["modality_transformation_settings"]
    assert compress["ecephys"]["job_settings"] == {"codec": "zstd", "level": 9}
    assert compress["behavior"]["job_settings"] == {"codec": "zstd", "level": 3}


def test_per_modality_override_skip_task_for_one_modality() -> None:
    job = _job(tasks={"modality_transformation_settings": {"behavior": {"skip_task": True}}})
    compress = resolve(job)["tasks"]["modality_transformation_settings"]
    assert compress["behavior"]["skip_task"] is True
    assert compress["behavior"]["job_settings"] == {"codec": "zstd", "level": 3}
    assert compress["ecephys"]["skip_task"] is False


def test_single_task_override_of_a_modality_task_applies_to_every_modality() -> None:
    job = _job(
        job_type="ecephys",
        tasks={"modality_transformation_settings": {"job_settings": {"codec": "none"}}},
    )
    compress = resolve(job)["tasks"]["modality_transformation_settings"]
    assert compress["behavior"]["job_settings"] == {"codec": "none", "level": 5}
    assert compress["ecephys"]["job_settings"] == {"codec": "none"}


def test_modality_spelling_in_the_job_keys_the_resolved_tasks() -> None:
    job = _job(modalities=[{"name": "Extracellular electrophysiology", "abbreviation": "ECEPHYS"}])
    assert list(resolve(job)["tasks"]["modality_transformation_settings"]) == ["ecephys"]


def test_per_modality_preset() -> None:
    presets = {
        "rig": {
            "tasks": {
                "modality_transformation_settings": {
                    "ecephys": {"job_settings": {"codec": "zstd", "level": 7}},
                    "behavior": {"skip_task": True},
                }
            }
        }
    }
    job = _job(
        job_type="rig",
        tasks={"modality_transformation_settings": {"ecephys": {"job_settings": {"level": 8}}}},
    )
    compress = resolve(job, presets)["tasks"]["modality_transformation_settings"]
    assert compress["ecephys"] == {**TASK_DEFAULTS, "job_settings": {"codec": "zstd", "level": 8}}
    assert compress["behavior"] == {**TASK_DEFAULTS, "skip_task": True}


def test_per_modality_preset_without_one_of_the_jobs_modalities_uses_task_defaults() -> None:
    presets = {
        "rig": {
            "tasks": {
                "modality_transformation_settings": {
                    "ecephys": {"job_settings": {"codec": "zstd", "level": 7}}
                }
            }
        }
    }
    compress = resolve(_job(job_type="rig"), presets)["tasks"]["modality_transformation_settings"]
    assert compress["ecephys"]["job_settings"] == {"codec": "zstd", "level": 7}
    assert compress["behavior"] == TASK_DEFAULTS


# --- resolve: errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_type", "presets", "listed"),
    [
        ("ophys", None, "behavior, default, ecephys"),
        ("Default", None, "behavior, default, ecephys"),
        ("default", {"custom": {"tasks": {}}, "alpha": {"tasks": {}}}, "alpha, custom"),
    ],
)
def test_unknown_job_type(job_type: str, presets: dict[str, Any] | None, listed: str) -> None:
    with pytest.raises(UnknownJobTypeError) as caught:
        resolve(_job(job_type=job_type), presets, file="s/upload_job.json")
    err = caught.value
    assert isinstance(err, UploadJobError)  # ingest rejects it like any other job error
    (issue,) = err.issues
    assert (issue.severity, issue.rule, issue.field) == (
        "error",
        "job.unknown_job_type",
        "job_type",
    )
    assert issue.file == "s/upload_job.json"
    assert repr(job_type) in issue.message
    assert listed in issue.message
    assert str(err) == issue.message


def test_override_of_an_unknown_task_names_the_valid_ids() -> None:
    job = _job(tasks={"compress_data": {"skip_task": True}, "gather_metadata": {}})
    with pytest.raises(UploadJobError) as caught:
        resolve(job)
    err = caught.value
    assert not isinstance(err, UnknownJobTypeError)
    assert [(i.rule, i.field) for i in err.issues] == [
        ("job.unknown_task", "tasks.compress_data"),
        ("job.unknown_task", "tasks.gather_metadata"),
    ]
    for issue in err.issues:
        assert issue.severity == "error"
        for task_id in TASK_IDS:
            assert task_id in issue.message
    assert "compress_data" in str(err)


def test_task_missing_from_a_custom_preset_is_unknown_for_that_job_type() -> None:
    presets = {"lean": {"tasks": {"check_s3_folder_exists": {}}}}
    job = _job(job_type="lean", tasks={"gather_final_metadata": {"skip_task": True}})
    with pytest.raises(UploadJobError) as caught:
        resolve(job, presets)
    (issue,) = caught.value.issues
    assert issue.field == "tasks.gather_final_metadata"
    assert "check_s3_folder_exists" in issue.message


def test_per_modality_override_for_an_undeclared_modality_is_an_error() -> None:
    from upload_processor.domain.upload_job import parse_upload_job

    job, _ = parse_upload_job(
        json.dumps(
            {
                "job_type": "default",
                "project_name": "P",
                "subject_id": "750101",
                "acq_datetime": "2025-06-12T15:03:00-07:00",
                "modalities": ["behavior"],
                "tasks": {
                    "modality_transformation_settings": {"ecephys": {"job_settings": {"level": 9}}}
                },
            }
        ).encode()
    )
    with pytest.raises(UploadJobError) as caught:
        resolve(job)
    (issue,) = caught.value.issues
    assert issue.rule == "job.undeclared_modality"
    assert issue.field == "tasks.modality_transformation_settings.ecephys"


# --- the opt-in staging cleanup (remove_source_folders) --------------------------------------


@pytest.mark.parametrize("job_type", sorted(DEFAULT_JOB_TYPES))
def test_every_shipped_job_type_ships_the_cleanup_skipped(job_type: str) -> None:
    assert DEFAULT_JOB_TYPES[job_type]["tasks"]["remove_source_folders"] == {"skip_task": True}
    validate_preset(DEFAULT_JOB_TYPES[job_type])
    resolved = resolve(_job(job_type=job_type))
    assert resolved["tasks"]["remove_source_folders"]["skip_task"] is True


def test_a_job_asks_for_the_cleanup_and_provenance_says_so() -> None:
    job = _job(tasks={"remove_source_folders": {"skip_task": False}})
    resolution = resolve_job(job)
    assert resolution.resolved["tasks"]["remove_source_folders"]["skip_task"] is False
    assert resolution.sources["tasks.remove_source_folders.skip_task"] == "upload_job.json"
    # no longer an ignored aind-data-transfer-service task
    assert [n.field for n in resolution.notes] == []
    shipped = resolve_job(_job())
    assert shipped.sources["tasks.remove_source_folders.skip_task"] == "job type default"


def test_remove_staging_folder_is_still_ignored() -> None:
    resolution = resolve_job(_job(tasks={"remove_staging_folder": {"skip_task": False}}))
    assert [(n.rule, n.field) for n in resolution.notes] == [
        ("job.task_ignored", "tasks.remove_staging_folder")
    ]
    assert "remove_staging_folder" not in resolution.resolved["tasks"]


@pytest.mark.parametrize(
    "preset_tasks",
    [
        {"check_s3_folder_exists": {}},  # an SSM preset written before the task existed
        {"check_s3_folder_exists": {}, "remove_source_folders": {}},  # {} is still skipped
        {"remove_source_folders": {"image_version": "0.1.0"}},
    ],
)
def test_a_custom_preset_never_turns_the_cleanup_on_by_omission(
    preset_tasks: dict[str, Any],
) -> None:
    presets = {"lean": {"tasks": preset_tasks}}
    validate_preset(presets["lean"])
    resolved = resolve(_job(job_type="lean"), presets)
    assert resolved["tasks"]["remove_source_folders"]["skip_task"] is True
    resolution = resolve_job(_job(job_type="lean"), presets)
    assert resolution.sources["tasks.remove_source_folders.skip_task"] == "default"
    # and a job of that type may still ask for it
    asked = resolve(_job(job_type="lean", tasks={"remove_source_folders": {}}), presets)
    assert asked["tasks"]["remove_source_folders"]["skip_task"] is True
    asked = resolve(
        _job(job_type="lean", tasks={"remove_source_folders": {"skip_task": False}}), presets
    )
    assert asked["tasks"]["remove_source_folders"]["skip_task"] is False


def test_a_job_type_may_turn_the_cleanup_on_for_its_jobs() -> None:
    presets = {"scratch": {"tasks": {"remove_source_folders": {"skip_task": False}}}}
    resolution = resolve_job(_job(job_type="scratch"), presets)
    assert resolution.resolved["tasks"]["remove_source_folders"]["skip_task"] is False
    assert resolution.sources["tasks.remove_source_folders.skip_task"] == "job type scratch"


# --- job_settings: a typo or a wrong type is an error naming the field -------------------------


@pytest.mark.parametrize(
    ("tasks", "field", "rule", "says"),
    [
        (
            {"gather_preliminary_metadata": {"job_settings": {"raise_if_invalidd": False}}},
            "tasks.gather_preliminary_metadata.job_settings.raise_if_invalidd",
            "job.unknown_setting",
            "valid: instrument_settings, data_description_settings, raise_if_invalid",
        ),
        (
            {"gather_preliminary_metadata": {"job_settings": {"raise_if_invalid": "no"}}},
            "tasks.gather_preliminary_metadata.job_settings.raise_if_invalid",
            "job.invalid_setting",
            "valid boolean",
        ),
        (
            {
                "gather_preliminary_metadata": {
                    "job_settings": {"instrument_settings": {"instrument": "RIG-7"}}
                }
            },
            "tasks.gather_preliminary_metadata.job_settings.instrument_settings.instrument",
            "job.unknown_setting",
            "valid: instrument_id",
        ),
        (
            {
                "gather_preliminary_metadata": {
                    "job_settings": {"data_description_settings": {"tag": ["x"]}}
                }
            },
            "tasks.gather_preliminary_metadata.job_settings.data_description_settings.tag",
            "job.unknown_setting",
            "tags",
        ),
        (
            {"modality_transformation_settings": {"ecephys": {"job_settings": {"level": 40}}}},
            "tasks.modality_transformation_settings.ecephys.job_settings.level",
            "job.invalid_setting",
            "40 is not a zstd level: use 1-22",
        ),
        (
            {"modality_transformation_settings": {"job_settings": {"codec": "gzip"}}},
            "tasks.modality_transformation_settings.behavior.job_settings.codec",
            "job.invalid_setting",
            "'zstd', 'none', 'flac' or 'wavpack'",
        ),
        (
            {"gather_final_metadata": {"job_settings": {"verify": "thorough"}}},
            "tasks.gather_final_metadata.job_settings.verify",
            "job.invalid_setting",
            "'quick' or 'full'",
        ),
        (
            {"check_s3_folder_exists": {"job_settings": {"force": True}}},
            "tasks.check_s3_folder_exists.job_settings.force",
            "job.unknown_setting",
            "takes no settings",
        ),
    ],
)
def test_a_bad_setting_is_rejected_naming_its_field(
    tasks: dict[str, Any], field: str, rule: str, says: str
) -> None:
    job = _job(modalities=["behavior", "ecephys"], tasks=tasks)
    with pytest.raises(UploadJobError) as caught:
        resolve(job)
    issue = next(i for i in caught.value.issues if i.field == field)
    assert issue.rule == rule
    assert issue.file == "upload_job.json"
    assert says in issue.message


def test_a_preset_with_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="verifyy is not a setting"):
        validate_preset({"tasks": {"gather_final_metadata": {"job_settings": {"verifyy": "full"}}}})
