"""A host's CPU read before it joins a cluster, so that its CPU can be judged against the
cluster's baseline. An inventory worker reads it (the web server reaches no host); the form
waits a few seconds for the answer, which is kept a few minutes for the form saved again."""

from __future__ import annotations

from . import enqueue
from .models import Host

WAIT_SECONDS = 5


def read_cpu_before_joining(host: Host) -> str | None:
    """Put the CPU an inventory worker read at the host's URI on the unsaved host; else say
    why it is not known yet, in a sentence for the form."""
    name = host.name or host.shown_uri
    answer = enqueue.ask(enqueue.READ_HOST_CPU, host.uri, key=host.uri, wait_seconds=WAIT_SECONDS)
    if not answer.done:
        if answer.why_not == enqueue.NO_WORKER:
            return (
                f"CPU not read: {answer.why_not}, and only the inventory workers reach hosts, so vmotion cannot tell whether {name} offers the cluster's CPU baseline. "
                "Start one, or add the host without a cluster and choose its cluster once vmotion has read it."
            )
        return f"CPU not read yet: a check of {name}'s CPU has been queued ({answer.why_not}); save again in a few seconds."
    if "error" in answer.value:
        enqueue.forget(enqueue.READ_HOST_CPU, host.uri)  # saved again, the form asks again
        return (
            f"vmotion could not read the CPU of {name} ({answer.value['error']}), so it cannot tell whether the host offers the cluster's CPU baseline. "
            "Add the host without a cluster, and choose its cluster once vmotion has read it."
        )
    host.cpu_model, host.cpu_xml = host.cpu_model or answer.value["model"], answer.value["xml"]
    host.cpu_features = answer.value["features"]
    return None
