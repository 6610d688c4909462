"""A stateful fake service on 127.0.0.1 (pytest-httpserver + werkzeug), with request log and
injectable faults. Subclasses route requests to handlers that answer like the real service."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

Handler = Callable[..., Response]
S = TypeVar("S", bound="FakeServer")


@dataclass
class Fault:
    """Answer ``times`` matching requests with ``status`` instead of the real answer.

    ``after=True`` first lets the request take effect, then answers the error (a lost response).
    """

    method: str
    path: str  # regex, searched in the path
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-able, or bytes for a raw body
    after: bool = False


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {},
                    content_type="application/json")


class FakeServer:
    """Base: a catch-all handler that logs, applies faults, then routes by (method, regex)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base = server.url_for("/").rstrip("/")
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request
        self.headers_seen: list[dict[str, str]] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, method: str, path: str, status: int, **kw: Any) -> Fault:
        fault = Fault(method, path, status, **kw)
        self.faults.append(fault)
        return fault

    def count(self, method: str, path_regex: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(path_regex, p))

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and re.search(fault.path,
                                                                                 request.path):
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if isinstance(fault.body, bytes):
            return Response(fault.body, status=fault.status, headers=fault.headers)
        body = fault.body if fault.body is not None else {"error": f"injected {fault.status}"}
        return json_response(body, fault.status, fault.headers)

    def _handle(self, request: Request) -> Response:
        with self.lock:
            query = request.query_string.decode()
            self.requests.append((request.method, request.path + (f"?{query}" if query else "")))
            self.headers_seen.append(dict(request.headers))
            fault = self._fault_for(request)
            if fault is not None and not fault.after:
                return self._fault_response(fault)
            for method, pattern, handler in self.routes:
                match = pattern.match(request.path)
                if match and method == request.method:
                    response = handler(request, *match.groups())
                    break
            else:
                response = json_response({"error": f"no route {request.method} {request.path}"},
                                         404)
            return self._fault_response(fault) if fault is not None else response


@contextmanager
def serving() -> Iterator[HTTPServer]:
    """A started server on a free port of 127.0.0.1 (stopping one takes ~0.5 s: share it)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def fresh(cls: type[S], server: HTTPServer) -> S:
    """A fake of class ``cls`` with empty state on an already running ``server``."""
    server.clear()
    return cls(server)
