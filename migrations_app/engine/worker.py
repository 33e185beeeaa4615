"""The RQ worker vmotion runs: it ends tasks orphaned by a lost worker before taking work,
runs each job in its own warm process, so nothing cold stands between a submission and
libvirt's migrate call, and folds the metric files of processes that ended."""

import logging

from core import metric_files
from core.in_process_worker import InProcessWorker

from migrations_app.engine import jobs  # noqa: F401  loaded at start: the first job does not wait for the import
from migrations_app.engine.recovery import reconcile_orphaned_tasks

log = logging.getLogger(__name__)


class VmotionWorker(InProcessWorker):
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
        try:
            return super().execute_job(job, queue)
        finally:
            _fold_metric_files()  # those of workers and scripts that ended meanwhile


def _fold_metric_files() -> None:
    try:
        metric_files.fold_finished_processes()
    except Exception:
        log.exception("folding the metric files of finished processes failed")  # the counts stay, in more files
