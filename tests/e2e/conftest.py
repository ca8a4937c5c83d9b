"""Fixtures for end-to-end tests with real peers (sipp, baresip) against `hotline serve`.

Missing sipp or baresip is a failure, not a skip: the project installs both (Debian packages
sip-tester and baresip), and a silently skipped e2e suite would prove nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from baresip import BaresipPhone
from harness import HotlineServer, SippProcess, start_sipp

# peers of the running test whose logs go into its failure report: (title, text getter)
_PEER_LOGS = pytest.StashKey[list[tuple[str, Callable[[], str]]]]()

INSTALL_HINT = (
    "install it with: sudo apt-get install -y sip-tester baresip (see the project's install script)"
)


def _require(binary: str, version_args: list[str], expect: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found on PATH; {INSTALL_HINT}", pytrace=False)
    out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=10, check=False)
    if expect not in out.stdout + out.stderr:
        pytest.fail(f"{path} does not look like {expect}: {(out.stdout + out.stderr)[:300]}", pytrace=False)
    return path


def _track(request: pytest.FixtureRequest, title: str, text: Callable[[], str]) -> None:
    request.node.stash.setdefault(_PEER_LOGS, []).append((title, text))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach server/peer log tails to a failed test's report, where a reader looks first."""
    report = yield
    if report.failed and call.when in ("call", "teardown"):
        for title, text in item.stash.get(_PEER_LOGS, []):
            try:
                report.sections.append((title, text()))
            except OSError as exc:  # a log that never got created is itself a clue
                report.sections.append((title, f"(unreadable: {exc})"))
    return report


@pytest.fixture(scope="session")
def sipp_bin() -> str:
    """sipp with pcap play support (Debian's sip-tester build: 'SIPp v3.6.1-...-PCAP-RTPSTREAM')."""
    path = _require("sipp", ["-v"], "SIPp v")
    version = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout
    if "PCAP" not in version:
        pytest.fail(f"sipp at {path} was built without PCAP play support; {INSTALL_HINT}", pytrace=False)
    if not Path("/usr/share/sip-tester/dtmf_2833_1.pcap").is_file():
        pytest.fail(f"sipp's pcaps are missing from /usr/share/sip-tester; {INSTALL_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def baresip_bin() -> str:
    return _require("baresip", ["-h"], "baresip v")


@pytest.fixture
def start_hotline(
    request: pytest.FixtureRequest, tmp_path: Path, sipp_bin: str
) -> Iterator[Callable[..., HotlineServer]]:
    """Factory: start_hotline(answer_delay_ms=3000, flows_dir=..., extra_args=[...]) -> running server.

    Every server started through it is stopped at teardown; a failed test's report shows its log.
    """
    servers: list[HotlineServer] = []

    def start(**options: Any) -> HotlineServer:
        server = HotlineServer(tmp_path / f"hotline-{len(servers)}", **options)
        servers.append(server)
        _track(request, f"hotline log {server.log_path}", lambda: server.log_tail(150))
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def hotline_server(
    request: pytest.FixtureRequest, start_hotline: Callable[..., HotlineServer]
) -> HotlineServer:
    """A default server; parametrize indirectly with a dict of HotlineServer options to change it."""
    options: dict[str, Any] = getattr(request, "param", None) or {}
    return start_hotline(**options)


@pytest.fixture
def sipp_uas(
    request: pytest.FixtureRequest, tmp_path: Path, sipp_bin: str
) -> Iterator[Callable[..., SippProcess]]:
    """Factory for background sipp UAS peers (e.g. uas_answer.xml as an agent), stopped at teardown."""
    peers: list[SippProcess] = []

    def start(scenario: str, **options: Any) -> SippProcess:
        options.setdefault("workdir", tmp_path / f"sipp-uas-{len(peers)}")
        peer = start_sipp(scenario, None, **options)
        peers.append(peer)
        _track(request, f"sipp UAS {scenario} in {peer.workdir}", lambda: peer.result().describe(40))
        return peer

    yield start
    for peer in peers:
        peer.__exit__(None, None, None)


@pytest.fixture
def baresip_phone(
    request: pytest.FixtureRequest, tmp_path: Path, baresip_bin: str
) -> Iterator[Callable[..., BaresipPhone]]:
    """Factory for headless baresip phones (see baresip.BaresipPhone), closed at teardown."""
    phones: list[BaresipPhone] = []

    def start(**options: Any) -> BaresipPhone:
        options.setdefault("workdir", tmp_path / f"baresip-{len(phones)}")
        phone = BaresipPhone(**options)
        phones.append(phone)
        _track(request, f"baresip {phone.user} log {phone.log_path}", lambda: phone.log_tail(80))
        return phone.start()

    yield start
    for phone in phones:
        phone.close()
