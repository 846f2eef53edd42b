"""Alerts: a failed run posts exactly one message to a webhook on loopback, with no secret in it; freshness
checks on the daily assets warn when yesterday is missing after the configured hour (fixed clocks)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from urllib.parse import quote_plus

import dagster as dg
import pytest

from conv_analytics.alerts.freshness import build_freshness_checks, expected_day
from conv_analytics.alerts.sensor import ALERTED_TAG, SENSOR_NAME, build_failure_alert_sensor
from conv_analytics.alerts.webhook import Webhook
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics_tests.webhook_support import Receiver

DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")
TOKEN = "nc-TOKEN-8f2e71aa"
MONGO_PASSWORD = "m0ngo p@ss/word"
PSEUDONYM_KEY = "pseudonym-key-0123456789abcdef0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as webhook:
        yield webhook


def alert_config(url: str) -> Config:
    return Config(
        {
            Config.alert_webhook_url.env: url,
            Config.ui_url.env: "http://dagster.example:3000/",
            Config.nocodb_api_token.env: TOKEN,
            Config.mongodb_uri.env: f"mongodb://alerter:{quote_plus(MONGO_PASSWORD)}@127.0.0.1:1/?authSource=admin",
            Config.mongodb_password.env: MONGO_PASSWORD,
            Config.pseudonym_key.env: PSEUDONYM_KEY,
        }
    )


@dg.asset(partitions_def=DAILY)
def leaky_asset() -> None:
    """Fails the way a careless driver does: the credentials are in its message."""
    raise dg.Failure(
        description=f"NocoDB refused token {TOKEN} (mongodb://alerter:{quote_plus(MONGO_PASSWORD)}@db) "
        f"key {PSEUDONYM_KEY}"
    )


@dg.asset(partitions_def=DAILY)
def crashing_asset() -> None:
    raise ValueError("the export is truncated\nline 2 of the message\nline 3")


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> str | None:
    """One evaluation of the sensor as the daemon runs it; returns the cursor the daemon would keep."""
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor)).cursor


def secrets_of(receiver: Receiver) -> list[str]:
    plain = [TOKEN, MONGO_PASSWORD, PSEUDONYM_KEY, receiver.url, "hook-secret-5b1f"]
    return plain + [quote_plus(value) for value in plain]


def test_a_failed_run_posts_exactly_one_alert_without_secrets(receiver: Receiver) -> None:
    sensor = build_failure_alert_sensor(alert_config(receiver.url))
    with dg.instance_for_test() as instance:
        started = tick(sensor, instance, None)  # the first tick only places the cursor
        result = dg.materialize([leaky_asset], partition_key="2026-11-05", instance=instance, raise_on_error=False)
        assert not result.success
        after = tick(sensor, instance, started)
        assert len(receiver.bodies) == 1
        # a daemon that died before saving the cursor evaluates the same failure again: no second post
        tick(sensor, instance, started)
        tick(sensor, instance, after)
        assert len(receiver.bodies) == 1
        assert instance.get_run_by_id(result.run_id).tags[ALERTED_TAG] == "true"

    body = receiver.bodies[0]
    for secret in secrets_of(receiver):
        assert secret not in body
    message = receiver.accepted[0]
    assert set(message) == {"text", "blocks"}
    text = message["text"]
    assert "leaky_asset [2026-11-05]" in text
    assert "NocoDB refused token *** (mongodb://***:***@db) key ***" in text
    assert f"http://dagster.example:3000/runs/{result.run_id}" in text
    assert f"<http://dagster.example:3000/runs/{result.run_id}|{result.run_id[:8]}>" in body


def test_the_reason_is_the_first_line_of_the_error_never_a_trace(receiver: Receiver) -> None:
    sensor = build_failure_alert_sensor(alert_config(receiver.url))
    with dg.instance_for_test() as instance:
        cursor = tick(sensor, instance, None)
        dg.materialize([crashing_asset], partition_key="2026-11-06", instance=instance, raise_on_error=False)
        tick(sensor, instance, cursor)
    (message,) = receiver.accepted
    assert "crashing_asset [2026-11-06]: ValueError: the export is truncated (" in message["text"]
    body = receiver.bodies[0]
    assert "line 2" not in body and "Traceback" not in body and 'File "' not in body


def test_a_webhook_that_stays_down_is_logged_and_the_sensor_goes_on(receiver: Receiver) -> None:
    receiver.script = [503] * 10
    sensor = build_failure_alert_sensor(alert_config(receiver.url))
    with dg.instance_for_test() as instance:
        cursor = tick(sensor, instance, None)
        result = dg.materialize([crashing_asset], partition_key="2026-11-06", instance=instance, raise_on_error=False)
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert ALERTED_TAG not in instance.get_run_by_id(result.run_id).tags
    assert len(receiver.bodies) == 4  # one try and three retries
    assert receiver.accepted == []
    assert all(reaction.error is None for reaction in data.dagster_run_reactions)


def test_webhook_retries_5xx_and_429_honouring_retry_after(receiver: Receiver) -> None:
    receiver.script = [503, 429]
    delivery = Webhook(receiver.url, backoff=5.0).post({"text": "hello"})  # Retry-After: 0 beats the back-off
    assert delivery.ok and delivery.attempts == 3
    assert receiver.accepted == [{"text": "hello"}]
    receiver.script = [400]
    refused = Webhook(receiver.url).post({"text": "bad"})
    assert not refused.ok and refused.attempts == 1 and refused.problem == "HTTP 400"
    assert receiver.url not in refused.problem


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(receiver: Receiver) -> None:
    receiver.script, receiver.retry_after = [429], "3600"
    delivery = Webhook(receiver.url).post({"text": "later"})
    assert not delivery.ok and delivery.attempts == 1 and delivery.problem == "HTTP 429"


def test_the_platform_has_the_alert_sensor_only_with_a_webhook(receiver: Receiver) -> None:
    plain = Platform.build(Config(start_date=date(2026, 11, 1))).definitions()
    with_alerts = Platform.build(alert_config(receiver.url)).definitions()
    names = {sensor.name for sensor in with_alerts.sensors or []}
    assert SENSOR_NAME in names
    checked = {key.asset_key.to_user_string() for check in with_alerts.asset_checks or [] for key in check.check_keys}
    assert {
        "raw_conversations",
        "raw_messages",
        "enriched_messages",
        "conversation_categories",
        "daily_rollups",
    } <= checked
    assert SENSOR_NAME not in {sensor.name for sensor in plain.sensors or []}
    alert = next(s for s in with_alerts.sensors or [] if s.name == SENSOR_NAME)
    assert alert.default_status == dg.DefaultSensorStatus.RUNNING
    # the platform's automation sensor, running by default, evaluates the freshness checks' conditions
    repository = with_alerts.get_repository_def()
    automated = repository.get_sensor_def("automation").asset_selection.resolve_checks(repository.asset_graph)
    assert {key.asset_key.to_user_string() for key in automated if key.name == "daily_freshness"} >= checked


# Freshness


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_the_expected_day_is_yesterday_from_the_deadline_hour_on() -> None:
    assert expected_day(at("2026-11-10T05:59"), 6) == date(2026, 11, 8)
    assert expected_day(at("2026-11-10T06:00"), 6) == date(2026, 11, 9)
    assert expected_day(at("2026-11-10T00:00"), 0) == date(2026, 11, 9)
    assert expected_day(at("2026-11-10T22:59"), 23) == date(2026, 11, 8)


def run_checks(
    checks: dg.AssetChecksDefinition,
    instance: dg.DagsterInstance,
    assets: Sequence[str] = ("raw_messages", "daily_rollups"),
) -> dict[str, dg.AssetCheckEvaluation]:
    specs = [dg.AssetSpec(key, partitions_def=DAILY) for key in assets]
    result = dg.materialize([*specs, checks], instance=instance, selection=dg.AssetSelection.checks(checks))
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_freshness_warns_when_yesterday_is_missing_after_the_hour() -> None:
    keys = [dg.AssetKey("raw_messages"), dg.AssetKey("daily_rollups")]
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_messages", partition="2026-11-09"))
        instance.report_runless_asset_event(dg.AssetMaterialization("daily_rollups", partition="2026-11-08"))
        before = run_checks(
            build_freshness_checks(keys, date(2026, 11, 1), 6, lambda: at("2026-11-10T05:00")), instance
        )
        after = run_checks(build_freshness_checks(keys, date(2026, 11, 1), 6, lambda: at("2026-11-10T07:30")), instance)
    # before 06:00 the 8th is due: raw_messages has only the 9th, and a later day does not stand in for it
    assert not before["raw_messages"].passed
    assert before["daily_rollups"].passed
    assert after["raw_messages"].passed
    warned = after["daily_rollups"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["expected_partition"].value == "2026-11-09"
    assert warned.metadata["overdue_minutes"].value == 90


def test_freshness_passes_before_the_first_partition_is_due() -> None:
    with dg.instance_for_test() as instance:
        checks = build_freshness_checks(
            [dg.AssetKey("raw_messages")], date(2026, 11, 10), 6, lambda: at("2026-11-10T12:00")
        )
        specs = [dg.AssetSpec("raw_messages", partitions_def=DAILY)]
        result = dg.materialize([*specs, checks], instance=instance, selection=dg.AssetSelection.checks(checks))
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed


def test_the_automation_sensor_runs_the_check_at_the_deadline_and_after_a_late_day() -> None:
    clock = [at("2026-11-10T05:00")]
    checks = build_freshness_checks([dg.AssetKey("raw_messages")], date(2026, 11, 1), 6, lambda: clock[0])
    defs = dg.Definitions(assets=[dg.AssetSpec("raw_messages", partitions_def=DAILY)], asset_checks=[checks])
    requested: list[int] = []
    with dg.instance_for_test() as instance:
        cursor = None

        def evaluate(moment: str) -> None:
            nonlocal cursor
            clock[0] = at(moment)
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=cursor, evaluation_time=clock[0]
            )
            cursor = result.cursor
            requested.append(result.total_requested)
            if result.total_requested:  # what the run the sensor requests does
                run_checks(checks, instance, ["raw_messages"])

        instance.report_runless_asset_event(dg.AssetMaterialization("raw_messages", partition="2026-11-08"))
        evaluate("2026-11-10T04:50")  # the first evaluation only starts the clock
        evaluate("2026-11-10T05:30")  # an hour passed and the check never ran: it runs (the 8th is due: passes)
        evaluate("2026-11-10T05:45")
        evaluate("2026-11-10T06:01")  # the deadline passed: checked, and it warns (the 9th is missing)
        evaluate("2026-11-10T06:30")  # no new hour: not run again
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_messages", partition="2026-11-09"))
        evaluate("2026-11-10T07:00")  # the next hour, while it warns: checked again, and passes
        evaluate("2026-11-10T08:00")  # it passes: nothing to do
        evaluate("2026-11-11T05:00")  # nor later, until the next deadline
        evaluate("2026-11-11T06:00")  # the 10th is missing
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("raw_messages"), "daily_freshness"), limit=10
        )
    assert requested == [0, 1, 0, 1, 0, 1, 0, 0, 1]
    assert [r.evaluation.passed for r in reversed(records)] == [True, False, True, False]
