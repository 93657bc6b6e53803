"""A realistic sample session folder, built from aind-data-schema's own models.

Tests, benchmarks, the local mode and the documentation all need a session that looks like what
a rig really uploads: two instruments (behavior and ecephys) that share one Harp clock, one
acquisition per instrument, subject / procedures / data_description, data files of a chosen size
and, written last because its arrival triggers the pipeline, ``upload_job.json``. Every metadata
file is constructed as a pydantic model of aind-data-schema 2.9.2 and dumped with
``model_dump_json``, so it is valid by construction and the merged whole validates as
``Metadata``; tests that break a session start from this known-good one.

The data files are synthetic but shaped like the real thing (a trials CSV, a Harp register
dump, an int16 Neuropixels-like continuous stream with noise and spikes) so that compression
ratios and transfer times measured on them mean something. Generation uses only the standard
library (no numpy dependency) and is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from aind_data_schema.components.configs import (
    EphysAssemblyConfig,
    LickSpoutConfig,
    Liquid,
    ManipulatorConfig,
    ProbeConfig,
    Valence,
)
from aind_data_schema.components.coordinates import (
    Axis,
    CoordinateSystem,
    CoordinateSystemLibrary,
    Rotation,
    Translation,
)
from aind_data_schema.components.devices import (
    Camera,
    CameraAssembly,
    CameraTarget,
    Computer,
    Device,
    EphysAssembly,
    EphysProbe,
    HarpDevice,
    Lens,
    LickSpout,
    LickSpoutAssembly,
    Manipulator,
    NeuropixelsBasestation,
    ProbePort,
    Speaker,
)
from aind_data_schema.components.identifiers import Code, Person, Software
from aind_data_schema.components.subject_procedures import Surgery
from aind_data_schema.components.subjects import MouseSubject, Sex
from aind_data_schema.components.surgery_procedures import (
    Craniotomy,
    CraniotomyType,
    Headframe,
    HeadframeMaterial,
)
from aind_data_schema.core.acquisition import (
    Acquisition,
    AcquisitionSubjectDetails,
    DataStream,
    PerformanceMetrics,
    StimulusEpoch,
)
from aind_data_schema.core.data_description import DataDescription, Funding
from aind_data_schema.core.instrument import Instrument
from aind_data_schema.core.procedures import Procedures
from aind_data_schema.core.subject import Subject
from aind_data_schema_models.brain_atlas import CCFv3
from aind_data_schema_models.coordinates import AnatomicalRelative, AxisName, Direction, Origin
from aind_data_schema_models.data_name_patterns import DataLevel
from aind_data_schema_models.devices import CameraChroma, DataInterface, DetectorType, ProbeModel
from aind_data_schema_models.harp_types import HarpDeviceType
from aind_data_schema_models.modalities import Modality
from aind_data_schema_models.organizations import Organization
from aind_data_schema_models.species import Species, Strain
from aind_data_schema_models.stimulus_modality import StimulusModality
from aind_data_schema_models.units import MassUnit, SizeUnit, VolumeUnit
from pydantic import BaseModel

from upload_processor.domain.units import MiB
from upload_processor_tools.sample_files import write_behavior_data, write_ecephys_data

DEFAULT_ACQ_DATETIME = datetime(2025, 6, 12, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
SAMPLE_PROJECT_NAME = "Example Foraging Project"

# Instrument ids of the two rigs. aind-data-schema 2.9.2 merges instrument ids (and the
# acquisitions' instrument_id) with merge_str_alphabetical: "_".join(sorted({a, b})). Each
# acquisition names its own rig, so the merged acquisition and the merged instrument both get
# MERGED_INSTRUMENT_ID, which Metadata's compatibility check requires to be equal.
BEHAVIOR_INSTRUMENT_ID = "447-FORAGING-1"
ECEPHYS_INSTRUMENT_ID = "447-EPHYS-1"
MERGED_INSTRUMENT_ID = "_".join(sorted({BEHAVIOR_INSTRUMENT_ID, ECEPHYS_INSTRUMENT_ID}))

# The one device both instruments carry: the Harp clock generator (merge rule 3 allows it).
SHARED_CLOCK_NAME = "Harp Behavior"

# Acquisition.__add__ refuses to combine acquisitions whose acquisition_type differs.
ACQUISITION_TYPE = "Dynamic foraging with ecephys"

_LOCATION = "Room 447, rig FORAGING-EPHYS-1"

# The library's PINPOINT_PROBE_RSAB carries a DEPTH axis, which 2.9.2 itself warns is
# deprecated; a plain 3-axis probe frame (origin at the tip) keeps the sample warning-free.
PROBE_RSA = CoordinateSystem(
    name="PROBE_RSA",
    origin=Origin.TIP,
    axis_unit=SizeUnit.UM,
    axes=[
        Axis(name=AxisName.X, direction=Direction.LR),
        Axis(name=AxisName.Y, direction=Direction.IS),
        Axis(name=AxisName.Z, direction=Direction.PA),
    ],
)
_SESSION_MINUTES = 50

# Neuropixels-like stream geometry.


def asset_name_for(subject_id: str, acq_datetime: datetime, platform: str | None = None) -> str:
    """The asset name of docs/architecture.md ("[<platform>_]<subject_id>_<YYYY-MM-DD_HH-MM-SS>").

    Written in acq_datetime's own offset with fractional seconds dropped, as
    aind-data-transfer-service builds s3_prefix; data_description.name must equal it.
    """
    name = f"{subject_id}_{acq_datetime:%Y-%m-%d_%H-%M-%S}"
    return f"{platform}_{name}" if platform else name


def project_record(project_name: str = SAMPLE_PROJECT_NAME) -> dict[str, object]:
    """The sample project's funding and investigators, as the registry's ``project`` kind
    holds them (`upload-processor registry put project`): the same as the sample
    data_description.json's, so a session built with ``data_description=False`` gets an
    equivalent data_description from the pipeline."""
    return {
        "project_name": project_name,
        "funding_source": [f.model_dump(mode="json") for f in _funding_source()],
        "investigators": [p.model_dump(mode="json") for p in _investigators()],
    }


def build_session(
    dest: Path,
    *,
    subject_id: str = "750101",
    acq_datetime: datetime = DEFAULT_ACQ_DATETIME,
    project_name: str = SAMPLE_PROJECT_NAME,
    data_mb_per_modality: float = 2.0,
    conflicting_subject_id: str | None = None,
    user_email: str = "scientist@example.org",
    write_job: bool = True,
    data_description: bool = True,
) -> Path:
    """Write a complete, valid behavior + ecephys session into ``dest`` and return ``dest``.

    ``conflicting_subject_id`` makes the ecephys acquisition name another subject, the classic
    mistake merge rule 2 must reject. ``write_job=False`` leaves out ``upload_job.json`` (the
    trigger), for tests that stage a session before "uploading" the job.
    ``data_description=False`` leaves out ``data_description.json``: the pipeline then builds it
    from the job and the project's registered funding and investigators (`project_record`).
    Data files total
    about ``data_mb_per_modality`` MB per modality and depend only on the arguments.
    """
    if acq_datetime.tzinfo is None or acq_datetime.utcoffset() is None:
        raise ValueError("acq_datetime must be timezone-aware (the asset name uses its offset)")
    if data_mb_per_modality < 0:
        raise ValueError("data_mb_per_modality must be >= 0")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # Deterministic test data, not secrets: a seeded PRNG is the point.
    rng = random.Random(f"{subject_id}|{acq_datetime.isoformat()}|{data_mb_per_modality}")  # noqa: S311

    start = acq_datetime
    end = acq_datetime + timedelta(minutes=_SESSION_MINUTES)
    models = _metadata_models(subject_id, start, end, project_name, conflicting_subject_id)
    if not data_description:
        del models["data_description.json"]
    for filename, model in models.items():
        (dest / filename).write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")

    budget = int(data_mb_per_modality * MiB)
    write_behavior_data(dest / "behavior", budget, start, rng)
    write_ecephys_data(dest / "ecephys", budget, start, rng)

    if write_job:
        _write_job(dest, subject_id, acq_datetime, project_name, user_email)
    return dest


def _metadata_models(
    subject_id: str,
    start: datetime,
    end: datetime,
    project_name: str,
    conflicting_subject_id: str | None,
) -> dict[str, BaseModel]:
    """The session's metadata files (aind-data-schema models) by file name."""
    return {
        "instrument_behavior.json": _behavior_instrument(start.date()),
        "instrument_ecephys.json": _ecephys_instrument(start.date()),
        "acquisition_behavior.json": _behavior_acquisition(subject_id, start, end),
        "acquisition_ecephys.json": _ecephys_acquisition(
            conflicting_subject_id or subject_id, start, end
        ),
        "subject.json": _subject(subject_id, start.date()),
        "procedures.json": _procedures(subject_id, start.date()),
        "data_description.json": _data_description(
            subject_id, start, project_name, asset_name_for(subject_id, start)
        ),
    }


def _write_job(
    dest: Path, subject_id: str, acq_datetime: datetime, project_name: str, user_email: str
) -> None:
    """The minimal upload_job.json for the session (written last: it is the trigger)."""
    job = {
        "job_type": "default",
        "project_name": project_name,
        "subject_id": subject_id,
        "acq_datetime": acq_datetime.isoformat(),
        "modalities": ["behavior", "ecephys"],
        "user_email": user_email,
    }
    (dest / "upload_job.json").write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- instruments


def _harp_clock() -> HarpDevice:
    """The shared clock: identical in both instruments, so the library keeps one copy."""
    return HarpDevice(
        name=SHARED_CLOCK_NAME,
        serial_number="HB-000127",
        harp_device_type=HarpDeviceType.BEHAVIOR,
        core_version="1.13",
        firmware_version="3.1",
        hardware_version="1.1",
        is_clock_generator=True,
    )


def _behavior_instrument(modified: date) -> Instrument:
    """The foraging rig: two lick spouts, a speaker for go cues, a face camera."""

    def spout(side: str) -> LickSpout:
        return LickSpout(
            name=f"{side} lick spout",
            spout_diameter=Decimal("1.2"),
            solenoid_valve=Device(
                name=f"{side} solenoid valve",
                manufacturer=Organization.THE_LEE_COMPANY,
                model="LHDA0531115H",
            ),
            lick_sensor=Device(name=f"{side} lick sensor", model="capacitive"),
        )

    return Instrument(
        instrument_id=BEHAVIOR_INSTRUMENT_ID,
        location=_LOCATION,
        modification_date=modified - timedelta(days=14),
        modalities=[Modality.BEHAVIOR],
        global_coordinate_system=CoordinateSystemLibrary.BREGMA_ARI,
        components=[
            _harp_clock(),
            LickSpoutAssembly(
                name="Lick spout assembly",
                lick_spouts=[spout("Left"), spout("Right")],
            ),
            Speaker(
                name="Go cue speaker",
                manufacturer=Organization.OTHER,
                model="Visaton K 50 WP",
                relative_position=[AnatomicalRelative.ANTERIOR],
                notes="Generic 8 ohm speaker driven by the Harp sound card",
            ),
            CameraAssembly(
                name="Face camera assembly",
                target=CameraTarget.FACE,
                relative_position=[AnatomicalRelative.LEFT],
                camera=Camera(
                    name="Face camera",
                    detector_type=DetectorType.CAMERA,
                    manufacturer=Organization.FLIR,
                    data_interface=DataInterface.USB,
                    chroma=CameraChroma.BW,
                    sensor_width=720,
                    sensor_height=540,
                ),
                lens=Lens(name="Face camera lens", manufacturer=Organization.COMPUTAR),
            ),
            Computer(name="Behavior computer", operating_system="Windows 11"),
        ],
    )


def _ecephys_instrument(modified: date) -> Instrument:
    """The ecephys rig: one Neuropixels basestation and one probe on a manipulator."""
    return Instrument(
        instrument_id=ECEPHYS_INSTRUMENT_ID,
        location=_LOCATION,
        modification_date=modified - timedelta(days=3),
        modalities=[Modality.ECEPHYS],
        global_coordinate_system=CoordinateSystemLibrary.BREGMA_ARI,
        components=[
            _harp_clock(),
            NeuropixelsBasestation(
                name="Basestation Slot 3",
                basestation_firmware_version="2.0169",
                bsc_firmware_version="3.2176",
                slot=3,
                ports=[ProbePort(index=1, probes=["Probe A"])],
            ),
            EphysAssembly(
                name="Ephys assembly A",
                manipulator=Manipulator(
                    name="Manipulator A",
                    manufacturer=Organization.NEW_SCALE_TECHNOLOGIES,
                    serial_number="SN32148",
                ),
                probes=[
                    EphysProbe(
                        name="Probe A",
                        probe_model=ProbeModel.NP1,
                        serial_number="18194814012",
                        headstage=Device(name="Headstage A", serial_number="23120401"),
                    )
                ],
            ),
            Computer(name="Ephys computer", operating_system="Windows 11"),
        ],
    )


# --------------------------------------------------------------------------- acquisitions


def _behavior_acquisition(subject_id: str, start: datetime, end: datetime) -> Acquisition:
    """Behavior side: the foraging task; it alone carries subject_details (the library's
    Acquisition.__add__ refuses two sets) and Metadata requires them for in-vivo work.

    Long only because it is declarative data: one aind-data-schema model, field by field."""
    return Acquisition(
        subject_id=subject_id,
        instrument_id=BEHAVIOR_INSTRUMENT_ID,
        acquisition_type=ACQUISITION_TYPE,
        acquisition_start_time=start,
        acquisition_end_time=end,
        experimenters=["Jane Doe"],
        ethics_review_id=["2115"],
        subject_details=AcquisitionSubjectDetails(
            animal_weight_prior=Decimal("24.1"),
            animal_weight_post=Decimal("24.6"),
            weight_unit=MassUnit.G,
            mouse_platform_name="Tube",
            reward_consumed_total=Decimal("0.85"),
            reward_consumed_unit=VolumeUnit.ML,
        ),
        data_streams=[
            DataStream(
                stream_start_time=start,
                stream_end_time=end,
                modalities=[Modality.BEHAVIOR],
                active_devices=[
                    SHARED_CLOCK_NAME,
                    "Lick spout assembly",
                    "Go cue speaker",
                    "Face camera assembly",
                ],
                configurations=[
                    LickSpoutConfig(
                        device_name=f"{side} lick spout",
                        solution=Liquid.WATER,
                        solution_valence=Valence.POSITIVE,
                        volume=2.0,
                        volume_unit=VolumeUnit.UL,
                        relative_position=[AnatomicalRelative.ANTERIOR, position],
                    )
                    for side, position in (
                        ("Left", AnatomicalRelative.LEFT),
                        ("Right", AnatomicalRelative.RIGHT),
                    )
                ],
            )
        ],
        stimulus_epochs=[
            StimulusEpoch(
                stimulus_name="Dynamic foraging",
                stimulus_start_time=start,
                stimulus_end_time=end,
                stimulus_modalities=[StimulusModality.AUDITORY],
                active_devices=["Go cue speaker", "Left lick spout", "Right lick spout"],
                code=Code(
                    url="https://github.com/example-org/dynamic-foraging-task",
                    version="1.6.11",
                    core_dependency=Software(name="Bonsai", version="2.8.5"),
                ),
                performance_metrics=PerformanceMetrics(
                    trials_total=412,
                    trials_finished=389,
                    trials_rewarded=201,
                    reward_consumed_during_epoch=Decimal("850"),
                    reward_consumed_unit=VolumeUnit.UL,
                ),
            )
        ],
    )


def _ecephys_acquisition(subject_id: str, start: datetime, end: datetime) -> Acquisition:
    """Ecephys side: one probe in VISp; names its own rig, like a real per-rig writer."""
    return Acquisition(
        subject_id=subject_id,
        instrument_id=ECEPHYS_INSTRUMENT_ID,
        acquisition_type=ACQUISITION_TYPE,
        acquisition_start_time=start,
        acquisition_end_time=end,
        experimenters=["Jane Doe"],
        ethics_review_id=["2115"],
        global_coordinate_system=CoordinateSystemLibrary.BREGMA_ARI,
        data_streams=[
            DataStream(
                stream_start_time=start,
                stream_end_time=end,
                modalities=[Modality.ECEPHYS],
                active_devices=["Basestation Slot 3", "Ephys assembly A"],
                configurations=[
                    EphysAssemblyConfig(
                        device_name="Ephys assembly A",
                        manipulator=ManipulatorConfig(
                            device_name="Manipulator A",
                            local_coordinate_system=CoordinateSystemLibrary.MPM_MANIP_RFB,
                            local_axis_positions=Translation(translation=[8422.0, 4205.0, 11087.5]),
                        ),
                        probes=[
                            ProbeConfig(
                                device_name="Probe A",
                                primary_targeted_structure=CCFv3.VISP,
                                local_coordinate_system=PROBE_RSA,
                                transform=[
                                    Translation(translation=[-3.8, -2.6, -3.2]),
                                    Rotation(angles=[14.0, 0.0, 0.0]),
                                ],
                            )
                        ],
                    )
                ],
            )
        ],
    )


# --------------------------------------------------------------------------- subject etc.


def _subject(subject_id: str, session_day: date) -> Subject:
    """A purchased wild-type mouse (no in-house breeding info needed)."""
    return Subject(
        subject_id=subject_id,
        subject_details=MouseSubject(
            sex=Sex.MALE,
            date_of_birth=session_day - timedelta(days=112),
            strain=Strain.C57BL_6J,
            species=Species.HOUSE_MOUSE,
            genotype="wt/wt",
            source=Organization.JAX,
        ),
    )


def _procedures(subject_id: str, session_day: date) -> Procedures:
    """Headframe and craniotomy: what an acute ecephys mouse has had, no injections."""
    return Procedures(
        subject_id=subject_id,
        subject_procedures=[
            Surgery(
                start_date=session_day - timedelta(days=21),
                experimenters=["Sam Surgeon"],
                ethics_review_id="2115",
                animal_weight_prior=23.8,
                animal_weight_post=24.0,
                procedures=[
                    Headframe(
                        headframe_type="WHC #42",
                        headframe_part_number="0160-100-42",
                        headframe_material=HeadframeMaterial.TITANIUM,
                    ),
                    Craniotomy(craniotomy_type=CraniotomyType.DHC),
                ],
            )
        ],
    )


def _funding_source() -> list[Funding]:
    """The sample project's funding (internal AIND work is funded by the Allen Institute)."""
    return [Funding(funder=Organization.AI)]


def _investigators() -> list[Person]:
    """The sample project's investigators."""
    return [Person(name="Jane Doe")]


def _data_description(
    subject_id: str, acq_datetime: datetime, project_name: str, asset_name: str
) -> DataDescription:
    """Raw-data description whose name is the asset name (docs/architecture.md, "Asset name")."""
    return DataDescription(
        name=asset_name,
        subject_id=subject_id,
        creation_time=acq_datetime,
        institution=Organization.AIND,
        funding_source=_funding_source(),
        data_level=DataLevel.RAW,
        investigators=_investigators(),
        project_name=project_name,
        modalities=[Modality.BEHAVIOR, Modality.ECEPHYS],
    )
