"""`expand` writes each macro as the ClickHouse plugin's Go code does (pkg/macros), and refuses
what the dashboards must not rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airis.app.grafana.macros import expand

START = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)  # 1772366400.25
END = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)  # 1772452800


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__fromTime", "toDateTime(1772366400)"),
        ("$__toTime", "toDateTime(1772452800)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1772366400250)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1772452800000)"),
        ("$__timeFilter(ts)", "ts >= toDateTime(1772366400) AND ts <= toDateTime(1772452800)"),
        (
            "$__timeFilter_ms(ts)",
            "ts >= fromUnixTimestamp64Milli(1772366400250) "
            "AND ts <= fromUnixTimestamp64Milli(1772452800000)",
        ),
        ("$__dateFilter(d)", "d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')"),
        (
            "$__dt(d, t)",
            "(d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')) AND "
            "(t >= toDateTime(1772366400) AND t <= toDateTime(1772452800))",
        ),
        ("$__timeInterval(ts)", "toStartOfInterval(toDateTime(ts), INTERVAL 90 second)"),
        (
            "$__timeInterval_ms(ts)",
            "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 90000 millisecond)",
        ),
        ("$__interval_s", "90"),
    ],
)
def test_each_macro_expands_as_the_plugin_does(sql, expected):
    assert expand(sql, START, END, 90) == expected


def test_an_interval_under_a_second_is_one_second_as_in_the_plugin():
    assert expand("$__interval_s", START, END, 0.2) == "1"
    assert "INTERVAL 200 millisecond" in expand("$__timeInterval_ms(ts)", START, END, 0.2)


def test_variables_are_replaced_before_the_macros_and_quoted_values_are_escaped():
    sql = "WHERE $__timeFilter(ts) AND s = '${one}' AND s IN (${many:singlequote})"
    out = expand(sql, START, END, 60, {"one": ["api"], "many": ["a", "o'brien"]})
    assert out.endswith("AND s = 'api' AND s IN ('a','o\\'brien')")


@pytest.mark.parametrize(
    ("sql", "variables"),
    [
        ("$__rate(x)", {}),  # not a macro of this plugin
        ("${missing}", {}),
        ("${many}", {"many": ["a", "b"]}),  # many values need an explicit format
        ("${one:csv}", {"one": ["a"]}),  # a format the checks never ran
        ("$one", {"one": ["a"]}),
        ("$__timeFilter(a, b)", {}),
    ],
)
def test_what_the_dashboards_must_not_rely_on_is_refused(sql, variables):
    with pytest.raises(ValueError):
        expand(sql, START, END, 60, variables)
