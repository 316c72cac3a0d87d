"""HTTP transport (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive) and the ``Sandbox``.

One thread per connection: a slow answer (``latency_s``, the "timeout" fault) holds up only its
own connection. The state behind the API (data, tokens, limiter, faults, log) is thread-safe.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from maptable_sandbox.admin import PREFIX, handle_admin
from maptable_sandbox.api import ApiApp, HttpRequest, HttpResponse
from maptable_sandbox.config import REQUEST_KINDS, FaultPlan, RequestLogEntry, SandboxConfig

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from maptable_sandbox.data import Dataset, TableInfo

_DISCONNECTS = (ConnectionError, TimeoutError)


class _Handler(BaseHTTPRequestHandler):
    """Moves bytes between the socket and ``ApiApp``; never logs (secrets travel in requests)."""

    protocol_version = "HTTP/1.1"
    server_version = "maptable-sandbox"
    # TCP_NODELAY: the headers and the body are two writes; with Nagle's algorithm the body
    # waited for the client's delayed ACK of the headers, 40 ms on every answer, which a client
    # timing whole answers measured as MapTable's own answer time (`body_delay_s` is the way to
    # ask for a slow body).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def version_string(self) -> str:
        """``Server`` header without the Python version."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: one line per request would drown the demo and could leak tokens."""

    def _serve(self) -> None:
        arrived = time.time()
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        req = HttpRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            t=arrived,
        )
        app = self.server.app
        if parts.path.startswith(PREFIX):
            self._write(handle_admin(app, req))
            return
        response, entry = app.handle(req)
        wait = app.next_latency() + response.delay
        body_delay = app.config.body_delay_s if response.body and not response.drop else 0.0
        # Logged on arrival, with the time its answer is due: a client that gives up waiting (a
        # read timeout) must still find its request in the log when it looks.
        app.log.add(replace(entry, t_end=time.time() + max(wait, 0.0) + body_delay))
        if wait > 0:
            time.sleep(wait)  # this connection's thread only
        self._write(response, body_delay)

    def _read_body(self) -> bytes | None:
        """Read the whole body so the connection can be reused; refuse what we cannot frame."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(HttpResponse(411, b'{"error":"chunked bodies are not supported"}'))
            self.close_connection = True
            return None
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            self._write(HttpResponse(400, b'{"error":"bad Content-Length"}'))
            self.close_connection = True
            return None
        return self.rfile.read(int(length)) if int(length) else b""

    def _write(self, response: HttpResponse, body_delay: float = 0.0) -> None:
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if body_delay > 0:
                self.wfile.flush()  # the status line and headers now, the body later
                time.sleep(body_delay)
            self.wfile.write(response.body)
        except _DISCONNECTS:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    """Threading server that remembers open connections so ``stop()`` can close idle keep-alives."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ApiApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal here (drop faults, killed taps); stay quiet about them."""
        del request, client_address


class Sandbox:
    """A fake MapTable server on 127.0.0.1, started in a background thread.

    Use as a context manager (``with Sandbox(cfg) as sb: ...``) or call ``start()``/``stop()``.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        """Build the dataset and state now; bind the socket in ``start()``."""
        self._config = config if config is not None else SandboxConfig()
        self._app = ApiApp(self._config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns ``self`` for chaining."""
        if self._server is not None:
            return self
        self._server = _Server((self._config.host, self._config.port), self._app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="maptable-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the request log; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._app.close()

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def config(self) -> SandboxConfig:
        """The configuration this sandbox was built from."""
        return self._config

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None:
            msg = "sandbox is not running"
            raise RuntimeError(msg)
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self._config.host}:{self.port}"

    @property
    def requests(self) -> list[RequestLogEntry]:
        """API requests seen so far (admin requests excluded); a copy."""
        return self._app.log.entries()

    @property
    def data(self) -> Dataset:
        """The dataset: the truth the tap's output is checked against, and its mutations."""
        return self._app.data

    def issued_secrets(self) -> set[str]:
        """Every app secret and every token ever issued (with and without ``Bearer``)."""
        return self._app.issued_secrets()

    def set_faults(self, plan: FaultPlan) -> None:
        """Swap the fault plan; its schedule counts requests from now on."""
        self._app.faults.install(plan)

    def revoke_tokens(self) -> None:
        """Make every access token issued so far answer 401 (40104)."""
        self._app.tokens.revoke_access()

    def reset_log(self) -> None:
        """Forget the requests logged so far (the JSONL file keeps them)."""
        self._app.log.reset()

    # ----- misbehaviour at run time ----------------------------------------------------------

    def throttle(
        self,
        count: int | None = None,
        *,
        retry_after: str | None = "1",
        kinds: tuple[str, ...] = REQUEST_KINDS,
    ) -> None:
        """Answer the next ``count`` requests of ``kinds`` (all: ``None``) with HTTP 429.

        ``retry_after`` is sent verbatim as the ``Retry-After`` header (``None``: no header).
        Replaces the fault plan (``FaultPlan.throttled``); ``set_faults(FaultPlan())`` ends it.
        """
        self.set_faults(FaultPlan.throttled(count, retry_after=retry_after, kinds=kinds))

    def set_latency(self, seconds: float) -> None:
        """Make every API request from now on wait ``seconds`` before it is answered."""
        self._app.latency_s = seconds

    def set_latency_jitter(self, seconds: float) -> None:
        """Add a uniform draw from ``[0, seconds]`` to every API answer's wait from now on."""
        self._app.latency_jitter_s = seconds

    def set_table_fault(self, table_id: str, mode: str | None) -> None:
        """Fault one table's segment endpoint from now on (a ``TABLE_FAULT_MODES`` mode).

        ``None`` clears it. ``KeyError`` if ``table_id`` is no table, ``ValueError`` if ``mode``
        is unknown.
        """
        self._app.set_table_fault(table_id, mode)

    def table_fault(self, table_id: str) -> str | None:
        """The access fault of one table, ``None`` if it has none."""
        return self._app.table_fault(table_id)

    def set_workspace_fault(self, ws_type: str, ws_id: int, mode: str | None) -> None:
        """Fault one workspace's detail and roles endpoints from now on.

        ``mode`` is one of ``WORKSPACE_FAULT_MODES`` ("403", "404", "code"); ``None`` clears it.
        ``KeyError`` if there is no such workspace, ``ValueError`` if ``mode`` is unknown.
        """
        self._app.set_workspace_fault(ws_type, ws_id, mode)

    def workspace_fault(self, ws_type: str, ws_id: int) -> str | None:
        """The access fault of one workspace, ``None`` if it has none."""
        return self._app.workspace_fault(ws_type, ws_id)

    def set_deleted_cursor(self, mode: str) -> None:
        """Answer a ``lastSegmentRowID`` naming no live row this way from now on.

        ``mode`` is one of ``DELETED_CURSOR_MODES``: "continue", "error", "code", "404" or
        "restart".
        """
        self._app.deleted_cursor = mode

    def set_page_size_cap(self, cap: int | None) -> None:
        """Serve at most ``cap`` workspaces per page from now on (``None``: no cap)."""
        self._app.page_size_cap = cap

    def set_token_clock_skew(self, seconds: float) -> None:
        """Stamp ``iat``/``exp`` of tokens minted from now on ``seconds`` off real time."""
        self._app.token_clock_skew_s = seconds

    # ----- structure changes (see Dataset for the details) -----------------------------------

    def add_project(self, ws_type: str, ws_id: int, name: str) -> dict[str, Any]:
        """Add a project without table nodes to a workspace; returns it as the detail shows it."""
        return self._app.add_project(ws_type, ws_id, name)

    def add_table(self, project_id: str, name: str, rows: int | None = None) -> TableInfo:
        """Add a generated table (``rows`` rows, default ``rows_per_table``) to a project."""
        return self._app.add_table(project_id, name, rows)

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """Delete a project and its table nodes (their segments answer 404); returns it."""
        return self._app.delete_project(project_id)

    def delete_table(self, node_id: str) -> dict[str, Any]:
        """Delete a table or group node from its project; returns the node."""
        return self._app.delete_table(node_id)

    # ----- column drift (see Dataset for the details) ----------------------------------------

    def reorder_columns(
        self, table_id: str, order: list[str] | None = None, *, reverse: bool = False
    ) -> list[dict[str, Any]]:
        """Put a table's columns in ``order`` (every column id once), or reverse them."""
        return self._app.data.reorder_columns(table_id, order, reverse=reverse)

    def rename_column(self, table_id: str, column_id: str, name: str) -> dict[str, Any]:
        """Rename a column (duplicate names allowed); its id stays."""
        return self._app.data.rename_column(table_id, column_id, name)

    def retype_column(
        self, table_id: str, column_id: str, column_type: str, type_options: Any = None
    ) -> dict[str, Any]:
        """Change a column's type, converting its cells in every row as MapTable does."""
        return self._app.data.retype_column(table_id, column_id, column_type, type_options)

    def add_column(  # noqa: PLR0913 - mirrors Dataset.add_column
        self,
        table_id: str,
        name: str,
        column_type: str,
        *,
        type_options: Any = None,
        fill: Any = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """Add a column with a fresh id and a cell in every existing row; returns the column."""
        return self._app.data.add_column(
            table_id, name, column_type, type_options=type_options, fill=fill, position=position
        )

    def delete_column(self, table_id: str, column_id: str) -> None:
        """Delete a column and its cells in every row."""
        self._app.data.delete_column(table_id, column_id)
