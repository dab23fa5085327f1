"""InfluxQL: the grammar and syntax tree (lexer.py, parser.py, ast.py) and its execution over
the catalog and the read path (series.py: measurements and tags of sources; where.py: time
bounds and tag conditions; show.py: the SHOW statements; select.py and functions.py: SELECT;
answer.py: the 1.x JSON shape)."""
