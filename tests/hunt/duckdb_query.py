#!/usr/bin/env python3
"""Runs a `ctguard hunt --emit-sql` query on DuckDB, over rows shaped like the CloudTrail table.

    duckdb_query.py --columns COLUMNS.json --rows ROWS.jsonl --sql QUERY.sql --table NAME

COLUMNS.json maps each column of the table to its DuckDB type (the Rust test writes it from
ctguard's table schema); ROWS.jsonl holds one table row per line. Prints each result row as a
JSON array on stdout, and the load and query times on stderr as `timing load=S query=S rows=N`.

Athena is Trino; DuckDB differs in a few names, bridged here and nowhere else:
  - json_extract_scalar(j, p)  -> json_extract_string(j, p)   (macro)
  - json_format(j)             -> CAST(j AS VARCHAR)           (macro: DuckDB keeps JSON as text)
  - any_match(list, x -> p)    -> COALESCE(list_bool_or(list_transform(list, x -> p)), FALSE)
                                  (macro; Trino's any_match is FALSE on an empty array)
  - element_at(list, i)        -> list[i]                      (macro; NULL past the end, as Trino)
  - ARRAY(JSON)                -> JSON[]                       (the one type name spelled differently)
  - `x -> body` lambdas        -> allowed with lambda_syntax = 'ENABLE_SINGLE_ARROW'
"""

import argparse
import json
import sys
import time

import duckdb

MACROS = [
    "CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)",
    "CREATE MACRO json_format(j) AS CAST(j AS VARCHAR)",
    "CREATE MACRO any_match(l, f) AS COALESCE(list_bool_or(list_transform(l, f)), FALSE)",
    "CREATE MACRO element_at(l, i) AS l[i]",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", required=True)
    parser.add_argument("--rows", required=True)
    parser.add_argument("--sql", required=True)
    parser.add_argument("--table", required=True)
    args = parser.parse_args()

    with open(args.columns) as f:
        columns = json.load(f)
    with open(args.sql) as f:
        sql = f.read().replace("AS ARRAY(JSON))", "AS JSON[])")

    con = duckdb.connect()
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    for macro in MACROS:
        con.execute(macro)
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    started = time.perf_counter()
    con.execute(
        f"CREATE TABLE {args.table} AS SELECT * FROM read_json(?, format = 'newline_delimited', columns = {{{spec}}})",
        [args.rows],
    )
    loaded = time.perf_counter()
    rows = con.execute(sql).fetchall()
    done = time.perf_counter()
    for row in rows:
        print(json.dumps(list(row)))
    print(f"timing load={loaded - started:.6f} query={done - loaded:.6f} rows={len(rows)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
