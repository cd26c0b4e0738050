"""Generates CloudTrail log files as CloudTrail delivers them to S3 (gzipped {"Records": [...]})
from the records under tests/detections/samples, then times `ctguard test` over them.

The records are the samples' own (those that fire a detection, their look-alikes, the known
gaps), each copy given a fresh eventID and time, so the mix is heavy on records that reach deep
into the patterns: a harder load than a real account's, where most calls are reads that fail the
first field test.
"""

import argparse
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "ctguard"


def sample_records():
    records = []
    for path in sorted((ROOT / "tests" / "detections" / "samples").glob("*.json")):
        sample = json.loads(path.read_text())
        records += sample["fires"]
        records += [s["record"] for s in sample["silent"]]
        records += [g["record"] for g in sample.get("gaps", [])]
    return records


def generate(directory, total, per_file):
    pool = sample_records()
    written = 0
    file_number = 0
    while written < total:
        batch = []
        for i in range(min(per_file, total - written)):
            record = dict(pool[(written + i) % len(pool)])
            record["eventID"] = f"00000000-0000-4000-8000-{written + i:012d}"
            batch.append(record)
        name = directory / f"123456789012_CloudTrail_us-east-1_20261127T{file_number:06d}Z_bench.json.gz"
        with gzip.open(name, "wt", compresslevel=6) as f:
            json.dump({"Records": batch}, f)
        written += len(batch)
        file_number += 1
    return file_number, sum(p.stat().st_size for p in directory.iterdir())


def replay(directory, jobs):
    started = time.perf_counter()
    done = subprocess.run(
        [BINARY, "test", "--summary", "--format", "json", "--jobs", str(jobs), str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    summary = json.loads(done.stdout)["summary"]
    return seconds, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=5_000, help="records per log file")
    parser.add_argument("--runs", type=int, default=3, help="best of N")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        files, size = generate(directory, args.records, args.per_file)
        print(f"{args.records:,} records in {files} gzipped log files ({size / 1e6:.0f} MB), "
              f"{len(sample_records())} distinct sample records, {cores} cores")
        print(f"{'workers':>8} {'seconds':>8} {'records/s':>12} {'per worker':>12} {'matched':>9}")
        for jobs in sorted({1, cores}):
            best = None
            for _ in range(args.runs):
                seconds, summary = replay(directory, jobs)
                assert summary["records"] == args.records, summary
                best = seconds if best is None else min(best, seconds)
            rate = args.records / best
            print(f"{jobs:>8} {best:>8.2f} {rate:>12,.0f} {rate / jobs:>12,.0f} {summary['matched']:>9,}")


if __name__ == "__main__":
    sys.exit(main())
