"""The RQ worker vmotion runs: it ends tasks orphaned by a lost worker before taking work,
and folds the metric files each job's work horse leaves."""

import logging

from django.db import connections
from rq.worker import Worker

from core import metric_files

from .recovery import reconcile_orphaned_tasks

log = logging.getLogger(__name__)


class VmotionWorker(Worker):
    def work(self, *args, **kwargs):
        try:
            ended = reconcile_orphaned_tasks()
            if ended:
                log.info("reconciled orphaned migration tasks %s", ended)
        except Exception:
            log.exception("reconciling orphaned tasks at worker start failed")
        _fold_metric_files()
        return super().work(*args, **kwargs)

    def execute_job(self, job, queue):
        # Each work horse opens its own database connection: one inherited through the fork
        # would be shared with the worker, and stay broken for every later horse once the
        # database dropped it.
        connections.close_all()
        try:
            return super().execute_job(job, queue)
        finally:
            # The work horse has exited: one horse per job would otherwise leave its files for good.
            _fold_metric_files()


def _fold_metric_files() -> None:
    try:
        metric_files.fold_finished_processes()
    except Exception:
        log.exception("folding the metric files of finished processes failed")  # the counts stay, in more files
