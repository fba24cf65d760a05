"""Synthetic web traffic for a difusor's PREP site: seeded, in JSON and combined format.

Nobody has a difusor's real access logs before the election, so tests, drills
and benchmarks use this generator. It follows what such a site sees: on the
election day a quiet morning, the rush when publication opens (20:00 local
time), a long night of readers polling the results JSON, and the early-morning
tail; normal days follow a plain daily curve at a fraction of the volume.
Readers arrive in visits (the app shell, its static files, then results JSON
every minute or so, some answered 304), mostly framed by a difusor's portal;
crawlers and scripts fetch pages without a browser; a few attackers probe for
SQL injection (403 from the Core Rule Set), scan for well-known files (404)
and flood until they get 429.

The same requests are written in the deploy's JSON access-log format
(``prep_iac/deploy/templates/nginx.conf.j2``, ``log_format prep_json``) and in
nginx/Apache *combined* format, so both readers and GoAccess can be compared on
one traffic. Output files ending in ``.gz`` are gzipped. The same seed and
arguments give byte-identical files.
"""

from __future__ import annotations

import gzip
import heapq
import itertools
import json
import math
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

# Clients: (user agent, share). Browsers are readers; the rest are bots.
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/67.0.3396.99 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 8.0.0; SM-G950F) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/67.0.3396.87 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:61.0) Gecko/20100101 Firefox/61.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/11.1.1 Safari/605.1.15",
)
CRAWLERS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
)
SCRIPTS = ("curl/7.58.0", "python-requests/2.19.1", "Wget/1.19.4 (linux-gnu)")
ATTACK_AGENTS = ("sqlmap/1.2.6#stable (http://sqlmap.org)", "Mozilla/5.0 zgrab/0.x")
# The portals that frame the PREP site (the difusores' own pages) and other referrers.
REFERRERS = (
    "https://www.vanguardia.com.mx/elecciones2018",
    "https://www.elsiglodetorreon.com.mx/prep/",
    "https://www.uadec.mx/prep2018",
    "https://www.google.com.mx/",
    "https://t.co/prep2018",
    "https://m.facebook.com/",
)
STATIC = (("/assets/app.js", 180_000), ("/assets/app.css", 42_000), ("/img/logo-iec.svg", 9_000))
SCAN_PATHS = ("/wp-login.php", "/.env", "/phpmyadmin/", "/admin/config.php", "/.git/HEAD")
SQLI = ("/?id=1%27%20OR%20%271%27=%271", "/datos/municipio.json?m=1%20UNION%20SELECT%20password")
HOST = "prep.difusor.example"


@dataclass(frozen=True)
class Request:
    """One logged request, with what both formats need."""

    at: datetime  # aware, in the election's time zone (what nginx's $time_* print)
    remote_addr: str
    method: str
    uri: str
    status: int
    body_bytes_sent: int
    referer: str
    user_agent: str
    corte: str
    request_time: float


@dataclass(frozen=True)
class TrafficSpec:
    """What to generate: which days, how busy, from which seed.

    + election_day: the local date of the election (its night runs into the next day)
    + normal_days: local dates of ordinary days (the portal's normal average)
    + requests: total requests to write (approximately for ``election_share``)
    + election_share: the share of ``requests`` on the election day and the day after
    + attacks: whether to add the probes, scans and floods
    """

    election_day: date
    normal_days: tuple[date, ...] = ()
    requests: int = 20_000
    election_share: float = 0.8
    attacks: bool = True
    seed: int = 2018
    timezone: str = "America/Monterrey"


def _election_curve(hour: float) -> float:
    """Relative request rate at local ``hour`` (0-48) from the election day's midnight."""
    if hour < 18:
        return 0.05 + 0.02 * math.sin(math.pi * hour / 24)
    if hour < 20:
        return 0.2 + 0.4 * (hour - 18) / 2  # the site is up; people wait for results
    if hour < 24:
        return 1.0 + 0.6 * math.exp(-((hour - 21.0) ** 2) / 1.5)  # the rush after 20:00
    # The early-morning tail, then the day after at a fraction of the night.
    return max(0.08, 1.0 * math.exp(-(hour - 24) / 2.5)) + (0.12 if 8 <= hour - 24 <= 22 else 0)


def _normal_curve(hour: float) -> float:
    return 0.02 + 0.06 * max(0.0, math.sin(math.pi * (hour - 6) / 17)) if 6 <= hour < 23 else 0.01


class _Generator:
    def __init__(self, spec: TrafficSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)  # noqa: S311 (reproducible traffic, not secrets)
        self.tz = ZoneInfo(spec.timezone)

    def _address(self) -> str:
        rng = self.rng
        first = rng.choice((177, 187, 189, 200, 201))  # Mexican ISPs' ranges
        return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def _cut(self, at: datetime) -> str:
        start = datetime.combine(self.spec.election_day, time(18, 0), self.tz)
        if at < start:
            return ""
        minutes = int((at - start).total_seconds() // 600) * 10
        return (start + timedelta(minutes=minutes)).strftime("%Y%m%d_%H%M")

    def visit(self, start: datetime, kind: str) -> Iterator[Request]:
        """The requests of one visit, in time order."""
        rng = self.rng
        ip = self._address()
        if kind == "reader":
            yield from self._reader(start, ip, rng.choice(BROWSERS))
        elif kind == "crawler":
            agent = rng.choice(CRAWLERS)
            at = start
            for _ in range(rng.randint(1, 6)):
                path = rng.choice(("/", "/robots.txt", "/datos/resumen.json", "/index.html"))
                status = 404 if path == "/robots.txt" else 200
                yield self._request(at, ip, path, status, 12_000, "", agent)
                at += timedelta(seconds=rng.uniform(1, 20))
        elif kind == "script":
            agent = rng.choice(SCRIPTS)
            at = start
            for _ in range(rng.randint(3, 30)):
                yield self._request(at, ip, "/datos/resumen.json", 200, 3_500, "", agent)
                at += timedelta(seconds=rng.uniform(20, 90))
        else:
            yield from self._attack(start, ip)

    def _reader(self, start: datetime, ip: str, agent: str) -> Iterator[Request]:
        rng = self.rng
        referer = rng.choice(REFERRERS) if rng.random() < 0.8 else ""
        at = start
        yield self._request(at, ip, "/", 200, 14_500, referer, agent)
        for path, size in STATIC:
            at += timedelta(milliseconds=rng.randint(20, 400))
            cached = rng.random() < 0.3
            yield self._request(at, ip, path, 304 if cached else 200, 0 if cached else size,
                                f"https://{HOST}/", agent)  # fmt: skip
        if rng.random() < 0.1:
            yield self._request(at, ip, "/favicon.ico", 404, 153, f"https://{HOST}/", agent)
        polls = int(rng.expovariate(1 / 12)) + 1
        municipio = rng.randint(1, 38)
        for _ in range(polls):
            at += timedelta(seconds=rng.uniform(30, 120))
            if rng.random() < 0.1:  # a reader away for longer than a visit's gap
                at += timedelta(minutes=rng.uniform(31, 90))
            path = rng.choice(("/datos/resumen.json", f"/datos/municipios/{municipio:02d}.json"))
            unchanged = rng.random() < 0.25
            yield self._request(at, ip, path, 304 if unchanged else 200,
                                0 if unchanged else rng.randint(2_000, 60_000),
                                f"https://{HOST}/", agent)  # fmt: skip

    def _attack(self, start: datetime, ip: str) -> Iterator[Request]:
        rng = self.rng
        agent = rng.choice(ATTACK_AGENTS)
        at = start
        style = rng.choice(("sqli", "scan", "flood"))
        for n in range(rng.randint(5, 40)):
            if style == "sqli":
                yield self._request(at, ip, rng.choice(SQLI), 403, 548, "", agent)
            elif style == "scan":
                yield self._request(at, ip, rng.choice(SCAN_PATHS), 404, 153, "", agent)
            else:
                status = 200 if n < 5 else 429
                yield self._request(at, ip, "/datos/resumen.json", status,
                                    3_500 if status == 200 else 169, "", agent)  # fmt: skip
            at += timedelta(milliseconds=rng.randint(5, 300))

    def _request(
        self, at: datetime, ip: str, uri: str, status: int, size: int, referer: str, agent: str
    ) -> Request:
        return Request(at, ip, "GET", uri, status, size, referer, agent,
                       self._cut(at) if status != 404 else "",
                       round(self.rng.uniform(0.0, 0.05), 3))  # fmt: skip

    def visit_starts(self) -> Iterator[tuple[datetime, str, datetime | None]]:
        """Visit starts, kinds and ends (a normal day's visits end at its midnight), in order."""
        spec, rng = self.spec, self.rng
        curve_minutes = [_election_curve(m / 60) for m in range(48 * 60)]
        normal_minutes = [_normal_curve(m / 60) for m in range(24 * 60)]
        # Requests per visit average about 20 for readers; visits are scaled to the total.
        per_visit = 18.0
        election_visits = spec.requests * (spec.election_share if spec.normal_days else 1.0)
        election_visits /= per_visit
        normal_visits = spec.requests * (1 - spec.election_share) / per_visit
        plan: list[tuple[datetime, list[float], float, datetime | None]] = [
            (
                datetime.combine(spec.election_day, time(0), self.tz),
                curve_minutes,
                election_visits,
                None,
            )
        ]
        plan += [
            (datetime.combine(day, time(0), self.tz), normal_minutes,
             normal_visits / len(spec.normal_days),
             datetime.combine(day + timedelta(days=1), time(0), self.tz))
            for day in spec.normal_days
        ]  # fmt: skip
        plan.sort(key=lambda item: item[0])
        for midnight, curve, visits, until in plan:
            scale = visits / sum(curve)
            for minute, weight in enumerate(curve):
                count = _poisson(rng, weight * scale)
                base = midnight + timedelta(minutes=minute)
                offsets = sorted(rng.uniform(0, 60) for _ in range(count))
                for offset in offsets:
                    roll = rng.random()
                    kind = (
                        "reader" if roll < 0.9 else "crawler" if roll < 0.95
                        else "script" if roll < 0.985 or not spec.attacks else "attack"
                    )  # fmt: skip
                    yield base + timedelta(seconds=offset), kind, until


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def generate(spec: TrafficSpec) -> Iterator[Request]:
    """Every request of ``spec``, in time order (visits overlap; memory holds open visits)."""
    gen = _Generator(spec)
    heap: list[tuple[datetime, int, Request, Iterator[Request]]] = []
    for serial, (start, kind, until) in enumerate(gen.visit_starts()):
        while heap and heap[0][0] <= start:
            yield from _pop(heap)
        visit = gen.visit(start, kind)
        if until is not None:
            visit = _before(visit, until)
        first = next(visit, None)
        if first is None:
            continue
        heapq.heappush(heap, (first.at, serial, first, visit))
    while heap:
        yield from _pop(heap)


def _before(visit: Iterator[Request], end: datetime) -> Iterator[Request]:
    return itertools.takewhile(lambda request: request.at < end, visit)


def _pop(heap: list[tuple[datetime, int, Request, Iterator[Request]]]) -> Iterator[Request]:
    _at, serial, request, visit = heapq.heappop(heap)
    yield request
    following = next(visit, None)
    if following is not None:
        heapq.heappush(heap, (following.at, serial, following, visit))


def json_line(request: Request) -> str:
    """The request as ``log_format prep_json`` writes it (field names and order)."""
    at = request.at.isoformat(timespec="seconds")
    fields = (
        f'"time":"{at}","remote_addr":"{request.remote_addr}","host":"{HOST}",'
        f'"method":"{request.method}","uri":{json.dumps(request.uri)},"protocol":"HTTP/1.1",'
        f'"status":{request.status},"bytes_sent":{request.body_bytes_sent + 240},'
        f'"body_bytes_sent":{request.body_bytes_sent},"request_time":{request.request_time},'
        f'"referer":{json.dumps(request.referer)},"user_agent":{json.dumps(request.user_agent)},'
        f'"corte":"{request.corte}","upstream":"none","connection":1,"connection_requests":1'
    )
    return "{" + fields + "}\n"


def combined_line(request: Request) -> str:
    """The request in the combined format (``-`` for an empty referrer or agent)."""
    at = request.at.strftime("%d/%b/%Y:%H:%M:%S %z")
    return (
        f'{request.remote_addr} - - [{at}] "{request.method} {request.uri} HTTP/1.1" '
        f'{request.status} {request.body_bytes_sent} "{request.referer or "-"}" '
        f'"{request.user_agent or "-"}"\n'
    )


def _open(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=1)
    return path.open("w", encoding="utf-8")


def write_logs(spec: TrafficSpec, json_path: Path | None, combined_path: Path | None) -> int:
    """Write the traffic to the JSON and/or combined file; return the number of requests."""
    count = 0
    with ExitStack() as stack:
        as_json = stack.enter_context(_open(json_path)) if json_path else None
        as_combined = stack.enter_context(_open(combined_path)) if combined_path else None
        for request in generate(spec):
            if as_json is not None:
                as_json.write(json_line(request))
            if as_combined is not None:
                as_combined.write(combined_line(request))
            count += 1
    return count
