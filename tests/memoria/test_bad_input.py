"""Bad input: a truncated gzip, a line that is not JSON, a log of another format, an
empty day. Each gets a message naming the file and line; the rest is still counted and
the report states how many lines were skipped."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

from .conftest import Traffic, run_cli


def memoria(out: Path, *args: str) -> tuple[dict[str, Any], str, str]:
    result = run_cli("memoria", "--no-bitacoras", "--no-pdf", "--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "cifras.json").read_text())
    return document, result.stderr, (out / "memoria.html").read_text()


def first_lines(log: Path, count: int) -> list[str]:
    with log.open() as handle:
        return [next(handle) for _ in range(count)]


def test_truncated_gzip_counts_every_complete_line_and_names_where_it_broke(
    traffic: Traffic, tmp_path: Path
) -> None:
    whole = gzip.compress(traffic.json_log.read_bytes(), compresslevel=6)
    cut = tmp_path / "prep-access.log.2.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    # What gzip itself can still decompress (it reports the end, exits 1, keeps the output).
    zcat = subprocess.run(["gzip", "-dc", str(cut)], capture_output=True, check=False)
    assert zcat.returncode == 1 and b"unexpected end of file" in zcat.stderr
    readable = zcat.stdout
    complete = readable.count(b"\n")
    document, stderr, html = memoria(tmp_path / "out", "--access-log", str(cut))
    [reading] = document["files"]
    assert reading["requests"] == complete
    assert reading["skipped"] == 1
    assert f"{cut}:{complete + 1}: gzip stream ends early" in stderr
    assert "Líneas omitidas: <strong>1</strong>" in html


def test_a_line_that_is_not_json_is_named_and_the_rest_is_counted(
    traffic: Traffic, tmp_path: Path
) -> None:
    lines = first_lines(traffic.json_log, 200)
    lines[41] = '{"time":"2018-07-01T20:00:00-05:00","remote_addr":\n'
    log = tmp_path / "prep-access.log"
    log.write_text("".join(lines))
    document, stderr, html = memoria(tmp_path / "out", "--access-log", str(log),
                                     "--day", "2018-06-30", "--day", "2018-07-01")  # fmt: skip
    assert f"{log}:42: starts like JSON but is not valid JSON" in stderr
    assert document["skipped_lines"] == 1
    assert document["files"] == [
        {"path": str(log), "role": "election", "lines": 200, "requests": 199, "skipped": 1}
    ]
    assert f"{log}:42:" in html


def test_a_log_of_another_format_is_skipped_line_by_line(tmp_path: Path, traffic: Traffic) -> None:
    syslog = tmp_path / "syslog"
    syslog.write_text(
        "Jul  1 20:00:01 prep1 systemd[1]: Started Session 3 of user root.\n"
        "Jul  1 20:00:02 prep1 sshd[811]: Accepted publickey for root\n"
    )
    good = tmp_path / "good.log"
    good.write_text("".join(first_lines(traffic.json_log, 10)))
    document, stderr, _html = memoria(tmp_path / "out", "--access-log", str(syslog),
                                      "--access-log", str(good))  # fmt: skip
    for line in (1, 2):
        assert (
            f"{syslog}:{line}: neither the deploy's JSON format nor the combined format" in stderr
        )
    assert [f["requests"] for f in document["files"]] == [0, 10]
    assert document["skipped_lines"] == 2


def test_an_empty_day_is_reported_and_the_other_day_still_counted(
    traffic: Traffic, tmp_path: Path
) -> None:
    only_first_day = [
        line for line in first_lines(traffic.json_log, 3000) if '"time":"2018-07-01' in line
    ]
    log = tmp_path / "prep-access.log"
    log.write_text("".join(only_first_day))
    document, stderr, html = memoria(tmp_path / "out", "--access-log", str(log))
    assert "no access-log request on 2018-07-02" in stderr
    assert "Sin registros de acceso el 02/07/2018" in html
    figures = document["figures"]
    assert figures["empty_days"] == ["2018-07-02"]
    assert figures["all_clients"]["total_requests"] == len(only_first_day)


def test_host_log_lines_that_cannot_be_read_are_named(tmp_path: Path, traffic: Traffic) -> None:
    events = tmp_path / "events.log"
    events.write_text(
        '{"time":"2018-07-02T04:00:00Z","host":"prep1","source":"ups","event":"ONBATT"}\n'
        "not json\n"
        '{"time":"yesterday","host":"prep1","source":"ups","event":"ONLINE"}\n'
    )
    log = tmp_path / "good.log"
    log.write_text("".join(first_lines(traffic.json_log, 10)))
    document, stderr, html = memoria(tmp_path / "out", "--access-log", str(log),
                                     "--host-log", str(events))  # fmt: skip
    assert f"{events}:2:" in stderr and f"{events}:3:" in stderr
    assert document["skipped_lines"] == 2
    assert "ONBATT" in html
