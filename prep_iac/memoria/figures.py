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


# The rows every figure reads, each with its client (address + user agent) as one
# number, ``ingest``'s hash of the two: the distinct counts and the visits' window
# then hash and sort integers, not two strings per row (most of the figures' cost).
# Should two clients ever share a hash, they are numbered exactly instead (a pass
# over the strings). ``period``: an election log's request on one of the election
# days; ``normal``: a normal-days log's request; ``t``: the instant in microseconds.
SHARED_HASH = """SELECT count(*) <> count(DISTINCT client)
                 FROM (SELECT DISTINCT client, ip, agent FROM requests)"""
RENUMBER = """UPDATE lines SET client = numbered.client FROM (
                  SELECT ip, agent, row_number() OVER ()::UBIGINT AS client
                  FROM (SELECT DISTINCT ip, agent FROM requests)) AS numbered
              WHERE lines.ip = numbered.ip AND lines.agent = numbered.agent"""
ROWS = """CREATE OR REPLACE TEMP VIEW r AS
          SELECT role = 'election' AND day IN ({days}) AS period,
              role = 'normal' AS normal, day, local_time, instant, epoch_us(instant) AS t,
              client, path, status, bytes, kind, document AND success AS is_page,
              data AND success AS is_data
          FROM requests"""
PERIOD = "period"
READERS = "period AND kind = 'reader'"
NORMAL_READERS = "normal AND kind = 'reader'"


def _days(con: duckdb.DuckDBPyConnection, where: str) -> list[DayFigures]:
    sql = f"""
    WITH gaps AS (
        SELECT day, t - lag(t) OVER (PARTITION BY client ORDER BY t) AS gap
        FROM r WHERE {where}
    ),
    visits AS (
        SELECT day, count(*) FILTER (WHERE gap IS NULL OR gap > {VISIT_GAP_MINUTES * 60_000_000})
            AS visits
        FROM gaps GROUP BY day
    ),
    totals AS (
        SELECT day, count(*) AS hits, count(*) FILTER (WHERE is_page) AS pages,
            count(*) FILTER (WHERE is_data) AS data,
            count(DISTINCT client) FILTER (WHERE status NOT BETWEEN 400 AND 499) AS visitors,
            coalesce(sum(bytes), 0) AS bytes
        FROM r WHERE {where} GROUP BY day
    )
    SELECT day, hits, pages, data, visits, visitors, bytes
    FROM totals JOIN visits USING (day) ORDER BY day
    """
    return [
        DayFigures(day=d, hits=h, pages=p, data=j, visits=v, visitors=u, bytes=b)
        for d, h, p, j, v, u, b in _rows(con, sql, {})
    ]


def _buckets(con: duckdb.DuckDBPyConnection, days: list[date]) -> dict[int, list[Bucket]]:
    """Per-hour and per-10-minute buckets of the readers, in one scan of the rows."""
    sql = f"""
    SELECT time_bucket(INTERVAL 10 MINUTE, local_time) AS ten,
        time_bucket(INTERVAL 60 MINUTE, local_time) AS hour, count(*),
        count(*) FILTER (WHERE is_page), count(*) FILTER (WHERE is_data),
        count(DISTINCT client), coalesce(sum(bytes), 0)
    FROM r WHERE {READERS} GROUP BY GROUPING SETS ((ten), (hour))
    """
    found: dict[int, dict[datetime, tuple[int, int, int, int, int]]] = {10: {}, 60: {}}
    for ten, hour, *counts in _rows(con, sql, {}):
        if ten is not None:
            found[10][ten] = tuple(counts)
        else:
            found[60][hour] = tuple(counts)
    first = datetime.combine(min(days), datetime.min.time())
    last = datetime.combine(max(days) + timedelta(days=1), datetime.min.time())
    buckets: dict[int, list[Bucket]] = {}
    for minutes, rows in found.items():
        buckets[minutes] = []
        at = first
        while at < last:
            h, p, j, v, b = rows.get(at, (0, 0, 0, 0, 0))
            buckets[minutes].append(Bucket(start=at, hits=h, pages=p, data=j, visitors=v, bytes=b))
            at += timedelta(minutes=minutes)
    return buckets


def _ranked(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[Ranked]:
    return [Ranked(label=str(label), hits=h, visitors=v) for label, h, v in _rows(con, sql, params)]


def compute(
    con: duckdb.DuckDBPyConnection, days: list[date], timezone: str, own_hosts: list[str]
) -> Figures:
    """Every figure of the memoria for the election ``days`` (local dates)."""
    days = sorted(days)
    if _rows(con, SHARED_HASH, {})[0][0]:
        con.execute(RENUMBER)
    con.execute(ROWS.format(days=", ".join(f"DATE '{d.isoformat()}'" for d in days)))
    total, visitors, size = _rows(
        con,
        f"""SELECT count(*), count(DISTINCT (day, client))
                FILTER (WHERE status NOT BETWEEN 400 AND 499), coalesce(sum(bytes), 0)
            FROM r WHERE {PERIOD}""",
        {},
    )[0]
    statuses = dict(
        _rows(con, f"SELECT status, count(*) FROM r WHERE {PERIOD} GROUP BY status", {})
    )
    days_figures = _days(con, READERS)
    normal = _days(con, NORMAL_READERS)
    all_present = {row[0] for row in _rows(con, f"SELECT DISTINCT day FROM r WHERE {PERIOD}", {})}
    peak = _rows(
        con,
        f"""SELECT date_trunc('second', local_time) AS s, count(*) AS n FROM r
            WHERE {PERIOD} GROUP BY s ORDER BY n DESC, s LIMIT 1""",
        {},
    )
    normal_profile = _rows(
        con, f"SELECT hour(local_time) AS h, count(*) FROM r WHERE {NORMAL_READERS} GROUP BY h", {}
    )
    normal_count = max(1, len(normal))
    profile = dict(normal_profile)
    own = [h.lower() for h in own_hosts]
    buckets = _buckets(con, days)
    params: dict[str, Any] = {"days": days}
    in_period = "role = 'election' AND day IN (SELECT unnest($days))"
    return Figures(
        election_days=days,
        timezone=timezone,
        all_clients=AllClients(
            total_requests=total, unique_visitors=visitors, bytes=size, statuses=statuses
        ),
        readers=_sum_days(days_figures),
        days=days_figures,
        normal_days=normal,
        ratios=_ratios(days_figures, normal),
        by_hour=buckets[60],
        by_ten_minutes=buckets[10],
        normal_hourly_profile=[
            round(profile.get(hour, 0) / normal_count, 2) if normal else 0.0 for hour in range(24)
        ],
        peak_second=peak[0][0] if peak else None,
        peak_requests_per_second=peak[0][1] if peak else 0,
        status_classes={
            f"{k}xx": v
            for k, v in _rows(
                con,
                f"SELECT status // 100 AS k, count(*) FROM r WHERE {PERIOD} GROUP BY k ORDER BY k",
                {},
            )
        },
        top_pages=_ranked(
            con,
            f"""SELECT path, count(*) AS n, count(DISTINCT client) FROM r
                WHERE {READERS} AND is_page GROUP BY path ORDER BY n DESC, path LIMIT 10""",
            {},
        ),
        top_data=_ranked(
            con,
            f"""SELECT path, count(*) AS n, count(DISTINCT client) FROM r
                WHERE {READERS} AND is_data GROUP BY path ORDER BY n DESC, path LIMIT 10""",
            {},
        ),
        top_referrers=_ranked(
            con,
            f"""SELECT site, count(*) AS n, count(DISTINCT client) FROM (
                    SELECT lower(regexp_extract(referer, '^[a-zA-Z]+://([^/:]+)', 1)) AS site, *
                    FROM requests WHERE {in_period} AND kind = 'reader' AND referer <> '')
                WHERE site <> '' AND NOT list_contains($own, site)
                GROUP BY site ORDER BY n DESC, site LIMIT 10""",
            params | {"own": own},
        ),
        classes=dict(_rows(con, f"SELECT kind, count(*) FROM r WHERE {PERIOD} GROUP BY kind", {})),
        top_bots=_ranked(
            con,
            f"""SELECT agent, count(*) AS n, count(DISTINCT ip) FROM requests
                WHERE {in_period} AND kind = 'bot' GROUP BY agent ORDER BY n DESC, agent
                LIMIT 10""",
            params,
        ),
        top_blocked_sources=_ranked(
            con,
            f"""SELECT ip, count(*) AS n, count(DISTINCT agent) FROM requests
                WHERE {in_period} AND status IN (403, 429) GROUP BY ip ORDER BY n DESC, ip
                LIMIT 10""",
            params,
        ),
        top_attack_paths=_ranked(
            con,
            f"""SELECT uri, count(*) AS n, count(DISTINCT ip) FROM requests
                WHERE {in_period} AND status = 403 GROUP BY uri ORDER BY n DESC, uri LIMIT 10""",
            params,
        ),
        outside_period=_rows(con, "SELECT count(*) FROM r WHERE NOT period AND NOT normal", {})[0][
            0
        ],
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
