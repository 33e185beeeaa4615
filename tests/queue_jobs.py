"""Plain jobs for tests that run real RQ workers without the lab: they take the time a test
needs and return what shows they ran."""

import time


def nap(seconds: float, label: str) -> str:
    time.sleep(seconds)
    return f"{label} done"
