"""The verdict, as a full table: every pair of states on the source and the destination,
before and after post-copy began. No libvirt involved."""

import itertools

import pytest

from hypervisor.states import DomainState
from migrations_app.choices import TaskState
from migrations_app.engine.verdict import RunsOn, judge

COLUMNS = [
    DomainState.RUNNING, DomainState.PAUSED, DomainState.MIGRATING, DomainState.STOPPED, DomainState.ABSENT, DomainState.UNREACHABLE,
    DomainState.POST_COPY_FAILED,
]
CODES = {"DST": RunsOn.DESTINATION, "SRC": RunsOn.SOURCE, "UNK": RunsOn.UNKNOWN, "BOTH": RunsOn.BOTH, "NONE": RunsOn.NEITHER, "STR": RunsOn.STRANDED}

# Rows: the state on the source. Columns: the state on the destination, in COLUMNS' order.
BEFORE_POST_COPY = {
    # A source that runs the guest unpaused before post-copy still has it, even when the
    # destination is silent: QEMU only hands over after pausing the source. But while the
    # destination still holds the incoming copy, the hand-over may be under way.
    DomainState.RUNNING: "BOTH BOTH UNK  SRC  SRC  SRC  SRC",
    DomainState.PAUSED: "BOTH BOTH UNK  SRC  SRC  UNK  SRC",
    DomainState.MIGRATING: "UNK  UNK  UNK  UNK  UNK  UNK  STR",
    DomainState.STOPPED: "DST  DST  UNK  NONE NONE UNK  STR",
    DomainState.ABSENT: "DST  DST  UNK  NONE NONE UNK  STR",
    DomainState.UNREACHABLE: "UNK  UNK  UNK  UNK  UNK  UNK  STR",
    # A broken post-copy: the source still holds pages the destination lacks, whatever the
    # destination's libvirt says (it may not have noticed the link is gone).
    DomainState.POST_COPY_FAILED: "STR  STR  STR  STR  STR  STR  STR",
}
AFTER_POST_COPY = {
    **BEFORE_POST_COPY,
    # Once post-copy began the destination may hold the only live copy: a silent host
    # leaves the answer open even while the source says it runs.
    DomainState.RUNNING: "BOTH BOTH UNK  SRC  SRC  UNK  SRC",
}
OUTCOMES = {
    RunsOn.DESTINATION: TaskState.SUCCEEDED,
    RunsOn.SOURCE: TaskState.FAILED,
    # Both hosts run the guest for a moment at every switch-over; the verdict waits.
    RunsOn.BOTH: None,
    RunsOn.NEITHER: TaskState.FAILED,
    # libvirt cannot resume it (or did not within the time given): an operator must act.
    RunsOn.STRANDED: TaskState.FAILED,
    RunsOn.UNKNOWN: None,
}


def table_cases(table: dict, post_copy: bool):
    for source, row in table.items():
        for destination, code in zip(COLUMNS, row.split(), strict=True):
            yield pytest.param(source, destination, post_copy, CODES[code], id=f"{source}-{destination}-{'post' if post_copy else 'pre'}")


def test_the_tables_cover_every_pair_of_states():
    assert set(BEFORE_POST_COPY) == set(AFTER_POST_COPY) == set(DomainState) == set(COLUMNS)


@pytest.mark.parametrize(
    "on_source, on_destination, post_copy, runs_on",
    [*table_cases(BEFORE_POST_COPY, post_copy=False), *table_cases(AFTER_POST_COPY, post_copy=True)],
)
def test_where_the_vm_runs_and_what_that_makes_of_the_task(on_source, on_destination, post_copy, runs_on):
    verdict = judge(on_source, on_destination, post_copy=post_copy)

    assert verdict.runs_on == runs_on
    assert verdict.outcome == OUTCOMES[runs_on]


@pytest.mark.parametrize("on_source, on_destination, post_copy", itertools.product(DomainState, DomainState, (False, True)))
def test_a_carried_out_cancel_turns_only_staying_on_the_source_into_cancelled(on_source, on_destination, post_copy):
    plain = judge(on_source, on_destination, post_copy=post_copy)
    cancelled = judge(on_source, on_destination, post_copy=post_copy, cancelled=True)

    assert cancelled.runs_on == plain.runs_on
    expected = TaskState.CANCELLED if plain.runs_on == RunsOn.SOURCE else plain.outcome
    assert cancelled.outcome == expected


@pytest.mark.parametrize("post_copy", (False, True))
def test_two_running_copies_fail_the_task_once_the_migration_is_overdue_and_only_then(post_copy):
    assert judge(DomainState.RUNNING, DomainState.RUNNING, post_copy=post_copy).outcome is None

    verdict = judge(DomainState.RUNNING, DomainState.RUNNING, post_copy=post_copy, overdue=True)

    assert (verdict.runs_on, verdict.outcome) == (RunsOn.BOTH, TaskState.FAILED)


def test_being_overdue_changes_nothing_but_two_running_copies():
    for on_source, on_destination, post_copy in itertools.product(DomainState, DomainState, (False, True)):
        plain = judge(on_source, on_destination, post_copy=post_copy)
        if plain.runs_on != RunsOn.BOTH:
            assert judge(on_source, on_destination, post_copy=post_copy, overdue=True) == plain


def test_the_task_succeeds_only_where_the_destination_runs_the_guest_and_the_source_does_not():
    for on_source, on_destination, post_copy in itertools.product(DomainState, DomainState, (False, True)):
        if judge(on_source, on_destination, post_copy=post_copy).outcome == TaskState.SUCCEEDED:
            assert on_destination.runs_here and on_source in (DomainState.STOPPED, DomainState.ABSENT)
