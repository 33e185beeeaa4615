"""A worker's database connection terminated by PostgreSQL (as a restart or an administrator
does) mid-migration: what can wait is skipped, what must be written waits, and the outage is
noted once the database answers again."""

import threading

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection

from core.scheduler import PeriodicTask, run_periodic
from migrations_app.engine.database_outage import DATABASE_ERRORS, DatabaseLink
from migrations_app.models import MigrationTask

pytestmark = pytest.mark.django_db(transaction=True)


def terminate_this_connection() -> None:
    """As `pg_terminate_backend` from another session: the server drops our connection."""
    pid = connection.cursor().connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432, user=settings["USER"],
        password=settings["PASSWORD"], dbname=settings["NAME"], autocommit=True,
    ) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)


def count_tasks() -> int:
    return MigrationTask.objects.count()


def test_what_can_wait_is_skipped_while_the_connection_is_gone_and_the_outage_noted_after():
    outages = []
    database = DatabaseLink(noted=outages.append)
    terminate_this_connection()

    assert database.if_answering(count_tasks, otherwise=-1) == -1
    assert outages == []

    assert database.if_answering(count_tasks, otherwise=-1) == 0  # a new connection
    assert len(outages) == 1 and 0 <= outages[0] < 5 and database.outages == 1
    assert database.if_answering(count_tasks, otherwise=-1) == 0 and len(outages) == 1


def test_what_must_be_written_waits_for_the_database_to_answer(monkeypatch):
    outages, calls = [], []
    database = DatabaseLink(noted=outages.append)
    monkeypatch.setattr("migrations_app.engine.database_outage.time.sleep", lambda seconds: None)

    def refused_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("the database system is starting up")
        return count_tasks()

    assert database.waiting_for_it(refused_twice) == 0
    assert len(calls) == 3 and len(outages) == 1


def test_a_database_that_stays_away_beyond_the_patience_raises(monkeypatch, settings):
    settings.DATABASE_OUTAGE_PATIENCE_SECONDS = 0
    database = DatabaseLink(noted=lambda seconds: None)
    monkeypatch.setattr("migrations_app.engine.database_outage.time.sleep", lambda seconds: None)

    def refused():
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        database.waiting_for_it(refused)


def test_the_scheduler_works_again_one_tick_after_the_database_dropped_its_connection():
    """The tick that finds the connection gone fails and is logged; the next opens a new one."""
    ticks, stop = [], threading.Event()

    def count_then_lose_the_connection():
        try:
            ticks.append(count_tasks())
        except DATABASE_ERRORS:
            ticks.append("failed")
            raise
        finally:
            if len(ticks) == 1:
                terminate_this_connection()
            if len(ticks) == 3:
                stop.set()

    run_periodic([PeriodicTask("count", 0, count_then_lose_the_connection)], stop, wait=lambda seconds: None, before_each=close_old_connections)

    assert ticks == [0, "failed", 0]
