"""The executor of the asset jobs, chosen per deployment shape by `CONV_ANALYTICS_EXECUTOR`.

`dagster dev` and a single machine keep Dagster's multiprocess executor; the production shape runs the
steps on Celery workers (dagster-celery, a Redis broker), on as many hosts as run a worker; on
Kubernetes, dagster-k8s runs each step as a job of its own. The CLI's runner never uses these: it
executes in process. The optional packages are imported only when their executor is chosen.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from conv_analytics.config import Config, Setting

CELERY_QUEUE = "dagster"


def _value_or_env(config: Config, setting: Setting[str]) -> Any:
    """A secret reaches Dagster as an env reference (the UI shows its name), a default as its value."""
    return {"env": setting.env} if config.from_environment(setting) else config.value(setting)


def celery_config(config: Config) -> dict[str, Any]:
    """The celery executor's config, which its workers share (`conv-analytics celery-worker`).

    A step is acknowledged only when it ends (`task_acks_late`) and given back when its worker dies
    (`task_reject_on_worker_lost`), so a worker killed mid-step loses no step: after the visibility
    timeout another worker runs it again, and the IO manager's partition replacement makes the rerun
    harmless. One step at a time per worker process (`worker_prefetch_multiplier`).
    """
    backend = Config.celery_backend_url if config.celery_backend_url else Config.celery_broker_url
    return {
        "broker": _value_or_env(config, Config.celery_broker_url),
        "backend": _value_or_env(config, backend),
        "config_source": {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_default_queue": CELERY_QUEUE,
            # look for steps of dead workers every 5 s (kombu's default is every 100 s)
            "broker_transport_options": {
                "visibility_timeout": config.celery_visibility_timeout,
                "unacked_restore_interval": 5,
                "unacked_restore_throttle": 1,
            },
            "result_backend_transport_options": {"visibility_timeout": config.celery_visibility_timeout},
        },
    }


def executor_for(config: Config) -> dg.ExecutorDefinition | None:
    """The executor of `CONV_ANALYTICS_EXECUTOR`; None keeps Dagster's default (multiprocess)."""
    kind = config.executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(config), name="celery")
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None
