"""A daily job run by a schedule event source.

The event is EventBridge's scheduled event; its "time" is the tick (not the
moment the function runs), so the report covers the 24 hours before the
tick however late the run is. Its "id" is the same when a tick is fired
again after a gateway failover: use it to skip a report already made.
"""

import json
from datetime import datetime, timedelta, timezone

WINDOW = timedelta(days=1)


class NotAScheduledEvent(Exception):
    pass


def parse_time(value):
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise NotAScheduledEvent("time %r is not an RFC 3339 UTC time" % (value,))


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(start, end):
    """Do the job's work for [start, end); replace with yours."""
    return {"orders": 0, "revenueCents": 0}


def handler(event, context):
    if not isinstance(event, dict) or event.get("detail-type") != "Scheduled Event":
        raise NotAScheduledEvent("expected EventBridge's Scheduled Event, got %s" % json.dumps(event)[:200])
    end = parse_time(event.get("time"))
    start = end - WINDOW
    rule = (event.get("resources") or ["?"])[0].rsplit("/", 1)[-1]
    report = {
        "report": "daily",
        "rule": rule,
        "eventId": event.get("id"),
        "window": {"start": fmt(start), "end": fmt(end)},
        "totals": build_report(start, end),
    }
    print(json.dumps({"msg": "report", "eventId": report["eventId"], "window": report["window"]}))
    return report
