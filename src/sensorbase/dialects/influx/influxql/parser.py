"""A recursive-descent parser for the InfluxQL that Grafana and the 1.x clients send.

The grammar (EBNF; keywords case-insensitive; `ident` bare or "double quoted", `string`
'single quoted', `regex` /.../, `duration` an integer with units such as 1h30m or 1700000000000ms):

    query        = statement { ";" statement } [ ";" ] .
    statement    = select | show | "CREATE" "DATABASE" ident .
    select       = "SELECT" field { "," field } "FROM" sources [ "WHERE" expr ]
                   [ "GROUP" "BY" dimension { "," dimension } ] [ fill ]
                   [ "ORDER" "BY" ident [ "ASC" | "DESC" ] ] window [ "tz" "(" string ")" ] .
    field        = expr [ "AS" ident ] .
    sources      = source { "," source } .
    source       = [ ident "." [ ident ] "." | ident "." ] ( ident | regex ) .
    dimension    = "time" "(" duration [ "," duration ] ")" | ident | "*" | regex .
    fill         = "FILL" "(" ( "null" | "none" | "previous" | "linear" | [ "-" ] number ) ")" .
    window       = [ "LIMIT" int ] [ "OFFSET" int ] [ "SLIMIT" int ] [ "SOFFSET" int ] .
    show         = "SHOW" ( "DATABASES"
                          | "RETENTION" "POLICIES" [ "ON" ident ]
                          | "MEASUREMENTS" [ "WITH" "MEASUREMENT" ( "=" ident | "=~" regex ) ]
                                [ "WHERE" expr ] window
                          | "TAG" "KEYS" [ "FROM" sources ] [ "WHERE" expr ] window
                          | "TAG" "VALUES" [ "FROM" sources ] "WITH" "KEY"
                                ( ( "=" | "!=" ) ident | ( "=~" | "!~" ) regex
                                | "IN" "(" ident { "," ident } ")" ) [ "WHERE" expr ] window
                          | "FIELD" "KEYS" [ "FROM" sources ] window
                          | "SERIES" [ "FROM" sources ] [ "WHERE" expr ] window ) .
    expr         = unary { binary_op unary } .     (* by precedence: OR < AND < comparison
                                                      < + - < * / % ; left-associative *)
    binary_op    = "OR" | "AND" | "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "=~" | "!~"
                 | "+" | "-" | "*" | "/" | "%" .
    unary        = "(" expr ")" | "-" ( number | duration ) | number | duration | string
                 | ident "(" [ expr { "," expr } ] ")" | ident [ "::" ident ] | "*" .
                   (* after =~ and !~ the right-hand side is a regex *)

Errors are `ParseError`s worded as InfluxDB words them ("found X, expected Y at line 1, char N").
"""

from __future__ import annotations

from sensorbase.dialects.influx.influxql import ast
from sensorbase.dialects.influx.influxql.ast import PRECEDENCE
from sensorbase.dialects.influx.influxql.lexer import Lexer, ParseError, Token

MAX_QUERY_CHARS = 1_000_000
# Nesting (parentheses, calls) and binary operators per statement: the tree's depth stays far
# below Python's recursion limit for everything that walks it.
MAX_DEPTH = 100
MAX_OPERATORS = 300
_COMPARISONS = frozenset(("=", "!=", "<", "<=", ">", ">=", "=~", "!~"))


def parse(text: str) -> list[ast.Statement]:
    """The statements of a query; ParseError if it is not InfluxQL this server reads."""
    if len(text) > MAX_QUERY_CHARS:
        raise ParseError(f"query longer than {MAX_QUERY_CHARS} characters", 0, text[:0])
    return Parser(text).query()


def parse_expr(text: str) -> ast.Expr:
    parser = Parser(text)
    expr = parser.expr()
    parser.expect_eof()
    return expr


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = Lexer(text)
        self.pos = 0
        self.depth = 0
        self.operators = 0

    # --- tokens ---------------------------------------------------------------------------

    def peek(self) -> Token:
        return self.lexer.token(self.pos)

    def next(self) -> Token:
        token = self.peek()
        self.pos = token.end
        return token

    def fail(self, token: Token, expected: str) -> ParseError:
        return ParseError(f"found {token.describe()}, expected {expected}", token.start, self.text)

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.value in words

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.value in ops

    def keyword(self, *words: str) -> str:
        token = self.next()
        if token.kind != "keyword" or token.value not in words:
            raise self.fail(token, ", ".join(words))
        return str(token.value)

    def op(self, op: str) -> None:
        token = self.next()
        if token.kind != "op" or token.value != op:
            raise self.fail(token, op)

    def ident(self) -> str:
        token = self.next()
        if token.kind != "ident":
            raise self.fail(token, "identifier")
        return str(token.value)

    def regex(self) -> str:
        token = self.lexer.regex(self.pos)
        if token is None:
            raise self.fail(self.peek(), "regex")
        self.pos = token.end
        return str(token.value)

    def integer(self) -> int:
        token = self.next()
        if token.kind != "integer":
            raise self.fail(token, "integer")
        return int(token.value)

    def duration(self) -> ast.Duration:
        token = self.next()
        if token.kind != "duration":
            raise self.fail(token, "duration")
        return ast.Duration(int(token.value))

    def expect_eof(self) -> None:
        token = self.peek()
        if token.kind != "eof":
            raise self.fail(token, "EOF")

    # --- statements -----------------------------------------------------------------------

    def query(self) -> list[ast.Statement]:
        statements: list[ast.Statement] = []
        while True:
            while self.at_op(";"):
                self.next()
            if self.peek().kind == "eof":
                break
            statements.append(self.statement())
            token = self.peek()
            if token.kind != "eof" and not self.at_op(";"):
                raise self.fail(token, ";")
        if not statements:
            raise self.fail(self.peek(), "SELECT, SHOW, CREATE")
        return statements

    def statement(self) -> ast.Statement:
        self.operators = 0
        if self.at_keyword("SELECT"):
            return self.select()
        if self.at_keyword("SHOW"):
            return self.show()
        if self.at_keyword("CREATE"):
            self.next()
            self.keyword("DATABASE")
            return ast.CreateDatabase(self.ident())
        raise self.fail(self.peek(), "SELECT, SHOW, CREATE")

    def select(self) -> ast.Select:
        self.keyword("SELECT")
        fields = [self.field()]
        while self.at_op(","):
            self.next()
            fields.append(self.field())
        self.keyword("FROM")
        sources = self.sources()
        condition = self.where()
        dimensions: list[ast.Dimension] = []
        if self.at_keyword("GROUP"):
            self.next()
            self.keyword("BY")
            dimensions.append(self.dimension())
            while self.at_op(","):
                self.next()
                dimensions.append(self.dimension())
        fill = self.fill() if self.at_keyword("FILL") else None
        descending = False
        if self.at_keyword("ORDER"):
            self.next()
            self.keyword("BY")
            token = self.next()
            if token.kind != "ident" or str(token.value).lower() != "time":
                raise ParseError(
                    "only ORDER BY time supported at this time", token.start, self.text
                )
            if self.at_keyword("ASC", "DESC"):
                descending = self.next().value == "DESC"
        window = self.window()
        tz = None
        token = self.peek()
        if token.kind == "ident" and str(token.value).lower() == "tz":
            self.next()
            self.op("(")
            tz = self.string()
            self.op(")")
        return ast.Select(
            tuple(fields), sources, condition, tuple(dimensions), fill, descending, window, tz
        )

    def string(self) -> str:
        token = self.next()
        if token.kind != "string":
            raise self.fail(token, "string")
        return str(token.value)

    def field(self) -> ast.Field:
        expr = self.expr()
        alias = None
        if self.at_keyword("AS"):
            self.next()
            alias = self.ident()
        return ast.Field(expr, alias)

    def sources(self) -> tuple[ast.Measurement, ...]:
        found = [self.source()]
        while self.at_op(","):
            self.next()
            found.append(self.source())
        return tuple(found)

    def source(self) -> ast.Measurement:
        """Up to three dot-separated parts; only the last may be a regex."""
        parts: list[str | None] = []
        while True:
            pattern = self.lexer.regex(self.pos)
            if pattern is not None:
                self.pos = pattern.end
                return self._measurement(parts, None, str(pattern.value))
            if len(parts) < 2 and self.at_op("."):  # `db..m`: the retention policy left out
                parts.append(None)
                self.next()
                continue
            name = self.ident()
            if len(parts) < 2 and self.at_op("."):
                self.next()
                parts.append(name)
                continue
            return self._measurement(parts, name, None)

    def _measurement(
        self, parts: list[str | None], name: str | None, regex: str | None
    ) -> ast.Measurement:
        if len(parts) == 2:
            if parts[0] is None:
                raise self.fail(self.peek(), "identifier")
            return ast.Measurement(name, regex, parts[0], parts[1])
        if len(parts) == 1:
            if parts[0] is None:  # `.m` is nothing
                raise self.fail(self.peek(), "identifier")
            return ast.Measurement(name, regex, None, parts[0])
        return ast.Measurement(name, regex)

    def where(self) -> ast.Expr | None:
        if not self.at_keyword("WHERE"):
            return None
        self.next()
        return self.expr()

    def dimension(self) -> ast.Dimension:
        if self.at_op("*"):
            self.next()
            return ast.TagDimension(None)
        pattern = self.lexer.regex(self.pos)
        if pattern is not None:
            self.pos = pattern.end
            return ast.TagDimension(None, str(pattern.value))
        token = self.next()
        if token.kind != "ident":
            raise self.fail(token, "identifier, *, regex")
        if str(token.value).lower() == "time" and self.at_op("("):
            self.next()
            interval = self.duration()
            offset = None
            if self.at_op(","):
                self.next()
                negative = self.at_op("-")
                if negative:
                    self.next()
                offset = self.duration()
                if negative:
                    offset = ast.Duration(-offset.ns)
            self.op(")")
            if interval.ns <= 0:
                raise ParseError(
                    "time dimension must have a positive duration", token.start, self.text
                )
            return ast.TimeDimension(interval, offset if offset and offset.ns else None)
        return ast.TagDimension(str(token.value))

    def fill(self) -> ast.Fill:
        self.keyword("FILL")
        self.op("(")
        token = self.next()
        sign = 1
        if token.kind == "op" and token.value == "-":
            sign, token = -1, self.next()
        if token.kind in ("integer", "number"):
            value = token.value
            assert isinstance(value, int | float)
            fill = ast.Fill("number", sign * value)
        elif (
            sign == 1
            and token.kind == "ident"
            and str(token.value).lower() in ("null", "none", "previous", "linear")
        ):
            fill = ast.Fill(str(token.value).lower())  # type: ignore[arg-type]
        else:
            raise self.fail(token, "null, none, previous, linear, number")
        self.op(")")
        return fill

    def window(self) -> ast.Window:
        values = {}
        for word in ("LIMIT", "OFFSET", "SLIMIT", "SOFFSET"):
            if self.at_keyword(word):
                self.next()
                values[word.lower()] = self.integer()
        return ast.Window(**values)

    def show(self) -> ast.Show:
        self.keyword("SHOW")
        word = self.keyword("DATABASES", "RETENTION", "MEASUREMENTS", "TAG", "FIELD", "SERIES")
        if word == "DATABASES":
            return ast.ShowDatabases()
        if word == "RETENTION":
            self.keyword("POLICIES")
            database = None
            if self.at_keyword("ON"):
                self.next()
                database = self.ident()
            return ast.ShowRetentionPolicies(database)
        if word == "MEASUREMENTS":
            return self.show_measurements()
        if word == "FIELD":
            self.keyword("KEYS")
            return ast.ShowFieldKeys(self.show_from(), self.window())
        if word == "SERIES":
            return ast.ShowSeries(self.show_from(), self.where(), self.window())
        kind = self.keyword("KEYS", "VALUES")
        if kind == "KEYS":
            return ast.ShowTagKeys(self.show_from(), self.where(), self.window())
        return self.show_tag_values()

    def show_from(self) -> tuple[ast.Measurement, ...]:
        if not self.at_keyword("FROM"):
            return ()
        self.next()
        return self.sources()

    def show_measurements(self) -> ast.ShowMeasurements:
        measurement = None
        if self.at_keyword("WITH"):
            self.next()
            self.keyword("MEASUREMENT")
            token = self.next()
            if token.kind == "op" and token.value == "=":
                measurement = ast.Binary("=", ast.VarRef("name"), ast.VarRef(self.ident()))
            elif token.kind == "op" and token.value == "=~":
                measurement = ast.Binary("=~", ast.VarRef("name"), ast.Regex(self.regex()))
            else:
                raise self.fail(token, "=, =~")
        return ast.ShowMeasurements(measurement, self.where(), self.window())

    def show_tag_values(self) -> ast.ShowTagValues:
        sources = self.show_from()
        self.keyword("WITH")
        self.keyword("KEY")
        token = self.next()
        keys: tuple[str, ...] = ()
        regex = None
        if token.kind == "keyword" and token.value == "IN":
            self.op("(")
            names = [self.ident()]
            while self.at_op(","):
                self.next()
                names.append(self.ident())
            self.op(")")
            op, keys = "IN", tuple(names)
        elif token.kind == "op" and token.value in ("=", "!="):
            op, keys = str(token.value), (self.ident(),)
        elif token.kind == "op" and token.value in ("=~", "!~"):
            op, regex = str(token.value), self.regex()
        else:
            raise self.fail(token, "=, !=, =~, !~, IN")
        return ast.ShowTagValues(op, keys, regex, sources, self.where(), self.window())

    # --- expressions ----------------------------------------------------------------------

    def expr(self, min_precedence: int = 1) -> ast.Expr:
        """Precedence climbing: operators binding at least `min_precedence`, left-associative."""
        lhs = self.unary()
        while True:
            token = self.peek()
            op = self._binary_op(token)
            if op is None or PRECEDENCE[op] < min_precedence:
                return lhs
            self.next()
            self.operators += 1
            if self.operators > MAX_OPERATORS:
                raise ParseError(
                    f"more than {MAX_OPERATORS} operators in a statement", token.start, self.text
                )
            if op in ("=~", "!~"):
                rhs: ast.Expr = ast.Regex(self.regex())
            else:
                rhs = self.expr(PRECEDENCE[op] + 1)
            lhs = ast.Binary(op, lhs, rhs)

    @staticmethod
    def _binary_op(token: Token) -> str | None:
        if token.kind == "keyword" and token.value in ("AND", "OR"):
            return str(token.value)
        if token.kind == "op" and token.value in PRECEDENCE:
            return str(token.value)
        return None

    def unary(self) -> ast.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("expression nested too deeply", self.pos, self.text)
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> ast.Expr:
        token = self.next()
        if token.kind == "op" and token.value == "(":
            inner = self.expr()
            self.op(")")
            return inner
        if token.kind == "op" and token.value == "-":
            operand = self.next()
            if operand.kind in ("integer", "number"):
                assert isinstance(operand.value, int | float)
                return ast.Number(-operand.value)
            if operand.kind == "duration":
                return ast.Duration(-int(operand.value))
            raise self.fail(operand, "number, duration")
        if token.kind == "op" and token.value == "*":
            return ast.Wildcard()
        if token.kind in ("integer", "number"):
            assert isinstance(token.value, int | float)
            return ast.Number(token.value)
        if token.kind == "duration":
            return ast.Duration(int(token.value))
        if token.kind == "string":
            return ast.String(str(token.value))
        if token.kind == "ident":
            name = str(token.value)
            if self.at_op("(") and self.text[token.start] != '"':
                return self.call(name.lower())
            if self.at_op("::"):
                self.next()
                kind = self.next()
                if kind.kind not in ("ident", "keyword") or str(kind.value).lower() not in (
                    "field",
                    "tag",
                    "float",
                    "integer",
                ):
                    raise self.fail(kind, "field, tag, float, integer")
                return ast.VarRef(name, str(kind.value).lower())
            return ast.VarRef(name)
        raise self.fail(token, "identifier, string, number, bool")

    def call(self, name: str) -> ast.Call:
        self.op("(")
        args: list[ast.Expr] = []
        if not self.at_op(")"):
            args.append(self.expr())
            while self.at_op(","):
                self.next()
                args.append(self.expr())
        self.op(")")
        return ast.Call(name, tuple(args))
