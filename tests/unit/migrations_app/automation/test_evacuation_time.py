"""The forecast of a whole evacuation under the migration limits, from each move's forecast."""

import pytest

from migrations_app.automation.evacuation_time import TimedMove, evacuation_ms


def test_moves_from_one_host_run_two_at_a_time_by_default_limits():
    moves = [TimedMove(destination_id=d, duration_ms=10_000) for d in (2, 3, 4, 5)]

    assert evacuation_ms(moves, max_outgoing=2, max_incoming=2, max_concurrent=8) == 20_000


def test_a_destination_takes_no_more_than_its_incoming_limit_while_others_start():
    moves = [TimedMove(2, 10_000), TimedMove(2, 10_000), TimedMove(3, 4_000)]

    # Two to host 2 would fit the outgoing limit of 3, but host 2 takes one at a time:
    # the move to 3 starts beside the first, the second to 2 after it.
    assert evacuation_ms(moves, max_outgoing=3, max_incoming=1, max_concurrent=8) == 20_000


def test_the_global_limit_bounds_the_outgoing_one():
    moves = [TimedMove(d, 5_000) for d in range(2, 8)]

    assert evacuation_ms(moves, max_outgoing=8, max_incoming=2, max_concurrent=3) == 10_000


def test_nothing_to_move_takes_no_time_and_a_zero_limit_is_refused():
    assert evacuation_ms([], 2, 2, 8) == 0
    with pytest.raises(ValueError, match="at least one"):
        evacuation_ms([TimedMove(2, 1)], 0, 2, 8)
