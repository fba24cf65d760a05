"""A visitor of a difusor's floating address while its nodes fail: what a reader
of the PREP saw, request by request, and the figures of clause II.a's failover.

``Visitor`` starts a request for the page every ``interval`` seconds, whether
the previous one has finished or not (as many readers do: one request stuck in
a SYN retransmission does not hold the others back), each with ``timeout``;
bounded, it stops by itself after ``limit_s``. It records when each request
started, whether the page was served (200) and from which cut
(``X-PREP-Corte``). ``gaps`` then reads the samples of one window, in the
order the requests started:

- the longest gap without the page: from the last request served before a
  failure to the first served after it (to the window's end if none was);
- the requests that failed;
- whether the cut ever went back (a later request served an older cut than an
  earlier one): visitors must never see the results go backwards.

**Example:**

.. code:: python

    with Visitor(Http(address="198.51.100.20", host="prep.example.org")) as visitor:
        mark = time.monotonic()
        ...  # power the master off
        time.sleep(10)
    print(visitor.gaps(since=mark).longest_s)
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

from prep_iac.audit.target import Http, NotChecked

INTERVAL_S = 0.05
TIMEOUT_S = 1.0
LIMIT_S = 600.0


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request started
    cut: str | None  # the cut served ("" for a page of no cut, the notice); None: not served


@dataclass
class Gaps:
    """What the visitor saw in one window."""

    requests: int
    failed: int
    longest_s: float
    went_back: list[tuple[str, str]] = field(default_factory=list)  # (newer seen, older after)
    cuts: list[str] = field(default_factory=list)  # the cuts served, in the order first seen

    def summary(self) -> str:
        back = f"; el corte retrocedió {self.went_back}" if self.went_back else ""
        return (
            f"{self.requests - self.failed} de {self.requests} peticiones servidas;"
            f" el hueco más largo sin la página: {self.longest_s:.2f} s{back}"
        )


def gaps(samples: list[Sample], since: float, until: float) -> Gaps:
    """The figures of the samples taken in ``[since, until]``."""
    window = sorted((s for s in samples if since <= s.at <= until), key=lambda s: s.at)
    longest, last_ok, failing = 0.0, since, False
    newest, back, cuts = "", [], []
    for sample in window:
        if sample.cut is None:
            failing = True
            continue
        if failing:
            longest = max(longest, sample.at - last_ok)
        failing, last_ok = False, sample.at
        if sample.cut and sample.cut not in cuts:
            cuts.append(sample.cut)
        if sample.cut and sample.cut < newest:
            back.append((newest, sample.cut))
        newest = max(newest, sample.cut)
    if failing:
        longest = max(longest, until - last_ok)
    failed = sum(1 for s in window if s.cut is None)
    return Gaps(requests=len(window), failed=failed, longest_s=round(longest, 3),
                went_back=back, cuts=cuts)  # fmt: skip


class Visitor:
    """Requests to ``http`` every ``interval`` s in a thread, until stopped or ``limit_s``."""

    def __init__(
        self,
        http: Http,
        path: str = "/",
        interval: float = INTERVAL_S,
        timeout: float = TIMEOUT_S,
        limit_s: float = LIMIT_S,
    ) -> None:
        self.http = Http(address=http.address, host=http.host, tls=http.tls, source=http.source,
                         port=http.port, timeout=timeout)  # fmt: skip
        self.path, self.interval, self.limit_s = path, interval, limit_s
        self.samples: list[Sample] = []
        self._pending: set[float] = set()  # start times of the requests in flight
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visitor", daemon=True)
        # Enough workers for every request that may be in flight at once.
        self._pool = ThreadPoolExecutor(max_workers=int(timeout / interval) + 2)

    def _request(self, started: float) -> None:
        try:
            status, headers, _ = self.http.get(self.path)
            cut = headers.get("x-prep-corte", "") if status == 200 else None
        except NotChecked:
            cut = None
        with self._lock:
            self.samples.append(Sample(started, cut))
            self._pending.discard(started)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        tick = time.monotonic()
        while not self._stop.is_set() and tick < deadline:
            with self._lock:
                self._pending.add(tick)
            self._pool.submit(self._request, tick)
            tick += self.interval
            self._stop.wait(max(0.0, tick - time.monotonic()))

    def start(self) -> Visitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Visitor:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def gaps(self, since: float, until: float | None = None) -> Gaps:
        """The figures since ``since`` (a ``time.monotonic()``) until ``until`` or now."""
        # Requests started before ``until`` may still be in flight: give them their timeout.
        end = until if until is not None else time.monotonic()
        self._settle(end)
        with self._lock:
            samples = list(self.samples)
        return gaps(samples, since, end)

    def _settle(self, end: float) -> None:
        """Wait (at most a request's timeout, and a second) for the requests started
        by ``end`` to finish."""
        deadline = time.monotonic() + self.http.timeout + 1
        while time.monotonic() < deadline:
            with self._lock:
                if not any(at <= end for at in self._pending):
                    return
            time.sleep(self.interval)
