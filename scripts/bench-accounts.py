"""Benchmark driver for scripts/bench-accounts.

Makes an organization in the emulator (behind the counting proxy, no faults): the management
account and 20 members, each made by CreateAccount and so holding OrganizationAccountAccessRole.
Applies the full ai-agent-guard profile (one region) in every member with one
`apply --accounts`, then times `plan --accounts ID,...` over the first 1, 5 and 20 members
(median of --runs), counting the calls at the proxy; calls per account leave out the
Organizations listing. With --latency-ms the proxy delays every call, as a real endpoint does:
the emulator alone answers in about a millisecond and, one Python process on a small machine,
is CPU-bound, which caps what concurrency across accounts can show without latency.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the emulator, proxy and environment helpers)

ROOT = bench.ROOT
MEMBERS = 20


def export_profile(binary, tmp):
    subprocess.run([binary, "profiles", "export", "ai-agent-guard", tmp], check=True, capture_output=True)
    path = os.path.join(tmp, "profiles", "ai-agent-guard.toml")
    text = open(path).read().replace('regions = "all-enabled"', 'regions = ["us-east-1"]')
    open(path, "w").write(text)
    return path


def organization(emu):
    import boto3

    kw = dict(endpoint_url=emu.url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
    org = boto3.client("organizations", **kw)
    org.create_organization(FeatureSet="ALL")
    ids = []
    for i in range(MEMBERS):
        status = org.create_account(Email=f"member{i}@example.com", AccountName=f"member-{i}")
        ids.append(status["CreateAccountStatus"]["AccountId"])
    return ids


def run(emu, binary, args, what):
    emu.clear()
    start = time.perf_counter()
    done = subprocess.run([binary, *args], env=bench.aws_env(emu), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, emu.requests()


def measure(emu, binary, profile, ids, counts, runs):
    rows = []
    for n in counts:
        chosen = ",".join(ids[:n])
        times, calls = [], []
        for _ in range(runs):
            elapsed, reqs = run(emu, binary, ["plan", "-p", profile, "--accounts", chosen, "--detailed-exitcode"],
                                f"plan over {n} accounts")
            times.append(elapsed)
            calls.append(len(reqs))
        org_calls = sum(1 for r in reqs if r["service"] in ("organizations",))
        rows.append({"accounts": n, "wall_s": statistics.median(times), "runs": times,
                     "calls": calls[-1], "calls_per_account": (calls[-1] - org_calls) / n})
    base = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_first"] = row["wall_s"] / base
    return rows


def main():
    parser = argparse.ArgumentParser(description="Benchmark plan --accounts over emulated accounts.")
    parser.add_argument("--accounts", default="1,5,20", help="account counts, comma-separated (at most 20)")
    parser.add_argument("--latency-ms", type=float, default=50,
                        help="latency the proxy adds to every call for the second set (0: skip it)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (the median is reported)")
    parser.add_argument("--debug", action="store_true", help="time target/debug/ctguard instead of the release build")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    counts = [int(n) for n in args.accounts.split(",") if n]
    if max(counts) > MEMBERS:
        sys.exit(f"--accounts: at most {MEMBERS}")
    binary = os.path.join(ROOT, "target", "debug" if args.debug else "release", "ctguard")
    out = {"build": "debug" if args.debug else "release", "cpus": os.cpu_count(),
           "load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    with bench.Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        profile = export_profile(binary, tmp)
        ids = organization(emu)
        elapsed, reqs = run(emu, binary, ["apply", "-p", profile, "--accounts", ",".join(ids), "--auto-approve"],
                            "apply over every member")
        out["apply_all"] = {"accounts": len(ids), "wall_s": elapsed, "calls": len(reqs)}
        out["plain"] = measure(emu, binary, profile, ids, counts, args.runs)
        if args.latency_ms > 0:
            emu.latency(args.latency_ms)
            out["latency_ms"] = args.latency_ms
            out["latency"] = measure(emu, binary, profile, ids, counts, args.runs)
    out["load_after"] = os.getloadavg()
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return
    print(f"{out['build']} build, {out['cpus']} CPUs, load average before {out['load_before'][0]:.1f}, "
          f"after {out['load_after'][0]:.1f}")
    print(f"apply over {out['apply_all']['accounts']} members: {out['apply_all']['wall_s']:.1f} s, "
          f"{out['apply_all']['calls']} calls")
    for key, title in (("plain", "no added latency"), ("latency", f"{args.latency_ms:g} ms added to every call")):
        if key not in out:
            continue
        print(f"\nplan --accounts, {title} (median of {args.runs}):")
        print(f"  {'accounts':>8}  {'wall s':>7}  {'calls':>6}  {'calls/account':>13}  {'x 1 account':>11}")
        for r in out[key]:
            print(f"  {r['accounts']:>8}  {r['wall_s']:>7.2f}  {r['calls']:>6}  {r['calls_per_account']:>13.1f}  "
                  f"{r['ratio_to_first']:>11.2f}")


if __name__ == "__main__":
    main()
