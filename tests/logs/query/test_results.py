"""The Loki API's answers on stored lines, compared with a plain Python evaluation of the same
LogQL over the same lines (conftest's reference), through the HTTP API on a real chDB store."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs.query.conftest import (
    HOSTS,
    LEVELS,
    NS,
    SERVICES,
    WORDS,
    Dataset,
    Line,
    ref_line_filter,
    ref_matcher,
)

# The fixtures hypothesis prints on a failure are large; that is all this warning says.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def window(dataset: Dataset) -> dict[str, str]:
    return {"start": str(dataset.now - 3600 * NS), "end": str(dataset.now + NS)}


async def log_query(
    loki: httpx.AsyncClient, dataset: Dataset, query: str, **extra: str
) -> list[tuple[int, str, dict[str, str]]]:
    response = await loki.get(
        "/query_range", params={"query": query, "limit": "5000", **window(dataset), **extra}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "streams"
    out = []
    for stream in body["data"]["result"]:
        for value in stream["values"]:
            out.append((int(value[0]), value[1], stream["stream"]))
    return out


def entries(lines: list[Line], keep: Callable[[Line], bool]) -> list[tuple[int, str]]:
    return sorted(((line.ts, line.message) for line in lines if keep(line)), reverse=True)


# -- selectors and line filters, checked against the reference on generated queries -----------

matchers = st.one_of(
    st.tuples(st.just("service"), st.sampled_from(["=", "!="]), st.sampled_from(SERVICES)),
    st.tuples(st.just("host"), st.sampled_from(["=", "!="]), st.sampled_from(HOSTS)),
    st.tuples(
        st.just("level"),
        st.sampled_from(["=~", "!~"]),
        st.sampled_from(["warn|error", "d.*", "info"]),
    ),
    st.tuples(
        st.just("env"), st.sampled_from(["=", "!="]), st.sampled_from(["prod", "staging", ""])
    ),
    st.tuples(
        st.just("http_status"), st.sampled_from(["=", "=~"]), st.sampled_from(["500", "5.."])
    ),
)
line_filters = st.tuples(
    st.sampled_from(["|=", "!=", "|~", "!~"]),
    st.sampled_from(
        [*WORDS[:8], "réseau", "status=50", "user timeout", "took 1", "cache miss", "ms"]
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    anchor=st.sampled_from(SERVICES),
    extra=st.lists(matchers, max_size=2),
    filters=st.lists(line_filters, max_size=3),
)
async def test_selectors_and_line_filters_match_the_reference(
    loki: httpx.AsyncClient,
    dataset: Dataset,
    anchor: str,
    extra: list[tuple[str, str, str]],
    filters: list[tuple[str, str]],
) -> None:
    all_matchers = [("service", "=", anchor), *extra]
    selector = ", ".join(f'{n}{op}"{v}"' for n, op, v in all_matchers)
    pipeline = " ".join(f'{op} "{v}"' for op, v in filters)
    query = f"{{{selector}}} {pipeline}"

    def keep(line: Line) -> bool:
        labels = line.labels()
        return all(ref_matcher(labels, n, op, v) for n, op, v in all_matchers) and all(
            ref_line_filter(line.message, op, v) for op, v in filters
        )

    got = await log_query(loki, dataset, query)
    assert sorted(((ts, msg) for ts, msg, _ in got), reverse=True) == entries(dataset.lines, keep)


async def test_streams_carry_stream_labels_and_metadata_apart(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    response = await loki.get(
        "/query_range", params={"query": '{service="shop", env=~".+"}', **window(dataset)}
    )
    result = response.json()["data"]["result"]
    by_ts = {line.ts: line for line in dataset.lines}
    assert result
    for stream in result:
        for value in stream["values"]:
            line = by_ts[int(value[0])]
            assert stream["stream"] == line.stream()
            metadata = value[2]["structuredMetadata"]
            assert metadata["http_status"] == line.attributes["http.status"]
            assert ("trace_id" in metadata) == bool(line.trace_id)
            assert "env" not in metadata


# -- direction, limit, nanosecond bounds --------------------------------------------------------


async def test_backward_gives_the_newest_lines_and_forward_the_oldest(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    shop = [line for line in dataset.lines if line.service == "shop"]
    newest = await log_query(loki, dataset, '{service="shop"}', limit="7")
    assert (
        sorted((ts for ts, *_ in newest), reverse=True)
        == sorted((line.ts for line in shop), reverse=True)[:7]
    )
    oldest = await log_query(loki, dataset, '{service="shop"}', limit="7", direction="FORWARD")
    assert sorted(ts for ts, *_ in oldest) == sorted(line.ts for line in shop)[:7]


async def test_start_is_inclusive_and_end_exclusive_in_nanoseconds(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    shop = sorted(line.ts for line in dataset.lines if line.service == "shop")
    start, end = shop[10], shop[20]
    response = await loki.get(
        "/query_range",
        params={"query": '{service="shop"}', "start": str(start), "end": str(end), "limit": "100"},
    )
    got = sorted(int(v[0]) for s in response.json()["data"]["result"] for v in s["values"])
    assert got == shop[10:20]


async def test_values_within_a_stream_follow_the_direction(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    for direction, reverse in (("backward", True), ("forward", False)):
        response = await loki.get(
            "/query_range",
            params={"query": '{service="api"}', "direction": direction, **window(dataset)},
        )
        for stream in response.json()["data"]["result"]:
            stamps = [int(v[0]) for v in stream["values"]]
            assert stamps == sorted(stamps, reverse=reverse)


# -- parsers, label filters and formatters ------------------------------------------------------


def json_fields(line: Line) -> dict[str, Any] | None:
    try:
        document = json.loads(line.message)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def logfmt_fields(line: Line) -> dict[str, str]:
    return {
        key: value.strip('"') for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', line.message)
    }


async def test_json_then_number_filter(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    got = await log_query(
        loki, dataset, '{service=~"shop|api"} | json | __error__="" | status >= 500'
    )

    def keep(line: Line) -> bool:
        fields = json_fields(line)
        return line.service in ("shop", "api") and fields is not None and fields["status"] >= 500

    assert sorted(((ts, msg) for ts, msg, _ in got), reverse=True) == entries(dataset.lines, keep)
    assert got


async def test_logfmt_with_string_and_duration_filters(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    got = await log_query(
        loki,
        dataset,
        '{service="worker"} | logfmt | latency > 1.5s and (status="500" or status="503")',
    )

    def keep(line: Line) -> bool:
        fields = logfmt_fields(line)
        if line.service != "worker" or "latency" not in fields or "msg" not in fields:
            return False
        return int(fields["latency"][:-2]) > 1500 and fields["status"] in ("500", "503")

    assert sorted(((ts, msg) for ts, msg, _ in got), reverse=True) == entries(dataset.lines, keep)
    assert got


async def test_regexp_and_line_format(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    got = await log_query(
        loki,
        dataset,
        '{service="shop"} |~ "took" | regexp `took (?P<ms>\\d+)ms status=(?P<code>\\d+)` '
        '| ms > 2000 | line_format "{{.code}}:{{.ms}} {{ .service | ToUpper }}"',
    )
    expected = []
    for line in dataset.lines:
        match = re.search(r"took (\d+)ms status=(\d+)", line.message)
        if line.service == "shop" and match and int(match.group(1)) > 2000:
            expected.append((line.ts, f"{match.group(2)}:{match.group(1)} SHOP"))
    assert sorted(((ts, msg) for ts, msg, _ in got), reverse=True) == sorted(expected, reverse=True)
    assert expected


async def test_pattern_label_format_keep_and_drop(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    response = await loki.get(
        "/query_range",
        params={
            "query": '{service="api"} |= "took" | pattern "<words> took <ms>ms status=<_>" '
            '| label_format speed="{{.ms}}ms", svc=service | keep svc, speed, host | drop host',
            "limit": "5000",
            **window(dataset),
        },
    )
    result = response.json()["data"]["result"]
    expected = {
        line.ts: re.search(r"took (\d+)ms", line.message).group(1)  # type: ignore[union-attr]
        for line in dataset.lines
        if line.service == "api"
        and " took " in line.message
        and "status=" in line.message
        and not line.message.startswith(("{", "level="))
    }
    got = {}
    for stream in result:
        assert set(stream["stream"]) <= {"svc", "speed"}
        for value in stream["values"]:
            labels = (
                {**stream["stream"], **value[2].get("parsed", {})}
                if len(value) > 2
                else {**stream["stream"]}
            )
            got[int(value[0])] = labels.get("speed", "")[:-2]
            assert labels.get("svc") == "api"
    assert got == expected
    assert expected


# -- metric queries -----------------------------------------------------------------------------


def steps_of(start: int, end: int, step: int) -> list[int]:
    return list(range(start, end + 1, step))


async def matrix(
    loki: httpx.AsyncClient, query: str, start: int, end: int, step: int
) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    response = await loki.get(
        "/query_range",
        params={"query": query, "start": str(start), "end": str(end), "step": str(step // NS)},
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["resultType"] == "matrix"
    out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    for series in data["result"]:
        key = tuple(sorted(series["metric"].items()))
        out[key] = {round(t * 1000) * 10**6: float(v) for t, v in series["values"]}
    return out


def reference_range(
    lines: list[Line],
    group: Callable[[Line], tuple[tuple[str, str], ...]],
    steps: list[int],
    range_ns: int,
    value: Callable[[Line], float] = lambda line: 1.0,
    reduce: Callable[[list[float]], float] = math.fsum,
) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    out: dict[tuple[tuple[str, str], ...], dict[int, float]] = defaultdict(dict)
    for t in steps:
        buckets: dict[tuple[tuple[str, str], ...], list[float]] = defaultdict(list)
        for line in lines:
            if t - range_ns < line.ts <= t:
                buckets[group(line)].append(value(line))
        for key, values in buckets.items():
            out[key][t] = reduce(values)
    return dict(out)


def close(
    got: dict[tuple[tuple[str, str], ...], dict[int, float]],
    want: dict[tuple[tuple[str, str], ...], dict[int, float]],
) -> None:
    assert want, "the reference found nothing: the comparison would prove nothing"
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].keys() == want[key].keys(), key
        for t in want[key]:
            assert math.isclose(got[key][t], want[key][t], rel_tol=1e-9), (key, t)


def metric_window(dataset: Dataset) -> tuple[int, int]:
    end = (dataset.now // NS) * NS
    return end - 3600 * NS, end


async def test_sum_by_level_count_over_time(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    start, end = metric_window(dataset)
    step = 60 * NS
    got = await matrix(
        loki, 'sum by (level) (count_over_time({service="shop"}[1m]))', start, end, step
    )
    want = reference_range(
        [line for line in dataset.lines if line.service == "shop"],
        lambda line: (("level", line.level),),
        steps_of(start, end, step),
        60 * NS,
    )
    close(got, want)


async def test_count_over_time_per_stream_with_a_range_longer_than_the_step(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    start, end = metric_window(dataset)
    step = 120 * NS
    got = await matrix(loki, 'count_over_time({service="api"} |= "ok" [5m])', start, end, step)
    want = reference_range(
        [
            line
            for line in dataset.lines
            if line.service == "api" and ref_line_filter(line.message, "|=", "ok")
        ],
        lambda line: tuple(sorted(line.stream().items())),
        steps_of(start, end, step),
        300 * NS,
    )
    close(got, want)


async def test_rate_and_bytes_in_sql_and_in_python_agree(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    start, end = metric_window(dataset)
    step = 300 * NS
    for function in ("rate", "bytes_over_time", "bytes_rate", "count_over_time"):
        in_sql = await matrix(
            loki, f'sum by (host) ({function}({{service="worker"}}[10m]))', start, end, step
        )
        # A `| drop` stage keeps the rows out of SQL's bucketing: the Python path.
        in_python = await matrix(
            loki,
            f'sum by (host) ({function}({{service="worker"}} | drop nothing [10m]))',
            start,
            end,
            step,
        )
        close(in_python, in_sql)
        per_line = {
            "rate": lambda line: 1 / 600,
            "bytes_over_time": lambda line: float(len(line.message.encode())),
            "bytes_rate": lambda line: len(line.message.encode()) / 600,
            "count_over_time": lambda line: 1.0,
        }[function]
        want = reference_range(
            [line for line in dataset.lines if line.service == "worker"],
            lambda line: (("host", line.host),),
            steps_of(start, end, step),
            600 * NS,
            per_line,
        )
        close(in_sql, want)


async def test_unwrap_functions(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    start, end = metric_window(dataset)
    step = 600 * NS
    lines = [
        line for line in dataset.lines if line.service == "api" and json_fields(line) is not None
    ]

    def latency(line: Line) -> float:
        fields = json_fields(line)
        assert fields is not None
        return int(fields["latency"][:-2]) / 1000

    def quantile(values: list[float]) -> float:
        ordered = sorted(values)
        rank = 0.9 * (len(ordered) - 1)
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] * (1 - (rank - low)) + ordered[high] * (rank - low)

    reducers: dict[str, Callable[[list[float]], float]] = {
        "sum_over_time": math.fsum,
        "avg_over_time": lambda values: math.fsum(values) / len(values),
        "max_over_time": max,
        "min_over_time": min,
        "quantile_over_time": quantile,
    }
    for function, reduce in reducers.items():
        param = "0.9, " if function == "quantile_over_time" else ""
        query = (
            f'{function}({param}{{service="api"}} | json | __error__="" '
            "| unwrap duration(latency) [15m]) by (level)"
        )
        got = await matrix(loki, query, start, end, step)
        want = reference_range(
            lines,
            lambda line: (("level", line.level),),
            steps_of(start, end, step),
            900 * NS,
            latency,
            reduce,
        )
        close(got, want)


async def test_aggregations_and_scalar_operators(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    start, end = metric_window(dataset)
    step = 600 * NS
    base = reference_range(
        dataset.lines,
        lambda line: (("host", line.host), ("service", line.service)),
        steps_of(start, end, step),
        600 * NS,
    )

    def regroup(
        keep: tuple[str, ...], reduce: Callable[[list[float]], float]
    ) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        grouped: dict[tuple[tuple[str, str], ...], dict[int, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for key, series in base.items():
            new_key = tuple((k, v) for k, v in key if k in keep)
            for t, v in series.items():
                grouped[new_key][t].append(v)
        return {k: {t: reduce(vs) for t, vs in s.items()} for k, s in grouped.items()}

    inner = 'sum by (host, service) (count_over_time({service=~".+"}[10m]))'
    close(
        await matrix(loki, f"max by (service) ({inner})", start, end, step),
        regroup(("service",), max),
    )
    close(
        await matrix(loki, f"min without (host) ({inner})", start, end, step),
        regroup(("service",), min),
    )
    close(
        await matrix(loki, f"avg({inner})", start, end, step),
        regroup((), lambda vs: math.fsum(vs) / len(vs)),
    )
    close(await matrix(loki, f"count({inner})", start, end, step), regroup((), len))  # type: ignore[arg-type]
    doubled = {
        k: {t: v * 2 + 1 for t, v in s.items()} for k, s in regroup(("service",), math.fsum).items()
    }
    close(await matrix(loki, f"sum by (service) ({inner}) * 2 + 1", start, end, step), doubled)
    over = {
        k: {t: v for t, v in s.items() if v > 20}
        for k, s in regroup(("service",), math.fsum).items()
    }
    close(
        await matrix(loki, f"sum by (service) ({inner}) > 20", start, end, step),
        {k: s for k, s in over.items() if s},
    )
    flags = {
        k: {t: 1.0 if v > 20 else 0.0 for t, v in s.items()}
        for k, s in regroup(("service",), math.fsum).items()
    }
    close(await matrix(loki, f"sum by (service) ({inner}) > bool 20", start, end, step), flags)

    top = await matrix(loki, f"topk(2, {inner})", start, end, step)
    for t in steps_of(start, end, step):
        values = sorted((s[t] for s in base.values() if t in s), reverse=True)
        got = sorted((s[t] for s in top.values() if t in s), reverse=True)
        assert got == values[:2]
    bottom = await matrix(loki, f"bottomk(1, {inner})", start, end, step)
    for t in steps_of(start, end, step):
        values = sorted(s[t] for s in base.values() if t in s)
        assert sorted(s[t] for s in bottom.values() if t in s) == values[:1]


async def test_instant_query_is_a_vector(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    at = (dataset.now // NS) * NS
    response = await loki.get(
        "/query",
        params={"query": 'sum by (level) (count_over_time({service="shop"}[1h]))', "time": str(at)},
    )
    data = response.json()["data"]
    assert data["resultType"] == "vector"
    got = {item["metric"]["level"]: item["value"][1] for item in data["result"]}
    counts = Counter(
        line.level
        for line in dataset.lines
        if line.service == "shop" and at - 3600 * NS < line.ts <= at
    )
    assert got == {level: str(n) for level, n in counts.items()}
    assert all(item["value"][0] == at // NS for item in data["result"])


# -- labels and series --------------------------------------------------------------------------


async def test_labels_values_and_series(loki: httpx.AsyncClient, dataset: Dataset) -> None:
    labels = (await loki.get("/labels", params=window(dataset))).json()
    assert labels == {"status": "success", "data": ["env", "host", "level", "service", "source"]}
    within = await loki.get("/labels", params={**window(dataset), "query": '{env="prod"}'})
    assert within.json()["data"] == ["env", "host", "level", "service", "source"]
    none = await loki.get("/labels", params={**window(dataset), "query": '{service="nope"}'})
    assert none.json()["data"] == []
    levels = (await loki.get("/label/level/values", params=window(dataset))).json()["data"]
    assert levels == sorted(LEVELS)
    statuses = (
        await loki.get(
            "/label/http_status/values", params={**window(dataset), "query": '{host="h1"}'}
        )
    ).json()["data"]
    assert statuses == sorted(
        {line.attributes["http.status"] for line in dataset.lines if line.host == "h1"}
    )
    series = (
        await loki.get(
            "/series", params={**window(dataset), "match[]": ['{service="shop"}', '{host="h2"}']}
        )
    ).json()["data"]
    want = {
        tuple(sorted(line.stream().items()))
        for line in dataset.lines
        if line.service == "shop" or line.host == "h2"
    }
    assert {tuple(sorted(s.items())) for s in series} == want


async def test_index_volume_sums_bytes_by_the_selectors_labels(
    loki: httpx.AsyncClient, dataset: Dataset
) -> None:
    response = await loki.get(
        "/index/volume", params={"query": '{service=~".+"}', **window(dataset)}
    )
    data = response.json()["data"]
    assert data["resultType"] == "vector"
    got = {item["metric"]["service"]: int(item["value"][1]) for item in data["result"]}
    want: Counter[str] = Counter()
    for line in dataset.lines:
        want[line.service] += len(line.message.encode())
    assert got == dict(want)
    by_level = await loki.get(
        "/index/volume",
        params={"query": '{service="shop"}', "targetLabels": "level", **window(dataset)},
    )
    levels = {i["metric"]["level"]: int(i["value"][1]) for i in by_level.json()["data"]["result"]}
    want_levels: Counter[str] = Counter()
    for line in dataset.lines:
        if line.service == "shop":
            want_levels[line.level] += len(line.message.encode())
    assert levels == dict(want_levels)


async def test_attribute_keys_are_matched_by_their_sanitized_names(
    logs_app: Any, logs_settings: Any, log_store: Any
) -> None:
    import secrets
    import time

    from shopkeeper.logs.records import LogRecord
    from shopkeeper.logs.store import records_batch
    from tests.logs.conftest import make_key

    tenant = f"k_{secrets.token_hex(4)}"
    now = time.time_ns()
    keys = {"1abc": "digit", "naïve.key": "accent", "a-b": "dash", "a_b": "plain"}
    records = [
        LogRecord(message=f"line {i}", timestamp_ns=now - i * NS, service="keys", attributes={k: v})
        for i, (k, v) in enumerate(keys.items())
    ]
    await log_store.insert(records_batch(records, tenant=tenant, source="ndjson"))
    key = await make_key(logs_settings, scopes=["logs:read"], tenant=tenant)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app),
        base_url="http://test/api/v1/logs/loki/api/v1",
        headers={"Authorization": f"Bearer {key}"},
    ) as http:

        async def lines(query: str) -> list[str]:
            response = await http.get("/query_range", params={"query": query, "since": "5m"})
            assert response.status_code == 200, response.text
            return sorted(v[1] for s in response.json()["data"]["result"] for v in s["values"])

        assert await lines('{service="keys"} | _1abc="digit"') == ["line 0"]
        assert await lines('{service="keys", na_ve_key="accent"}') == ["line 1"]
        # Both `a-b` and `a_b` are label `a_b`: either value matches.
        assert await lines('{service="keys"} | a_b=~"dash|plain"') == ["line 2", "line 3"]
        values = await http.get("/label/_1abc/values", params={"since": "5m"})
        assert values.json()["data"] == ["digit"]
