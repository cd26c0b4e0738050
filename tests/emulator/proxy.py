#!/usr/bin/env python3
"""Fault-injecting HTTP proxy between ctguard and the test emulator (server.py).

Real AWS throttles, answers 500 and 503, and drops connections, sometimes after a call has
taken effect. moto never does. This proxy sits on 127.0.0.1 in front of the emulator, forwards
every request, and on a seeded random share of them answers with a fault instead, shaped the
way each AWS protocol spells it so the AWS SDK classifies it as it would a real one. It also
keeps the request log the tests count calls with, so every count is taken here, faults and
retries included.

Usage (from the repo root, after scripts/emulator-setup):

    .venv/bin/python tests/emulator/proxy.py --upstream http://127.0.0.1:N [--port 0]
        [--fail-share 0.2] [--kinds throttling,http-500,...] [--latency-ms 0] [--seed 1]
        [--exit-on-stdin-eof]

Fault kinds (`KINDS`):
    throttling    the protocol's throttling error: JSON protocols 400 ThrottlingException;
                  query protocol (IAM, STS, SNS) 400 Throttling; S3 503 SlowDown; CloudWatch
                  (RPC v2 CBOR) 400 ThrottlingException with x-amzn-query-error Throttling;
                  REST-JSON (Account) 429 TooManyRequestsException
    http-500      500 InternalFailure (S3: InternalError)
    http-503      503 ServiceUnavailable
    drop-before   the connection is closed without forwarding: the call never happened
    drop-after    the call is forwarded and takes effect, then the connection is closed
                  without the response: the caller cannot tell, and a retry repeats it

Control endpoints (never faulted, never logged):
    GET  /_ctguard/requests        JSON list, oldest first, of {"method", "path", "query",
                                   "operation", "service", "region", "params", "status",
                                   "fault"}; the first five as server.py's log has them,
                                   `region` the SigV4 credential scope's, `params` the request
                                   fields that name what the call touches (`RESOURCE_FIELDS`,
                                   from a query, JSON or CBOR body; S3 names it in `path`),
                                   `fault` null or the kind (or "forced"), `status` what the
                                   caller got (null when the connection was dropped; for
                                   drop-after, the status the emulator answered)
    POST /_ctguard/requests/clear  empties it
    GET  /_ctguard/faults          the current fault settings
    POST /_ctguard/faults          changes them; every key is optional:
        {"share": 0.3, "kinds": ["throttling", "drop-after"], "latency_ms": 20, "seed": 7,
         "force": [{"operation": "PutMetricFilter", "body_contains": "cis-4.3",
                    "path_contains": null, "region": null, "status": 400,
                    "code": "AccessDeniedException", "message": "...", "times": null}]}
        `force` replaces the list of forced errors. A forced error answers every request that
        matches all its given matchers (`operation` is the operation's name without the target
        prefix; `region` the region the request is signed for) with that status and code,
        shaped for the protocol, `times` times (null: for ever). Forced errors are checked
        before the random share.

Requests to /moto-api/* (emulator administration) are forwarded and logged but never faulted.
`--latency-ms` delays every AWS request, faulted or not, to model a regional endpoint's
round trip.

Protocol: as server.py, exactly one stdout line `PORT <n>` once listening; then serves until
SIGTERM/SIGINT or, with --exit-on-stdin-eof, until stdin reaches EOF.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import io
import ipaddress
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# One owner for operation and service detection: the emulator's own request log.
from server import _CBOR_PATH, CBOR_SERVICES, RequestLog, stop_when_stdin_closes  # noqa: E402

KINDS = ("throttling", "http-500", "http-503", "drop-before", "drop-after")
CONTROL = "/_ctguard/"
ADMIN = "/moto-api/"
# Connection-scoped headers are between each hop and its peer, never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "content-length"})
# The proxy writes its own.
OWN_HEADERS = frozenset({"server", "date"})


# ---------------------------------------------------------------------------
# What a request touches
# ---------------------------------------------------------------------------

# The request fields that name the resources a call touches, across the services ctguard
# calls: tests/permissions.rs builds each call's ARN from them and checks it against the
# policies `ctguard permissions` prints. Only these are kept, so the log stays small.
RESOURCE_FIELDS = frozenset({
    # IAM, STS (query protocol)
    "RoleName", "Path", "PathPrefix", "PolicyArn", "AWSServiceName", "Tags",
    # CloudTrail
    "Name", "TrailName", "trailNameList", "ResourceId", "ResourceIdList", "CloudWatchLogsRoleArn", "TagsList",
    # KMS
    "KeyId", "AliasName", "TargetKeyId",
    # CloudWatch Logs
    "logGroupName", "logGroupNamePrefix", "logGroupIdentifier", "resourceArn", "filterName", "tags",
    # SNS
    "TopicArn", "ResourceArn", "SubscriptionArn", "TagKeys",
    # EventBridge
    "Rule", "NamePrefix", "ResourceARN", "Targets", "EventBusName",
    # CloudWatch
    "AlarmName", "AlarmNames", "AlarmNamePrefix",
    # AWS Config
    "ConfigRuleName", "ConfigRuleNames", "ConfigRule", "ConfigurationRecorder", "ConfigurationRecorderName",
    "ConfigurationRecorderNames", "DeliveryChannel",
    # Resource Groups Tagging
    "ResourceARNList",
    # Athena
    "WorkGroup", "CatalogName", "QueryExecutionId",
    # SQS (the drill's queue), STS AssumeRole (the drill's role)
    "QueueName", "QueueUrl", "QueueNamePrefix", "RoleArn",
})
# Structures whose other fields (patterns, transformers, recording groups) say nothing about
# which resource is touched.
KEEP_ONLY = {
    "Targets": ("Id", "Arn", "RoleArn"),
    "ConfigRule": ("ConfigRuleName", "ConfigRuleArn"),
    "ConfigurationRecorder": ("name", "roleARN"),
    "DeliveryChannel": ("name", "s3BucketName"),
}


def resource_params(protocol: str, body: bytes) -> dict[str, Any]:
    """The `RESOURCE_FIELDS` of a query, JSON or CBOR request body; {} for anything else."""
    try:
        if protocol == "query":
            doc = _unflatten(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        elif protocol == "json":
            doc = json.loads(body or b"{}")
        elif protocol == "cbor":
            import cbor2

            doc = cbor2.loads(body) if body else {}
        else:
            return {}
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    kept = {k: v for k, v in doc.items() if k in RESOURCE_FIELDS}
    for key, fields in KEEP_ONLY.items():
        value = kept.get(key)
        if isinstance(value, dict):
            kept[key] = {f: value[f] for f in fields if f in value}
        elif isinstance(value, list):
            kept[key] = [{f: v[f] for f in fields if f in v} for v in value if isinstance(v, dict)]
    return json.loads(json.dumps(kept, default=str))


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query-protocol parameters (`Tags.member.1.Key=k`) as the structure they flatten:
    `{"Tags": [{"Key": "k"}]}`. `member` and `entry` are the protocol's, not the shape's."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [p for p in key.split(".") if p not in ("member", "entry")]
        if parts[0] not in RESOURCE_FIELDS:
            continue
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _scope_region(authorization: str) -> str | None:
    """The region of a SigV4 credential scope: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    marker = "Credential="
    at = authorization.find(marker)
    if at < 0:
        return None
    parts = authorization[at + len(marker):].split(",")[0].split("/")
    return parts[2] if len(parts) >= 5 else None


# ---------------------------------------------------------------------------
# Fault settings
# ---------------------------------------------------------------------------

class Faults:
    """The mutable fault settings, shared by every connection thread."""

    def __init__(self, share: float, kinds: list[str], latency_ms: float, seed: int):
        self.lock = threading.Lock()
        self.share, self.kinds, self.latency_ms = share, list(kinds), latency_ms
        self.seed = seed
        self.rng = random.Random(seed)
        self.force: list[dict[str, Any]] = []

    def update(self, change: dict[str, Any]) -> None:
        unknown = set(change) - {"share", "kinds", "latency_ms", "seed", "force"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        with self.lock:
            if "share" in change:
                share = float(change["share"])
                if not 0 <= share <= 1:
                    raise ValueError("share must be between 0 and 1")
                self.share = share
            if "kinds" in change:
                self.kinds = _check_kinds(change["kinds"])
            if "latency_ms" in change:
                self.latency_ms = max(0.0, float(change["latency_ms"]))
            if "seed" in change:
                self.seed = int(change["seed"])
                self.rng = random.Random(self.seed)
            if "force" in change:
                self.force = [_check_force(rule) for rule in change["force"] or []]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"share": self.share, "kinds": self.kinds, "latency_ms": self.latency_ms, "seed": self.seed,
                    "force": [dict(rule) for rule in self.force]}

    def choose(self, operation: str, path: str, body: bytes, region: str = "") -> tuple[str | None, dict | None]:
        """The fault for one request: (kind, forced rule), both None to forward it untouched."""
        name = operation.rsplit(".", 1)[-1]
        with self.lock:
            for rule in self.force:
                if rule["times"] is not None and rule["times"] <= 0:
                    continue
                if rule["operation"] is not None and rule["operation"] != name:
                    continue
                if rule["path_contains"] is not None and rule["path_contains"] not in path:
                    continue
                if rule["body_contains"] is not None and rule["body_contains"].encode() not in body:
                    continue
                if rule["region"] is not None and rule["region"] != region:
                    continue
                if rule["times"] is not None:
                    rule["times"] -= 1
                return "forced", rule
            if self.share > 0 and self.kinds and self.rng.random() < self.share:
                return self.rng.choice(self.kinds), None
        return None, None


def _check_kinds(kinds: Any) -> list[str]:
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown fault kinds {bad}; known: {list(KINDS)}")
    return list(kinds)


def _check_force(rule: dict[str, Any]) -> dict[str, Any]:
    allowed = {"operation", "path_contains", "body_contains", "region", "status", "code", "message", "times"}
    unknown = set(rule) - allowed
    if unknown:
        raise ValueError(f"unknown keys in a forced error: {sorted(unknown)}")
    if not rule.get("code"):
        raise ValueError("a forced error needs a code")
    times = rule.get("times")
    return {
        "operation": rule.get("operation"),
        "path_contains": rule.get("path_contains"),
        "body_contains": rule.get("body_contains"),
        "region": rule.get("region"),
        "status": int(rule.get("status", 400)),
        "code": str(rule["code"]),
        "message": str(rule.get("message") or f"injected by the test proxy: {rule['code']}"),
        "times": None if times is None else int(times),
    }


# ---------------------------------------------------------------------------
# Error bodies, per protocol
# ---------------------------------------------------------------------------

def _protocol(headers: http.client.HTTPMessage, method: str, path: str, service: str) -> str:
    if method == "POST" and _CBOR_PATH.match(path) and (
            headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor"
            or headers.get("content-type", "").startswith("application/cbor")):
        return "cbor"
    if headers.get("x-amz-target"):
        return "json"
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return "query"
    if service == "s3" or not service:
        return "s3"
    return "rest-json"


# kind -> (status, code) for each protocol. The codes are the ones AWS sends and the SDK's
# retry classifier knows (aws-smithy-runtime's THROTTLING_ERRORS; 500 and 503 retry by status).
FAULT_ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    "throttling": {"json": (400, "ThrottlingException"), "cbor": (400, "ThrottlingException"),
                   "query": (400, "Throttling"), "s3": (503, "SlowDown"),
                   "rest-json": (429, "TooManyRequestsException")},
    "http-500": {"json": (500, "InternalFailure"), "cbor": (500, "InternalFailure"), "query": (500, "InternalFailure"),
                 "s3": (500, "InternalError"), "rest-json": (500, "InternalFailure")},
    "http-503": {"json": (503, "ServiceUnavailable"), "cbor": (503, "ServiceUnavailable"),
                 "query": (503, "ServiceUnavailable"), "s3": (503, "ServiceUnavailable"),
                 "rest-json": (503, "ServiceUnavailable")},
}
# CloudWatch is awsQueryCompatible: the SDK takes the error code from x-amzn-query-error, where
# CloudWatch spells the query protocol's code.
CBOR_QUERY_CODES = {"ThrottlingException": "Throttling", "InternalFailure": "InternalFailure",
                    "ServiceUnavailable": "ServiceUnavailable"}


def error_response(protocol: str, path: str, status: int, code: str, message: str) -> tuple[list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    fault = "Sender" if status < 500 else "Receiver"
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", request_id)], body
    if protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        return [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", request_id)], body
    if protocol == "cbor":
        import cbor2

        match = _CBOR_PATH.match(path)
        service = match.group(1).rsplit(".", 1)[-1] if match else ""
        namespace = CBOR_SERVICES.get(service, (None, None, "smithy.framework", None))[2]
        body = cbor2.dumps({"__type": f"{namespace}#{code}", "message": message})
        return [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                ("x-amzn-query-error", f"{CBOR_QUERY_CODES.get(code, code)};{fault}"),
                ("x-amzn-RequestId", request_id)], body
    text = _xml_escape(message)
    if protocol == "query":
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{fault}</Type>'
                f"<Code>{code}</Code><Message>{text}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()
        return [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{text}</Message>'
            f"<RequestId>{request_id}</RequestId><HostId>ctguard-proxy</HostId></Error>").encode()
    return [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------
# The proxy
# ---------------------------------------------------------------------------

class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)

    def dump(self) -> bytes:
        with self.lock:
            return json.dumps(self.entries).encode()

    def clear(self) -> int:
        with self.lock:
            cleared = len(self.entries)
            self.entries.clear()
            return cleared


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 keeps the SDK's pooled connections open across requests.
    protocol_version = "HTTP/1.1"
    server_version = "ctguard-proxy"
    # Buffer each response and send it in one write (flushed after every request): a header
    # write followed by a body write meets the client's delayed ACK and stalls 40 ms.
    wbufsize = 1 << 16
    upstream: tuple[str, int]
    faults: Faults
    log: Log

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        ok = super().handle_expect_100()
        self.wfile.flush()
        return ok

    # Each downstream connection gets its own upstream connection, opened on first use.
    _conn: http.client.HTTPConnection | None = None

    def do_GET(self):
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        split = urlsplit(self.path)
        path = unquote(split.path)
        if path.startswith(CONTROL):
            self._control(path[len(CONTROL):].rstrip("/"), body)
            return
        environ = self._environ(split, body)
        entry = {
            "method": self.command,
            "path": path,
            "query": split.query,
            "operation": RequestLog._operation(environ, environ["PATH_INFO"]),
            "service": RequestLog._signing_service(environ),
            "region": _scope_region(self.headers.get("authorization", "")),
            "params": {},
            "status": None,
            "fault": None,
        }
        if not path.startswith(ADMIN):
            protocol = _protocol(self.headers, self.command, path, entry["service"])
            entry["params"] = resource_params(protocol, body)
        self.log.add(entry)
        if path.startswith(ADMIN):
            kind, rule = None, None
        else:
            kind, rule = self.faults.choose(entry["operation"], path, body, RequestLog._signing_region(environ))
            latency = self.faults.latency_ms
            if latency:
                time.sleep(latency / 1000)
        entry["fault"] = kind
        if kind == "drop-before":
            self._drop()
            return
        if kind is not None and kind != "drop-after":
            protocol = _protocol(self.headers, self.command, path, entry["service"])
            status, code = (rule["status"], rule["code"]) if rule else FAULT_ERRORS[kind][protocol]
            message = rule["message"] if rule else f"injected by the test proxy: {kind}"
            headers, payload = error_response(protocol, path, status, code, message)
            entry["status"] = status
            self._respond(status, headers, payload)
            return
        try:
            status, reason, headers, payload = self._forward(body)
        except OSError as exc:
            entry["status"] = 502
            self._respond(502, [("Content-Type", "text/plain")], f"proxy: upstream failed: {exc}".encode())
            return
        entry["status"] = status
        if kind == "drop-after":
            self._drop()
            return
        self._respond(status, headers, payload, reason)

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("content-length")
        try:
            return self.rfile.read(int(length)) if length else b""
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None

    def _environ(self, split, body: bytes) -> dict[str, Any]:
        """Just enough of a WSGI environ for server.py's RequestLog to name the operation."""
        environ = {
            "REQUEST_METHOD": self.command,
            # WSGI carries the decoded path as latin-1 text.
            "PATH_INFO": unquote_to_bytes(split.path).decode("latin-1"),
            "QUERY_STRING": split.query,
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        for key, value in self.headers.items():
            environ["HTTP_" + key.upper().replace("-", "_")] = value
        return environ

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            try:
                self._conn.request(self.command, self.path, body=body, headers=headers)
                response = self._conn.getresponse()
                payload = response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self._conn.close()
                self._conn = None
                # A kept-alive upstream connection may have been closed while idle: retry once
                # on a new one. A fresh connection failing is a real failure.
                if reused and attempt == 1:
                    continue
                raise
            if response.will_close:
                self._conn.close()
                self._conn = None
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | OWN_HEADERS]
            if self.command == "HEAD":
                # A HEAD answer describes the body it does not carry.
                length = response.getheader("content-length")
                if length is not None:
                    out.append(("Content-Length", length))
            return response.status, response.reason, out, payload
        raise AssertionError("unreachable")

    def _respond(self, status: int, headers: list[tuple[str, str]], payload: bytes, reason: str | None = None) -> None:
        self.send_response(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        bodiless = status in (204, 304) or 100 <= status < 200
        if not bodiless and (self.command != "HEAD" or not any(k.lower() == "content-length" for k, _ in headers)):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and not bodiless and payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection with nothing sent, as a network failure or a dying endpoint does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _control(self, route: str, body: bytes) -> None:
        status = 200
        try:
            if route == "requests" and self.command == "GET":
                payload = self.log.dump()
            elif route == "requests/clear" and self.command == "POST":
                payload = json.dumps({"cleared": self.log.clear()}).encode()
            elif route == "faults" and self.command == "GET":
                payload = json.dumps(self.faults.snapshot()).encode()
            elif route == "faults" and self.command == "POST":
                self.faults.update(json.loads(body or b"{}"))
                payload = json.dumps(self.faults.snapshot()).encode()
            else:
                status, payload = 404, json.dumps({"error": f"no such proxy endpoint: {self.command} {route}"}).encode()
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, json.dumps({"error": str(exc)}).encode()
        self._respond(status, [("Content-Type", "application/json")], payload)

    def finish(self) -> None:
        if self._conn is not None:
            self._conn.close()
        try:
            super().finish()
        except OSError:
            pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # The SDK opens up to 16 connections at once.
    request_queue_size = 128


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the emulator's URL, http://127.0.0.1:N")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 (default) lets the OS choose")
    parser.add_argument("--fail-share", type=float, default=0.0, help="share of requests to fault, 0 to 1")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated fault kinds ({', '.join(KINDS)})")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every AWS request")
    parser.add_argument("--seed", type=int, default=1, help="seed for choosing which requests fail and how")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin reaches EOF (tie the proxy's life to its parent)")
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error(f"--host must be a loopback IP address (got {args.host!r}); this proxy is test-only")
    upstream = urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
        parser.error(f"--upstream must be http://HOST:PORT (got {args.upstream!r})")
    if not 0 <= args.fail_share <= 1:
        parser.error("--fail-share must be between 0 and 1")
    try:
        args.kinds = _check_kinds(args.kinds)
    except ValueError as exc:
        parser.error(str(exc))
    args.upstream = (upstream.hostname, upstream.port)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    handler = type("BoundHandler", (Handler,), {
        "upstream": args.upstream,
        "faults": Faults(args.fail_share, args.kinds, args.latency_ms, args.seed),
        "log": Log(),
    })
    server = Server((args.host, args.port), handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="serve", daemon=True).start()

    sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    if args.exit_on_stdin_eof:
        stop_when_stdin_closes(stop)

    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
