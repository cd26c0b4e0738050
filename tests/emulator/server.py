#!/usr/bin/env python3
"""Local AWS emulator for ctguard's integration tests.

Runs moto's server (moto's WSGI app served by werkzeug's threaded server) on
127.0.0.1 only, wrapped in a small WSGI middleware (`AwsWireAdapter`) that
corrects a few places where moto 5.2.5's *wire format* differs from real AWS
in ways the AWS SDK for Rust cannot parse. The adaptations are test-only: the
product code stays written for real AWS, and nothing here changes what moto
stores or decides, only how its answers are spelled on the wire.

Usage (from the repo root, after scripts/emulator-setup):

    .venv/bin/python tests/emulator/server.py [--host 127.0.0.1] [--port 0]
                                              [--exit-on-stdin-eof] [--verbose]

Besides moto's own endpoints (e.g. `POST /moto-api/reset`), the harness
serves a request log for the tests, kept by `RequestLog`:
    GET  /_ctguard/requests        JSON list, oldest first, of
                                   {"method", "path", "query", "operation", "service", "status"}
    POST /_ctguard/requests/clear  empties it
`operation` is the query protocol's Action, the JSON protocols' X-Amz-Target,
or `<Target prefix>.<Op>` for RPC v2 CBOR; it is "" for S3's REST protocol.
Requests to /_ctguard/* are not logged.

Protocol: once the socket is listening, exactly one line `PORT <n>` is written
to stdout and flushed; nothing else is ever written to stdout (logs go to
stderr). The process then serves until SIGTERM/SIGINT (exit 0) or, with
--exit-on-stdin-eof, until its stdin reaches EOF (so a test process that dies
takes its emulator with it).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import io
import ipaddress
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
import zlib
from typing import Any, Callable, Iterable

log = logging.getLogger("ctguard-emulator")


# ---------------------------------------------------------------------------
# Small WSGI helpers
# ---------------------------------------------------------------------------

def _call_buffered(app: Callable, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion and return (status, headers, body)."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status, headers, exc_info=None):  # noqa: ANN001
        captured["status"] = status
        captured["headers"] = list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _set_header(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


def _read_body(environ: dict) -> bytes:
    from werkzeug.wsgi import get_input_stream

    return get_input_stream(environ).read()


# ---------------------------------------------------------------------------
# Adaptation 1: S3 XML root element names
#
# moto 5.2.5 serializes some S3 GET replies with the root element named after
# the operation (`<GetBucketVersioningResponse xmlns=...>`) instead of the
# element the S3 API reference documents (`<VersioningConfiguration
# xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`). botocore ignores the
# root name, but the AWS SDK for Rust checks it and fails with "encountered
# invalid XML root". We only rename the root element (open and close tag);
# children and namespace are already what AWS sends. Observed in moto 5.2.5:
#   GET ?versioning    -> always GetBucketVersioningResponse
#   GET ?accelerate    -> always GetBucketAccelerateConfigurationResponse
#   GET ?notification  -> GetBucketNotificationResponse when nothing is
#                         configured (correct NotificationConfiguration once
#                         something is)
#   GET <key>?attributes -> GetObjectAttributesOutput (AWS: GetObjectAttributesResponse)
# Works for path-style and virtual-host-style requests alike, since it keys on
# the sub-resource in the query string and on moto's (unambiguous) wrong name.
# Test-only: ctguard's product code stays written for real AWS's documented
# shape and must not work around this.
# ---------------------------------------------------------------------------

S3_ROOT_RENAMES: dict[bytes, bytes] = {
    b"GetBucketVersioningResponse": b"VersioningConfiguration",
    b"GetBucketAccelerateConfigurationResponse": b"AccelerateConfiguration",
    b"GetBucketNotificationResponse": b"NotificationConfiguration",
    b"GetBucketNotificationConfigurationResponse": b"NotificationConfiguration",
    b"GetObjectAttributesOutput": b"GetObjectAttributesResponse",
}
S3_FIXED_SUBRESOURCES = frozenset({"versioning", "accelerate", "notification", "attributes"})
_XML_ROOT = re.compile(rb"\A\s*(?:<\?xml[^>]*\?>\s*)?<([A-Za-z][A-Za-z0-9]*)[\s/>]")


def _query_keys(environ: dict) -> set[str]:
    qs = environ.get("QUERY_STRING", "")
    return {part.split("=", 1)[0] for part in qs.split("&") if part}


def fix_s3_xml_root(body: bytes) -> bytes:
    match = _XML_ROOT.match(body)
    if not match or match.group(1) not in S3_ROOT_RENAMES:
        return body
    old, new = match.group(1), S3_ROOT_RENAMES[match.group(1)]
    return re.sub(rb"<(/?)" + old + rb"(?=[\s/>])", rb"<\g<1>" + new, body)


# ---------------------------------------------------------------------------
# Adaptation 2: CloudWatch over Smithy RPC v2 CBOR
#
# The current AWS SDK for Rust talks to CloudWatch (monitoring) with the
# Smithy RPC v2 CBOR protocol:
#   POST /service/GraniteServiceVersion20100801/operation/<Op>
#   smithy-protocol: rpc-v2-cbor, Content-Type: application/cbor, CBOR body
# and expects CBOR back (timestamps as tag 1 + epoch seconds, doubles as CBOR
# floats, blobs as byte strings, errors as a map with `__type` = absolute
# shape id and `message`, plus `x-amzn-query-error` because CloudWatch is
# awsQueryCompatible). moto 5.2.5 has no CBOR support at all: its CloudWatch
# handler only answers JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`,
# `Content-Type: application/x-amz-json-1.0`, POST /) or the old query
# protocol. We transcode CBOR -> JSON 1.0 for the request and JSON -> CBOR for
# the reply, using botocore's CloudWatch model (installed with moto) to know
# which members are timestamps / blobs / doubles / integers. Members the
# model does not know fall back to a name rule: *Timestamp / *Timestamps are
# timestamps. moto does not check SigV4 signatures, so the SDK's signature over
# the CBOR request does not matter; see _json_environ for routing.
# Test-only: ctguard's product code stays written for real AWS (the SDK's
# default CloudWatch protocol) and must not work around this.
# ---------------------------------------------------------------------------

# Smithy service shape name -> (botocore service name, SigV4 signing name,
# Smithy namespace, JSON target prefix).
CBOR_SERVICES: dict[str, tuple[str, str, str, str]] = {
    "GraniteServiceVersion20100801": (
        "cloudwatch",
        "monitoring",
        "com.amazonaws.cloudwatch",
        "GraniteServiceVersion20100801",
    ),
}
_CBOR_PATH = re.compile(r"\A(?:/.*)?/service/([^/]+)/operation/([^/]+)/?\Z")

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _service_model(name: str):
    with _models_lock:
        if name not in _models:
            import botocore.session

            _models[name] = botocore.session.get_session().get_service_model(name)
        return _models[name]


def _cbor_to_json(value: Any) -> Any:
    """CBOR-decoded request value -> what moto's JSON 1.0 parser expects."""
    import cbor2

    if isinstance(value, dict):
        return {str(k): _cbor_to_json(v) for k, v in value.items() if v is not None and v is not cbor2.undefined}
    if isinstance(value, (list, tuple)):
        return [_cbor_to_json(v) for v in value]
    if isinstance(value, dt.datetime):  # cbor2 decodes tag 0/1 to datetime
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return float(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):  # blob -> base64 text
        return base64.b64encode(bytes(value)).decode("ascii")
    if value is cbor2.undefined:
        return None
    return value


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    return None


def _timestamp_tag(value: Any) -> Any:
    import cbor2

    seconds = _epoch(value)
    # Always a CBOR float: the Rust SDK decodes tag-1 payloads with f64().
    return cbor2.CBORTag(1, seconds) if seconds is not None else value


def _json_to_cbor_by_name(key: str | None, value: Any) -> Any:
    """Fallback for members the botocore model does not describe."""
    if key and key.endswith("Timestamps") and isinstance(value, list):
        return [_timestamp_tag(v) for v in value]
    if key and key.endswith("Timestamp"):
        return _timestamp_tag(value)
    if isinstance(value, dict):
        return {k: _json_to_cbor_by_name(k, v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json_to_cbor_by_name(None, v) for v in value]
    return value


def _json_to_cbor(value: Any, shape: Any) -> Any:
    """moto's JSON reply value -> CBOR-ready Python value, guided by `shape`."""
    if value is None:
        return None
    if shape is None:
        return _json_to_cbor_by_name(None, value)
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, member_value in value.items():
            if member_value is None:
                continue
            member = shape.members.get(key)
            out[key] = _json_to_cbor(member_value, member) if member is not None else _json_to_cbor_by_name(key, member_value)
        return out
    if kind == "list" and isinstance(value, list):
        return [_json_to_cbor(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _json_to_cbor(v, shape.value) for k, v in value.items() if v is not None}
    if kind == "timestamp":
        return _timestamp_tag(value)
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value)
        except ValueError:
            return value.encode()
    if kind in ("double", "float"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if kind in ("integer", "long", "short", "byte"):
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return value
        return int(as_float) if math.isfinite(as_float) and as_float.is_integer() else value
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


class CborError(Exception):
    def __init__(self, status: int, shape: str, message: str, query_code: str, fault: str = "Sender"):
        super().__init__(message)
        self.status, self.shape, self.message = status, shape, message
        self.query_code, self.fault = query_code, fault


# ---------------------------------------------------------------------------
# Addition: CloudTrail LookupEvents (event history)
#
# moto 5.2.5 does not serve LookupEvents. This answers it as the CloudTrail API reference
# documents (API_LookupEvents, API_Event, API_LookupAttribute), over events the tests supply:
#   - at most one lookup attribute per call (InvalidLookupAttributesException otherwise), with
#     AttributeKey one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName,
#     EventSource, AccessKeyId and an AttributeValue of 1 to 2000 characters;
#   - StartTime/EndTime inclusive (InvalidTimeRangeException when the start is after the end);
#     events older than 90 days are not returned;
#   - MaxResults 1 to 50, default 50 (InvalidMaxResultsException otherwise);
#   - NextToken bound to the parameters it was issued for (InvalidNextTokenException otherwise);
#   - events newest first; EventTime as epoch seconds; CloudTrailEvent the record as a JSON string;
#   - EventCategory "insight" returns no events (none are seeded); any other value is
#     InvalidEventCategoryException;
#   - "The rate of lookup requests is limited to two per second, per account, per Region. If
#     this limit is exceeded, a throttling error occurs": a token bucket per region holding 2
#     tokens, refilled at 2 per second; a call without a token gets 400 ThrottlingException.
# The region is the one the request is signed for.
#
# Test-only endpoints (reached through the proxy, which forwards /moto-api/* unfaulted):
#   POST /moto-api/ctguard/cloudtrail-events   {"events": [ITEM, ...]}, appends to the history.
#        ITEM is a CloudTrail record (as in a log file; its awsRegion picks the region's
#        history) or {"record": RECORD, "resources": [{"ResourceType", "ResourceName"}],
#        "username": "..."} to set what LookupEvents reports beside the record. Without them,
#        Resources come from the record's `resources` (type, ARN) and Username from its
#        userIdentity (IAM user name, "root", the role session name, the federated name).
#   GET  /moto-api/ctguard/lookup-calls        JSON list, oldest first, of every LookupEvents
#        call: {"region", "time" (epoch seconds), "throttled", "status", "attribute"}.
#   POST /moto-api/ctguard/lookup-calls/clear  empties that list.
# ---------------------------------------------------------------------------

LOOKUP_ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
                         "EventSource", "AccessKeyId")
HISTORY_DAYS = 90


def _history_username(record: dict) -> str | None:
    identity = record.get("userIdentity") or {}
    kind = identity.get("type")
    arn = identity.get("arn") or ""
    if kind == "Root":
        return "root"
    if kind in ("AssumedRole", "FederatedUser") and "/" in arn:
        return arn.rsplit("/", 1)[-1]
    return identity.get("userName") or identity.get("invokedBy")


class EventHistory:
    RATE = 2.0
    BURST = 2.0

    def __init__(self):
        self.lock = threading.Lock()
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.buckets: dict[str, tuple[float, float]] = {}
        self.calls: list[dict[str, Any]] = []

    # -- test-only endpoints ----------------------------------------------------

    def seed(self, items: list[Any]) -> int:
        added = 0
        with self.lock:
            for item in items:
                if isinstance(item, dict) and "record" in item:
                    record, resources, username = item["record"], item.get("resources"), item.get("username")
                else:
                    record, resources, username = item, None, None
                if resources is None:
                    resources = [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
                                 for r in record.get("resources") or [] if r.get("ARN")]
                when = dt.datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp()
                entry = {
                    "time": when,
                    "record": record,
                    "EventId": record.get("eventID") or str(len(self.events)),
                    "EventName": record.get("eventName"),
                    "EventSource": record.get("eventSource"),
                    "ReadOnly": "true" if record.get("readOnly") in (True, "true") else "false",
                    "Username": username or _history_username(record),
                    "AccessKeyId": (record.get("userIdentity") or {}).get("accessKeyId"),
                    "Resources": resources,
                }
                self.events.setdefault(record["awsRegion"], []).append(entry)
                added += 1
        return added

    def call_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.calls)

    def clear_calls(self) -> int:
        with self.lock:
            n = len(self.calls)
            self.calls.clear()
            return n

    # -- the API -----------------------------------------------------------------

    def _take_token(self, region: str, now: float) -> bool:
        tokens, last = self.buckets.get(region, (self.BURST, now))
        tokens = min(self.BURST, tokens + (now - last) * self.RATE)
        if tokens < 1.0:
            self.buckets[region] = (tokens, now)
            return False
        self.buckets[region] = (tokens - 1.0, now)
        return True

    def lookup(self, region: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        now = time.time()
        attributes = request.get("LookupAttributes") or []
        attribute = None
        if len(attributes) == 1 and isinstance(attributes[0], dict):
            attribute = f"{attributes[0].get('AttributeKey')}={attributes[0].get('AttributeValue')}"
        with self.lock:
            allowed = self._take_token(region, now)
            entry = {"region": region, "time": now, "throttled": not allowed, "status": 200, "attribute": attribute}
            self.calls.append(entry)
            if not allowed:
                entry["status"] = 400
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            status, body = self._answer(region, request, attributes, now)
            entry["status"] = status
            return status, body

    def _answer(self, region: str, request: dict[str, Any], attributes: list, now: float) -> tuple[int, dict[str, Any]]:
        def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
            return 400, {"__type": code, "message": message}

        if len(attributes) > 1:
            return error("InvalidLookupAttributesException", "You can specify at most one lookup attribute.")
        key = value = None
        if attributes:
            key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
            if key not in LOOKUP_ATTRIBUTE_KEYS:
                return error("InvalidLookupAttributesException", f"Invalid attribute key: {key}")
            if not isinstance(value, str) or not 1 <= len(value) <= 2000:
                return error("InvalidLookupAttributesException", "AttributeValue must be 1 to 2000 characters.")
        category = request.get("EventCategory")
        if category is not None and category != "insight":
            return error("InvalidEventCategoryException", f"Invalid event category: {category}")
        max_results = request.get("MaxResults", 50)
        if not isinstance(max_results, int) or not 1 <= max_results <= 50:
            return error("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        oldest = now - HISTORY_DAYS * 86400
        start = float(request.get("StartTime", oldest))
        end = float(request.get("EndTime", now))
        if start > end:
            return error("InvalidTimeRangeException", "StartTime must be before EndTime.")
        # A token is good for the parameters as sent (not the defaults, which move with time).
        query = json.dumps([key, value, request.get("StartTime"), request.get("EndTime"), category])
        offset = 0
        token = request.get("NextToken")
        if token is not None:
            try:
                decoded = json.loads(base64.b64decode(token))
                if decoded["q"] != query:
                    raise ValueError("parameters changed")
                offset = int(decoded["o"])
            except (ValueError, KeyError, TypeError):
                return error("InvalidNextTokenException", "Invalid NextToken.")
        if category == "insight":
            return 200, {"Events": []}

        def matches(e: dict[str, Any]) -> bool:
            if not (max(start, oldest) <= e["time"] <= end):
                return False
            if key is None:
                return True
            if key in ("ResourceType", "ResourceName"):
                return any(r.get(key) == value for r in e["Resources"])
            return e.get(key) == value

        found = [e for e in self.events.get(region, []) if matches(e)]
        found.sort(key=lambda e: (e["time"], e["EventId"]), reverse=True)
        page = found[offset:offset + max_results]
        body: dict[str, Any] = {"Events": [self._event(e) for e in page]}
        if offset + max_results < len(found):
            body["NextToken"] = base64.b64encode(json.dumps({"q": query, "o": offset + max_results}).encode()).decode()
        return 200, body

    @staticmethod
    def _event(e: dict[str, Any]) -> dict[str, Any]:
        out = {k: e[k] for k in ("EventId", "EventName", "ReadOnly", "EventSource", "Username", "AccessKeyId")
               if e.get(k) is not None}
        out["EventTime"] = e["time"]
        out["Resources"] = e["Resources"]
        out["CloudTrailEvent"] = json.dumps(e["record"])
        return out


# ---------------------------------------------------------------------------
# The middleware
# ---------------------------------------------------------------------------

# Where a test sets the outcomes of the next Athena queries (see `_athena_set_outcomes`).
ATHENA_OUTCOMES_PATH = "/moto-api/ctguard/athena-outcomes"

# The regions every AWS account has enabled by default (no opt-in needed).
DEFAULT_REGIONS = [
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
]

# Config operations moto lacks, with AWS's answer for rules that have evaluated nothing yet.
CONFIG_COMPLIANCE_NOT_EVALUATED = {
    "StarlingDoveService.DescribeComplianceByConfigRule": {"ComplianceByConfigRules": []},
    "StarlingDoveService.GetComplianceDetailsByConfigRule": {"EvaluationResults": []},
}


# CloudTrail's ListPublicKeys, which moto lacks (see AwsWireAdapter._list_public_keys); the Rust SDK
# sends this target, botocore prefixes it with com.amazonaws.cloudtrail.v20131101.
LIST_PUBLIC_KEYS_TARGET = "CloudTrail_20131101.ListPublicKeys"
# Where tests register the public keys their digest files are signed with.
PUBLIC_KEYS_ADMIN_PATH = "/moto-api/ctguard/cloudtrail-public-keys"


# The service principal a test's S3 request stands in for (see patch_s3_eventbridge_events), per
# request: each request is served on its own thread.
S3_REQUESTER = threading.local()


class AwsWireAdapter:
    """WSGI middleware around moto's app; see the module docstring."""

    LOOKUP_TARGETS = ("CloudTrail_20131101.LookupEvents",
                      "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")
    HISTORY_PATH = "/moto-api/ctguard/"
    HISTORY_ROUTES = ("cloudtrail-events", "lookup-calls", "lookup-calls/clear")

    def __init__(self, app: Callable):
        self.app = app
        self.public_keys_lock = threading.Lock()
        self.public_keys: dict[str, list[dict]] = {}
        self.history = EventHistory()

        self.athena_lock = threading.Lock()
        # Outcomes set by a test, for the next queries started, and those already assigned.
        self.athena_queue: list[dict] = []
        self.athena_outcomes: dict[str, dict] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        S3_REQUESTER.value = environ.get("HTTP_X_EMULATOR_S3_REQUESTER")
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        route = path[len(self.HISTORY_PATH):].rstrip("/") if path.startswith(self.HISTORY_PATH) else None
        if route in self.HISTORY_ROUTES:
            return self._history_endpoint(environ, start_response, method, route)
        if method == "POST" and environ.get("HTTP_X_AMZ_TARGET", "") in self.LOOKUP_TARGETS:
            return self._lookup_events(environ, start_response)
        if method == "POST":
            match = _CBOR_PATH.match(path)
            if match and self._is_cbor_request(environ):
                return self._cbor(environ, start_response, match.group(1), match.group(2))
        if method == "GET" and _query_keys(environ) & S3_FIXED_SUBRESOURCES:
            return self._s3_root(environ, start_response)
        if method == "POST" and path == "/listRegions":
            return self._account_regions(start_response)
        if method == "POST" and path == PUBLIC_KEYS_ADMIN_PATH:
            return self._register_public_keys(environ, start_response)
        if method == "POST" and environ.get("HTTP_X_AMZ_TARGET", "").endswith(LIST_PUBLIC_KEYS_TARGET):
            return self._list_public_keys(environ, start_response)
        if method == "POST" and path == ATHENA_OUTCOMES_PATH:
            return self._athena_set_outcomes(environ, start_response)
        if method == "POST" and path == CONFIG_DELIVERY_STATUS_PATH:
            return self._config_delivery_status(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if method == "POST" and target in ("AmazonAthena.StartQueryExecution", "AmazonAthena.GetQueryExecution"):
            with self.athena_lock:
                waiting = bool(self.athena_queue or self.athena_outcomes)
            if waiting:
                return self._athena(environ, start_response, target)
        unevaluated = CONFIG_COMPLIANCE_NOT_EVALUATED.get(environ.get("HTTP_X_AMZ_TARGET", ""))
        if method == "POST" and unevaluated is not None:
            return self._config_compliance(start_response, unevaluated)
        return self.app(environ, start_response)

    # -- CloudTrail LookupEvents (see EventHistory) ---------------------------------

    def _lookup_events(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            request = json.loads(_read_body(environ) or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            status, body = 400, {"__type": "SerializationException", "message": "malformed JSON body"}
        else:
            status, body = self.history.lookup(RequestLog._signing_region(environ) or "us-east-1", request)
        payload = json.dumps(body).encode()
        reason = "OK" if status == 200 else "Bad Request"
        start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.1"),
                                              ("Content-Length", str(len(payload))),
                                              ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [payload]

    def _history_endpoint(self, environ: dict, start_response: Callable, method: str, route: str) -> Iterable[bytes]:
        status = "200 OK"
        try:
            if route == "cloudtrail-events" and method == "POST":
                body = {"added": self.history.seed(json.loads(_read_body(environ))["events"])}
            elif route == "lookup-calls" and method == "GET":
                body = self.history.call_log()
            elif route == "lookup-calls/clear" and method == "POST":
                body = {"cleared": self.history.clear_calls()}
            else:
                status, body = "405 Method Not Allowed", {"error": f"emulator endpoint {route}: not {method}"}
        except (ValueError, KeyError, TypeError) as exc:
            status, body = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    # -- AWS Config delivery status (see seed_config_delivery_status) --------------

    @staticmethod
    def _config_delivery_status(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            status, body = "200 OK", {"seeded": seed_config_delivery_status(json.loads(_read_body(environ)))}
        except (ValueError, KeyError, TypeError) as exc:
            status, body = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    # -- Athena query outcomes ----------------------------------------------------

    def _athena_set_outcomes(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """moto 5.2.5 runs no query: every execution SUCCEEDS with 0 bytes scanned. A test says
        what Athena would report for the next queries started, in order:
        `{"outcomes": [{"state": "FAILED", "reason": "...", "data_scanned_bytes": 123}, ...]}`
        (every key optional; state SUCCEEDED by default)."""
        outcomes = json.loads(_read_body(environ) or b"{}").get("outcomes", [])
        with self.athena_lock:
            self.athena_queue.extend(outcomes)
        payload = json.dumps({"queued": len(outcomes)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _athena(self, environ: dict, start_response: Callable, target: str) -> Iterable[bytes]:
        status, headers, body = _call_buffered(self.app, environ)
        if status.startswith("2"):
            reply = json.loads(body or b"{}")
            with self.athena_lock:
                if target.endswith("StartQueryExecution") and self.athena_queue:
                    self.athena_outcomes[reply.get("QueryExecutionId", "")] = self.athena_queue.pop(0)
                execution = reply.get("QueryExecution") or {}
                outcome = self.athena_outcomes.get(execution.get("QueryExecutionId", ""))
            if outcome and execution:
                self._apply_athena_outcome(execution, outcome)
                body = json.dumps(reply).encode()
                headers = _set_header(headers, "Content-Length", str(len(body)))
        start_response(status, headers)
        return [body]

    @staticmethod
    def _apply_athena_outcome(execution: dict, outcome: dict) -> None:
        stats = execution.setdefault("Statistics", {})
        state = execution.setdefault("Status", {})
        if "data_scanned_bytes" in outcome:
            stats["DataScannedInBytes"] = outcome["data_scanned_bytes"]
        # Only a finished execution takes the outcome's end state; QUEUED and RUNNING stay.
        if state.get("State") == "SUCCEEDED" and outcome.get("state", "SUCCEEDED") != "SUCCEEDED":
            state["State"] = outcome["state"]
            reason = outcome.get("reason", "")
            state["StateChangeReason"] = reason
            state["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False, "ErrorMessage": reason}

    # -- Account ------------------------------------------------------------------

    @staticmethod
    def _account_regions(start_response: Callable) -> Iterable[bytes]:
        """moto 5.2.5 does not implement the Account API's ListRegions. Answer as AWS does for an
        account with no opt-in regions: the regions enabled by default."""
        regions = [{"RegionName": r, "RegionOptStatus": "ENABLED_BY_DEFAULT"} for r in DEFAULT_REGIONS]
        payload = json.dumps({"Regions": regions}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    # -- CloudTrail public keys ------------------------------------------------

    def _register_public_keys(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Test administration: `{"region": "us-east-1", "keys": [{"Value": "<base64 of the DER
        RSAPublicKey>", "Fingerprint": "<hex>", "ValidityStartTime": <epoch s>,
        "ValidityEndTime": <epoch s>}]}` adds keys to the region's list."""
        body = json.loads(_read_body(environ) or b"{}")
        with self.public_keys_lock:
            self.public_keys.setdefault(body["region"], []).extend(body.get("keys", []))
        payload = b"{}"
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _list_public_keys(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """moto 5.2.5 does not implement CloudTrail's ListPublicKeys. CloudTrail signs digest
        files with a key pair per region that only AWS holds, so the emulator can only return
        keys a test registered (above): those of the request's region (its SigV4 credential
        scope) whose validity overlaps [StartTime, EndTime], the current time when absent, as
        the API does. `Value` is a blob: on the wire, base64 of the base64 text of the DER key,
        which is what the AWS CLI's validate-logs decodes (it base64-decodes the blob it
        receives once more)."""
        body = json.loads(_read_body(environ) or b"{}")
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        start, end = float(body.get("StartTime", now)), float(body.get("EndTime", now))
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", auth)
        region = scope.group(1) if scope else "us-east-1"
        with self.public_keys_lock:
            keys = list(self.public_keys.get(region, []))
        listed = [
            {
                "Value": base64.b64encode(k["Value"].encode()).decode(),
                "ValidityStartTime": k["ValidityStartTime"],
                "ValidityEndTime": k["ValidityEndTime"],
                "Fingerprint": k["Fingerprint"],
            }
            for k in keys
            if k["ValidityStartTime"] <= end and k["ValidityEndTime"] >= start
        ]
        payload = json.dumps({"PublicKeyList": listed}).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))])
        return [payload]

    # -- AWS Config compliance ------------------------------------------------

    @staticmethod
    def _config_compliance(start_response: Callable, body: dict) -> Iterable[bytes]:
        """moto 5.2.5 does not implement Config's compliance APIs (it answers HTTP 500, which the
        SDK retries for seconds). Answer as AWS does for rules that have not evaluated anything
        yet: an empty result. Tests of the compliance report itself use recorded responses."""
        payload = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))])
        return [payload]

    # -- S3 ---------------------------------------------------------------

    def _s3_root(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, headers, body = _call_buffered(self.app, environ)
        if status.startswith("2"):
            fixed = fix_s3_xml_root(body)
            if fixed is not body:
                log.debug("s3: renamed XML root for %s?%s", environ.get("PATH_INFO"), environ.get("QUERY_STRING"))
                body = fixed
                headers = _set_header(headers, "Content-Length", str(len(body)))
        start_response(status, headers)
        return [body]

    # -- CloudWatch CBOR ----------------------------------------------------

    @staticmethod
    def _is_cbor_request(environ: dict) -> bool:
        protocol = environ.get("HTTP_SMITHY_PROTOCOL", "").strip().lower()
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        return protocol == "rpc-v2-cbor" or ctype == "application/cbor"

    def _cbor(self, environ: dict, start_response: Callable, service: str, operation: str) -> Iterable[bytes]:
        # Per the spec a server accepts "Name" and "namespace.Name".
        service_name = service.rsplit(".", 1)[-1]
        if service_name not in CBOR_SERVICES:
            return self._cbor_reply(start_response, CborError(
                404, "UnknownOperationException", f"emulator: no CBOR adapter for service {service!r}",
                "UnknownOperation"), namespace="smithy.framework")
        botocore_name, signing_name, namespace, target_prefix = CBOR_SERVICES[service_name]
        model = _service_model(botocore_name)
        try:
            try:
                operation_model = model.operation_model(operation)
            except Exception:
                raise CborError(404, "UnknownOperationException", f"Unknown operation {operation}", "UnknownOperation")
            request_json = self._decode_cbor_request(environ)
            try:
                status, headers, body = _call_buffered(self.app, self._json_environ(
                    environ, request_json, f"{target_prefix}.{operation}", signing_name))
            except Exception as exc:
                # moto runs Flask in debug mode, so its own crashes (e.g. a
                # member of the wrong type) propagate up to here instead of
                # becoming an HTML 500. Answer in CBOR so the SDK can parse it.
                log.exception("moto raised while handling %s.%s", service_name, operation)
                raise CborError(500, "InternalServiceFault",
                                f"emulator: moto raised {type(exc).__name__}: {exc}",
                                "InternalServiceError", "Receiver")
        except CborError as err:
            return self._cbor_reply(start_response, err, namespace=namespace)

        code = int(status.split()[0])
        request_id = _header(headers, "x-amzn-requestid")
        try:
            reply = json.loads(body) if body.strip() else {}
        except ValueError:
            reply = None
        if reply is None and body.strip() == b"null":  # some moto handlers answer `null`
            reply = {}

        if 200 <= code < 300 and isinstance(reply, dict):
            if operation_model.output_shape is None:
                # Unit output: the spec says no body and no Content-Type.
                return self._cbor_raw(start_response, 200, b"", request_id, None)
            import cbor2

            payload = cbor2.dumps(_json_to_cbor(reply, operation_model.output_shape))
            return self._cbor_raw(start_response, 200, payload, request_id, None)

        if isinstance(reply, dict) and (reply.get("__type") or reply.get("code") or reply.get("Code")):
            return self._cbor_moto_error(start_response, code, headers, reply, model, namespace, request_id)

        # moto crashed (HTML 500) or answered something that is not JSON.
        text = body.decode("utf-8", "replace")
        title = re.search(r"<title>(.*?)</title>", text, re.S)
        detail = title.group(1).strip() if title else text.strip()[:300]
        return self._cbor_reply(start_response, CborError(
            code if code >= 400 else 500, "InternalServiceFault",
            f"emulator: moto returned HTTP {code} for {operation}: {detail}",
            "InternalServiceError", "Receiver"), namespace=namespace, request_id=request_id)

    def _decode_cbor_request(self, environ: dict) -> Any:
        import cbor2

        raw = _read_body(environ)
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        try:
            # CloudWatch PutMetricData has @requestCompression: the SDK may gzip it.
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
        except (OSError, zlib.error) as exc:
            raise CborError(400, "SerializationException", f"cannot decompress body: {exc}", "SerializationException")
        if not raw:
            return {}
        try:
            decoded = cbor2.loads(raw)
        except Exception as exc:  # cbor2 raises several error types
            raise CborError(400, "SerializationException", f"malformed CBOR body: {exc}", "SerializationException")
        if not isinstance(decoded, dict):
            raise CborError(400, "SerializationException", "CBOR body is not a map", "SerializationException")
        return _cbor_to_json(decoded)

    @staticmethod
    def _json_environ(environ: dict, request_json: Any, target: str, signing_name: str) -> dict:
        body = json.dumps(request_json).encode()
        env = dict(environ)
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_SMITHY_PROTOCOL", "HTTP_TRANSFER_ENCODING",
                    "HTTP_ACCEPT", "HTTP_X_AMZN_TARGET", "wsgi.input_terminated"):
            env.pop(key, None)
        env.update({
            "PATH_INFO": "/",
            "RAW_URI": "/",
            "REQUEST_URI": "/",
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": target,
            "wsgi.input": io.BytesIO(body),
        })
        # moto picks the backend from the SigV4 credential scope (service name
        # "monitoring"), not from the Host header, and does not verify the
        # signature; the SDK's signature over the CBOR request is therefore
        # harmless. An unsigned request would be routed to S3, so give it a
        # dummy scope (default account/region).
        if not env.get("HTTP_AUTHORIZATION", "").startswith("AWS4-"):
            env["HTTP_AUTHORIZATION"] = (
                f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/19700101/us-east-1/{signing_name}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
        return env

    def _cbor_moto_error(self, start_response, code, headers, reply, model, namespace, request_id):
        raw_type = str(reply.get("__type") or reply.get("code") or reply.get("Code"))
        name = raw_type.split(":", 1)[0].rsplit("#", 1)[-1]
        shapes = {shape.name: shape for shape in model.error_shapes}
        shape = shapes.get(name)
        if shape is None:  # moto may use the query error code instead of the shape name
            shape = next((s for s in shapes.values() if (s.metadata.get("error") or {}).get("code") == name), None)
        error_meta = (shape.metadata.get("error") or {}) if shape is not None else {}
        query_error = _header(headers, "x-amzn-query-error")
        if not query_error:
            fault = "Sender" if error_meta.get("senderFault") or code < 500 else "Receiver"
            query_error = f"{error_meta.get('code', name)};{fault}"
        message = reply.get("message") or reply.get("Message") or ""
        fields = {k: v for k, v in reply.items() if k not in ("__type", "Message", "message", "code", "Code")}
        fields = _json_to_cbor(fields, shape) if shape is not None else _json_to_cbor_by_name(None, fields)
        payload = {"__type": f"{namespace}#{shape.name if shape is not None else name}", "message": message}
        payload.update(fields)
        import cbor2

        return self._cbor_raw(start_response, code, cbor2.dumps(payload), request_id, query_error)

    def _cbor_reply(self, start_response, err: CborError, namespace: str, request_id: str | None = None):
        import cbor2

        payload = cbor2.dumps({"__type": f"{namespace}#{err.shape}", "message": err.message})
        return self._cbor_raw(start_response, err.status, payload, request_id, f"{err.query_code};{err.fault}")

    @staticmethod
    def _cbor_raw(start_response, code: int, payload: bytes, request_id: str | None, query_error: str | None):
        from http import HTTPStatus

        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = "Unknown"
        headers = [("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(payload)))]
        if payload:
            headers.append(("Content-Type", "application/cbor"))
        if request_id:
            headers.append(("x-amzn-RequestId", request_id))
        if query_error:
            headers.append(("x-amzn-query-error", query_error))
        start_response(f"{code} {reason}", headers)
        return [payload]


# ---------------------------------------------------------------------------
# Request log (harness feature, not a wire adaptation)
# ---------------------------------------------------------------------------

_ACTION_IN_FORM = re.compile(r"(?:^|&)Action=([^&]*)")


class RequestLog:
    """Outermost middleware: records every request so tests can assert which
    AWS calls ctguard made (e.g. "a dry run sends no mutating request")."""

    PREFIX = "/_ctguard/"

    def __init__(self, app: Callable):
        self.app = app
        self.lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.PREFIX):
            return self._own_endpoint(environ, start_response, path)
        entry = {
            "method": environ.get("REQUEST_METHOD", ""),
            "path": path.encode("latin-1").decode("utf-8", "replace"),
            "query": environ.get("QUERY_STRING", ""),
            "operation": self._operation(environ, path),
            "service": self._signing_service(environ),
            "status": None,
        }
        with self.lock:
            self.entries.append(entry)

        def recording_start_response(status, headers, exc_info=None):  # noqa: ANN001
            try:
                entry["status"] = int(status.split()[0])
            except ValueError:
                pass
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, recording_start_response)

    @staticmethod
    def _signing_region(environ: dict) -> str:
        """The region a SigV4 request is signed for (the credential scope's third part)."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/[^/]+/aws4_request", auth)
        return match.group(1) if match else ""

    @staticmethod
    def _signing_service(environ: dict) -> str:
        """The service a SigV4 request is signed for (the credential scope's fourth part), which
        names the service even for protocols whose path and body do not (query, REST)."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
        return match.group(1) if match else ""

    @staticmethod
    def _operation(environ: dict, path: str) -> str:
        match = _CBOR_PATH.match(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if match:
            service = match.group(1).rsplit(".", 1)[-1]
            prefix = CBOR_SERVICES.get(service, (None, None, None, service))[3]
            return f"{prefix}.{match.group(2)}"
        target = environ.get("HTTP_X_AMZ_TARGET") or environ.get("HTTP_X_AMZN_TARGET")
        if target:
            return target
        found = _ACTION_IN_FORM.search(environ.get("QUERY_STRING", ""))
        if found is None and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)  # give moto the body back
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("wsgi.input_terminated", None)
            found = _ACTION_IN_FORM.search(body.decode("utf-8", "replace"))
        if found is not None:
            from urllib.parse import unquote_plus

            return unquote_plus(found.group(1))
        return ""

    def _own_endpoint(self, environ: dict, start_response: Callable, path: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = path[len(self.PREFIX):].rstrip("/")
        if route == "requests" and method == "GET":
            with self.lock:
                body = json.dumps(self.entries).encode()
        elif route == "requests/clear" and method == "POST":
            with self.lock:
                cleared = len(self.entries)
                self.entries.clear()
            body = json.dumps({"cleared": cleared}).encode()
        else:
            body = json.dumps({"error": f"no such emulator endpoint: {method} {path}"}).encode()
            start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 (default) lets the OS choose")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin reaches EOF (tie the emulator's life to its parent)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--no-adaptations", action="store_true",
                        help="serve plain moto (debugging: shows moto's own wire format)")
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error(f"--host must be a loopback IP address (got {args.host!r}); this emulator is test-only")
    return args


def patch_s3_logging_permission_check() -> None:
    """Correct moto 5.2.5's PutBucketLogging permission check (a model fix, not a wire fix).

    moto crashes (AttributeError, served as HTTP 500) on any target-bucket policy statement
    whose Principal is the string "*", such as the usual TLS-only Deny, and it demands that
    the logging grant's Resource equal `<bucket>/<target prefix>*` exactly. AWS evaluates the
    policy: an Allow for logging.s3.amazonaws.com with s3:PutObject on a resource pattern that
    covers the log objects is enough. This replacement checks exactly that.
    """
    import fnmatch

    from moto.s3.models import LOGGING_SERVICE_PRINCIPAL, FakeBucket

    def as_list(value: Any) -> list:
        return value if isinstance(value, list) else [value]

    def allowed(target_bucket: Any, target_prefix: str | None) -> bool:
        if not target_bucket.policy:
            return False
        doc = json.loads(target_bucket.policy.decode())
        sample_key = f"arn:{target_bucket.partition}:s3:::{target_bucket.name}/{target_prefix or ''}sample-log-object"
        for stmt in as_list(doc.get("Statement", [])):
            principal = stmt.get("Principal")
            services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
            if stmt.get("Effect") != "Allow" or LOGGING_SERVICE_PRINCIPAL not in services:
                continue
            if not any(fnmatch.fnmatchcase("s3:PutObject", a) for a in as_list(stmt.get("Action", []))):
                continue
            if any(fnmatch.fnmatchcase(sample_key, r) for r in as_list(stmt.get("Resource", []))):
                return True
        return False

    FakeBucket._log_permissions_enabled_policy = staticmethod(allowed)


def patch_service_linked_role_names() -> None:
    """Correct moto 5.2.5's name for AWS Config's service-linked role (a model fix).

    moto derives the role name from the service principal and spells Config's
    "AWSServiceRoleForconfig"; AWS documents and creates "AWSServiceRoleForConfig".
    """
    from moto.iam import models

    models.SERVICE_NAME_CONVERSION.setdefault("config", "Config")


def patch_logs_metric_filter_upsert() -> None:
    """Correct moto 5.2.5's PutMetricFilter, which appends (a model fix, not a wire fix).

    AWS "creates or updates" a metric filter: a filter's name is unique within its log
    group, so a second PutMetricFilter with the same name replaces the first. moto appends a
    second filter, so a retried call, or two writers, leave duplicates AWS never would.
    """
    from moto.logs.metric_filters import MetricFilters

    append = MetricFilters.add_filter

    def add_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations):  # noqa: ANN001
        self.metric_filters[:] = [
            f for f in self.metric_filters
            if not (f["filterName"] == filter_name and f["logGroupName"] == log_group_name)
        ]
        append(self, filter_name, filter_pattern, log_group_name, metric_transformations)

    MetricFilters.add_filter = add_filter


# ---------------------------------------------------------------------------
# Addition: CloudWatch Logs AssociateKmsKey and DisassociateKmsKey
#
# moto 5.2.5 keeps the kmsKeyId given to CreateLogGroup and returns it from DescribeLogGroups,
# but does not serve AssociateKmsKey or DisassociateKmsKey. These answer as the CloudWatch Logs
# API reference documents them: the group must exist (ResourceNotFoundException); the key is
# named by its ARN and must be a key of the same account and region
# (InvalidParameterException otherwise); an association replaces the group's key, a
# disassociation removes it. AWS also checks that the key's policy lets
# logs.<region>.amazonaws.com use the key for this group; the emulator evaluates no policy.
# ---------------------------------------------------------------------------


def patch_logs_kms_key_association() -> None:
    from moto.kms.models import kms_backends
    from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def group(self):  # noqa: ANN001, ANN202
        found = self.logs_backend.groups.get(self._get_param("logGroupName"))
        if found is None:
            raise ResourceNotFoundException("The specified log group does not exist.")
        return found

    def associate_kms_key(self) -> str:  # noqa: ANN001
        target = group(self)
        key = self._get_param("kmsKeyId") or ""
        parts = key.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms" or not parts[5].startswith("key/"):
            raise InvalidParameterException(f"Specified KMS key ARN is not valid: {key}")
        if (parts[3], parts[4]) != (self.region, self.current_account) or \
                parts[5][len("key/"):] not in kms_backends[self.current_account][self.region].keys:
            raise InvalidParameterException(f"Specified KMS key {key} does not exist or is not in this region")
        target.kms_key_id = key
        return ""

    def disassociate_kms_key(self) -> str:  # noqa: ANN001
        group(self).kms_key_id = None
        return ""

    LogsResponse.associate_kms_key = associate_kms_key
    LogsResponse.disassociate_kms_key = disassociate_kms_key


# ---------------------------------------------------------------------------
# Addition: AWS Config DescribeDeliveryChannelStatus
#
# moto 5.2.5 raises NotImplementedError for it. This answers as the AWS Config API reference
# documents it (API_DescribeDeliveryChannelStatus, API_DeliveryChannelStatus,
# API_ConfigExportDeliveryInfo, API_ConfigStreamDeliveryInfo): every channel of the region,
# or those named (NoSuchDeliveryChannelException for a name that does not exist), each with
#   - configSnapshotDeliveryInfo and configHistoryDeliveryInfo: lastStatus Success,
#     lastAttemptTime = lastSuccessfulTime = the time of the call (deliveries that have just
#     succeeded), and for snapshots nextDeliveryTime one delivery frequency later
#     (TwentyFour_Hours when the channel sets none);
#   - configStreamDeliveryInfo: lastStatus Not_Applicable without an SNS topic, else Success.
# DeliveryStatus is spelled Success | Failure | Not_Applicable (API_ConfigExportDeliveryInfo).
# Times are epoch seconds, as the JSON protocol sends them.
# Test-only endpoint (reached through the proxy, which forwards /moto-api/* unfaulted):
#   POST /moto-api/ctguard/config-delivery-status
#        {"region": "us-east-1", "channel": NAME (optional: every channel of the region),
#         "configSnapshotDeliveryInfo": {...}, "configHistoryDeliveryInfo": {...},
#         "configStreamDeliveryInfo": {...}}
#        Each info given replaces the default one for that channel from then on, e.g.
#        {"lastStatus": "Failure", "lastErrorCode": "AccessDenied", "lastErrorMessage": "...",
#         "lastAttemptTime": 1700000000}. {"region": R, "clear": true} drops the region's seeds.
# ---------------------------------------------------------------------------

CONFIG_DELIVERY_STATUS_PATH = "/moto-api/ctguard/config-delivery-status"
CONFIG_DELIVERY_INFOS = ("configSnapshotDeliveryInfo", "configHistoryDeliveryInfo", "configStreamDeliveryInfo")
CONFIG_FREQUENCY_SECONDS = {
    "One_Hour": 3600, "Three_Hours": 3 * 3600, "Six_Hours": 6 * 3600,
    "Twelve_Hours": 12 * 3600, "TwentyFour_Hours": 24 * 3600,
}
_config_delivery_lock = threading.Lock()
# (region, channel name or "*") -> {info name: info}
_config_delivery_seeds: dict[tuple[str, str], dict[str, dict]] = {}


def seed_config_delivery_status(request: dict) -> int:
    region = request["region"]
    with _config_delivery_lock:
        if request.get("clear"):
            for k in [k for k in _config_delivery_seeds if k[0] == region]:
                del _config_delivery_seeds[k]
            return 0
        infos = {k: dict(request[k]) for k in CONFIG_DELIVERY_INFOS if k in request}
        _config_delivery_seeds.setdefault((region, request.get("channel") or "*"), {}).update(infos)
        return len(infos)


def patch_config_delivery_channel_status() -> None:
    from moto.config.exceptions import NoSuchDeliveryChannelException
    from moto.config.responses import ConfigResponse

    def status(region: str, channel) -> dict:  # noqa: ANN001
        now = time.time()
        props = channel.config_snapshot_delivery_properties
        frequency = getattr(props, "delivery_frequency", None) or "TwentyFour_Hours"
        stream = {"lastStatus": "Success" if channel.sns_topic_arn else "Not_Applicable", "lastStatusChangeTime": now}
        out = {
            "name": channel.name,
            "configSnapshotDeliveryInfo": {"lastStatus": "Success", "lastAttemptTime": now, "lastSuccessfulTime": now,
                                           "nextDeliveryTime": now + CONFIG_FREQUENCY_SECONDS.get(frequency, 86400)},
            "configHistoryDeliveryInfo": {"lastStatus": "Success", "lastAttemptTime": now, "lastSuccessfulTime": now},
            "configStreamDeliveryInfo": stream,
        }
        with _config_delivery_lock:
            for key in ((region, "*"), (region, channel.name)):
                out.update(_config_delivery_seeds.get(key, {}))
        return out

    def describe_delivery_channel_status(self) -> str:  # noqa: ANN001
        channels = self.config_backend.delivery_channels
        names = self._get_param("DeliveryChannelNames") or []
        for name in names:
            if name not in channels:
                raise NoSuchDeliveryChannelException(name)
        listed = [status(self.region, c) for n, c in channels.items() if not names or n in names]
        return json.dumps({"DeliveryChannelsStatus": listed})

    ConfigResponse.describe_delivery_channel_status = describe_delivery_channel_status


def patch_config_rule_update_keeps_tags() -> None:
    """Correct moto 5.2.5's PutConfigRule on an existing rule, which replaces its tags (a model
    fix, not a wire fix).

    In AWS a resource's tags change through TagResource and UntagResource; PutConfigRule's
    Tags apply to the rule it creates, and an update that names no tags (the console's, or
    anyone's who edits the rule's parameters) leaves the rule's tags as they were. moto sets
    the rule's tags to the request's, so such an update would strip ctguard's ownership tag.
    """
    from moto.config.models import ConfigRule

    modify = ConfigRule.modify_fields

    def modify_fields(self, region, config_rule, tags):  # noqa: ANN001
        kept = dict(getattr(self, "tags", None) or {})
        modify(self, region, config_rule, tags)
        self.tags = {**kept, **(tags or {})}

    ConfigRule.modify_fields = modify_fields


def patch_sqs_retention_check() -> None:
    """Make moto 5.2.5's per-message retention check on ReceiveMessage constant-time (speed
    only; the answer is the same).

    moto checks each message against the queue's MessageRetentionPeriod by building every
    attribute of the queue, which counts the messages: a receive over a queue of n messages
    costs n squared. Tests that deliver thousands of alerts to one queue (the evaluator
    cross-check) spent minutes there.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name, message):  # noqa: ANN001
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return retain_until > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

    # SendMessage builds every queue attribute too, whose message counts asked the clock once
    # per message: one clock reading per count gives the same counts, many times faster.
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    def count(self, keep):  # noqa: ANN001, ANN202
        now = unix_time_millis()
        return sum(1 for m in self._messages if keep(m, now))

    Queue.approximate_number_of_messages_delayed = property(
        lambda self: count(self, lambda m, now: now < m.delayed_until))
    Queue.approximate_number_of_messages_not_visible = property(
        lambda self: count(self, lambda m, now: not now > m.visible_at))
    Queue.approximate_number_of_messages = property(
        lambda self: count(self, lambda m, now: now > m.visible_at and not now < m.delayed_until))


def patch_event_pattern_arrays_of_objects() -> None:
    """Correct moto 5.2.5's event pattern matching inside arrays of objects (a model fix).

    moto flattens an event's nested objects but not objects inside arrays, so a pattern on
    `requestParameters.attributes.key` never sees the keys of an `attributes` list, and no
    rule on such a field ever fires. EventBridge matches there (EventBridge User Guide, "Arrays
    in EventBridge event patterns"), with array consistency as event-ruler documents it: the
    fields one pattern level names must all hold in the same element of the array. Leaf
    comparisons stay moto's own.
    """
    from moto.events.models import UNDEFINED, EventPattern

    def field(node, key):  # noqa: ANN001, ANN202
        return node.get(key, UNDEFINED) if isinstance(node, dict) else UNDEFINED

    def matches(self, node, pattern):  # noqa: ANN001, ANN202
        for key, want in pattern.items():
            if key == "$or":
                if not any(matches(self, node, branch) for branch in want):
                    return False
                continue
            value = field(node, key)
            if isinstance(want, dict):
                if isinstance(value, list):
                    # One element must satisfy every field of this level.
                    elements = [e for e in value if isinstance(e, dict)] or [{}]
                    if not any(matches(self, e, want) for e in elements):
                        return False
                elif not matches(self, value if isinstance(value, dict) else {}, want):
                    return False
            elif isinstance(want, list):
                # A non-empty object is no value; moto's leaf filters take scalars and lists.
                leaf = UNDEFINED if isinstance(value, dict) and value else value
                if not self._does_item_match_filters(leaf, want):
                    return False
            else:
                return False
        return True

    def matches_event(self, event):  # noqa: ANN001, ANN202
        if not self._pattern:
            return True
        return matches(self, json.loads(json.dumps(event)), self._pattern)

    EventPattern.matches_event = matches_event


def patch_cloudtrail_create_trail_exists() -> None:
    """Correct moto 5.2.5's CreateTrail, which replaces an existing trail (a model fix).

    AWS answers CreateTrail for a name that exists with TrailAlreadyExistsException. moto
    builds a new trail under the name, logging switched off, so a retried call or a second
    writer silently undoes StartLogging, which AWS never does.
    """
    from moto.cloudtrail.models import CloudTrailBackend
    from moto.core.exceptions import JsonRESTError

    create = CloudTrailBackend.create_trail

    def create_trail(self, name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if name in self.trails:
            raise JsonRESTError(
                "TrailAlreadyExistsException", f"Trail {name} already exists for customer: {self.account_id}"
            )
        return create(self, name, *args, **kwargs)

    CloudTrailBackend.create_trail = create_trail


def patch_cloudtrail_insight_selectors() -> None:
    """Correct moto 5.2.5's PutInsightSelectors and GetInsightSelectors (a model fix).

    AWS's PutInsightSelectors replaces the trail's Insights types, and an empty list turns
    Insights off; moto appends, so a second call doubled the types and none could be removed.
    AWS's GetInsightSelectors on a trail without Insights answers InsightNotEnabledException;
    moto answers an empty list.
    """
    from moto.cloudtrail.models import CloudTrailBackend, Trail
    from moto.core.exceptions import JsonRESTError

    def put_insight_selectors(self, insight_selectors):  # noqa: ANN001
        self.insight_selectors = list(insight_selectors or [])

    get = CloudTrailBackend.get_insight_selectors

    def get_insight_selectors(self, trail_name):  # noqa: ANN001
        arn, selectors = get(self, trail_name)
        if not selectors:
            raise JsonRESTError(
                "InsightNotEnabledException", f"Trail {trail_name} does not have Insights enabled."
            )
        return arn, selectors

    Trail.put_insight_selectors = put_insight_selectors
    CloudTrailBackend.get_insight_selectors = get_insight_selectors


def patch_tagging_api_rules() -> None:
    """Let moto 5.2.5's Resource Groups Tagging API list EventBridge and AWS Config rules.

    AWS's GetResources covers `events:rule` and `config:config-rule`; moto's lists event buses
    only, and nothing from Config, so a client that reads tags in one call per region would see
    none. Rules are added from the same backends ListTagsForResource reads.
    """
    from moto.config.models import config_backends
    from moto.core.resource_tagging import TaggedResource, make_tag_matcher, match_resource_type
    from moto.events.models import events_backends
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    listed = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def rules(account_id: str, region: str):  # noqa: ANN202
        events = events_backends[account_id][region]
        for bus in events.event_buses.values():
            for rule in bus.rules.values():
                yield TaggedResource(arn=rule.arn, tags=events.tagger.get_tag_dict_for_resource(rule.arn),
                                     resource_type="events:rule")
        for rule in config_backends[account_id][region].config_rules.values():
            yield TaggedResource(arn=rule.config_rule_arn, tags=dict(rule.tags or {}),
                                 resource_type="config:config-rule")

    def get_resources(self, tag_filters=None, resource_type_filters=None, resource_arn_list=None):  # noqa: ANN001, ANN202
        yield from listed(self, tag_filters, resource_type_filters, resource_arn_list)
        wanted = make_tag_matcher(tag_filters)
        for r in rules(self.account_id, self.region_name):
            if (r.tags and match_resource_type(r.resource_type, resource_type_filters) and wanted(r.tags)
                    and (not resource_arn_list or r.arn in resource_arn_list)):
                yield r

    ResourceGroupsTaggingAPIBackend._get_resources_generator = get_resources


def patch_s3_bucket_policy_conditions() -> None:
    """moto 5.2.5 checks a bucket policy on object reads and writes without any request context,
    and its IAMPolicyStatement answers DENIED for a statement whose condition does not hold,
    whatever the statement's effect: the deny-without-TLS statement of ctguard's audit bucket
    (`aws:SecureTransport` false) then refuses every GetObject and PutObject in the bucket. In
    IAM's evaluation a statement whose condition does not hold does not apply, and a condition
    on a key the request lacks does not hold (`...IfExists` and `Null` aside, which no bucket
    policy here uses). So statements with conditions are left out when moto has no context to
    evaluate them with; the unconditional ones decide as before."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self, action: str, resource: str) -> Any:  # noqa: ANN001
        if self.policy is None:
            return PermissionResult.NEUTRAL
        raw = self.policy.decode() if isinstance(self.policy, bytes) else self.policy
        doc = json.loads(raw)
        statements = doc.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        unconditional = [st for st in statements if not st.get("Condition")]
        if not unconditional:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**doc, "Statement": unconditional})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


def patch_athena_catalog() -> None:
    """Give moto 5.2.5's Athena the parts of the Glue Data Catalog and the workgroup API that
    ctguard's Athena resources use, as AWS documents them (a test-only addition).

    moto accepts every query without running it and records only CREATE/DROP DATABASE. Here the
    table DDL submitted through StartQueryExecution is recorded too, as Athena would store it in
    the catalog:
      - CREATE EXTERNAL TABLE [IF NOT EXISTS] [db.]t (cols) PARTITIONED BY (...) ROW FORMAT SERDE
        '...' STORED AS INPUTFORMAT '...' OUTPUTFORMAT '...' LOCATION '...' TBLPROPERTIES (...):
        column types as the catalog spells them (lower case, no spaces), the storage descriptor
        and the properties as the table's parameters. The query FAILS when the database does not
        exist, or the table exists and IF NOT EXISTS is absent.
      - ALTER TABLE [db.]t SET TBLPROPERTIES (...): adds or replaces properties.
      - DROP TABLE [IF EXISTS] [db.]t: removes the definition (no data is touched; FAILS for a
        missing table without IF EXISTS). DROP DATABASE drops its tables with it.
    A failed statement reports FAILED, with Athena's reason, once moto would report it finished.
    GetTableMetadata answers from that record (MetadataException "Entity Not Found", as Athena
    passes on the catalog's EntityNotFoundException, for a missing database or table).
    UpdateWorkGroup (missing in moto) applies ConfigurationUpdates and State as the API reference
    describes. ListTagsForResource of an existing workgroup without tags answers an empty list
    (moto answers InvalidRequestException).
    """
    from moto.athena.exceptions import MetadataException
    from moto.athena.models import AthenaBackend
    from moto.athena.responses import AthenaResponse

    lock = threading.Lock()
    failures: dict[str, str] = {}

    def tables(backend) -> dict:  # noqa: ANN001
        return backend.__dict__.setdefault("ctguard_tables", {})

    def split_top(text: str) -> list[str]:
        """Splits on commas outside <...> and (...)."""
        parts, depth, current = [], 0, ""
        for ch in text:
            if ch in "<(":
                depth += 1
            elif ch in ">)":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += ch
        if current.strip():
            parts.append(current)
        return [p.strip() for p in parts]

    def parenthesized(text: str, start: int) -> tuple[str, int]:
        """The text inside the parenthesis opening at `start`, and the index after it."""
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
                if depth == 0:
                    return text[start + 1:i], i + 1
        raise ValueError("unbalanced parentheses")

    def columns(text: str) -> list[dict]:
        out = []
        for col in split_top(text):
            name, _, kind = col.partition(" ")
            out.append({"Name": name.strip("`").lower(), "Type": re.sub(r"\s+", "", kind).lower()})
        return out

    def properties(text: str) -> dict:
        return dict(re.findall(r"'((?:[^'\\]|\\.)*)'\s*=\s*'((?:[^'\\]|\\.)*)'", text))

    name_re = r"`?([A-Za-z0-9_]+)`?(?:\.`?([A-Za-z0-9_]+)`?)?"

    def key(backend, context, first: str, second: str | None) -> tuple:  # noqa: ANN001
        catalog = (context or {}).get("Catalog", "AwsDataCatalog")
        db, table = (first, second) if second else ((context or {}).get("Database", "default"), first)
        return catalog, db.lower(), table.lower()

    def catalog_ddl(backend, query: str, context) -> str | None:  # noqa: ANN001
        """Records a table statement; the reason it fails, or None."""
        q = query.strip()
        create = re.match(r"CREATE\s+EXTERNAL\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?" + name_re + r"\s*", q, re.I | re.S)
        if create:
            catalog, db, table = key(backend, context, create.group(2), create.group(3))
            if (catalog, db) not in backend.databases:
                return f"SemanticException [Error 10072]: Database does not exist: {db}"
            if (catalog, db, table) in tables(backend):
                return None if create.group(1) else f"AlreadyExistsException: Table {table} already exists"
            cols, rest = parenthesized(q, create.end())
            rest = q[rest:]
            parts = re.search(r"PARTITIONED\s+BY\s*\(", rest, re.I)
            partition_keys = columns(parenthesized(rest, parts.end() - 1)[0]) if parts else []
            quoted = lambda label: (re.search(label + r"\s+'([^']*)'", rest, re.I) or [None, None])[1]  # noqa: E731
            params = {
                "EXTERNAL": "TRUE",
                "location": quoted("LOCATION"),
                "inputformat": quoted("INPUTFORMAT"),
                "outputformat": quoted("OUTPUTFORMAT"),
                "serde.serialization.lib": quoted("SERDE"),
                "transient_lastDdlTime": str(int(time.time())),
            }
            props = re.search(r"TBLPROPERTIES\s*\(", rest, re.I)
            if props:
                params.update(properties(parenthesized(rest, props.end() - 1)[0]))
            tables(backend)[(catalog, db, table)] = {
                "Name": table, "CreateTime": time.time(), "TableType": "EXTERNAL_TABLE",
                "Columns": columns(cols), "PartitionKeys": partition_keys,
                "Parameters": {k: v for k, v in params.items() if v is not None},
            }
            return None
        alter = re.match(r"ALTER\s+TABLE\s+" + name_re + r"\s+SET\s+TBLPROPERTIES\s*\(", q, re.I)
        if alter:
            entry = tables(backend).get(key(backend, context, alter.group(1), alter.group(2)))
            if entry is None:
                return f"SemanticException: Table not found {alter.group(1)}"
            entry["Parameters"].update(properties(parenthesized(q, alter.end() - 1)[0]))
            return None
        drop = re.match(r"DROP\s+TABLE\s+(IF\s+EXISTS\s+)?" + name_re + r"\s*;?\s*$", q, re.I)
        if drop:
            found = tables(backend).pop(key(backend, context, drop.group(2), drop.group(3)), None)
            return None if found or drop.group(1) else f"SemanticException: Table not found {drop.group(2)}"
        drop_db = AthenaBackend._DROP_DB_PATTERN.match(q)
        if drop_db:
            catalog = (context or {}).get("Catalog", "AwsDataCatalog")
            for k in [k for k in tables(backend) if k[:2] == (catalog, drop_db.group(1).lower())]:
                del tables(backend)[k]
        return None

    start = AthenaBackend.start_query_execution

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):  # noqa: ANN001, ANN202
        failure = catalog_ddl(self, query or "", context)
        exec_id = start(self, query=query, context=context, config=config, workgroup=workgroup,
                        execution_parameters=execution_parameters)
        if failure:
            with lock:
                failures[exec_id] = failure
        return exec_id

    AthenaBackend.start_query_execution = start_query_execution

    get_execution = AthenaResponse.get_query_execution

    def get_query_execution(self):  # noqa: ANN001, ANN202
        body = get_execution(self)
        with lock:
            failure = failures.get(self._get_param("QueryExecutionId"))
        if failure is None or isinstance(body, tuple):
            return body
        reply = json.loads(body)
        status = reply["QueryExecution"]["Status"]
        if status.get("State") == "SUCCEEDED":
            status["State"] = "FAILED"
            status["StateChangeReason"] = failure
            status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False, "ErrorMessage": failure}
        return json.dumps(reply)

    AthenaResponse.get_query_execution = get_query_execution

    def get_table_metadata(self):  # noqa: ANN001, ANN202
        k = (self._get_param("CatalogName"), self._get_param("DatabaseName").lower(), self._get_param("TableName").lower())
        entry = tables(self.athena_backend).get(k)
        if entry is None:
            raise MetadataException(
                "Entity Not Found (Service: AmazonDataCatalog; Status Code: 400; Error Code: EntityNotFoundException)"
            )
        return json.dumps({"TableMetadata": entry})

    AthenaResponse.get_table_metadata = get_table_metadata

    def update_work_group(self):  # noqa: ANN001, ANN202
        wg = self.athena_backend.work_groups.get(self._get_param("WorkGroup"))
        if wg is None:
            return self.error("WorkGroup is not found.", 400)
        updates = self._get_param("ConfigurationUpdates") or {}
        config = wg.configuration
        results = updates.get("ResultConfigurationUpdates") or {}
        result = config.setdefault("ResultConfiguration", {})
        if results.get("RemoveOutputLocation"):
            result.pop("OutputLocation", None)
        if "OutputLocation" in results:
            result["OutputLocation"] = results["OutputLocation"]
        if results.get("RemoveEncryptionConfiguration"):
            result.pop("EncryptionConfiguration", None)
        if "EncryptionConfiguration" in results:
            result["EncryptionConfiguration"] = results["EncryptionConfiguration"]
        if updates.get("RemoveBytesScannedCutoffPerQuery"):
            config.pop("BytesScannedCutoffPerQuery", None)
        for field in ("BytesScannedCutoffPerQuery", "EnforceWorkGroupConfiguration",
                      "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled"):
            if field in updates:
                config[field] = updates[field]
        if self._get_param("Description") is not None:
            wg.description = self._get_param("Description")
        if self._get_param("State"):
            wg.state = self._get_param("State")
        return "{}"

    AthenaResponse.update_work_group = update_work_group

    list_tags = AthenaResponse.list_tags_for_resource

    def list_tags_for_resource(self):  # noqa: ANN001, ANN202
        arn = self._get_param("ResourceARN") or ""
        if not self.athena_backend.list_tags_for_resource(arn) and any(
                wg.arn == arn for wg in self.athena_backend.work_groups.values()):
            return json.dumps({"Tags": []})
        return list_tags(self)

    AthenaResponse.list_tags_for_resource = list_tags_for_resource


def patch_s3_create_bucket_tags() -> None:
    """moto 5.2.5 ignores the `Tags` of CreateBucket's CreateBucketConfiguration, which S3
    applies to the new general purpose bucket (S3 API Reference, CreateBucketConfiguration).
    They are set as PutBucketTagging would, once moto has made the bucket."""
    import xmltodict
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_put

    def put(self, request, bucket_name, querystring):  # noqa: ANN001, ANN202
        result = original(self, request, bucket_name, querystring)
        if not querystring and self.body:
            try:
                conf = xmltodict.parse(self.body).get("CreateBucketConfiguration") or {}
            except Exception:  # noqa: BLE001 - not XML: moto answered it already
                conf = {}
            tags = (conf.get("Tags") or {}).get("Tag") or []
            tags = tags if isinstance(tags, list) else [tags]
            if tags:
                self.backend.put_bucket_tagging(bucket_name, {t["Key"]: t.get("Value") or "" for t in tags})
        return result

    S3Response._bucket_response_put = put


def patch_s3_object_lock() -> None:
    """Two corrections to moto 5.2.5's S3 Object Lock configuration (model fixes).

    PutObjectLockConfiguration: moto refuses it on any bucket holding objects. S3 turns Object
    Lock on for an existing versioned bucket, objects and all, and changes the default retention
    of a locked one whatever it holds (S3 User Guide, "Configuring S3 Object Lock": "Enable
    Object Lock on an existing S3 bucket"). The versioning check stays.

    GetObjectLockConfiguration: moto stores the period it was not given as 0 and reports both
    `Days` and `Years`; S3 reports only the one that was set (a DefaultRetention has one or the
    other, never both).
    """
    from moto.s3.models import S3Backend

    def put_object_lock_configuration(self, bucket_name, lock_enabled, mode=None, days=None, years=None):  # noqa: ANN001, ANN202
        bucket = self.get_bucket(bucket_name)
        if not bucket.is_versioned:
            from moto.s3.exceptions import InvalidBucketState

            raise InvalidBucketState(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
            )
        if lock_enabled:
            bucket.object_lock_enabled = True
            bucket.versioning_status = "Enabled"
        bucket.default_lock_mode = mode
        bucket.default_lock_days = days
        bucket.default_lock_years = years

    get = S3Backend.get_object_lock_configuration

    def get_object_lock_configuration(self, bucket_name):  # noqa: ANN001, ANN202
        enabled, mode, days, years = get(self, bucket_name)
        # moto counts the missing period as 0 when it computes an object's retention; S3
        # reports it absent.
        return enabled, mode, days or None, years or None

    S3Backend.put_object_lock_configuration = put_object_lock_configuration
    S3Backend.get_object_lock_configuration = get_object_lock_configuration


def patch_s3_eventbridge_events() -> None:
    """S3's own events to EventBridge, as S3 sends them (S3 User Guide, "Using EventBridge" and
    "EventBridge event message structure"); three corrections to moto 5.2.5.

    GetBucketNotificationConfiguration: moto stores an `EventBridgeConfiguration` but never
    returns it; S3 returns it (an empty element) while the bucket sends its events to EventBridge.

    Object Deleted: moto sends nothing when a delete creates a delete marker, and nothing when a
    version is deleted while others remain; S3 sends one event for each. S3's detail carries
    `reason` "DeleteObject" (an API delete) and `deletion-type` "Delete Marker Created" or
    "Permanently Deleted"; moto sends `reason` "ObjectRemoved" and no deletion-type.

    Object Created: `reason` is the API (PutObject, POST Object, CopyObject,
    CompleteMultipartUpload), not moto's "ObjectCreated", and `time` is an ISO-8601 string.

    Each event goes to the rules of the default bus in the bucket's region through the alert
    delivery path (tests/emulator/delivery.py), which applies the targets' input transformers.
    Lifecycle expiry (reason "Lifecycle Expiration") is not emulated: moto runs no lifecycle.

    `requester` is "AWS account ID or AWS service principal of requester": the caller's account,
    or, for a request carrying the test-only header `X-Emulator-S3-Requester`, that header's value.
    A test cannot sign as a service principal, so the header stands in for CloudTrail's or Config's
    own deliveries (`cloudtrail.amazonaws.com`), which S3 names by their service principal.
    """

    from moto.s3 import notifications
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    get_notification = S3Response.get_bucket_notification

    def get_bucket_notification(self):  # noqa: ANN001, ANN202
        response = get_notification(self)
        conf = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if conf is None or conf.event_bridge is None:
            return response
        status, headers, body = response if isinstance(response, tuple) else (200, {}, response)
        text = body.decode() if isinstance(body, bytes) else body
        if "EventBridgeConfiguration" not in text:
            if "</NotificationConfiguration>" in text:
                text = text.replace("</NotificationConfiguration>",
                                    "<EventBridgeConfiguration></EventBridgeConfiguration></NotificationConfiguration>")
            else:
                text = ('<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><EventBridgeConfiguration>'
                        '</EventBridgeConfiguration></NotificationConfiguration>')
        return status, headers, text.encode() if isinstance(body, bytes) else text

    S3Response.get_bucket_notification = get_bucket_notification

    def send(account_id: str, bucket, detail_type: str, detail: dict) -> None:  # noqa: ANN001
        from moto.events.models import events_backends

        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": account_id,
            "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": dict({"version": "0", "bucket": {"name": bucket.name}}, **detail),
        }
        bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        for rule in list(bus.rules.values()) if bus else []:
            rule.send_to_targets(json.loads(json.dumps(event)))

    def sends_events(bucket) -> bool:  # noqa: ANN001
        conf = bucket.notification_configuration
        return conf is not None and conf.event_bridge is not None

    def requester(account_id: str) -> dict:
        service = getattr(S3_REQUESTER, "value", None)
        return {"requester": service or account_id, "source-ip-address": service or "127.0.0.1"}

    created_reasons = {"Put": "PutObject", "Post": "POST Object", "Copy": "CopyObject",
                       "CompleteMultipartUpload": "CompleteMultipartUpload"}

    def send_event_bridge_message(account_id, bucket, event_name, key):  # noqa: ANN001, ANN202
        # Deletes are sent by delete_object below, with what moto's call does not know.
        kind, _, how = str(getattr(event_name, "value", event_name)).partition(":")[2].partition(":")
        if kind != "ObjectCreated":
            return
        obj = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', ""),
               "version-id": key.version_id, "sequencer": "617f08299329d189"}
        send(account_id, bucket, "Object Created",
             dict({"object": obj, "request-id": "N4N7GDK58NMKJ12R", "reason": created_reasons.get(how, how)},
                  **requester(account_id)))

    notifications._send_event_bridge_message = send_event_bridge_message

    delete = S3Backend.delete_object

    def delete_object(self, bucket_name, key_name, version_id=None, bypass=False):  # noqa: ANN001, ANN202
        bucket = self.get_bucket(bucket_name)
        versions = list(bucket.keys.getlist(key_name, [])) if key_name in bucket.keys else []
        result = delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        if not sends_events(bucket):
            return result
        success, meta = result
        if version_id is None and bucket.is_versioned:
            deletion, version = "Delete Marker Created", meta.get("version-id")
        else:
            gone = [v for v in versions if version_id is None or str(v.version_id) == str(version_id)]
            if not success or not gone:
                return result
            deletion, version = "Permanently Deleted", version_id or gone[-1].version_id
        obj = {"key": key_name, "etag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "617f0837b476e463"}
        if version is not None and version != "null":
            obj["version-id"] = version
        send(self.account_id, bucket, "Object Deleted",
             dict({"object": obj, "request-id": "0BH729840619AG5K", "reason": "DeleteObject",
                   "deletion-type": deletion}, **requester(self.account_id)))
        return result

    S3Backend.delete_object = delete_object


def patch_sts_assume_role_needs_role() -> None:
    """Correct moto 5.2.5's AssumeRole, which succeeds for a role that does not exist (a model fix).

    moto hands out credentials for any role ARN, in any account. AWS refuses with
    AccessDenied ("... is not authorized to perform: sts:AssumeRole on resource: ...") when
    the role is missing from the target account, which is what a member account without
    OrganizationAccountAccessRole (or with a differently named role) answers. Only the role's
    existence is checked, not its trust policy.
    """
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend
    from moto.utilities.utils import get_partition

    assume = STSBackend.assume_role

    def assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        parts = role_arn.split(":")
        account, name = (parts[4], parts[5].split("/")[-1]) if len(parts) >= 6 else ("", "")
        roles = iam_backends[account][get_partition(region_name)].roles.values() if account else []
        if not any(r.name == name for r in roles):
            error = STSClientError(
                "AccessDenied",
                f"User: arn:aws:iam::{self.account_id}:user/moto is not authorized to perform: "
                f"sts:AssumeRole on resource: {role_arn}",
            )
            raise error
        return assume(self, region_name, role_session_name, role_arn, *args, **kwargs)

    STSBackend.assume_role = assume_role


def stop_when_stdin_closes(stop: threading.Event) -> None:
    """Sets `stop` once stdin reaches end of file: the test that started us has gone."""
    def watch_stdin() -> None:
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except OSError:
            pass
        log.info("stdin closed; shutting down")
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="emulator: %(levelname)s %(name)s: %(message)s")
    # werkzeug logs one INFO line per request; keep errors and tracebacks.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app: Callable = DomainDispatcherApplication(create_backend_app)
    if not args.no_adaptations:
        app = AwsWireAdapter(app)
        patch_s3_logging_permission_check()
        patch_service_linked_role_names()
        patch_logs_metric_filter_upsert()
        patch_logs_kms_key_association()
        patch_config_delivery_channel_status()
        patch_config_rule_update_keeps_tags()
        patch_sqs_retention_check()
        patch_event_pattern_arrays_of_objects()
        patch_cloudtrail_create_trail_exists()
        patch_cloudtrail_insight_selectors()
        patch_tagging_api_rules()
        patch_s3_bucket_policy_conditions()
        patch_athena_catalog()
        patch_s3_create_bucket_tags()
        patch_s3_object_lock()
        patch_s3_eventbridge_events()
        patch_sts_assume_role_needs_role()
        # Alert delivery (PutEvents -> rules -> targets, alarm actions, SNS -> SQS) lives in
        # its own module: tests/emulator/delivery.py.
        import delivery

        delivery.install()
        # Organization trails and shadow trails: tests/emulator/org_trail.py.
        import org_trail

        org_trail.install()
    app = RequestLog(app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    # moto builds some self-referencing URLs from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()

    def request_stop(signum=None, frame=None):  # noqa: ANN001
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="serve", daemon=True)
    serve_thread.start()

    # The one and only stdout line. Afterwards fd 1 points at stderr, so a
    # stray print() from moto can never fill a pipe nobody reads.
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    if args.exit_on_stdin_eof:
        stop_when_stdin_closes(stop)

    log.info("listening on http://%s:%d", args.host, port)
    while not stop.wait(1.0):
        if not serve_thread.is_alive():
            log.error("server thread died")
            return 1
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
