"""How the inventory samples a guest's dirty rate: plain numbers, so that what reads the
measurements (pages among them) needs none of the code that takes them."""

# How long each background dirty-rate measurement samples a guest.
DIRTY_RATE_SAMPLE_SECONDS = 1
# Every other measurement samples this long instead. A guest that dirties fewer distinct pages
# in it than its 1 s rate times the window rewrites the same ones: what it dirtied is its
# working set, which bounds what any pre-copy pass has to send again.
WORKING_SET_WINDOW_SECONDS = 4
