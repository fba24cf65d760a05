"""Access logs into DuckDB: the deploy's JSON lines and combined logs, plain or gzipped.

Every line of every file becomes one row of the ``lines`` table, in one
DuckDB scan per file (no Python loop over lines): a request, with its time in
UTC and in the election's local time, its client, status, bytes and class, or
a line that could not be read, with its line number, the reason and its text.
Nothing is dropped silently: bad lines are counted and shown with file and
line, and the rest of the file is still read (blank lines are not lines of a
log, and are passed over). A gzip file cut short (a copy
interrupted, a disk filled) is read up to its last complete line.

The database lives in a file under the caller's work directory and DuckDB's
memory is capped, so a log of any size is read in bounded memory (DuckDB
spills to that directory). Formats, per line (a file may mix them):

- JSON: ``log_format prep_json`` of ``prep_iac/deploy/templates/nginx.conf.j2``
  (``time`` as ``$time_iso8601``, ``remote_addr``, ``method``, ``uri``,
  ``status``, ``body_bytes_sent``, ``referer``, ``user_agent``; its other fields,
  ``corte`` among them, are not read);
- combined: nginx's and Apache's ``combined`` format.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import duckdb

GZIP_MAGIC = b"\x1f\x8b"
# A byte that never occurs in either format (nginx escapes control bytes), so
# each line is read whole as one column.
NO_DELIMITER = "\x01"
JSON_SCHEMA = (
    '{"time":"VARCHAR","remote_addr":"VARCHAR","method":"VARCHAR","uri":"VARCHAR",'
    '"status":"INTEGER","body_bytes_sent":"BIGINT","referer":"VARCHAR",'
    '"user_agent":"VARCHAR"}'
)
# The same JSON format in GoAccess's ``--log-format`` syntax (with
# ``--datetime-format=%Y-%m-%dT%H:%M:%S%z``): the tests' oracle, and for a
# difusor who wants GoAccess's dashboard of the same logs.
GOACCESS_JSON_FORMAT = json.dumps(
    {
        "time": "%x", "remote_addr": "%h", "host": "%v", "method": "%m", "uri": "%U",
        "protocol": "%H", "status": "%s", "bytes_sent": "%^", "body_bytes_sent": "%b",
        "request_time": "%T", "referer": "%R", "user_agent": "%u", "corte": "%^",
        "upstream": "%^", "connection": "%^", "connection_requests": "%^",
    }
)  # fmt: skip
QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMBINED = r"^(\S+) \S+ \S+ \[([^\]]+)\] " + QUOTED + r" (\d{3}) (\d+|-) " + QUOTED + " " + QUOTED
# Crawlers, scripts and attack tools by user agent (reported apart from readers).
BOT_AGENTS = (
    r"(?i)(bot\b|bot/|crawl|spider|slurp|facebookexternalhit|curl/|wget/|python-requests|"
    r"python-urllib|go-http-client|java/|httpclient|libwww|sqlmap|zgrab|nikto|masscan|"
    r"nmap|scanner|^-?$)"
)
DOCUMENT = r"(/|\.html?|/[^./]+)$"
# The path of a request: its URI without the query.
PATH = "split_part(uri, '?', 1)"


class LineProblem(StrEnum):
    """Why a line is not counted as a request."""

    BAD_JSON = "bad-json"
    UNKNOWN_FORMAT = "unknown-format"
    MISSING_FIELD = "missing-field"
    BAD_TIME = "bad-time"
    TRUNCATED_GZIP = "truncated-gzip"


PROBLEM_TEXT = {
    LineProblem.BAD_JSON: "starts like JSON but is not valid JSON",
    LineProblem.UNKNOWN_FORMAT: "neither the deploy's JSON format nor the combined format",
    LineProblem.MISSING_FIELD: "JSON without time, remote_addr, method, uri or status",
    LineProblem.BAD_TIME: "time not in the format's date layout",
    LineProblem.TRUNCATED_GZIP: "gzip stream ends early; the lines before it were read",
}


class Role(StrEnum):
    ELECTION = "election"  # the publication servers' logs for the election days
    NORMAL = "normal"  # the portal's logs for ordinary days


@dataclass(frozen=True)
class BadLine:
    file: Path
    line: int
    problem: LineProblem
    text: str

    def message(self) -> str:
        return f"{self.file}:{self.line}: {PROBLEM_TEXT[self.problem]}: {self.text[:120]!r}"


@dataclass
class FileReading:
    """What one file gave."""

    path: Path
    role: Role
    lines: int = 0
    requests: int = 0
    bad: int = 0
    examples: list[BadLine] = field(default_factory=list)


# What a row stores is kept narrow: storing a column of two million rows costs
# more than deriving it again where a figure needs it, so the day, the path, the
# class and the flags of a request are derived by the ``requests`` view. A client
# (address + user agent) is also stored as one 64-bit hash of the two, so the
# figures count and window integers, not pairs of strings; ``figures`` checks that
# no two clients share a hash and numbers them exactly if two ever do. Each
# reading gives ``local_time`` (the time zone converted once per row, not twice).
# Bots (by user agent) and documents (by path) are found after a file is read, by
# regular expression over its distinct user agents and paths (a few thousand), not
# over every row: that is most of the reading's cost.
SCHEMA = f"""
CREATE TABLE lines (
    file_id INTEGER, role VARCHAR, line BIGINT, problem VARCHAR, text VARCHAR,
    instant TIMESTAMPTZ, local_time TIMESTAMP, ip VARCHAR, method VARCHAR, uri VARCHAR,
    status INTEGER, bytes BIGINT, referer VARCHAR, agent VARCHAR,
    bot BOOLEAN, document BOOLEAN, client UBIGINT
);
CREATE VIEW requests AS SELECT *,
    CAST(local_time AS DATE) AS day, {PATH} AS path,
    CASE WHEN status = 403 THEN 'blocked' WHEN status = 429 THEN 'limited'
         WHEN bot THEN 'bot' ELSE 'reader' END AS kind,
    ends_with({PATH}, '.json') AS data, (status BETWEEN 200 AND 299) OR status = 304 AS success
FROM lines WHERE problem IS NULL;
"""
DERIVED = """
    instant, local_time, ip, method, uri, status, bytes, referer, agent, false, false,
    hash(ip, agent)"""

# Readers whose user agent is a bot's, and paths that are documents, in one file.
CLASSIFY = (
    """CREATE OR REPLACE TEMP TABLE agents AS SELECT DISTINCT agent FROM lines
       WHERE file_id = $file_id""",
    f"""CREATE OR REPLACE TEMP TABLE paths AS SELECT DISTINCT {PATH} AS path FROM lines
       WHERE file_id = $file_id""",
    f"""UPDATE lines SET bot = true WHERE file_id = $file_id
       AND agent IN (SELECT agent FROM agents WHERE regexp_matches(agent, '{BOT_AGENTS}'))""",
    f"""UPDATE lines SET document = true WHERE file_id = $file_id
       AND {PATH} IN (SELECT path FROM paths WHERE regexp_matches(path, '{DOCUMENT}'))""",
)

# The careful reading of one file: each line, numbered, is parsed as JSON or
# combined or gets a problem. Used when the quick reading finds any bad line.
INSERT = f"""
INSERT INTO lines
WITH raw AS (
    SELECT row_number() OVER () AS line, text
    FROM read_csv($path, columns = {{'text': 'VARCHAR'}}, header = false,
                  delim = '{NO_DELIMITER}', quote = '', escape = '', auto_detect = false,
                  strict_mode = false, compression = $compression)
), shaped AS (
    SELECT line, text,
        starts_with(ltrim(text), '{{') AS looks_json,
        CASE WHEN starts_with(ltrim(text), '{{') AND json_valid(text)
             THEN json_transform(text, '{JSON_SCHEMA}') END AS j,
        CASE WHEN NOT starts_with(ltrim(coalesce(text, '')), '{{')
             THEN regexp_extract(text, '{COMBINED.replace("'", "''")}',
                  ['ip', 'time', 'request', 'status', 'bytes', 'referer', 'agent']) END AS c
    FROM raw
), fields AS (
    SELECT line, text, looks_json, j IS NOT NULL AS is_json,
        coalesce(j.remote_addr, nullif(c.ip, '')) AS ip,
        coalesce(try_strptime(j.time, '%Y-%m-%dT%H:%M:%S%z'),
                 try_strptime(nullif(c.time, ''), '%d/%b/%Y:%H:%M:%S %z')) AS instant,
        coalesce(j.time, nullif(c.time, '')) AS time_text,
        coalesce(j.method, nullif(split_part(c.request, ' ', 1), '')) AS method,
        coalesce(j.uri, nullif(split_part(c.request, ' ', 2), '')) AS uri,
        coalesce(j.status, try_cast(nullif(c.status, '') AS INTEGER)) AS status,
        coalesce(j.body_bytes_sent, try_cast(nullif(c.bytes, '') AS BIGINT), 0) AS bytes,
        coalesce(j.referer, CASE WHEN c.referer = '-' THEN '' ELSE c.referer END, '') AS referer,
        coalesce(j.user_agent, CASE WHEN c.agent = '-' THEN '' ELSE c.agent END, '') AS agent
    FROM shaped
), judged AS (
    SELECT *, timezone($tz, instant) AS local_time,
        CASE
            WHEN looks_json AND NOT is_json THEN 'bad-json'
            WHEN NOT looks_json AND ip IS NULL THEN 'unknown-format'
            WHEN time_text IS NULL OR ip IS NULL OR method IS NULL OR uri IS NULL
                 OR status IS NULL THEN 'missing-field'
            WHEN instant IS NULL THEN 'bad-time'
        END AS problem
    FROM fields
    WHERE text IS NOT NULL AND trim(text) <> ''
)
SELECT $file_id, $role, line, problem,
    CASE WHEN problem IS NOT NULL THEN left(text, 300) END,
    {DERIVED}
FROM judged
"""

# The quick reading of a JSON file (DuckDB's parallel JSON reader, which skips
# blank lines and fails on any other line that is not JSON); it stands only when
# every row is a complete request.
INSERT_JSON = f"""
INSERT INTO lines
SELECT $file_id, $role, NULL, NULL, NULL,
    {DERIVED}
FROM (
    SELECT *, timezone($tz, instant) AS local_time FROM (
        SELECT try_strptime(time, '%Y-%m-%dT%H:%M:%S%z') AS instant, remote_addr AS ip, method,
            uri, status, coalesce(body_bytes_sent, 0) AS bytes, coalesce(referer, '') AS referer,
            coalesce(user_agent, '') AS agent
        FROM read_json($path, format = 'newline_delimited', columns = {JSON_SCHEMA},
                       compression = $compression)
    )
)
"""
INCOMPLETE = """
SELECT count(*) FROM lines WHERE file_id = ?
    AND (instant IS NULL OR ip IS NULL OR method IS NULL OR uri IS NULL OR status IS NULL)
"""


class AccessLogs:
    """The access logs of one memoria, in one DuckDB database under ``workdir``."""

    def __init__(
        self, workdir: Path, timezone: str, memory_limit: str = "512MB", threads: int = 2
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.timezone = timezone
        self.database = workdir / "memoria.duckdb"
        self.database.unlink(missing_ok=True)
        self.con = duckdb.connect(str(self.database))
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET temp_directory = ?", [str(workdir / "spill")])
        self.con.execute(SCHEMA)
        self.files: list[FileReading] = []

    def close(self) -> None:
        self.con.close()
        self.database.unlink(missing_ok=True)
        Path(f"{self.database}.wal").unlink(missing_ok=True)

    def add(self, path: Path, role: Role) -> FileReading:
        """Read one file (JSON or combined lines, plain or gzip); return what it gave."""
        reading = FileReading(path, role)
        file_id = len(self.files)
        self.files.append(reading)
        with path.open("rb") as handle:
            gzipped = handle.read(2) == GZIP_MAGIC
        truncated_at: int | None = None
        source = path
        try:
            self._insert(source, "gzip" if gzipped else "none", file_id, role)
        except duckdb.IOException as exc:
            if not gzipped or "gzip" not in str(exc).lower():
                raise
            source, truncated_at = self._recover_gzip(path, file_id)
            self._insert(source, "none", file_id, role)
        finally:
            if source != path:
                source.unlink(missing_ok=True)
        for statement in CLASSIFY:
            self.con.execute(statement, {"file_id": file_id})
        row = self.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE problem IS NULL) FROM lines WHERE file_id = ?",
            [file_id],
        ).fetchone()
        assert row is not None
        reading.lines, reading.requests = int(row[0]), int(row[1])
        reading.bad = reading.lines - reading.requests
        reading.examples = [
            BadLine(path, int(line), LineProblem(problem), text or "")
            for line, problem, text in self.con.execute(
                "SELECT line, problem, text FROM lines WHERE file_id = ? AND problem IS NOT NULL"
                " ORDER BY line LIMIT 20",
                [file_id],
            ).fetchall()
        ]
        if truncated_at is not None:
            reading.bad += 1
            reading.lines += 1
            reading.examples.append(BadLine(path, truncated_at, LineProblem.TRUNCATED_GZIP, ""))
        return reading

    def _insert(self, source: Path, compression: str, file_id: int, role: Role) -> None:
        params = {"path": str(source), "compression": compression, "file_id": file_id,
                  "role": role.value, "tz": self.timezone}  # fmt: skip
        # Rows need no order for the figures, so DuckDB may insert them in parallel; the
        # careful reading numbers lines in file order and needs it back.
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("BEGIN")
        try:
            self.con.execute(INSERT_JSON, params)
            row = self.con.execute(INCOMPLETE, [file_id]).fetchone()
            if row == (0,):
                self.con.execute("COMMIT")
                return
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            pass  # a line that is not JSON, or not of the deploy's format
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        # Some line is not a complete JSON request: read the file line by line.
        self.con.execute("ROLLBACK")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute(INSERT, params)

    def _recover_gzip(self, path: Path, file_id: int) -> tuple[Path, int]:
        """The complete lines of a gzip cut short, in a plain file; and the line it broke at."""
        target = self.workdir / f"recovered-{file_id}.log"
        lines = 0
        with path.open("rb") as raw, target.open("wb") as out:
            decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            tail = b""
            while chunk := raw.read(1 << 20):
                try:
                    data = tail + decompressor.decompress(chunk)
                except zlib.error:
                    break
                complete = data.rfind(b"\n") + 1
                out.write(data[:complete])
                lines += data.count(b"\n", 0, complete)
                tail = data[complete:]
        return target, lines + 1
