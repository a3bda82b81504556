"""Serving the emulator over real sockets: in a thread, or in a child process.

`EmulatorServer` runs uvicorn in a background thread of the test process,
so a test can both call the API over TCP and steer `server.emulator`
directly. `EmulatorProcess` runs `python -m audioscape_async.emulator` as a
child process, for benchmarks that must not share the client's GIL and
event loop; it is steered through the `/_emulator/` admin endpoints.
Both bind to 127.0.0.1 on a free port by default, and both can stop and be
waited for, leaving no thread, socket or process behind.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from audioscape_async import _constants as c

from . import _defaults as d
from ._app import create_app
from ._emulator import Emulator
from ._exceptions import EmulatorError, EmulatorStartupError
from ._faults import Faults
from ._protocol import FaultCapableH11Protocol
from ._ratelimit import KeyRateLimit

#: How often start-up waits re-check a server that is not up yet, in seconds.
_POLL = 0.01


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to (host, port); port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol matters: asyncio only turns Nagle off (TCP_NODELAY) for sockets
    # whose proto is IPPROTO_TCP, and with Nagle on every keep-alive answer waits 40 ms
    # for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if sys.platform != "win32":
            # Lets a restarted emulator reuse its port at once despite TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_server(app: Starlette, idle_timeout: float = d.IDLE_TIMEOUT) -> uvicorn.Server:
    """A quiet uvicorn server for the app, with the fault-capable protocol.

    A connection idle for `idle_timeout` seconds (between requests, or before a
    request's head is complete: a client that stopped halfway) is closed.
    """
    config = uvicorn.Config(
        app,
        http=FaultCapableH11Protocol,
        ws="none",
        lifespan="off",
        # None leaves the process's logging alone; only warnings and errors get through.
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=d.SHUTDOWN_GRACE,
        # Typed int, but only ever handed to loop.call_later, which takes fractions too.
        timeout_keep_alive=idle_timeout,  # type: ignore[arg-type]
        # A request head (line and headers) larger than this is refused with 400.
        h11_max_incomplete_event_size=d.MAX_HEAD_BYTES,
    )
    return uvicorn.Server(config)


def base_url(host: str, port: int) -> str:
    """The URL the SDK is given: scheme, host, port and the API's base path."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{d.BASE_PATH}"


class EmulatorServer:
    """Runs an emulator app under uvicorn in a background thread.

        >>> with EmulatorServer(tracks=1_000) as server:
        ...     answer = httpx.post(
        ...         server.url + "/search",
        ...         json={"query": "chill lo-fi beats"},
        ...         headers={"x-api-key": server.api_key},
        ...     )

    Pass an `app` from `create_app`, or `create_app`'s keyword arguments.
    `idle_timeout` closes connections idle (or stalled mid-request) that long.
    """

    def __init__(
        self,
        app: Starlette | None = None,
        *,
        host: str = d.LOOPBACK_HOST,
        port: int = 0,
        startup_timeout: float = d.STARTUP_TIMEOUT,
        idle_timeout: float = d.IDLE_TIMEOUT,
        **app_options: Any,
    ) -> None:
        if app is not None and app_options:
            raise TypeError("pass either an app or create_app() options, not both")
        self.app = app if app is not None else create_app(**app_options)
        self.host = host
        self.startup_timeout = startup_timeout
        self.idle_timeout = idle_timeout
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def emulator(self) -> Emulator:
        """The app's `Emulator`, to observe and steer it."""
        emulator: Emulator = self.app.state.emulator
        return emulator

    @property
    def api_key(self) -> str:
        """A key the emulator accepts."""
        return self.emulator.api_keys[0]

    @property
    def admin_token(self) -> str:
        """The token the `/_emulator/` admin endpoints want (`Authorization: Bearer ...`)."""
        return self.emulator.admin_token

    @property
    def admin_headers(self) -> dict[str, str]:
        """Headers that let a request through the admin endpoints' guard."""
        return {"authorization": f"Bearer {self.admin_token}"}

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._port is None:
            raise EmulatorError("the server is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the SDK, like http://127.0.0.1:PORT/developer/v1."""
        return base_url(self.host, self.port)

    @property
    def root_url(self) -> str:
        """The server's root, where the `/_emulator/` admin endpoints live."""
        return self.url[: -len(d.BASE_PATH)]

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmulatorServer:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise EmulatorError("the server is already running")
        try:
            sock = bind_socket(self.host, self._requested_port)
        except OSError as exc:
            raise EmulatorStartupError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror or exc}"
            ) from exc
        self._port = sock.getsockname()[1]
        server = uvicorn_server(self.app, self.idle_timeout)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"audioscape-emulator:{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise EmulatorStartupError(
                    f"the emulator on {self.host}:{self._port} did not start within "
                    f"{self.startup_timeout:g} s"
                )
            time.sleep(_POLL)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end (idempotent)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(d.STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(d.STOP_TIMEOUT)
        self._server = self._thread = None
        if thread.is_alive():
            raise EmulatorError(f"the emulator thread did not stop within {2 * d.STOP_TIMEOUT} s")
        self._port = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<EmulatorServer {where}>"


class EmulatorProcess:
    """Runs the emulator in a child process (`python -m audioscape_async.emulator`).

        >>> with EmulatorProcess(tracks=100_000, faults={"503": 0.01}) as proc:
        ...     run_benchmark(base_url=proc.url, api_key=proc.api_key)
        ...     print(proc.requests()["count"])

    The child prints its URL, key and admin token once it listens; `start`
    waits for those lines. The admin helpers (`requests`, `state`,
    `set_faults`, `force_fault`, `set_rate_limit`, `reset`) steer it over
    HTTP, sending the admin token.
    """

    def __init__(
        self,
        *,
        tracks: int | None = None,
        seed: int = d.DEFAULT_SEED,
        catalog: str | Path | None = None,
        api_keys: Sequence[str] = (),
        rate_limit: KeyRateLimit | None = None,
        faults: Faults | Mapping[str, float] | None = None,
        semantic: bool = True,
        host: str = d.LOOPBACK_HOST,
        port: int = 0,
        startup_timeout: float = d.PROCESS_STARTUP_TIMEOUT,
        python: str = sys.executable,
    ) -> None:
        if tracks is not None and catalog is not None:
            raise TypeError("pass either tracks or catalog, not both")
        checked = Faults.coerce(faults)
        args = [python, "-m", "audioscape_async.emulator", "--host", host, "--port", str(port)]
        args += ["--seed", str(seed)]
        if tracks is not None:
            args += ["--tracks", str(tracks)]
        if catalog is not None:
            args += ["--catalog", os.fspath(catalog)]
        for key in api_keys:
            args += ["--api-key", key]
        if rate_limit is not None:
            args += ["--rate", f"{rate_limit.rate:g}/{rate_limit.burst}"]
        for name, rate in checked.rates.items():
            args += ["--fault", f"{name}={rate:g}"]
        if rate_limit is not None and rate_limit.retry_after is not None:
            args += ["--rate-retry-after", rate_limit.retry_after]
        args += ["--latency", f"{checked.latency:g}"]
        if checked.retry_after is not None:
            args += ["--retry-after", str(checked.retry_after)]
            args += ["--retry-after-format", checked.retry_after_format]
        if not semantic:
            args.append("--no-semantic")
        #: The command line the child runs.
        self.args = args
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._output: list[str] = []
        self._url: str | None = None
        self._api_key: str | None = None
        self._admin_token: str | None = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        """The base URL to give the SDK."""
        if self._url is None:
            raise EmulatorError("the emulator process is not running; call start() first")
        return self._url

    @property
    def root_url(self) -> str:
        """The server's root, where the `/_emulator/` admin endpoints live."""
        return self.url[: -len(d.BASE_PATH)]

    @property
    def api_key(self) -> str:
        """A key the emulator accepts."""
        if self._api_key is None:
            raise EmulatorError("the emulator process is not running; call start() first")
        return self._api_key

    @property
    def admin_token(self) -> str:
        """The token the child's admin endpoints want; the helpers below send it."""
        if self._admin_token is None:
            raise EmulatorError("the emulator process is not running; call start() first")
        return self._admin_token

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def output(self) -> str:
        """Everything the child printed so far."""
        return "".join(self._output)

    def start(self) -> EmulatorProcess:
        """Start the child; returns once it listens, or raises `EmulatorStartupError`."""
        if self._process is not None:
            raise EmulatorError("the emulator process is already running")
        env = dict(os.environ)
        # The child must import this very package, even when it is not installed.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"audioscape-emulator-output:{self._process.pid}", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while self._url is None or self._api_key is None or self._admin_token is None:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
                reason = f"did not print its URL within {self.startup_timeout:g} s"
            else:
                reason = "exited before it was ready"
            if line is None:
                self.stop()
                tail = self.output.strip().splitlines()[-5:]
                detail = (": " + " / ".join(tail)) if tail else ""
                raise EmulatorStartupError(f"the emulator process {reason}{detail}")
            if line.startswith(d.URL_LINE_PREFIX) and self._url is None:
                self._url = line[len(d.URL_LINE_PREFIX) :].strip()
            elif line.startswith(d.API_KEY_LINE_PREFIX) and self._api_key is None:
                self._api_key = line[len(d.API_KEY_LINE_PREFIX) :].strip()
            elif line.startswith(d.ADMIN_TOKEN_LINE_PREFIX) and self._admin_token is None:
                self._admin_token = line[len(d.ADMIN_TOKEN_LINE_PREFIX) :].strip()
        return self

    def _read(self) -> None:
        # Drains the child's output for its whole life: a full pipe would block it.
        process = self._process
        assert process is not None
        assert process.stdout is not None
        for line in process.stdout:
            self._output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> int | None:
        """Stop the child like Ctrl-C does, wait for it, and return its exit code."""
        process = self._process
        if process is None:
            return None
        if self._client is not None:
            self._client.close()
            self._client = None
        if process.poll() is None:
            if sys.platform == "win32":
                process.terminate()
            else:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(d.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(d.STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(d.STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        self._process = self._reader = None
        self._url = self._api_key = self._admin_token = None
        return process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- admin helpers

    def _admin(self, method: str, path: str, body: object = None) -> Any:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.root_url + d.ADMIN_PREFIX,
                headers={"authorization": f"Bearer {self.admin_token}"},
            )
        response = self._client.request(
            method, path, json=body, headers={"content-type": c.JSON_CONTENT_TYPE}
        )
        if response.status_code != 200:
            raise EmulatorError(f"{method} {d.ADMIN_PREFIX}{path}: {response.text}")
        return response.json()

    def requests(self, last: int | None = None) -> dict[str, Any]:
        """The request log: counts by status and fault, and the (last) records."""
        answer: dict[str, Any] = self._admin(
            "GET", "/requests" + (f"?last={last}" if last is not None else "")
        )
        return answer

    def state(self) -> dict[str, Any]:
        """The configuration in force in the child."""
        answer: dict[str, Any] = self._admin("GET", "/state")
        return answer

    def set_faults(self, faults: Faults | Mapping[str, float] | None) -> None:
        """Replace the child's fault configuration."""
        self._admin("POST", "/faults", Faults.coerce(faults).to_json())

    def force_fault(self, name: str, count: int = 1) -> None:
        """Give the child's next `count` search requests the fault `name`."""
        self._admin("POST", "/force", {"fault": name, "count": count})

    def set_rate_limit(self, rate_limit: KeyRateLimit | None) -> None:
        """Replace the child's rate limit (None: no limit)."""
        self._admin("POST", "/rate-limit", rate_limit.to_json() if rate_limit else {"rate": None})

    def reset(self) -> None:
        """Put the child back in its state at start-up."""
        self._admin("POST", "/reset")
