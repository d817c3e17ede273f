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
from sanic import Sanic, Websocket
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from edge import framework
from edge.ws_routes import register_ws
from tests.conftest import Services
from tests.edge.conftest import ROOT
from tests.servers import free_port


def fresh_websocket() -> Websocket:
    return Websocket(ServerProtocol(state=State.OPEN))


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
    monkeypatch.delattr(Sanic, "_websocket_handler")
    with pytest.raises(framework.FrameworkChanged) as raised:
        register_ws(None)  # type: ignore[arg-type]  # refused before the app is touched
    message = str(raised.value)
    assert f"sanic {framework.VERIFIED['sanic']}" in message
    assert "Sanic no longer has _websocket_handler" in message
    assert "Upgrading sanic/websockets" in message


@pytest.mark.slow
def test_livescore_serve_refuses_to_start_with_a_clear_error(services: Services) -> None:
    """The same check through the CLI: one ``Error:`` naming what changed, exit 1,
    before anything listens."""
    sabotage = (
        "import sys, sanic; del sanic.Sanic._websocket_handler; from cli import main; "
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
    assert "Sanic no longer has _websocket_handler" in done.stderr
    assert "Traceback" not in done.stderr


# -- behaviour behind the probes, on real objects ---------------------------------------------


async def test_sanic_resolves_the_future_the_hub_puts_in_its_ping_table() -> None:
    ws = fresh_websocket()
    pings = framework.pings_of(ws)
    pong = framework.expect_pong(pings, b"livescore", asyncio.get_running_loop())
    await ws.process_pong(Frame(Opcode.PONG, b"livescore"))
    check(
        pong.done() and b"livescore" not in pings,
        "sanic",
        "Websocket.process_pong no longer resolves and removes the future the hub's "
        "keepalive put in .pings for its ping (a pong would go unseen: 1011 closes)",
    )


async def test_sanics_connection_lost_is_seen_by_watch_state() -> None:
    """Other ways out of OPEN (close frames, protocol errors, EOF) are in
    tests/ws/test_hub.py; this is Sanic's own one."""
    ws = fresh_websocket()
    left: list[State] = []
    proto = framework.protocol_of(ws)
    framework.watch_state(proto, lambda: left.append(proto.state))
    ws.connection_lost(None)
    check(
        left == [State.CLOSED],
        "sanic",
        f"Websocket.connection_lost no longer sets ws_proto.state through its setter "
        f"(watch_state saw {left}): the fan-out would keep writing to a lost client",
    )


async def test_fail_closes_through_the_state_setter() -> None:
    ws = fresh_websocket()
    left: list[State] = []
    framework.watch_state(framework.protocol_of(ws), lambda: left.append(State.CLOSED))
    framework.fail(ws, 1006, "gone")
    check(
        left == [State.CLOSED],
        "sanic",
        f"Websocket.fail_connection(1006) no longer leaves OPEN through the setter ({left})",
    )


async def test_stop_reading_releases_a_frame_waiting_for_recv_and_drops_later_ones() -> None:
    """Sanic hands a received frame to the assembler in a task of its own, which
    waits until a recv takes it; ``stop_reading`` must end that wait."""
    ws = fresh_websocket()
    waiting = asyncio.create_task(ws.process_events([Frame(Opcode.TEXT, b"{}")]))
    await asyncio.sleep(0.01)
    check(
        not waiting.done(),
        "sanic",
        "a received frame nobody recv()s no longer waits in Websocket.process_events "
        "(stop_reading may no longer be needed: see its docstring)",
    )
    framework.stop_reading(ws)
    async with asyncio.timeout(1):
        await waiting
        await ws.process_events([Frame(Opcode.TEXT, b"{}")])  # dropped at once


def test_close_only_writes_the_close_frame_to_the_transport() -> None:
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

    class Io:
        transport = Transport()

    ws = fresh_websocket()
    ws.io_proto = Io()  # type: ignore[assignment]
    framework.send_close_only(ws, 4029, "flood")
    data = b"".join(written)
    check(
        data[:1] == b"\x88" and data[2:4] == (4029).to_bytes(2, "big"),
        "websockets",
        f"send_close_only wrote {data[:8]!r}, not a 4029 close frame",
    )
    check(
        framework.protocol_of(ws).state is State.CLOSING,
        "websockets",
        "a close frame sent is no longer the CLOSING state",
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
