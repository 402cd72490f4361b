#!/usr/bin/env python3
"""A loopback OTLP/HTTP trace receiver for DeerFlow's end-to-end tracing tests.

Accepts `POST /v1/traces` with an `ExportTraceServiceRequest` in the binary protobuf encoding
(`Content-Type: application/x-protobuf`) or the OTLP JSON encoding (`application/json`), either
optionally `Content-Encoding: gzip`, and answers 200 with an empty `ExportTraceServiceResponse` in
the request's encoding. Every span received is appended as one JSON line to `--output`, flushed
before the response is sent (so once an exporter has its 200, the spans are in the file):

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex>" or "",
     "trace_state": str, "name": str, "kind": "SPAN_KIND_SERVER", ...,
     "start_time_unix_nano": int, "end_time_unix_nano": int,
     "status_code": "STATUS_CODE_UNSET" | "STATUS_CODE_OK" | "STATUS_CODE_ERROR", "status_message": str,
     "attributes": {key: value}, "events": [{"name", "time_unix_nano", "attributes"}],
     "links": [{"trace_id", "span_id", "trace_state", "attributes"}],
     "resource": {key: value}, "scope": str}

Attribute values are flattened: string, bool, int, float; arrays become lists, key-value lists
become objects, bytes become hex strings, an empty value becomes null.

`--requests FILE` also appends one JSON line per request (answered or failed on purpose):
    {"status": 200, "path": "/v1/traces", "content_type": ..., "content_encoding": ...,
     "spans": n, "headers": {lower-cased name: value}}

Usage:
    python scripts/otlp_receiver.py --output spans.jsonl [--port 0] [--host 127.0.0.1]
        [--requests requests.jsonl] [--fail-first N] [--delay SECONDS]

The first stdout line is `listening on PORT` (flushed); nothing else goes to stdout. Errors go to
stderr. SIGTERM or SIGINT stops it with status 0. Needs `opentelemetry-proto` (and its
`protobuf`): `scripts/ensure-python-venv` makes a venv that has them.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
except ImportError as error:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        f"otlp_receiver: {error}. It needs the opentelemetry-proto package: run it with the venv "
        "that scripts/ensure-python-venv creates (.build/python-venv/bin/python).\n"
    )
    sys.exit(2)

TRACES_PATH = "/v1/traces"
MAX_BODY = 64 * 1024 * 1024

# --- Decoding -----------------------------------------------------------------------------------

_HEX_ID = re.compile(r"^[0-9a-fA-F]*$")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP JSON writes trace and span ids as hex, where the proto3 JSON mapping (what
    `json_format.Parse` reads) wants base64 for bytes: convert them in place. A 16-byte id is 32
    hex characters (24 in base64) and an 8-byte one 16 (12 in base64), so the two never mix up."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                if len(value) in (16, 32) and _HEX_ID.match(value):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def decode_request(body: bytes, json_encoding: bool) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if json_encoding:
        document = json.loads(body.decode("utf-8"))
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(body)
    return request


def flatten(value: Any) -> Any:
    """An `AnyValue` as a plain Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [flatten(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: flatten(kv.value) for kv in key_values}


def span_record(span: Any, resource: dict[str, Any], scope: str) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "trace_state": span.trace_state,
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind) if span.kind in Span.SpanKind.values() else str(span.kind),
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status_code": (
            Status.StatusCode.Name(span.status.code)
            if span.status.code in Status.StatusCode.values()
            else str(span.status.code)
        ),
        "status_message": span.status.message,
        "attributes": attributes(span.attributes),
        "events": [
            {"name": event.name, "time_unix_nano": event.time_unix_nano, "attributes": attributes(event.attributes)}
            for event in span.events
        ],
        "links": [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "trace_state": link.trace_state,
                "attributes": attributes(link.attributes),
            }
            for link in span.links
        ],
        "resource": resource,
        "scope": scope,
    }


def span_records(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    records = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(span_record(span, resource, scope_spans.scope.name))
    return records


# --- Server -------------------------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], output: str, requests: str | None, fail_first: int, delay: float):
        super().__init__(address, Handler)
        self.lock = threading.Lock()
        self.output = open(output, "a", encoding="utf-8")
        self.requests = open(requests, "a", encoding="utf-8") if requests else None
        self.fail_remaining = fail_first
        self.delay = delay

    def take_failure(self) -> bool:
        with self.lock:
            if self.fail_remaining > 0:
                self.fail_remaining -= 1
                return True
            return False

    def record(self, spans: list[dict[str, Any]], request_line: dict[str, Any]) -> None:
        with self.lock:
            if self.output.closed:
                return
            if spans:
                self.output.write("".join(json.dumps(span, separators=(",", ":")) + "\n" for span in spans))
                self.output.flush()
            if self.requests is not None:
                self.requests.write(json.dumps(request_line, separators=(",", ":")) + "\n")
                self.requests.flush()

    def close_files(self) -> None:
        with self.lock:
            self.output.close()
            if self.requests is not None:
                self.requests.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect; every answer has a Content-Length
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the tests read the output files

    def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        content_type = self.headers.get("Content-Type", "")
        content_encoding = self.headers.get("Content-Encoding", "").strip().lower()
        request_line: dict[str, Any] = {
            "status": 0,
            "path": path,
            "content_type": content_type,
            "content_encoding": content_encoding,
            "spans": 0,
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }
        try:
            body = self.read_body()
        except (ValueError, OSError) as error:
            self.close_connection = True
            self.answer(400, f"cannot read the body: {error}\n".encode())
            return

        status, spans, response, response_type = self.handle_export(path, content_type, content_encoding, body)
        if self.server.delay > 0:
            time.sleep(self.server.delay)
        request_line["status"] = status
        request_line["spans"] = len(spans)
        self.server.record(spans, request_line)
        self.answer(status, response, response_type)

    def handle_export(
        self, path: str, content_type: str, content_encoding: str, body: bytes
    ) -> tuple[int, list[dict[str, Any]], bytes, str]:
        text = "text/plain; charset=utf-8"
        if path != TRACES_PATH:
            return 404, [], f"no such path {path}: OTLP traces go to {TRACES_PATH}\n".encode(), text
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/x-protobuf":
            json_encoding = False
        elif media_type == "application/json":
            json_encoding = True
        else:
            message = f"unsupported Content-Type {content_type!r}: send application/x-protobuf or application/json\n"
            return 415, [], message.encode(), text
        if self.server.take_failure():
            return 503, [], b"failing on purpose (--fail-first)\n", text
        try:
            if content_encoding == "gzip":
                body = gzip.decompress(body)
            elif content_encoding == "deflate":
                body = zlib.decompress(body)
            elif content_encoding not in ("", "identity"):
                return 415, [], f"unsupported Content-Encoding {content_encoding!r}\n".encode(), text
            request = decode_request(body, json_encoding)
        except Exception as error:  # anything undecodable is the client's fault: 400, never a dropped connection
            sys.stderr.write(f"otlp_receiver: bad export request: {error}\n")
            return 400, [], f"cannot decode the export request: {error}\n".encode(), text
        spans = span_records(request)
        if json_encoding:
            return 200, spans, json_format.MessageToJson(ExportTraceServiceResponse()).encode(), "application/json"
        return 200, spans, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"

    def do_GET(self) -> None:  # noqa: N802
        self.answer(405, b"POST OTLP export requests to /v1/traces\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="Loopback OTLP/HTTP trace receiver; writes received spans as JSON lines.")
    parser.add_argument("--output", required=True, help="file to append one JSON line per received span to")
    parser.add_argument("--requests", help="file to append one JSON line per request to (status, headers, span count)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N", help="answer the first N export requests with 503")
    parser.add_argument("--delay", type=float, default=0.0, metavar="SECONDS", help="sleep this long before each answer")
    options = parser.parse_args()

    server = Receiver((options.host, options.port), options.output, options.requests, options.fail_first, options.delay)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A parent may have spawned us with these blocked (Foundation's Process on Linux passes its
    # signal mask on, and test runners block SIGTERM): unblock them before starting any thread.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    sys.stdout.write(f"listening on {server.server_address[1]}\n")
    sys.stdout.flush()

    while not stop.wait(0.5):
        if not thread.is_alive():
            sys.stderr.write("otlp_receiver: the server thread died\n")
            return 1
    server.shutdown()
    server.server_close()
    server.close_files()
    return 0


if __name__ == "__main__":
    sys.exit(main())
