"""Metered usage events, generated with numpy and written by DuckDB as JSON lines.

Vectorised so that 10M events take seconds: Python only loops over usage
periods (customer, meter, month), never over events. Events are written one
file per month in which they were *sent*, so late events land in a later file
than the month they belong to, and redelivered duplicates keep their event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

DUPLICATE_SHARE = 0.005
LATE_SHARE = 0.01


@dataclass
class UsagePeriod:
    customer_id: str
    meter_code: str
    month: date  # first day of the month
    limit: int
    total: int  # true (de-duplicated) usage in the month
    currency: str
    billed: int = 0  # overage quantity invoiced
    duplicates: int = 0  # events of this period delivered twice
    late_quantity: int = 0  # part of the total sent in one late event, after the month ended
    line_version: str | None = None  # "<contract_line_id>/v<version_no>" granting it; None: no grant
    package_code: str | None = None  # the package of that grant: how its overage is priced

    @property
    def evidence_id(self) -> str:
        """As int_usage_periods names it: a month can hold several allowances of one meter."""
        return f"{self.customer_id}:{self.meter_code}:{self.month:%Y-%m}:{self.line_version or 'unentitled'}"


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day).timestamp() - datetime(1970, 1, 1).timestamp())


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def write_usage(usage_dir: Path, periods: list[UsagePeriod], n_events: int, as_of: date, seed: int) -> int:
    """Write usage/usage_YYYY-MM.jsonl files; returns the number of lines written."""
    rng = np.random.default_rng(seed)
    usage_dir.mkdir(parents=True, exist_ok=True)
    horizon = _epoch(as_of + timedelta(days=1)) - 1  # nothing is sent after the export's as-of date
    regular = np.array([p.total - p.late_quantity for p in periods], dtype=np.int64)
    weight = regular.sum() or 1
    counts = np.minimum(regular, np.maximum(1, np.rint(n_events * regular / weight))).astype(np.int64)
    counts[regular <= 0] = 0

    n = int(counts.sum())
    period_idx = np.repeat(np.arange(len(periods)), counts)
    quantity = np.empty(n, dtype=np.int64)
    starts = np.array([_epoch(p.month) for p in periods], dtype=np.int64)
    ends = np.array([min(_epoch(_next_month(p.month)), horizon) for p in periods], dtype=np.int64)
    offset = 0
    for i, count in enumerate(counts):
        if count:
            quantity[offset : offset + count] = 1 + rng.multinomial(
                regular[i] - count, np.full(count, 1 / count)
            )
            offset += count
    occurred = starts[period_idx] + (rng.random(n) * (ends - starts)[period_idx]).astype(np.int64)
    sent = occurred + rng.integers(0, 7200, n)
    late = rng.random(n) < LATE_SHARE
    delayed = sent + rng.integers(3 * 86400, 25 * 86400, n)
    sent = np.where(late & (delayed <= horizon), delayed, sent)
    sent = np.minimum(sent, horizon)

    # Planted late events: the quantity that pushes a month over its limit arrives a week late.
    late_periods = [i for i, p in enumerate(periods) if p.late_quantity]
    late_occurred = np.array(
        [_epoch(periods[i].month) + 27 * 86400 + 12 * 3600 for i in late_periods], dtype=np.int64
    )
    period_idx = np.concatenate([period_idx, np.array(late_periods, dtype=np.int64)])
    quantity = np.concatenate([quantity, [periods[i].late_quantity for i in late_periods]]).astype(np.int64)
    occurred = np.concatenate([occurred, late_occurred])
    sent = np.concatenate([sent, np.minimum(late_occurred + 6 * 86400, horizon)])
    event_idx = np.arange(len(period_idx), dtype=np.int64)

    # Redeliveries: a random share of all events plus the planted duplicates, same id, sent again later.
    dup = np.flatnonzero(rng.random(len(event_idx)) < DUPLICATE_SHARE)
    for i, p in enumerate(periods):
        if p.duplicates:
            members = np.flatnonzero(period_idx == i)
            dup = np.concatenate([dup, rng.choice(members, min(p.duplicates, len(members)), replace=False)])
    dup = np.unique(dup)
    resent = np.minimum(sent[dup] + rng.integers(60, 2 * 86400, len(dup)), horizon)

    events = pd.DataFrame(
        {
            "event_idx": np.concatenate([event_idx, event_idx[dup]]),
            "period_idx": np.concatenate([period_idx, period_idx[dup]]),
            "quantity": np.concatenate([quantity, quantity[dup]]),
            "occurred": np.concatenate([occurred, occurred[dup]]),
            "sent": np.concatenate([sent, resent]),
        }
    )
    period_keys = pd.DataFrame(
        {
            "period_idx": np.arange(len(periods)),
            "customer_id": [p.customer_id for p in periods],
            "meter_code": [p.meter_code for p in periods],
        }
    )
    con = duckdb.connect()
    con.register("events", events)
    con.register("period_keys", period_keys)
    con.execute("""
        create table usage as
        select
            'evt-' || lpad(e.event_idx::varchar, 10, '0') as event_id,
            k.customer_id,
            k.meter_code,
            e.quantity,
            strftime(make_timestamp(e.occurred * 1000000), '%Y-%m-%dT%H:%M:%SZ') as occurred_at,
            strftime(make_timestamp(e.sent * 1000000), '%Y-%m-%dT%H:%M:%SZ') as sent_at,
            strftime(make_timestamp(e.sent * 1000000), '%Y-%m') as sent_month
        from events as e
        join period_keys as k using (period_idx)
    """)
    months = [row[0] for row in con.execute("select distinct sent_month from usage order by 1").fetchall()]
    for month in months:
        target = (usage_dir / f"usage_{month}.jsonl").as_posix()
        con.execute(f"""
            copy (
                select event_id, customer_id, meter_code, quantity, occurred_at, sent_at
                from usage where sent_month = '{month}' order by sent_at, event_id
            ) to '{target}' (format json)
        """)
    total = con.execute("select count(*) from usage").fetchone()[0]
    con.close()
    return int(total)
