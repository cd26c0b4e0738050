"""Times `ctguard test s3://BUCKET/PREFIX --since 2h` against the local emulator (moto, behind
no proxy), and `ctguard test DIR` over the same files on disk.

The log files are bench-detections.py's: CloudTrail's own gzipped {"Records": [...]} files built
from the sample records, laid out as a trail delivers them
(PREFIX/AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…json.gz) and named as delivered within the
last hour. The emulator runs on the same machine, so the S3 figure is bounded by a local Python
server's throughput, not a network's.
"""

import argparse
import datetime as dt
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import boto3

# The log files are generated as bench-detections.py generates them.
spec = importlib.util.spec_from_file_location("bench_detections", pathlib.Path(__file__).with_name("bench-detections.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

ROOT = bench.ROOT
BINARY = bench.BINARY
BUCKET = "ctguard-bench-lookback"
ACCOUNT = "123456789012"


def start_emulator():
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "tests/emulator/server.py"), "--port", "0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


def upload(endpoint, directory, regions):
    """Uploads the generated files under the trail layout, spread over `regions`, delivered in
    the last hour; returns (objects, bytes)."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    s3.create_bucket(Bucket=BUCKET)
    now = dt.datetime.now(dt.timezone.utc)
    files = sorted(directory.iterdir())
    total = 0
    for i, path in enumerate(files):
        region = regions[i % len(regions)]
        at = now - dt.timedelta(seconds=30 + (len(files) - i) * 3600 / (len(files) + 1))
        day = at.strftime("%Y/%m/%d")
        stamp = at.strftime("%Y%m%dT%H%MZ")
        key = f"cloudtrail/AWSLogs/{ACCOUNT}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{stamp}_{i:06d}.json.gz"
        body = path.read_bytes()
        total += len(body)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return len(files), total


def run(args, env):
    started = time.perf_counter()
    done = subprocess.run([BINARY, "test", "--summary", "--format", "json", *args], check=True,
                          capture_output=True, text=True, env=env)
    return time.perf_counter() - started, json.loads(done.stdout)["summary"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--per-file", type=int, default=5_000, help="records per log file")
    parser.add_argument("--regions", type=int, default=4, help="regions the files are spread over")
    parser.add_argument("--runs", type=int, default=3, help="best of N")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "sa-east-1"][:args.regions]
    emulator, endpoint = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            directory = pathlib.Path(tmp)
            files, size = bench.generate(directory, args.records, args.per_file)
            upload(endpoint, directory, regions)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                       AWS_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
            print(f"{args.records:,} records in {files} gzipped log files ({size / 1e6:.0f} MB) over "
                  f"{len(regions)} regions, {cores} cores, emulator on the same machine")
            print(f"{'source':>8} {'seconds':>8} {'records/s':>12} {'MB/s (gz)':>10}")
            sources = [("local", [str(directory)]), ("s3", [f"s3://{BUCKET}/cloudtrail", "--since", "2h"])]
            for name, argv in sources:
                best = None
                for _ in range(args.runs):
                    seconds, summary = run(argv, env)
                    assert summary["records"] == args.records, summary
                    best = seconds if best is None else min(best, seconds)
                print(f"{name:>8} {best:>8.2f} {args.records / best:>12,.0f} {size / 1e6 / best:>10.1f}")
    finally:
        emulator.stdin.close()
        emulator.wait()


if __name__ == "__main__":
    sys.exit(main())
