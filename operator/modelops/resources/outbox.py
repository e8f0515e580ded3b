"""A monitor's webhook outbox, as a value kept in its status: alert changes are queued in the order they happened and
delivered oldest first; while the receiver fails, the oldest is tried again after a backoff that doubles from 1 s
to 1 min, for as long as it takes. Being in the status, not in the operator's memory, it outlives the operator: after
a restart or a takeover, the leader goes on where the last one stopped.

Delivery is at least once. The change is taken out of the status right after the receiver took it, so it is sent
twice only if the operator dies between the two (or the status write fails); its payload is then the same, and
receivers that dedupe Alertmanager's notifications (by fingerprint, startsAt and status) see one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from modelops.api.v1alpha1.modelmonitor import MAX_UNDELIVERED, AlertNotice, WebhookDelivery

FIRST_BACKOFF = dt.timedelta(seconds=1)
MAX_BACKOFF = dt.timedelta(minutes=1)


def describe(notice: AlertNotice) -> str:
    """What a change is, for conditions and logs (never the URL): `DriftDetected firing`."""
    return f"{notice.alert} {'firing' if notice.firing else 'resolved'}"


def queued(outbox: WebhookDelivery | None, notices: Sequence[AlertNotice]) -> WebhookDelivery | None:
    """The outbox with these changes after those already waiting; past `MAX_UNDELIVERED`, the oldest are dropped,
    and the outbox says how many."""
    if not notices:
        return outbox
    waiting = [*((outbox.undelivered or []) if outbox else []), *notices]
    dropped = len(waiting) - MAX_UNDELIVERED
    kept = (outbox or WebhookDelivery()).updated(undelivered=waiting[max(dropped, 0) :])
    if dropped <= 0:
        return kept
    return kept.updated(last_failure=f"{dropped} older changes dropped: the receiver took none of {len(waiting)}")


def due(outbox: WebhookDelivery | None, when: dt.datetime) -> AlertNotice | None:
    """The change to deliver now, if one waits and its backoff is over."""
    if outbox is None or not outbox.undelivered:
        return None
    if outbox.next_attempt_time is not None and when < outbox.next_attempt_time:
        return None
    return outbox.undelivered[0]


def delivered(outbox: WebhookDelivery) -> WebhookDelivery | None:
    """The outbox once the receiver took its oldest change: the next one is tried at once."""
    rest = (outbox.undelivered or [])[1:]
    return WebhookDelivery(undelivered=rest) if rest else None


def failed(outbox: WebhookDelivery, problem: str, when: dt.datetime) -> WebhookDelivery:
    """The outbox once its oldest change failed again: tried after twice the last wait, at most `MAX_BACKOFF`."""
    attempts = (outbox.attempts or 0) + 1
    wait = min(FIRST_BACKOFF * 2 ** min(attempts - 1, 16), MAX_BACKOFF)
    oldest = (outbox.undelivered or [])[0]
    return outbox.updated(
        attempts=attempts, next_attempt_time=when + wait, last_failure=f"{describe(oldest)}: {problem}"
    )


def failure(outbox: WebhookDelivery | None) -> str | None:
    """Why changes wait, for the `WebhookDelivered` condition; None when nothing does."""
    if outbox is None or not outbox.undelivered or not outbox.last_failure:
        return None
    waiting = len(outbox.undelivered)
    attempts = f" after {outbox.attempts} attempts" if outbox.attempts else ""
    return f"{outbox.last_failure}{attempts}; {waiting} change{'s' * (waiting != 1)} waiting, tried again with backoff"
