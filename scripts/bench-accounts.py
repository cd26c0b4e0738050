"""Benchmark driver for scripts/bench-accounts.

Makes an organization in the emulator (behind the counting proxy, no faults): the management
account and 20 members, each made by CreateAccount and so holding OrganizationAccountAccessRole.
Applies the full ai-agent-guard profile (one region) in every member with one
`apply --accounts`, then times `plan --accounts ID,...` over the first 1, 5 and 20 members
(median of --runs), counting the calls at the proxy; calls per account leave out the
Organizations listing. With --latency-ms the proxy delays every call, as a real endpoint does:
the emulator alone answers in about a millisecond and, one Python process on a small machine,
is CPU-bound, which caps what concurrency across accounts can show without latency. Each
measurement also reports the CPU seconds (user + system) that ctguard, its busiest thread, the
emulator and the proxy used during the run: CPU seconds close to the wall time mean that
process or thread was the bound (the emulator, one Python process under the GIL, can use at
most one CPU).
"""

import argparse
import json
import os
import resource
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


def cpu_of(stat_path):
    """User plus system CPU seconds a live process or thread has used so far (its /proc stat)."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emulator_cpu(emu):
    return {"server": cpu_of(f"/proc/{emu.server.pid}/stat"), "proxy": cpu_of(f"/proc/{emu.proxy.pid}/stat")}


def threads_cpu(pid, seen):
    """Updates `seen` (thread id -> CPU seconds) from the live process's threads."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            seen[tid] = cpu_of(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            pass


def run(emu, binary, args, what):
    """Runs ctguard once: wall seconds, the calls the proxy saw, and the CPU seconds ctguard,
    its busiest thread (sampled every 20 ms), the emulator (moto) and the proxy each used
    meanwhile."""
    emu.clear()
    before, children = emulator_cpu(emu), resource.getrusage(resource.RUSAGE_CHILDREN)
    threads = {}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, *args], env=bench.aws_env(emu), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            threads_cpu(proc.pid, threads)
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        # The emulator and the proxy are children too, but still running: only ctguard was reaped.
        after, reaped = emulator_cpu(emu), resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            sys.exit(f"{what} failed ({proc.returncode}):\n{out.read()[-3000:]}\n{err.read()[-3000:]}")
    ctguard = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    cpu = {"ctguard": ctguard, "ctguard_busiest_thread": max(threads.values(), default=0.0),
           **{k: after[k] - before[k] for k in after}}
    return elapsed, emu.requests(), cpu


def measure(emu, binary, profile, ids, counts, runs, concurrency):
    rows = []
    for n in counts:
        chosen = ",".join(ids[:n])
        times, calls, cpus = [], [], []
        for _ in range(runs):
            elapsed, reqs, cpu = run(emu, binary,
                                     ["plan", "-p", profile, "--accounts", chosen, "--detailed-exitcode", *concurrency],
                                     f"plan over {n} accounts")
            times.append(elapsed)
            calls.append(len(reqs))
            cpus.append(cpu)
        org_calls = sum(1 for r in reqs if r["service"] in ("organizations",))
        rows.append({"accounts": n, "wall_s": statistics.median(times), "runs": times,
                     "calls": calls[-1], "calls_per_account": (calls[-1] - org_calls) / n,
                     "cpu_s": {k: statistics.median(c[k] for c in cpus) for k in cpus[0]},
                     "load": os.getloadavg()[0]})
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
    parser.add_argument("--concurrency", type=int, help="ctguard's --concurrency (default: ctguard's own)")
    parser.add_argument("--debug", action="store_true", help="time target/debug/ctguard instead of the release build")
    parser.add_argument("--binary", help="time this ctguard binary instead (to compare two builds in one session)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    counts = [int(n) for n in args.accounts.split(",") if n]
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    if max(counts) > MEMBERS:
        sys.exit(f"--accounts: at most {MEMBERS}")
    binary = args.binary or os.path.join(ROOT, "target", "debug" if args.debug else "release", "ctguard")
    out = {"build": args.binary or ("debug" if args.debug else "release"), "cpus": os.cpu_count(),
           "concurrency": args.concurrency, "load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    with bench.Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        profile = export_profile(binary, tmp)
        ids = organization(emu)
        elapsed, reqs, _ = run(emu, binary, ["apply", "-p", profile, "--accounts", ",".join(ids), "--auto-approve"],
                            "apply over every member")
        out["apply_all"] = {"accounts": len(ids), "wall_s": elapsed, "calls": len(reqs)}
        out["plain"] = measure(emu, binary, profile, ids, counts, args.runs, concurrency)
        if args.latency_ms > 0:
            emu.latency(args.latency_ms)
            out["latency_ms"] = args.latency_ms
            out["latency"] = measure(emu, binary, profile, ids, counts, args.runs, concurrency)
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
        print(f"  {'accounts':>8}  {'wall s':>7}  {'calls':>6}  {'calls/account':>13}  {'x 1 account':>11}"
              f"  {'CPU s: ctguard':>14}  {'its busiest thread':>18}  {'emulator':>8}  {'proxy':>5}  {'load':>4}")
        for r in out[key]:
            cpu = r["cpu_s"]
            print(f"  {r['accounts']:>8}  {r['wall_s']:>7.2f}  {r['calls']:>6}  {r['calls_per_account']:>13.1f}  "
                  f"{r['ratio_to_first']:>11.2f}  {cpu['ctguard']:>14.2f}  {cpu['ctguard_busiest_thread']:>18.2f}  "
                  f"{cpu['server']:>8.2f}  {cpu['proxy']:>5.2f}  {r['load']:>4.1f}")


if __name__ == "__main__":
    main()
