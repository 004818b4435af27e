"""The HTTP/REST API: TF Serving's URL grammar, JSON bodies, status codes and error messages."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from standin import json_tensor, responses
from standin.config import PrometheusConfig
from standin.manager import ModelManager
from standin.metrics import Metrics
from standin.prettyjson import error_body
from standin.status import Code, ServingError, invalid_argument
from standin.tensors import TensorInfo

_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_INT64_MAX = 2**63 - 1
_JSON = "application/json"
# libevent's evhttp_send_error page, what TF Serving answers outside /v1/ and the metrics path.
_NOT_FOUND_PAGE = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = _JSON
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    model_name: str
    version: int | None
    label: str | None
    method: str  # classify/regress/predict for POST, "" for GET
    subresource: str  # "metadata" or ""


def _parse_target(http_method: str, path: str) -> _Target | None:
    """None when the path does not fit the method's grammar ("Malformed request")."""
    pattern = _PREDICT_PATH if http_method == "POST" else _STATUS_PATH if http_method == "GET" else None
    match = pattern.fullmatch(path) if pattern is not None else None
    if match is None:
        return None
    name, version_text, label, last = match.groups()
    version = None
    if version_text:
        version = int(version_text)
        if version > _INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {version_text} to numeric.")
    method, subresource = (last, "") if http_method == "POST" else ("", last or "")
    return _Target(unquote(name or ""), version, unquote(label) if label else None, method, subresource)


def _metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """TF Serving prints model_spec and the unpacked SignatureDefMap separately and joins them by hand."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[responses.SIGNATURE_DEF_FIELD].Unpack(signature_map)
    options = {"indent": 1, "always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
    model_spec = json_format.MessageToJson(response.model_spec, **options)
    signatures = json_format.MessageToJson(signature_map, **options)
    return f'{{\n"model_spec":{model_spec},\n"metadata": {{"signature_def": {signatures}}}\n}}\n'


class RestApi:
    """Answers one HTTP request; the transport (RestServer) only moves bytes."""

    def __init__(
        self,
        manager: ModelManager,
        metrics: Metrics,
        prometheus: PrometheusConfig,
        timeout_ms: int,
        cors: bool,
    ) -> None:
        self._manager = manager
        self._metrics = metrics
        self._prometheus = prometheus
        self._timeout_seconds = timeout_ms / 1000 if timeout_ms > 0 else None
        self._cors = cors
        self._runner = ThreadPoolExecutor(thread_name_prefix="rest-predict") if timeout_ms > 0 else None

    def handle(self, http_method: str, raw_path: str, body: bytes, origin: str | None) -> Reply:
        path = urlsplit(raw_path).path
        if self._prometheus.enable and path == self._prometheus.path:
            return Reply(HTTPStatus.OK, self._metrics.prometheus_text().encode(), "text/plain")
        if not _API_PATH.fullmatch(path):
            return Reply(HTTPStatus.NOT_FOUND, _NOT_FOUND_PAGE, "text/html")
        start = time.perf_counter()
        model_name = method = ""
        try:
            if http_method == "OPTIONS":
                if not origin or not re.match(r"https?://", origin):
                    raise ServingError(Code.FAILED_PRECONDITION, "Origin header is missing in CORS preflight")
                text = ""
            else:
                target = _parse_target(http_method, path)
                if target is not None:
                    model_name, method = target.model_name, target.method
                text = self._dispatch(http_method, path, target, body)
            reply = Reply(HTTPStatus.OK, text.encode("utf-8", "surrogateescape"))
            micros = (time.perf_counter() - start) * 1e6
            self._metrics.record_request_latency(model_name, method, "REST", micros)
            self._metrics.count_request(model_name, "OK")
        except ServingError as error:
            reply = Reply(error.http_status, error_body(error.message).encode("utf-8", "surrogateescape"))
            self._metrics.count_request(model_name, error.code.name)
        if self._cors:
            reply.extra_headers += [
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", "POST, GET"),
                ("Access-Control-Allow-Headers", "Content-Type"),
            ]
        return reply

    def _dispatch(self, http_method: str, path: str, target: _Target | None, body: bytes) -> str:
        if target is not None and http_method == "POST" and target.method == "predict":
            return self._predict(target, body)
        if target is not None and http_method == "POST" and target.method in ("classify", "regress"):
            raise ServingError(Code.UNIMPLEMENTED, f"The {target.method} API is not supported by this server")
        if target is not None and http_method == "GET":
            if not target.model_name:
                raise invalid_argument("Missing model name in request.")
            if target.subresource == "metadata":
                return self._metadata(target)
            return self._status(target)
        raise invalid_argument(f"Malformed request: {http_method} {path}")

    def _status(self, target: _Target) -> str:
        # Like TF Serving, a label does not narrow the status request: all versions are reported.
        response = responses.model_status(self._manager, target.model_name, target.version)
        return str(json_format.MessageToJson(response, indent=1, always_print_fields_with_no_presence=True))

    def _metadata(self, target: _Target) -> str:
        response = responses.model_metadata(self._manager, target.model_name, target.version, target.label)
        return _metadata_json(response)

    def _predict(self, target: _Target, body: bytes) -> str:
        servables = []

        def input_map_for(signature_name: str) -> dict[str, TensorInfo]:
            servables.append(self._manager.servable(target.model_name, target.version, target.label))
            return servables[-1].input_map(signature_name)

        request = json_tensor.parse_predict_request(body, input_map_for)
        start = time.perf_counter()
        if self._runner is None:
            _, outputs = servables[-1].predict(request.signature_name, request.inputs)
        else:
            future = self._runner.submit(servables[-1].predict, request.signature_name, request.inputs)
            try:
                _, outputs = future.result(timeout=self._timeout_seconds)
            except FutureTimeout:
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        self._metrics.record_runtime_latency(
            target.model_name, "Predict", (time.perf_counter() - start) * 1e6
        )
        return json_tensor.predict_response_json(outputs, request.columnar)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of TF Serving expect
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    server: RestServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_response(self, code: int, message: str | None = None) -> None:
        """Status line and Date only: TF Serving (libevent) sends no Server header."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def _serve(self) -> None:
        body = self._read_body()
        reply = self.server.api.handle(self.command, self.path, body, self.headers.get("Origin"))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: object) -> None:
        """TF Serving does not log individual requests."""


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, api: RestApi) -> None:
        self.api = api
        super().__init__(("0.0.0.0", port), _Handler)
