"""The run-failure sensor: one chat message per failed run, to CONV_ANALYTICS_ALERT_WEBHOOK_URL.

Dagster's run-status cursor hands each failure to the sensor once. The cursor is saved only when a
tick ends, so a daemon that dies mid-tick would see the failure again: a run tag written after a
delivery marks the run as alerted, and a run so marked is never posted again.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from conv_analytics.alerts.message import RunFailure, error_line, secret_values
from conv_analytics.alerts.webhook import Webhook
from conv_analytics.config import Config

SENSOR_NAME = "run_failure_alert"
ALERTED_TAG = "conv_analytics/alerted"
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def describe_failure(context: dg.RunFailureSensorContext) -> RunFailure:
    """The assets the run did not materialise, its partitions and the first failing step's reason."""
    run = context.dagster_run
    planned: list[str] = []
    done: set[str] = set()
    events = context.instance.get_records_for_run(
        run.run_id,
        of_type={dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION},
    ).records
    for record in events:
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key is None:
            continue
        name = event.asset_key.to_user_string()
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            done.add(name)
        elif name not in planned:
            planned.append(name)
    assets = [name for name in planned if name not in done] or planned
    if not assets and run.asset_selection:
        assets = sorted(key.to_user_string() for key in run.asset_selection)
    return RunFailure(run.run_id, run.job_name, assets, _partitions(run.tags), _reason(context))


def _partitions(tags: Mapping[str, str]) -> str:
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    first, last = (tags.get(name) for name in RANGE_TAGS)
    if first and last:
        return first if first == last else f"{first}...{last}"
    return ""


def _reason(context: dg.RunFailureSensorContext) -> str:
    reasons: list[str] = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        described = data.user_failure_data.description if data.user_failure_data else None
        line = _first_line(described) or (error_line(data.error) if data.error else "")
        if line and line not in reasons:
            reasons.append(line)
    if not reasons:  # the run failed outside its steps (a resource, the run worker)
        error = getattr(context.failure_event.event_specific_data, "error", None)
        reasons.append(error_line(error) if error else _first_line(context.failure_event.message) or "run failed")
    more = f" (and {len(reasons) - 1} more failed step(s))" if len(reasons) > 1 else ""
    return reasons[0] + more


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def build_failure_alert_sensor(config: Config) -> dg.SensorDefinition:
    """The sensor, running by default; Definitions include it only when the webhook setting is set."""
    webhook = Webhook(config.alert_webhook_url)

    # every run in the instance: `conv-analytics run` executes in process, outside the code location
    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=True,
        description=f"Posts each failed run to the chat webhook in {Config.alert_webhook_url.env}.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        if run.tags.get(ALERTED_TAG):
            context.log.info(f"run {run.run_id} was alerted already")
            return
        failure = describe_failure(context)
        delivery = webhook.post(failure.payload(config.ui_url, secret_values(config)))
        if delivery.ok:
            context.instance.add_run_tags(run.run_id, {ALERTED_TAG: "true"})
            context.log.info(f"alert for run {run.run_id} delivered")
        else:
            context.log.warning(
                f"alert for run {run.run_id} not delivered after {delivery.attempts} attempt(s): {delivery.problem}"
            )

    return run_failure_alert
