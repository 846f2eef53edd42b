"""Delivery of one JSON message to a Slack-compatible incoming webhook.

A webhook that is down must not take the sensor with it: `post` retries what may pass (timeouts,
5xx, 429 with its Retry-After) a few times within a time budget, then reports why it gave up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from conv_analytics.nocodb.client import RETRY_STATUSES, retry_after_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """How a post went: `ok`, the attempts it took and, when not ok, the last problem in words."""

    ok: bool
    attempts: int
    problem: str = ""


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 1.0
    budget: float = 20.0  # seconds one post may take in all: a sensor tick must end (Dagster allows 60 s)

    def post(self, payload: Mapping[str, Any]) -> Delivery:
        """Send `payload` as JSON; never raises for the webhook's sake. Messages never show the URL."""
        problem = ""
        give_up_at = time.monotonic() + self.budget
        for attempt in range(1, self.retries + 2):
            wait: float | None = None
            try:
                response = requests.post(self.url, json=payload, timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 300:
                    return Delivery(True, attempt)
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            delay = wait if wait is not None else self.backoff * 2 ** (attempt - 1)
            if attempt > self.retries or time.monotonic() + delay + self.timeout > give_up_at:
                break
            log.warning("alert webhook: %s; retrying in %.1f s (%d/%d)", problem, delay, attempt, self.retries)
            time.sleep(delay)
        return Delivery(False, attempt, problem)
