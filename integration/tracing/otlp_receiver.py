"""A small OTLP trace receiver on loopback, over HTTP (protobuf, the default, or JSON) or gRPC: it decodes
what the services export with the OpenTelemetry protocol's own Python bindings and keeps every span with
its service name, so a test can rebuild a trace and check parents and links."""
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

KINDS = {value: name.removeprefix("SPAN_KIND_").lower() for name, value in ProtoSpan.SpanKind.items()}


def attribute_value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Span:
    def __init__(self, service, span):
        self.service = service
        self.name = span.name
        self.kind = KINDS[span.kind]
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_id = span.parent_span_id.hex() or None
        self.links = [(link.trace_id.hex(), link.span_id.hex()) for link in span.links]
        self.attributes = {a.key: attribute_value(a.value) for a in span.attributes}
        self.status = span.status.code
        self.start = span.start_time_unix_nano
        self.end = span.end_time_unix_nano

    def __repr__(self):
        return f"<{self.service} {self.kind} {self.name!r} {self.span_id} parent={self.parent_id}>"


class OTLPReceiver:
    """`protocol` is "http" (OTLP/HTTP on `url`) or "grpc" (OTLP/gRPC on `url`)."""

    def __init__(self, protocol="http"):
        self.spans = []
        self.requests = []
        self.lock = threading.Lock()
        self.grpc_server = None
        receiver = self
        if protocol == "grpc":
            self._serve_grpc()
            return

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content_type = self.headers.get("Content-Type", "")
                if self.path != "/v1/traces":
                    return self.answer(404, b"", "text/plain")
                request = ExportTraceServiceRequest()
                if content_type.startswith("application/json"):
                    json_format.Parse(body, request)
                else:
                    request.ParseFromString(body)
                receiver.keep(request, content_type)
                self.answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

            def answer(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _serve_grpc(self):
        receiver = self

        class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                receiver.keep(request, "application/grpc")
                return ExportTraceServiceResponse()

        self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), self.grpc_server)
        port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        self.grpc_server.start()
        self.url = f"http://127.0.0.1:{port}"

    def keep(self, request, content_type):
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: attribute_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                spans += [Span(resource.get("service.name"), span) for span in scope_spans.spans]
        with self.lock:
            self.requests.append({"content_type": content_type})
            self.spans += spans

    def trace(self, trace_id):
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def find(self, name):
        with self.lock:
            return [span for span in self.spans if span.name == name]

    def close(self):
        if self.grpc_server:
            self.grpc_server.stop(grace=None)
            return
        self.server.shutdown()
        self.server.server_close()
