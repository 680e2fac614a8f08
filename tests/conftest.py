"""Fixtures shared by every test: a hang guard, and real PostgreSQL databases for integration.

Database fixtures (sync, so they run outside trio and work for trio and plain tests alike):

- ``postgres_server_url`` (session): ``TEST_DATABASE_URL`` if set — any database on a server
  where that user may ``CREATE DATABASE`` — else an embedded PostgreSQL in a new temporary
  directory, stopped and deleted at the end.
- ``migrated_template`` (session): the name of a database migrated to head, used as template.
- ``database_url`` (function): a fresh migrated database of the test's own, dropped afterwards.

Each test still bounds its own waits with ``trio.fail_after``; the hang guard is the backstop
for a test that hangs anyway (default 120 s, ``TVM_TEST_HANG_SECONDS`` or
``@pytest.mark.hang_guard(seconds)`` to change it).
"""

from __future__ import annotations

import faulthandler
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage import migrate
from storage.embedded import start_embedded_postgres
from storage.testing import create_database, drop_database

HANG_GUARD_SECONDS = float(os.environ.get("TVM_TEST_HANG_SECONDS", "120"))
# After interrupting a hung test, how long teardown may take before the process is killed.
HANG_GUARD_GRACE_SECONDS = 30.0

_HANG_REPORT = pytest.StashKey[str]()
_hang_reports: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hang_guard(seconds): let this test run that long before the hang guard fires"
    )


# ---------------------------------------------------------------------------------------------
# Hang guard


def _thread_stacks() -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    sections = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame))
        sections.append(f"--- thread {names.get(ident, ident)} ---\n{stack}")
    return "\n".join(sections)


@pytest.fixture(autouse=True)
def hang_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Interrupt a test (as Ctrl-C would) if it runs past its limit.

    A trio test then fails with ``KeyboardInterrupt`` and the session goes on; a plain test
    ends the session, but fixtures still tear down (an embedded PostgreSQL is stopped,
    databases are dropped). If that hangs too, the process exits after a grace period. The
    stacks of every thread at the moment it fired are added to the report.
    """
    marker = request.node.get_closest_marker("hang_guard")
    seconds = float(marker.args[0]) if marker is not None else HANG_GUARD_SECONDS
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def fire() -> None:
        report = f"{request.node.nodeid} still running after {seconds:g} s\n{_thread_stacks()}"
        request.node.stash[_HANG_REPORT] = report
        _hang_reports.append(report)
        faulthandler.dump_traceback_later(HANG_GUARD_GRACE_SECONDS, exit=True)
        signal.pthread_kill(main_thread, signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    hang_report = item.stash.get(_HANG_REPORT, None)
    if hang_report is not None and call.when == "call":
        report.sections.append(("hang guard", hang_report))
        _hang_reports.remove(hang_report)  # shown with the test: no need to print it again
    return report


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    # A plain test interrupted by the guard ends the session before its report is made.
    for report in _hang_reports:
        print(f"hang guard: {report}", file=sys.__stderr__)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL of the test server (any database on it); the server lives for the session.

    The embedded server's directory is made with ``mkdtemp``, not under pytest's
    ``/tmp/pytest-of-<user>``: run as root, PostgreSQL runs as user ``pgserver`` and must be
    able to reach its data dir, but every pytest session that starts resets that folder to
    0700, which would break the server of any session still running.
    """
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    data_dir = Path(tempfile.mkdtemp(prefix="tvm-hub-test-"))
    try:
        embedded = start_embedded_postgres(data_dir)
        try:
            yield embedded.dsn
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(postgres_server_url: str) -> Iterator[str]:
    """Name of a database migrated to head, to copy per test; dropped at the end.

    The name carries a random suffix, so test sessions sharing one ``TEST_DATABASE_URL``
    server do not drop each other's template.
    """
    name = f"tvm_test_template_{secrets.token_hex(4)}"
    drop_database(postgres_server_url, name)
    template_url = create_database(postgres_server_url, name)
    migrate.upgrade(template_url)
    try:
        yield name
    finally:
        drop_database(postgres_server_url, name)


@contextmanager
def fresh_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database on ``server_url`` under a random name (a copy of ``template`` if given):
    its URL; dropped on the way out."""
    name = f"tvm_test_{secrets.token_hex(6)}"
    url = create_database(server_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a new database with the full schema, for this test only; dropped afterwards."""
    with fresh_database(postgres_server_url, migrated_template) as url:
        yield url


@pytest.fixture
def second_database_url(postgres_server_url: str, migrated_template: str) -> Iterator[str]:
    """Another fresh database with the full schema (a second hub's, in the same test)."""
    with fresh_database(postgres_server_url, migrated_template) as url:
        yield url


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """URL of a new database with no schema at all (for migration tests); dropped afterwards."""
    with fresh_database(postgres_server_url) as url:
        yield url
