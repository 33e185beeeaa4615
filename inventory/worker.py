"""The RQ worker of the inventory queue: `rqworker inventory --worker-class inventory.worker.InventoryWorker`."""

from core.in_process_worker import InProcessWorker


class InventoryWorker(InProcessWorker):
    """Runs each host's sync in the worker's own process: a sync takes about 10 ms of CPU,
    less than RQ's fork of a work horse per job would."""
