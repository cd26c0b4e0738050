"""Benchmark driver for scripts/bench: times ctguard runs against the emulator and counts the
API calls each run makes, by service operation, from the harness's request log."""

import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CTGUARD = os.path.join(ROOT, "target", "release", "ctguard")
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
           "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1",
           "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1"]
PLAN_RUNS = 9
READS = ("get", "list", "describe", "head", "lookup")


class Emulator:
    def __enter__(self):
        self.proc = subprocess.Popen(
            [os.path.join(ROOT, ".venv", "bin", "python"), os.path.join(ROOT, "tests", "emulator", "server.py"),
             "--host", "127.0.0.1", "--port", "0", "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            sys.exit(f"the emulator did not start: {line!r}")
        self.url = f"http://127.0.0.1:{line.split()[1]}"
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()

    def requests(self):
        with urllib.request.urlopen(f"{self.url}/_ctguard/requests") as r:
            return json.load(r)

    def clear(self):
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_ctguard/requests/clear", method="POST")).close()


def operation(req):
    if req["operation"]:
        return req["operation"].rsplit(".", 1)[-1]
    return f"S3 {req['method']} {'?' + req['query'].split('=')[0] if req['query'] else ''}".strip()


def mutates(req):
    op = (req["operation"].rsplit(".", 1)[-1] or req["path"].lstrip("/")).lower()
    if not req["operation"] and req["method"] in ("GET", "HEAD"):
        return False
    return not op.startswith(READS)


def run(emu, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=emu.url, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    emu.clear()
    start = time.perf_counter()
    done = subprocess.run([CTGUARD, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"ctguard {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, emu.requests()


def profile(tmp, regions):
    subprocess.run([CTGUARD, "profiles", "export", "ai-agent-guard", tmp], check=True, capture_output=True)
    path = os.path.join(tmp, "profiles", "ai-agent-guard.toml")
    text = open(path).read().replace('regions = "all-enabled"', f"regions = {json.dumps(regions)}")
    open(path, "w").write(text)
    return path


def bench(n):
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        p = profile(tmp, REGIONS[:n])
        apply_s, apply_reqs = run(emu, "apply", "--auto-approve", "-p", p)
        again_s, again_reqs = run(emu, "apply", "--auto-approve", "-p", p)
        plans = [run(emu, "plan", "--detailed-exitcode", "-p", p) for _ in range(PLAN_RUNS)]
        plan_s = statistics.median(t for t, _ in plans)
        plan_reqs = plans[-1][1]
        resources = json.loads(subprocess.run(
            [CTGUARD, "plan", "--format", "json", "-p", p],
            env={**os.environ, "AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b", "AWS_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": emu.url}, capture_output=True, text=True).stdout)["resource_changes"]
        return {
            "regions": n,
            "resources": len(resources),
            "apply_s": apply_s,
            "apply_calls": len(apply_reqs),
            "apply_writes": sum(map(mutates, apply_reqs)),
            "again_s": again_s,
            "again_writes": sum(map(mutates, again_reqs)),
            "plan_s": plan_s,
            "plan_calls": len(plan_reqs),
            "plan_by_op": collections.Counter(map(operation, plan_reqs)),
        }


def version_ms():
    times = []
    for _ in range(20):
        start = time.perf_counter()
        subprocess.run([CTGUARD, "--version"], check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    results = [bench(n) for n in (1, 4, 17)]
    print(f"ctguard --version: {version_ms():.1f} ms (median of 20)\n")
    print("| regions | resources | apply from empty | calls (writes) | second apply | writes | plan, converged (median of 9) | plan calls |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['regions']} | {r['resources']} | {r['apply_s']:.2f} s | {r['apply_calls']} ({r['apply_writes']}) "
              f"| {r['again_s']:.2f} s | {r['again_writes']} | {r['plan_s']:.2f} s | {r['plan_calls']} |")
    one, all_ = results[0], results[-1]
    print(f"\nplan over 17 regions / plan over 1 region: {all_['plan_s'] / one['plan_s']:.2f}x")
    print("\nplan calls by operation, 17 regions:")
    for op, n in sorted(all_["plan_by_op"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:5}  {op}")


if __name__ == "__main__":
    main()
