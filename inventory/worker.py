"""The RQ worker of the inventory queue: `rqworker inventory --worker-class inventory.worker.InventoryWorker`."""

import logging
import threading

from django.db import close_old_connections
from rq.worker import SimpleWorker

log = logging.getLogger(__name__)

# Past this many libvirt calls that never returned, the worker ends after its job. A call to
# a powered-off host gives up by itself once TCP stops retrying (about two minutes), so a few
# such hosts stay well below it; a libvirtd that accepts and never answers holds its call for good.
ABANDONED_CALLS_LIMIT = 100


class InventoryWorker(SimpleWorker):
    """Runs each host's sync in the worker's own process.

    A sync takes about 10 ms of CPU, and RQ's default worker forks a child for every job,
    which costs more than the sync itself. The child's exit used to reset two things, reset
    here instead: the database connection (closed when broken or older than CONN_MAX_AGE, as
    Django does between requests), and libvirt calls that outlived their time limit, whose
    threads stay blocked on a host that stopped answering, each with its socket. Past
    ABANDONED_CALLS_LIMIT the worker stops after its job and its supervisor starts a clean one.
    """

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
            abandoned = abandoned_libvirt_calls()
            if abandoned > ABANDONED_CALLS_LIMIT:
                log.warning("%d libvirt calls never returned: this worker stops for a clean one to take over", abandoned)
                self._stop_requested = True


def abandoned_libvirt_calls() -> int:
    # hypervisor.connection makes each call in a thread of this name and waits for it for a
    # time limit; between jobs, any such thread still alive is a call that never returned.
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("libvirt-call"))
