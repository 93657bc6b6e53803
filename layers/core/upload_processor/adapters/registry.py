"""The metadata registry: validated instruments, subjects, procedures and projects in one
DynamoDB table.

Instruments, subjects, procedures and projects (a project's funding and investigators,
`upload_processor.domain.project`) are registered here before the sessions that use them are
uploaded (the "metadata service" of docs/architecture.md). Every document is validated with
aind-data-schema 2.9.2 before it is stored, so what GatherMetadata reads back is known to be
valid.

Table layout (template.yaml `RegistryTable`):

- `kind_id` (partition key): ``"<kind>#<id>"``, e.g. ``"instrument#447-EPHYS-1"``;
- `version` (sort key): for an instrument its ``modification_date`` (ISO date, so the latest
  instrument is the greatest version); for subjects, procedures and projects a zero-padded counter
  (``"000001"``, ``"000002"``, ...) that grows by one each time the record is replaced;
- `document`: the validated document's JSON, zlib-compressed (DynamoDB items stop at 400 KB);
- `kind`, `id`, `registered_at` (UTC ISO timestamp), `sha256` of the stored JSON.

Writes never overwrite silently: an instrument whose id and ``modification_date`` are already
registered, or a subject / procedures / project record that already exists, is refused with
`RegistryConflictError` unless ``replace=True``. Replacing an instrument overwrites that one
version; replacing another record adds the next version (history is kept).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from upload_processor.errors import (
    RegistryConflictError,
    RegistryValidationError,
    UnknownKindError,
)

# DynamoDB's item limit is 400 KB; keep room for the other attributes.
MAX_STORED_BYTES = 380_000
_COUNTER_WIDTH = 6
_PUT_ATTEMPTS = 5


@dataclass(frozen=True)
class KindSpec:
    """How one kind of document is validated, identified and versioned."""

    kind: str
    plural: str
    object_type: str
    id_field: str
    version_field: str | None  # None: versions are a counter kept by the registry

    @property
    def versioned_by_document(self) -> bool:
        """True when the document itself carries its version (instruments)."""
        return self.version_field is not None

    def model(self) -> Any:
        """The aind-data-schema model (imported lazily: it is slow to import)."""
        if self.kind == "instrument":
            from aind_data_schema.core.instrument import Instrument

            return Instrument
        if self.kind == "subject":
            from aind_data_schema.core.subject import Subject

            return Subject
        if self.kind == "project":
            from upload_processor.domain.project import Project

            return Project
        from aind_data_schema.core.procedures import Procedures

        return Procedures


KINDS: dict[str, KindSpec] = {
    "instrument": KindSpec(
        "instrument", "instruments", "Instrument", "instrument_id", "modification_date"
    ),
    "subject": KindSpec("subject", "subjects", "Subject", "subject_id", None),
    "procedures": KindSpec("procedures", "procedures", "Procedures", "subject_id", None),
    "project": KindSpec("project", "projects", "Project", "project_name", None),
}
_ALIASES = {
    "instruments": "instrument",
    "subjects": "subject",
    "procedure": "procedures",
    "projects": "project",
}


def kind_spec(kind: str) -> KindSpec:
    """The spec of a kind; accepts the plural (``instruments``) as well."""
    name = _ALIASES.get(kind, kind)
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKindError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}") from None


@dataclass(frozen=True)
class RegistryRecord:
    """One stored version of a document."""

    kind: str
    id: str
    version: str
    document: dict[str, Any]
    registered_at: str
    sha256: str

    def summary(self) -> dict[str, Any]:
        """Everything but the document."""
        return {
            "kind": self.kind,
            "id": self.id,
            "version": self.version,
            "registered_at": self.registered_at,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class PutResult:
    """What `RegistryStore.put` did."""

    record: RegistryRecord
    created: bool  # False: an existing instrument version was overwritten (replace=True)
    replaced: bool  # True: replace=True and something was there before

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a successful POST."""
        spec = KINDS[self.record.kind]
        return {
            **self.record.summary(),
            "created": self.created,
            "replaced": self.replaced,
            "location": f"/{spec.plural}/{quote(self.record.id, safe='')}",
        }


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def validation_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic's errors as JSON-safe entries, without the (possibly huge) input values."""
    out = []
    for error in exc.errors(include_url=False):
        loc = list(error.get("loc", ()))
        out.append(
            {
                "loc": loc,
                "field": _field(loc),
                "msg": error.get("msg", ""),
                "type": error.get("type"),
            }
        )
    return out


def validate_document(kind: str, document: Any) -> dict[str, Any]:
    """Validate a document of a kind; returns its canonical JSON form (the model's dump).

    Raises RegistryValidationError with per-field errors.
    """
    from pydantic import ValidationError

    spec = kind_spec(kind)
    if not isinstance(document, dict):
        raise RegistryValidationError(
            f"a {spec.kind} document must be a JSON object, not {type(document).__name__}",
            [
                {
                    "loc": [],
                    "field": "(document)",
                    "msg": "expected a JSON object",
                    "type": "type_error",
                }
            ],
        )
    object_type = document.get("object_type")
    if isinstance(object_type, str) and object_type != spec.object_type:
        other = next((s for s in KINDS.values() if s.object_type == object_type), None)
        hint = f"; register it as a {other.kind} (POST /{other.plural})" if other else ""
        raise RegistryValidationError(
            f"this is a {object_type!r} document, not {spec.object_type!r}{hint}",
            [
                {
                    "loc": ["object_type"],
                    "field": "object_type",
                    "msg": f"expected {spec.object_type!r}, got {object_type!r}{hint}",
                    "type": "object_type_mismatch",
                }
            ],
        )
    try:
        model = spec.model().model_validate(document)
    except ValidationError as exc:
        errors = validation_errors(exc)
        raise RegistryValidationError(
            f"invalid {spec.kind} ({len(errors)} error{'s' if len(errors) != 1 else ''}, "
            f"aind-data-schema {spec.object_type}): "
            + "; ".join(f"{e['field']}: {e['msg']}" for e in errors[:5])
            + (" ..." if len(errors) > 5 else ""),
            errors,
        ) from None
    return json.loads(model.model_dump_json())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version_text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _pk(kind: str, record_id: str) -> str:
    return f"{kind}#{record_id}"


class RegistryStore:
    """Reads and writes the registry table; takes a boto3 DynamoDB client (moto in tests)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self._table = table_name

    @property
    def table_name(self) -> str:
        """The registry table's name."""
        return self._table

    # -- writing ------------------------------------------------------------------------------
    def put(self, kind: str, document: Any, replace: bool = False) -> PutResult:
        """Validate and store a document.

        Raises RegistryValidationError (invalid; nothing stored) or RegistryConflictError
        (already registered and ``replace`` is False).
        """
        spec = kind_spec(kind)
        canonical = validate_document(spec.kind, document)
        record_id = str(canonical[spec.id_field])
        if not record_id.strip():
            raise RegistryValidationError(
                f"{spec.id_field} is empty",
                [
                    {
                        "loc": [spec.id_field],
                        "field": spec.id_field,
                        "msg": "must not be empty",
                        "type": "value_error",
                    }
                ],
            )
        body = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        blob = zlib.compress(body, 6)
        if len(blob) > MAX_STORED_BYTES:
            raise RegistryValidationError(
                f"the {spec.kind} document is too large to register ({len(body)} bytes of JSON, "
                f"{len(blob)} compressed; the limit is {MAX_STORED_BYTES} compressed)",
                [
                    {
                        "loc": [],
                        "field": "(document)",
                        "msg": "document too large",
                        "type": "too_large",
                    }
                ],
            )
        digest = hashlib.sha256(body).hexdigest()
        if spec.versioned_by_document:
            version = _version_text(canonical[spec.version_field])
            return self._put_version(spec, record_id, version, canonical, blob, digest, replace)
        return self._put_next(spec, record_id, canonical, blob, digest, replace)

    def _item(
        self, spec: KindSpec, record_id: str, version: str, blob: bytes, digest: str, stamp: str
    ) -> dict[str, Any]:
        return {
            "kind_id": {"S": _pk(spec.kind, record_id)},
            "version": {"S": version},
            "kind": {"S": spec.kind},
            "id": {"S": record_id},
            "document": {"B": blob},
            "sha256": {"S": digest},
            "registered_at": {"S": stamp},
        }

    def _put_version(
        self,
        spec: KindSpec,
        record_id: str,
        version: str,
        canonical: dict[str, Any],
        blob: bytes,
        digest: str,
        replace: bool,
    ) -> PutResult:
        stamp = _now()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": self._item(spec, record_id, version, blob, digest, stamp),
            "ReturnValues": "ALL_OLD",
        }
        if not replace:
            kwargs["ConditionExpression"] = "attribute_not_exists(kind_id)"
        try:
            out = self._client.put_item(**kwargs)
        except self._client.exceptions.ConditionalCheckFailedException:
            raise _conflict(spec, record_id, version) from None
        existed = bool(out.get("Attributes"))
        record = RegistryRecord(spec.kind, record_id, version, canonical, stamp, digest)
        return PutResult(record, created=not existed, replaced=existed)

    def _put_next(
        self,
        spec: KindSpec,
        record_id: str,
        canonical: dict[str, Any],
        blob: bytes,
        digest: str,
        replace: bool,
    ) -> PutResult:
        for _ in range(_PUT_ATTEMPTS):
            latest = self._latest_key(spec.kind, record_id)
            if latest is not None and not replace:
                raise _conflict(spec, record_id, latest)
            version = str(int(latest) + 1 if latest else 1).zfill(_COUNTER_WIDTH)
            stamp = _now()
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=self._item(spec, record_id, version, blob, digest, stamp),
                    ConditionExpression="attribute_not_exists(kind_id)",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                continue  # another writer took this version number: look again
            record = RegistryRecord(spec.kind, record_id, version, canonical, stamp, digest)
            return PutResult(record, created=True, replaced=latest is not None)
        raise _conflict(spec, record_id, "concurrent writes")

    # -- reading ------------------------------------------------------------------------------
    def _latest_key(self, kind: str, record_id: str) -> str | None:
        out = self._client.query(
            TableName=self._table,
            KeyConditionExpression="kind_id = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(kind, record_id)}},
            ExpressionAttributeNames={"#v": "version"},
            ProjectionExpression="#v",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = out.get("Items", [])
        return items[0]["version"]["S"] if items else None

    @staticmethod
    def _record(item: dict[str, Any]) -> RegistryRecord:
        blob = item["document"]["B"]
        document = json.loads(zlib.decompress(bytes(blob)))
        return RegistryRecord(
            kind=item["kind"]["S"],
            id=item["id"]["S"],
            version=item["version"]["S"],
            document=document,
            registered_at=item["registered_at"]["S"],
            sha256=item["sha256"]["S"],
        )

    def get_latest(self, kind: str, record_id: str) -> RegistryRecord | None:
        """The latest version (for instruments: the latest modification_date), or None."""
        spec = kind_spec(kind)
        out = self._client.query(
            TableName=self._table,
            KeyConditionExpression="kind_id = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(spec.kind, record_id)}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = out.get("Items", [])
        return self._record(items[0]) if items else None

    def get(self, kind: str, record_id: str, version: str) -> RegistryRecord | None:
        """One version, or None."""
        spec = kind_spec(kind)
        out = self._client.get_item(
            TableName=self._table,
            Key={"kind_id": {"S": _pk(spec.kind, record_id)}, "version": {"S": version}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return self._record(item) if item else None

    def versions(self, kind: str, record_id: str) -> list[dict[str, Any]]:
        """Every version's summary (no documents), newest first; [] when none."""
        spec = kind_spec(kind)
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "kind_id = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _pk(spec.kind, record_id)}},
            "ExpressionAttributeNames": {"#v": "version", "#k": "kind", "#i": "id"},
            "ProjectionExpression": "#v, #k, #i, registered_at, sha256",
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                out.append(
                    {
                        "kind": item["kind"]["S"],
                        "id": item["id"]["S"],
                        "version": item["version"]["S"],
                        "registered_at": item["registered_at"]["S"],
                        "sha256": item["sha256"]["S"],
                    }
                )
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _conflict(spec: KindSpec, record_id: str, version: str) -> RegistryConflictError:
    """A 409 whose message says how to register a new version instead."""
    if spec.versioned_by_document:
        what = f"{spec.kind} {record_id!r} with {spec.version_field} {version}"
        hint = (
            f"to register a new version, change {spec.version_field}; to overwrite this "
            f"one, POST again with ?replace=true (CLI: --replace)"
        )
    else:
        owner = spec.id_field.removesuffix("_id").removesuffix("_name")
        what = f"{spec.kind} record for {owner} {record_id!r} (version {version})"
        hint = (
            "to record a new version, POST again with ?replace=true (CLI: --replace); "
            "earlier versions are kept"
        )
    return RegistryConflictError(
        spec.kind, record_id, version, f"{what} is already registered: {hint}"
    )
