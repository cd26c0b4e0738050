"""Times `ctguard test` and DuckDB over the emitted hunt SQL on the same records; see bench-hunt."""

import json
import os
import subprocess
import sys
import time

import duckdb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "hunt"))
from duckdb_query import MACROS  # noqa: E402  (the same macros the agreement test uses)

work, copies = sys.argv[1], int(sys.argv[2])
records = [line for line in open(os.path.join(work, "records.jsonl")) if line.strip()]
big = os.path.join(work, "big.jsonl")
with open(big, "w") as out:
    for i in range(copies):
        for line in records:
            record = json.loads(line)
            record["eventID"] = f"{record['eventID']}#{i}"
            out.write(json.dumps(record) + "\n")
total = len(records) * copies
print(f"{total} records ({len(records)} sample records x {copies}), profile ai-agent-guard")

binary = os.path.join("target", "release", "ctguard")
for jobs in (1, 2):
    best = None
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([binary, "test", "--summary", "-j", str(jobs), big], check=True, capture_output=True)
        took = time.perf_counter() - started
        best = took if best is None else min(best, took)
    print(f"ctguard test  -j {jobs}: {best:6.2f} s  {total / best:>10,.0f} records/s")

columns = json.load(open(os.path.join(work, "columns.json")))
sql = open(os.path.join(work, "query.sql")).read().replace("AS ARRAY(JSON))", "AS JSON[])")
spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
for threads in (1, 2):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    for macro in MACROS:
        con.execute(macro)
    con.execute(f"CREATE TABLE base AS SELECT * FROM read_json(?, format = 'newline_delimited', columns = {{{spec}}})", [os.path.join(work, "rows.jsonl")])
    con.execute(f"CREATE TABLE cloudtrail AS SELECT * REPLACE (eventid || '#' || CAST(i AS VARCHAR) AS eventid) FROM base, range({copies}) AS r(i)")
    best, rows = None, 0
    for _ in range(3):
        started = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        took = time.perf_counter() - started
        best = took if best is None else min(best, took)
    print(f"DuckDB SQL    threads {threads}: {best:6.2f} s  {total / best:>10,.0f} records/s  ({rows} rows)")
