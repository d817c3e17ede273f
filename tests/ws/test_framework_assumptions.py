"""What ``/ws`` relies on in sanic, websockets, uvloop and the kernel
(``edge/framework.py``), checked against what is installed.

Run this first after bumping sanic or websockets (README "Upgrading
sanic/websockets"): each failure names the package, the version the
assumption was checked against, the version installed, and what changed.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import uvloop
from sanic import HTTPResponse
from sanic.http import Http
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

from edge import framework
from edge.ws_routes import register_ws
from tests.conftest import Services
from tests.edge.conftest import ROOT
from tests.servers import free_port


def check(holds: bool, package: str, what: str) -> None:
    if not holds:
        pytest.fail(framework.changed(package, what), pytrace=False)


# -- the versions ----------------------------------------------------------------------------


@pytest.mark.parametrize("package", ["sanic", "websockets"])
def test_the_pins_are_the_versions_checked(package: str) -> None:
    """A bump of a pin must come with a look at every assumption: VERIFIED (in
    edge/framework.py) records the versions they were last checked against."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(dep.split("==", 1) for dep in pyproject["project"]["dependencies"] if "==" in dep)
    checked = framework.VERIFIED[package]
    assert pins.get(package) == checked, (
        f"pyproject.toml pins {package} {pins.get(package)} but edge/framework.py was checked "
        f"against {checked}: run tests/ws/test_framework_assumptions.py on the new version and, "
        f"when it passes, update framework.VERIFIED; {framework.SEE}"
    )
    installed = framework.installed(package)
    assert installed == checked, (
        f"{package} {installed} is installed but {checked} is pinned and checked: "
        "reinstall the pinned versions (pip install -e .)"
    )


# -- the probes register_ws runs at startup ---------------------------------------------------


@pytest.mark.parametrize("assumption", framework.ASSUMPTIONS, ids=lambda a: a.name)
def test_assumption_holds(assumption: framework.Assumption) -> None:
    problem = framework.problem(assumption)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def test_a_broken_assumption_stops_register_ws_with_what_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(Http, "http1")
    with pytest.raises(framework.FrameworkChanged) as raised:
        register_ws(None)  # type: ignore[arg-type]  # refused before the app is touched
    message = str(raised.value)
    assert f"sanic {framework.VERIFIED['sanic']}" in message
    assert "hand_over" in message
    assert "Upgrading sanic/websockets" in message


@pytest.mark.slow
def test_livescore_serve_refuses_to_start_with_a_clear_error(services: Services) -> None:
    """The same check through the CLI: one ``Error:`` naming what changed, exit 1,
    before anything listens."""
    sabotage = (
        "import sys; from sanic.http import Http; del Http.http1; from cli import main; "
        f"sys.argv = ['livescore', 'serve', '--host', '127.0.0.1', '--port', '{free_port()}']; "
        "main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", sabotage],
        env=services.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Error: the installed sanic/websockets break what /ws relies on" in done.stderr
    assert "hand_over" in done.stderr
    assert "Traceback" not in done.stderr


# -- behaviour behind the probes, on real objects ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, {"ETag": '"abc"', "Cache-Control": "no-cache", "Vary": "Origin"}),
        (304, {"ETag": '"abc"', "Cache-Control": "no-cache"}),
        (200, {"X-Evil": "a\r\nInjected: yes", "X-Number": 12, "content-type": "text/x"}),
        (503, {"Cache-Control": "no-store", "X-Umlaut": "\u00fcber"}),
    ],
)
def test_encoded_response_header_lines_are_sanics_byte_for_byte(
    status: int, headers: dict[str, Any]
) -> None:
    """``EncodedResponse`` reuses encoded lines; each must be what Sanic makes."""
    for _ in range(2):  # encoded, then reused
        ours = framework.EncodedResponse(b"{}", status=status, headers=dict(headers),
                                         content_type="application/json")  # fmt: skip
        sanics = HTTPResponse(b"{}", status=status, headers=dict(headers),
                              content_type="application/json")  # fmt: skip
        ours.headers["content-length"] = sanics.headers["content-length"] = 2  # as Http adds
        check(
            list(ours.processed_headers) == list(sanics.processed_headers),
            "sanic",
            "processed_headers makes other header lines than EncodedResponse",
        )


def test_sanics_protocol_with_no_transport_closes_quietly() -> None:
    """What the end of Sanic's connection task does to a handed-over socket: nothing."""
    http: Any = WebSocketProtocol.__new__(WebSocketProtocol)
    http.transport = None
    http.websocket = None
    http._callback_check_timeouts = None
    http.close()
    check(http.close_if_idle() in (True, None), "sanic", "close_if_idle with no transport failed")


def test_uvloop_set_protocol_gives_later_data_to_the_new_protocol() -> None:
    """``hand_over``: after ``transport.set_protocol(p)`` the bytes that arrive (and
    the loss of the connection) go to ``p``."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[asyncio.Transport] = loop.create_future()
        got: asyncio.Future[bytes] = loop.create_future()
        lost: asyncio.Future[None] = loop.create_future()

        class First(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.set_result(transport)  # type: ignore[arg-type]

            def data_received(self, data: bytes) -> None:
                seen["first"] = data

        class Second(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                got.set_result(data)

            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(None)

        server = await loop.create_server(First, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = await made
        transport.set_protocol(Second())
        writer.write(b"after")
        async with asyncio.timeout(5):
            seen["second"] = await got
        writer.close()
        async with asyncio.timeout(5):
            await lost
        seen["lost"] = True
        server.close()

    uvloop.run(main())
    check(
        seen.get("second") == b"after" and "first" not in seen and seen.get("lost") is True,
        "uvloop",
        f"set_protocol no longer hands later data and connection_lost over ({seen})",
    )


# -- uvloop ------------------------------------------------------------------------------------


def test_uvloop_transport_raises_write_after_close_and_gives_its_tcp_socket() -> None:
    """``Hub._deliver`` and ``Session.send`` catch WRITE_AFTER_CLOSE from a write to
    a transport whose socket closed; the keepalive asks the kernel through the
    transport's socket (uvloop's pseudo-socket)."""
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[asyncio.Transport] = loop.create_future()
        lost: asyncio.Future[None] = loop.create_future()

        class Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.set_result(transport)  # type: ignore[arg-type]

            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(None)

        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = await made
        sock = framework.tcp_socket(transport)
        seen["heard"] = framework.heard_within(sock, 5)
        transport.close()
        await lost
        try:
            transport.write(b"x")
        except framework.WRITE_AFTER_CLOSE:
            seen["raised"] = True
        except Exception as exc:
            seen["raised"] = exc
        writer.close()
        server.close()

    uvloop.run(main())
    check(
        seen.get("heard") is True,
        "uvloop",
        "a uvloop transport's get_extra_info('socket') no longer answers TCP_INFO "
        "(the keepalive would ping everyone)",
    )
    check(
        seen.get("raised") is True,
        "uvloop",
        f"a write to a closed uvloop transport no longer raises "
        f"{framework.WRITE_AFTER_CLOSE.__name__} (got {seen.get('raised', 'no exception')!r}): "
        "update WRITE_AFTER_CLOSE",
    )


# -- the kernel: TCP_INFO ----------------------------------------------------------------------


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            yield server, client


def tcp_info(sock: socket.socket) -> bytes:
    assert framework.TCP_INFO is not None
    return sock.getsockopt(socket.IPPROTO_TCP, framework.TCP_INFO, framework.TCP_INFO_ASK)


def last_recv(sock: socket.socket) -> tuple[int, int]:
    """(tcpi_last_data_recv, tcpi_last_ack_recv) in ms, at the offsets the keepalive reads."""
    data_ms, ack_ms = framework.TCP_INFO_LAST_RECV.unpack_from(
        tcp_info(sock), framework.TCP_INFO_LAST_RECV_AT
    )
    return data_ms, ack_ms


def test_tcp_info_has_the_fields_at_the_offsets_read(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = tcp_pair
    check(framework.TCP_INFO is not None, "linux", "socket.TCP_INFO is missing")
    info = tcp_info(server)
    need = framework.TCP_INFO_LAST_RECV_AT + framework.TCP_INFO_LAST_RECV.size
    check(len(info) >= need, "linux", f"TCP_INFO returned {len(info)} bytes, {need} needed")
    check(info[0] == 1, "linux", f"tcpi_state (byte 0) is {info[0]}, not 1 (ESTABLISHED)")
    time.sleep(0.3)
    data_ms, ack_ms = last_recv(server)
    check(
        data_ms >= 250 and ack_ms >= 250,
        "linux",
        f"after 0.3 s of quiet, bytes 52/56 read {data_ms}/{ack_ms}: not ms since the "
        "peer last sent data / an ACK (struct tcp_info moved?)",
    )
    server.sendall(b"x")  # the peer's kernel ACKs it, unread
    time.sleep(0.05)
    data_ms, ack_ms = last_recv(server)
    check(
        ack_ms < 200 <= data_ms,
        "linux",
        f"after the peer ACKed our data, last_data_recv/last_ack_recv read {data_ms}/{ack_ms} "
        "(expected old/fresh)",
    )
    time.sleep(0.3)
    client.sendall(b"y")
    time.sleep(0.05)
    data_ms, _ = last_recv(server)
    check(data_ms < 200, "linux", f"after the peer sent data, last_data_recv reads {data_ms}")
    check(
        framework.heard_within(server, 1) and not framework.heard_within(server, 0.01),
        "linux",
        "heard_within disagrees with the fields it reads",
    )
