"""A local Code Ocean API (the endpoints the `codeocean` SDK calls for registration), for tests.

Each request body is checked against the SDK's own request types (`DataAssetParams`,
`DataAssetSearchParams`, `RunParams`): an unknown field, a missing required one or a wrong
nested shape is a 400 naming it, so a request our adapter builds wrong fails here as it would
on Code Ocean. Answers are the API's documented shapes (`DataAsset`, `Computation`,
`DataAssetSearchResults`), built through the SDK's dataclasses. Authentication is HTTP basic
with the token as user name, as the SDK sends it.

Switchable faults: `token` (a wrong one is a 401), `fail(status, ...)` (the next N matching
requests answer 429 / 5xx / ...), `ready_after` (GETs before a new asset is ready; None: it
never is), `fail_assets` (the asset goes to state failed).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
import threading
import time
import types
import typing
import uuid
from dataclasses import MISSING, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from codeocean.computation import Computation, RunParams
from codeocean.data_asset import (
    DataAsset,
    DataAssetParams,
    DataAssetSearchParams,
    DataAssetSearchResults,
)

API = "/api/v1/"


class BadRequest(Exception):
    """A body the SDK's types do not accept."""


def _dataclass_in(annotation: Any) -> tuple[str, type | None]:
    """("one" | "list", the dataclass) a field's type holds, or ("", None)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            kind, inner = _dataclass_in(arg)
            if inner is not None:
                return kind, inner
        return "", None
    if origin is list:
        (arg,) = typing.get_args(annotation) or (None,)
        kind, inner = _dataclass_in(arg)
        return ("list", inner) if inner is not None else ("", None)
    if dataclasses.is_dataclass(annotation):
        return "one", annotation  # type: ignore[return-value]
    return "", None


def check_body(cls: type, data: Any, where: str = "") -> None:
    """Raise BadRequest unless `data` is exactly a `cls` (the SDK's dataclass), recursively."""
    if not isinstance(data, dict):
        raise BadRequest(f"{where or 'body'}: expected an object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(where + u for u in unknown)}")
    for name, f in fields.items():
        required = f.default is MISSING and f.default_factory is MISSING
        if required and data.get(name) is None:
            raise BadRequest(f"{where}{name} is required")
        value = data.get(name)
        if value is None:
            continue
        kind, inner = _dataclass_in(hints[name])
        if kind == "one":
            check_body(inner, value, f"{where}{name}.")  # type: ignore[arg-type]
        elif kind == "list":
            if not isinstance(value, list):
                raise BadRequest(f"{where}{name}: expected a list")
            for i, item in enumerate(value):
                check_body(inner, item, f"{where}{name}.{i}.")  # type: ignore[arg-type]


@dataclass
class Fault:
    """Answer `status` to the next `times` requests matching method and path (regex)."""

    status: int
    method: str | None = None
    path: str | None = None
    times: int = 1
    retry_after: str | None = None


@dataclass
class FakeCodeOcean:
    """The server's state; `with FakeCodeOcean() as co:` serves it on `co.url`."""

    token: str = "co-test-token"
    ready_after: int | None = 1
    fail_assets: bool = False
    owner: str = "owner-1"
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    computations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _clock: itertools.count = field(default_factory=lambda: itertools.count(int(time.time())))

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> FakeCodeOcean:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """The domain to give the SDK (`CodeOcean(domain=...)`)."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: str | None = None,
    ) -> None:
        """The next `times` matching requests answer `status`."""
        self.faults.append(Fault(status, method, path, times, retry_after))

    def calls(self, method: str, path: str) -> list[Any]:
        """The bodies of the requests made to `method path` (path relative to /api/v1/)."""
        return [b for m, p, b in self.requests if m == method and p == path]

    # -- the API ------------------------------------------------------------------------
    def _serve(self, req: BaseHTTPRequestHandler, method: str) -> None:
        path = req.path.split("?")[0]
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._answer(req, 400, {"message": "body is not JSON"})
        rel = path[len(API) :] if path.startswith(API) else path
        with self._lock:
            self.requests.append((method, rel, body))
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.times > 0
                    and (f.method is None or f.method == method)
                    and (f.path is None or re.fullmatch(f.path, rel))
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._answer(
                    req, fault.status, {"message": f"injected {fault.status}"}, headers
                )
        if not self._authorised(req.headers.get("Authorization") or ""):
            return self._answer(req, 401, {"message": "Unauthorized"})
        try:
            status, answer = self._route(method, rel, body)
        except BadRequest as exc:
            status, answer = 400, {"message": str(exc)}
        return self._answer(req, status, answer)

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        return user == self.token

    def _route(self, method: str, rel: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            if method == "POST" and rel == "data_assets":
                return 200, self._create_asset(body)
            if method == "POST" and rel == "data_assets/search":
                return 200, self._search(body)
            if method == "GET" and (m := re.fullmatch(r"data_assets/([^/]+)", rel)):
                return self._get_asset(m.group(1))
            if method == "POST" and rel == "computations":
                return self._run(body)
            if method == "GET" and (m := re.fullmatch(r"computations/([^/]+)", rel)):
                found = self.computations.get(m.group(1))
                if found is None:
                    return 404, {"message": "computation not found"}
                return 200, {k: v for k, v in found.items() if not k.startswith("_")}
        return 404, {"message": f"no route {method} {rel}"}

    def _create_asset(self, body: Any) -> dict[str, Any]:
        check_body(DataAssetParams, body)
        params = DataAssetParams.from_dict(body)
        if params.source is None or params.source.aws is None:
            raise BadRequest("source.aws is required for an external asset")
        asset = DataAsset(
            id=str(uuid.uuid4()),
            created=next(self._clock),
            name=params.name,
            mount=params.mount,
            last_used=0,
            owner=self.owner,
            state="draft",
            type="dataset",
            description=params.description,
            tags=list(params.tags),
            custom_metadata=params.custom_metadata,
            source_bucket={
                "origin": "aws",
                "bucket": params.source.aws.bucket,
                "prefix": params.source.aws.prefix,
                "external": bool(params.source.aws.keep_on_external_storage),
            },
        ).to_dict()
        self.assets[asset["id"]] = asset
        self._polls[asset["id"]] = 0
        return asset

    def _get_asset(self, asset_id: str) -> tuple[int, Any]:
        asset = self.assets.get(asset_id)
        if asset is None:
            return 404, {"message": "data asset not found"}
        self._polls[asset_id] = self._polls.get(asset_id, 0) + 1
        if asset["state"] == "draft":
            if self.fail_assets:
                asset.update(state="failed", failure_reason="bucket not readable")
            elif self.ready_after is not None and self._polls[asset_id] >= self.ready_after:
                asset.update(state="ready", files=1, size=1)
        DataAsset.from_dict(asset)  # what we answer is what the SDK reads
        return 200, asset

    def _search(self, body: Any) -> dict[str, Any]:
        check_body(DataAssetSearchParams, body or {})
        query = (body or {}).get("query") or ""
        names = [a or b for a, b in re.findall(r'name:(?:"([^"]*)"|(\S+))', query)]
        tags = re.findall(r"tag:(\S+)", query)
        found = [
            a
            for a in self.assets.values()
            if all(n.lower() in a["name"].lower() for n in names)
            and all(t.lower() in [x.lower() for x in a.get("tags") or []] for t in tags)
        ]
        return DataAssetSearchResults(
            has_more=False, results=[DataAsset.from_dict(a) for a in found]
        ).to_dict()

    def _run(self, body: Any) -> tuple[int, Any]:
        check_body(RunParams, body)
        params = RunParams.from_dict(body)
        if bool(params.capsule_id) == bool(params.pipeline_id):
            raise BadRequest("exactly one of capsule_id or pipeline_id is required")
        for mounted in params.data_assets or []:
            if mounted.id not in self.assets:
                return 404, {"message": f"data asset {mounted.id} not found"}
        computation = Computation(
            id=str(uuid.uuid4()),
            created=next(self._clock),
            name="Run",
            owner=self.owner,
            run_time=0,
            state="initializing",
            data_assets=[{"id": d.id, "mount": d.mount} for d in params.data_assets or []],
        ).to_dict()
        computation["_run_params"] = body  # what was asked, for assertions
        self.computations[computation["id"]] = computation
        return 200, {k: v for k, v in computation.items() if not k.startswith("_")}

    @staticmethod
    def _answer(
        req: BaseHTTPRequestHandler, status: int, answer: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(answer).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)
