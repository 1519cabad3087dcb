"""A small in-memory schema registry speaking the Confluent REST API, for tests and local runs.

Enough of the API for Bend's codec and for users' registry-aware clients (confluent-kafka's
`AvroSerializer`/`AvroDeserializer`): register a subject's version, look a schema up in a
subject, fetch a schema by id, list subjects and versions. Ids are global and a schema text
registered twice keeps its id, as in the real one. Served over real HTTP on 127.0.0.1, so the
client, its caching and the framing are real; no compatibility checks, no persistence.
Run it in-process with `start_schema_registry()` or as
`python -m bend.devstack.schema_registry --port P`.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RegistryState", "SchemaRegistry", "start_schema_registry"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass
class RegistryState:
    """Schemas by id, each subject's versions (schema ids, oldest first), a log of requests."""

    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, subject: str, text: str) -> int:
        """The schema's id, registering it (and a new version of `subject`) if it is new."""
        with self.lock:
            schema_id = next((i for i, s in self.schemas.items() if s == text), None)
            if schema_id is None:
                schema_id = len(self.schemas) + 1
                self.schemas[schema_id] = text
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def version(self, subject: str, which: str) -> dict[str, Any] | None:
        """`subject`'s version `which` (a number or "latest") as the API shows it."""
        versions = self.subjects.get(subject) or []
        if not versions:
            return None
        index = len(versions) if which == "latest" else int(which)
        if not 1 <= index <= len(versions):
            return None
        schema_id = versions[index - 1]
        return {"subject": subject, "version": index, "id": schema_id,
                "schema": self.schemas[schema_id]}


def _handler(state: RegistryState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", _CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self, code: int, message: str) -> None:
            self._reply(404, {"error_code": code, "message": message})

        def do_POST(self) -> None:
            state.requests.append(f"POST {self.path}")
            parts = self.path.split("?")[0].strip("/").split("/")
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                              or b"{}")
            text = body.get("schema", "")
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                return self._reply(200, {"id": state.register(parts[1], text)})
            if len(parts) == 2 and parts[0] == "subjects":  # look a schema up in a subject
                for version in range(1, len(state.subjects.get(parts[1], [])) + 1):
                    found = state.version(parts[1], str(version))
                    if found is not None and found["schema"] == text:
                        return self._reply(200, found)
                return self._missing(40403, "Schema not found")
            return self._missing(404, "no such endpoint")

        def do_GET(self) -> None:
            state.requests.append(f"GET {self.path}")
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
                text = state.schemas.get(int(parts[2]))
                if text is None:
                    return self._missing(40403, "Schema not found")
                return self._reply(200, {"schema": text})
            if parts == ["subjects"]:
                return self._reply(200, sorted(state.subjects))
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                versions = state.subjects.get(parts[1])
                if not versions:
                    return self._missing(40401, "Subject not found")
                return self._reply(200, list(range(1, len(versions) + 1)))
            if len(parts) == 4 and parts[0] == "subjects" and parts[2] == "versions":
                found = state.version(parts[1], parts[3]) if (
                    parts[3] == "latest" or parts[3].isdigit()) else None
                if found is None:
                    return self._missing(40402, "Version not found")
                return self._reply(200, found)
            return self._missing(404, "no such endpoint")

    return Handler


@dataclass
class SchemaRegistry:
    """A registry serving from a daemon thread: its URL, its state, `stop()`."""

    url: str
    state: RegistryState
    _server: ThreadingHTTPServer
    _thread: threading.Thread

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=timeout_s)


def start_schema_registry(port: int = 0, host: str = "127.0.0.1") -> SchemaRegistry:
    """A registry on `host`:`port` (0: a free port), serving until `stop()`."""
    state = RegistryState()
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                              name="schema-registry")
    thread.start()
    return SchemaRegistry(f"http://{host}:{server.server_port}", state, server, thread)


def main(argv: list[str] | None = None) -> None:
    """Serve a registry in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    registry = start_schema_registry(args.port, args.host)
    print(f"schema registry at {registry.url}", flush=True)
    try:
        registry._thread.join()  # noqa: SLF001 - serve until interrupted
    except KeyboardInterrupt:
        registry.stop()


if __name__ == "__main__":
    main()
