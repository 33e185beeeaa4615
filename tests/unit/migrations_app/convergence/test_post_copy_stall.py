"""A post-copy stream that moved nothing for the limit is stuck; any byte moved starts it over."""

from migrations_app.convergence.post_copy_stall import PostCopyStall


def test_it_is_stuck_once_nothing_moved_for_the_limit():
    stall = PostCopyStall(limit_s=15)

    assert [stall.stuck(t, 100) for t in (0, 5, 14.9, 15)] == [False, False, False, True]


def test_any_progress_starts_the_count_again():
    stall = PostCopyStall(limit_s=15)

    assert not stall.stuck(0, 100)
    assert not stall.stuck(14, 100)
    assert not stall.stuck(16, 101)
    assert not stall.stuck(30, 101)
    assert stall.stuck(31, 101)
