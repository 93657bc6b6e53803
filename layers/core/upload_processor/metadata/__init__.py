"""The metadata rules: parse, validate and merge a session's aind-data-schema files.

The only room that imports aind-data-schema's core models to validate and merge; it reads
bytes and returns a report, and calls no AWS service. ``assemble`` runs it all; the modules
each hold one step, and every report issue carries a stable rule id:

- files: which files are metadata, of which type, which take part (several instrument,
  acquisition and quality_control files are folded; ``merge.exact_name_wins``,
  ``merge.multiple_files``);
- parse: strict JSON (``json.empty``, ``json.malformed``, ``json.duplicate_key``,
  ``json.not_object``);
- local_time: naive timestamps read in the deployment's default zone (``metadata.naive_datetime``);
- validate: one file against its model, and the whole as ``Metadata`` (``json.wrong_type``,
  ``schema.invalid``, ``schema.version_mismatch`` and the warnings ``schema.version_older`` /
  ``schema.version_newer``, ``metadata.invalid``);
- fold: the library's ``+`` per core type and the combined instrument id (``merge.failed``);
- library_log: what the library logs and warns (``library.warning``), and an exception it raises
  (``library.crash``, naming the files);
- rules.devices: shared devices and the one Harp clock (``merge.shared_device``,
  ``merge.clock_mismatch``);
- rules.identity: subject and instrument ids (``merge.subject_id_mismatch``,
  ``merge.acquisition_instrument_id``);
- rules.modalities: ``merge.modalities_mismatch`` and the warnings ``merge.modality_without_stream``,
  ``merge.instrument_without_modalities``;
- rules.time: ``merge.acq_datetime_outside`` (at one-second resolution), ``merge.time_zone_lost``,
  the note ``merge.fixed_offset``;
- rules.procedures: staged and fetched procedures merged (``procedures.duplicate``);
- rules.completeness: ``metadata.missing_file``, ``data_description.name_mismatch``;
- library_log: what the library logs or warns (``library.warning``);
- assembly: ``assemble`` and its result, the ``Assembly``.
"""

from upload_processor.metadata.assembly import Assembly, assemble
from upload_processor.metadata.files import (
    CORE_TYPES,
    EXTRA_SEPARATOR,
    MERGEABLE_TYPES,
    extra_type_of,
    metadata_type_of,
)
from upload_processor.metadata.job_facts import JobFacts
from upload_processor.metadata.rules.completeness import REQUIRED_TYPES
from upload_processor.metadata.validate import MODELS

__all__ = [
    "CORE_TYPES",
    "EXTRA_SEPARATOR",
    "MERGEABLE_TYPES",
    "MODELS",
    "REQUIRED_TYPES",
    "Assembly",
    "JobFacts",
    "assemble",
    "extra_type_of",
    "metadata_type_of",
]
