"""The InfluxQL parser: the queries Grafana and the 1.x clients send, InfluxDB's error wording,
and two properties: every syntax tree prints as InfluxQL that parses back to it, and any text
either parses or fails with a ParseError (never another exception)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.dialects.influx.influxql import ast
from sensorbase.dialects.influx.influxql.lexer import KEYWORDS, ParseError
from sensorbase.dialects.influx.influxql.parser import MAX_DEPTH, MAX_OPERATORS, parse, parse_expr
from sensorbase.dialects.influx.influxql.where import parse_instant_ns, split

HOUR_NS = 3_600_000_000_000


def one(text: str) -> ast.Statement:
    statements = parse(text)
    assert len(statements) == 1
    return statements[0]


def test_grafana_query_editor_shape() -> None:
    stmt = one(
        'SELECT mean("value") FROM "autogen"."cpu" WHERE ("host" =~ /^(a|b)$/) AND '
        'time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(30m), "host" '
        "fill(null) ORDER BY time DESC LIMIT 100 SLIMIT 5"
    )
    assert isinstance(stmt, ast.Select)
    assert stmt.fields == (ast.Field(ast.Call("mean", (ast.VarRef("value"),))),)
    assert stmt.sources == (ast.Measurement("cpu", retention="autogen"),)
    assert stmt.dimensions == (
        ast.TimeDimension(ast.Duration(30 * 60 * 10**9)),
        ast.TagDimension("host"),
    )
    assert stmt.fill == ast.Fill("null")
    assert stmt.descending
    assert stmt.window == ast.Window(limit=100, slimit=5)
    found = split(stmt.condition, 0, set())
    assert (found.start_ns, found.end_ns) == (1_700_000_000 * 10**9, 1_700_003_600 * 10**9 + 1)
    assert found.tags == ast.Binary("=~", ast.VarRef("host"), ast.Regex("^(a|b)$"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SHOW DATABASES", ast.ShowDatabases()),
        ("show measurements limit 1", ast.ShowMeasurements(window=ast.Window(limit=1))),
        ('SHOW RETENTION POLICIES ON "farm"', ast.ShowRetentionPolicies("farm")),
        ("SHOW TAG KEYS FROM cpu", ast.ShowTagKeys((ast.Measurement("cpu"),))),
        ('SHOW TAG VALUES WITH KEY = "host"', ast.ShowTagValues("=", ("host",))),
        (
            'SHOW TAG VALUES FROM "cpu" WITH KEY IN ("host", region) WHERE region = \'eu\'',
            ast.ShowTagValues(
                "IN",
                ("host", "region"),
                sources=(ast.Measurement("cpu"),),
                condition=ast.Binary("=", ast.VarRef("region"), ast.String("eu")),
            ),
        ),
        ("SHOW TAG VALUES WITH KEY =~ /ho.*/", ast.ShowTagValues("=~", regex="ho.*")),
        ("SHOW FIELD KEYS FROM /c.u/", ast.ShowFieldKeys((ast.Measurement(regex="c.u"),))),
        (
            "SHOW SERIES FROM cpu WHERE host = 'a' LIMIT 2 OFFSET 1",
            ast.ShowSeries(
                (ast.Measurement("cpu"),),
                ast.Binary("=", ast.VarRef("host"), ast.String("a")),
                ast.Window(limit=2, offset=1),
            ),
        ),
        (
            "SHOW MEASUREMENTS WITH MEASUREMENT =~ /cp/",
            ast.ShowMeasurements(ast.Binary("=~", ast.VarRef("name"), ast.Regex("cp"))),
        ),
    ],
)
def test_show_statements(text: str, expected: ast.Statement) -> None:
    assert one(text) == expected


def test_sources_and_several_statements() -> None:
    statements = parse('SELECT * FROM "db".."m", db.rp./c.*/, rp.x; SELECT value FROM y;')
    first = statements[0]
    assert isinstance(first, ast.Select)
    assert first.sources == (
        ast.Measurement("m", database="db"),
        ast.Measurement(regex="c.*", database="db", retention="rp"),
        ast.Measurement("x", retention="rp"),
    )
    assert len(statements) == 2


def test_expressions_and_literals() -> None:
    assert parse_expr("time > now() - 6h") == ast.Binary(
        ">", ast.VarRef("time"), ast.Binary("-", ast.Call("now"), ast.Duration(6 * HOUR_NS))
    )
    assert parse_expr("1h30m") == ast.Duration(90 * 60 * 10**9)
    assert parse_expr("1700000000000ms") == ast.Duration(1_700_000_000_000 * 10**6)
    assert parse_expr("'it\\'s'") == ast.String("it's")
    assert parse_expr('"a ""b"""'.replace('""', '\\"')) == ast.VarRef('a "b"')
    assert parse_expr("value::field * 2 + 1") == ast.Binary(
        "+", ast.Binary("*", ast.VarRef("value", "field"), ast.Number(2)), ast.Number(1)
    )
    assert parse_expr("a = 'x' OR b = 'y' AND c <> 'z'") == ast.Binary(
        "OR",
        ast.Binary("=", ast.VarRef("a"), ast.String("x")),
        ast.Binary(
            "AND",
            ast.Binary("=", ast.VarRef("b"), ast.String("y")),
            ast.Binary("!=", ast.VarRef("c"), ast.String("z")),
        ),
    )
    assert parse_expr("x =~ /a\\/b/") == ast.Binary("=~", ast.VarRef("x"), ast.Regex("a/b"))
    assert parse_expr("-- a comment\n/* another */ 1.5") == ast.Number(1.5)


@pytest.mark.parametrize(
    ("text", "fill"),
    [
        ("fill(none)", ast.Fill("none")),
        ("fill(previous)", ast.Fill("previous")),
        ("fill(linear)", ast.Fill("linear")),
        ("fill(0)", ast.Fill("number", 0)),
        ("fill(-2.5)", ast.Fill("number", -2.5)),
    ],
)
def test_fill(text: str, fill: ast.Fill) -> None:
    stmt = one(f"SELECT max(v) FROM m WHERE time > 0 GROUP BY time(1m, 15s) {text}")
    assert isinstance(stmt, ast.Select)
    assert stmt.fill == fill
    assert stmt.dimensions == (
        ast.TimeDimension(ast.Duration(60 * 10**9), ast.Duration(15 * 10**9)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELEC value FROM m", "found SELEC, expected SELECT, SHOW, CREATE at line 1, char 1"),
        (
            "SELECT FROM m",
            "found FROM, expected identifier, string, number, bool at line 1, char 8",
        ),
        ("SELECT v FROM", "found EOF, expected identifier at line 1, char 14"),
        ("SELECT v FROM m WHERE", "found EOF, expected identifier, string, number, bool"),
        ("SELECT v FROM m fill(sideways)", "found sideways, expected null, none, previous"),
        ("SELECT v FROM m ORDER BY host", "only ORDER BY time supported at this time"),
        ("SELECT v FROM m WHERE host =~ 'a'", "found a, expected regex"),
        ("SELECT v FROM m LIMIT x", "found x, expected integer"),
        ("SELECT 'oops FROM m", "unterminated string"),
        ("SELECT v FROM m\nWHERE x = 1 2", "found 2, expected ; at line 2, char 13"),
        ("SHOW TAG VALUES", "found EOF, expected WITH"),
        ("", "found EOF, expected SELECT, SHOW"),
        (";;", "found EOF, expected SELECT, SHOW"),
        ("SELECT 99999999999999999999 FROM m", "unable to parse integer"),
        ("SELECT v FROM m GROUP BY time(0s)", "time dimension must have a positive duration"),
    ],
)
def test_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_limits_on_nesting_and_operators() -> None:
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("SELECT " + "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1) + " FROM m")
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("SELECT " + "f(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1) + " FROM m")
    with pytest.raises(ParseError, match="operators"):
        parse("SELECT v FROM m WHERE " + " OR ".join(["a = 'x'"] * (MAX_OPERATORS + 1)))
    parse("SELECT v FROM m WHERE " + " OR ".join(["a = 'x'"] * (MAX_OPERATORS // 2)))


def test_instants() -> None:
    assert parse_instant_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert parse_instant_ns("2020-01-01 00:00:00") == 1_577_836_800 * 10**9
    assert parse_instant_ns("2020-01-01") == 1_577_836_800 * 10**9
    assert parse_instant_ns("2020-01-01T01:00:00+01:00") == 1_577_836_800 * 10**9


# --- properties -------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=8).filter(lambda s: "\x00" not in s)
bare = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s.upper() not in KEYWORDS
)
patterns = st.text(max_size=8).filter(lambda s: not s.endswith("\\"))
numbers = st.one_of(
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
durations = st.integers(-(2**60), 2**60).map(ast.Duration)

leaf_exprs = st.one_of(
    st.builds(ast.VarRef, names, st.sampled_from([None, "field", "tag"])),
    numbers.map(ast.Number),
    st.text(max_size=8).map(ast.String),
    durations,
    st.builds(ast.Call, st.just("now")),
)


def _extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = ["OR", "AND", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]
    return st.one_of(
        st.builds(ast.Binary, st.sampled_from(ops), children, children),
        st.builds(ast.Binary, st.sampled_from(["=~", "!~"]), children, patterns.map(ast.Regex)),
        st.builds(ast.Call, bare, st.lists(children, max_size=2).map(tuple)),
    )


exprs = st.recursive(leaf_exprs, _extend, max_leaves=8)
measurements = st.one_of(
    st.builds(ast.Measurement, names),
    st.builds(ast.Measurement, st.none(), patterns),
    st.builds(ast.Measurement, names, st.none(), names, st.one_of(st.none(), names)),
    st.builds(ast.Measurement, names, st.none(), st.none(), names),
)
sources = st.lists(measurements, min_size=1, max_size=2).map(tuple)
windows = st.builds(ast.Window, *[st.integers(0, 2**31)] * 4)
dimensions = st.one_of(
    st.builds(
        ast.TimeDimension,
        st.integers(1, 2**60).map(ast.Duration),
        st.one_of(st.none(), st.integers(1, 2**40).map(ast.Duration)),
    ),
    st.builds(ast.TagDimension, st.one_of(st.none(), names)),
    st.builds(ast.TagDimension, st.none(), patterns),
)
fills = st.one_of(
    st.sampled_from(["null", "none", "previous", "linear"]).map(ast.Fill),
    numbers.map(lambda n: ast.Fill("number", n)),
)
selects = st.builds(
    ast.Select,
    st.lists(
        st.builds(ast.Field, st.one_of(exprs, st.just(ast.Wildcard())), st.none() | names),
        min_size=1,
        max_size=3,
    ).map(tuple),
    sources,
    st.none() | exprs,
    st.lists(dimensions, max_size=2).map(tuple),
    st.none() | fills,
    st.booleans(),
    windows,
    st.none() | st.text(max_size=5),
)
limited = st.builds(ast.Window, st.integers(0, 100), st.integers(0, 100))
shows = st.one_of(
    st.just(ast.ShowDatabases()),
    st.builds(ast.ShowRetentionPolicies, st.none() | names),
    st.builds(
        ast.ShowMeasurements,
        st.none()
        | names.map(lambda n: ast.Binary("=", ast.VarRef("name"), ast.VarRef(n)))
        | patterns.map(lambda p: ast.Binary("=~", ast.VarRef("name"), ast.Regex(p))),
        st.none() | exprs,
        limited,
    ),
    st.builds(ast.ShowTagKeys, st.just(()) | sources, st.none() | exprs, limited),
    st.builds(
        ast.ShowTagValues,
        st.sampled_from(["=", "!="]),
        names.map(lambda n: (n,)),
        st.none(),
        st.just(()) | sources,
        st.none() | exprs,
        limited,
    ),
    st.builds(
        ast.ShowTagValues,
        st.just("IN"),
        st.lists(names, min_size=1, max_size=3).map(tuple),
        st.none(),
        st.just(()) | sources,
    ),
    st.builds(ast.ShowTagValues, st.sampled_from(["=~", "!~"]), st.just(()), patterns),
    st.builds(ast.ShowFieldKeys, st.just(()) | sources, limited),
    st.builds(ast.ShowSeries, st.just(()) | sources, st.none() | exprs, limited),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(selects, shows, st.builds(ast.CreateDatabase, names)), min_size=1, max_size=3
    )
)
def test_printed_trees_parse_back(statements: list[ast.Statement]) -> None:
    text = ast.format_query(statements)
    assert parse(text) == statements, text


VOCABULARY = [
    "SELECT", "FROM", "WHERE", "GROUP BY", "time(", "fill(", "SHOW", "TAG", "VALUES", "WITH",
    "KEY", "=", "=~", "!~", "/a/", "'s'", '"q"', "(", ")", ",", ";", "AND", "OR", "now()", "-",
    "6h", "1700000000000ms", "1.5", "*", "LIMIT", "10", "mean(value)", "::", ".", "/*", "\\",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60), st.lists(st.sampled_from(VOCABULARY), max_size=15).map(" ".join)
    )
)
def test_any_text_parses_or_fails_with_a_parse_error(text: str) -> None:
    try:
        statements = parse(text)
    except ParseError:
        return
    assert parse(ast.format_query(statements)) == statements
