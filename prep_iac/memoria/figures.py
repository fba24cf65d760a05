"""The memoria's figures, computed in DuckDB from the ``lines`` table of ``ingest``.

Definitions (the calls' anchors disagree; the report states these):

- **hit** (*solicitud*): any request the server logged;
- **page** (*página*): a successful answer (2xx or 304) to a document: a path
  ending in ``/``, ``.html`` or without extension. The PREP is a single-page
  site whose app fetches results as JSON: those fetches are counted apart as
  **data fetches** (*consultas de datos*), never as pages;
- **visit** (*visita*): the requests of one client (address + user agent)
  with no gap above 30 minutes, counted on the day it starts;
- **unique visitor** (*visitante único*): address + user agent per local day,
  as GoAccess counts them (which leaves out clients whose only answers were 4xx);
- **bots** (crawlers, scripts, attack tools, by user agent), **blocked**
  requests (403: the Core Rule Set) and **limited** ones (429: the per-client
  limits) are left out of every figure above and reported apart; the totals of
  all requests, as GoAccess shows them, are kept in ``all_clients``.

Days and hours are local to the election's time zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb
from pydantic import BaseModel

VISIT_GAP_MINUTES = 30


class Bucket(BaseModel):
    start: datetime
    hits: int
    pages: int
    data: int
    visitors: int
    bytes: int


class DayFigures(BaseModel):
    day: date
    hits: int
    pages: int
    data: int
    visits: int
    visitors: int
    bytes: int


class Ratio(BaseModel):
    metric: str
    normal_per_day: float
    election: dict[str, int]
    ratio: dict[str, float | None]


class Ranked(BaseModel):
    label: str
    hits: int
    visitors: int = 0


class AllClients(BaseModel):
    """Every request in the period, bots and attacks included: GoAccess's own figures."""

    total_requests: int
    unique_visitors: int
    bytes: int
    statuses: dict[int, int]


class Figures(BaseModel):
    election_days: list[date]
    timezone: str
    all_clients: AllClients
    readers: DayFigures | None
    days: list[DayFigures]
    normal_days: list[DayFigures]
    ratios: list[Ratio]
    by_hour: list[Bucket]
    by_ten_minutes: list[Bucket]
    normal_hourly_profile: list[float]
    peak_second: datetime | None
    peak_requests_per_second: int
    status_classes: dict[str, int]
    top_pages: list[Ranked]
    top_data: list[Ranked]
    top_referrers: list[Ranked]
    classes: dict[str, int]
    top_bots: list[Ranked]
    top_blocked_sources: list[Ranked]
    top_attack_paths: list[Ranked]
    outside_period: int
    empty_days: list[date]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Any]:
    return con.execute(sql, params).fetchall()


PERIOD = "role = 'election' AND day IN (SELECT unnest($days))"
READERS = f"{PERIOD} AND kind = 'reader'"


def _days(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any]) -> list[DayFigures]:
    sql = f"""
    WITH r AS (SELECT * FROM requests WHERE {where}),
    gaps AS (
        SELECT day, instant - lag(instant) OVER (PARTITION BY ip, agent ORDER BY instant) AS gap
        FROM r
    ),
    visits AS (
        SELECT day, count(*) FILTER (WHERE gap IS NULL OR gap > INTERVAL {VISIT_GAP_MINUTES} MINUTE)
            AS visits
        FROM gaps GROUP BY day
    )
    SELECT r.day, count(*), count(*) FILTER (WHERE document AND success),
        count(*) FILTER (WHERE data AND success), any_value(visits.visits),
        count(DISTINCT (ip, agent)) FILTER (WHERE status NOT BETWEEN 400 AND 499),
        coalesce(sum(bytes), 0)
    FROM r JOIN visits USING (day) GROUP BY r.day ORDER BY r.day
    """
    return [
        DayFigures(day=d, hits=h, pages=p, data=j, visits=v, visitors=u, bytes=b)
        for d, h, p, j, v, u, b in _rows(con, sql, params)
    ]


def _buckets(con: duckdb.DuckDBPyConnection, minutes: int, params: dict[str, Any]) -> list[Bucket]:
    sql = f"""
    SELECT time_bucket(INTERVAL {minutes} MINUTE, local_time) AS start, count(*),
        count(*) FILTER (WHERE document AND success), count(*) FILTER (WHERE data AND success),
        count(DISTINCT (ip, agent)), coalesce(sum(bytes), 0)
    FROM requests WHERE {READERS} GROUP BY start ORDER BY start
    """
    found = {row[0]: row for row in _rows(con, sql, params)}
    buckets = []
    first = datetime.combine(min(params["days"]), datetime.min.time())
    last = datetime.combine(max(params["days"]) + timedelta(days=1), datetime.min.time())
    at = first
    while at < last:
        _, h, p, j, v, b = found.get(at, (at, 0, 0, 0, 0, 0))
        buckets.append(Bucket(start=at, hits=h, pages=p, data=j, visitors=v, bytes=b))
        at += timedelta(minutes=minutes)
    return buckets


def _ranked(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Ranked]:
    return [Ranked(label=str(label), hits=h, visitors=v) for label, h, v in _rows(con, sql, params)]


def compute(
    con: duckdb.DuckDBPyConnection, days: list[date], timezone: str, own_hosts: list[str]
) -> Figures:
    """Every figure of the memoria for the election ``days`` (local dates)."""
    params: dict[str, Any] = {"days": sorted(days)}
    total, visitors, size = _rows(
        con,
        f"""SELECT count(*), count(DISTINCT (day, ip, agent))
                FILTER (WHERE status NOT BETWEEN 400 AND 499), coalesce(sum(bytes), 0)
            FROM requests WHERE {PERIOD}""",
        params,
    )[0]
    statuses = dict(
        _rows(con, f"SELECT status, count(*) FROM requests WHERE {PERIOD} GROUP BY status", params)
    )
    days_figures = _days(con, READERS, params)
    normal = _days(con, "role = 'normal' AND kind = 'reader'", {})
    all_present = {
        row[0] for row in _rows(con, f"SELECT DISTINCT day FROM requests WHERE {PERIOD}", params)
    }
    peak = _rows(
        con,
        f"""SELECT date_trunc('second', local_time) AS s, count(*) AS n FROM requests
            WHERE {PERIOD} GROUP BY s ORDER BY n DESC, s LIMIT 1""",
        params,
    )
    normal_profile = _rows(
        con,
        """SELECT hour(local_time) AS h, count(*) FROM requests
           WHERE role = 'normal' AND kind = 'reader' GROUP BY h""",
        {},
    )
    normal_count = max(1, len(normal))
    profile = dict(normal_profile)
    own = [h.lower() for h in own_hosts]
    return Figures(
        election_days=sorted(days),
        timezone=timezone,
        all_clients=AllClients(
            total_requests=total, unique_visitors=visitors, bytes=size, statuses=statuses
        ),
        readers=_sum_days(days_figures),
        days=days_figures,
        normal_days=normal,
        ratios=_ratios(days_figures, normal),
        by_hour=_buckets(con, 60, params),
        by_ten_minutes=_buckets(con, 10, params),
        normal_hourly_profile=[
            round(profile.get(hour, 0) / normal_count, 2) if normal else 0.0 for hour in range(24)
        ],
        peak_second=peak[0][0] if peak else None,
        peak_requests_per_second=peak[0][1] if peak else 0,
        status_classes={
            f"{k}xx": v
            for k, v in _rows(
                con,
                f"""SELECT status // 100 AS k, count(*) FROM requests WHERE {PERIOD}
                    GROUP BY k ORDER BY k""",
                params,
            )
        },
        top_pages=_ranked(
            con,
            f"""SELECT path, count(*) AS n, count(DISTINCT (ip, agent)) FROM requests
                WHERE {READERS} AND document AND success GROUP BY path ORDER BY n DESC, path
                LIMIT 10""",
            params,
        ),
        top_data=_ranked(
            con,
            f"""SELECT path, count(*) AS n, count(DISTINCT (ip, agent)) FROM requests
                WHERE {READERS} AND data AND success GROUP BY path ORDER BY n DESC, path
                LIMIT 10""",
            params,
        ),
        top_referrers=_ranked(
            con,
            f"""SELECT site, count(*) AS n, count(DISTINCT (ip, agent)) FROM (
                    SELECT lower(regexp_extract(referer, '^[a-zA-Z]+://([^/:]+)', 1)) AS site, *
                    FROM requests WHERE {READERS} AND referer <> '')
                WHERE site <> '' AND NOT list_contains($own, site)
                GROUP BY site ORDER BY n DESC, site LIMIT 10""",
            params | {"own": own},
        ),
        classes=dict(
            _rows(con, f"SELECT kind, count(*) FROM requests WHERE {PERIOD} GROUP BY kind", params)
        ),
        top_bots=_ranked(
            con,
            f"""SELECT agent, count(*) AS n, count(DISTINCT ip) FROM requests
                WHERE {PERIOD} AND kind = 'bot' GROUP BY agent ORDER BY n DESC, agent LIMIT 10""",
            params,
        ),
        top_blocked_sources=_ranked(
            con,
            f"""SELECT ip, count(*) AS n, count(DISTINCT agent) FROM requests
                WHERE {PERIOD} AND status IN (403, 429) GROUP BY ip ORDER BY n DESC, ip
                LIMIT 10""",
            params,
        ),
        top_attack_paths=_ranked(
            con,
            f"""SELECT uri, count(*) AS n, count(DISTINCT ip) FROM requests
                WHERE {PERIOD} AND status = 403 GROUP BY uri ORDER BY n DESC, uri LIMIT 10""",
            params,
        ),
        outside_period=_rows(
            con,
            """SELECT count(*) FROM requests WHERE role = 'election'
               AND day NOT IN (SELECT unnest($days))""",
            params,
        )[0][0],
        empty_days=sorted(set(days) - all_present),
    )


def _sum_days(days: list[DayFigures]) -> DayFigures | None:
    if not days:
        return None
    return DayFigures(
        day=days[0].day,
        hits=sum(d.hits for d in days),
        pages=sum(d.pages for d in days),
        data=sum(d.data for d in days),
        visits=sum(d.visits for d in days),
        visitors=sum(d.visitors for d in days),
        bytes=sum(d.bytes for d in days),
    )


METRICS = ("hits", "pages", "data", "visits", "visitors", "bytes")


def _ratios(election: list[DayFigures], normal: list[DayFigures]) -> list[Ratio]:
    ratios = []
    for metric in METRICS:
        average = sum(getattr(d, metric) for d in normal) / len(normal) if normal else 0.0
        values = {d.day.isoformat(): int(getattr(d, metric)) for d in election}
        ratios.append(
            Ratio(
                metric=metric,
                normal_per_day=round(average, 1),
                election=values,
                ratio={k: round(v / average, 2) if average else None for k, v in values.items()},
            )
        )
    return ratios
