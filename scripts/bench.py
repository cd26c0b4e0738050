"""Benchmark driver for scripts/bench.

Times the release build of ctguard against the emulator behind the fault-injecting proxy (no
faults), counting the API calls each run makes at the proxy, by service and operation:
apply from empty, a second apply, plan on a converged account, and `ctguard --version`, for the
full ai-agent-guard profile in 1, 4 and 17 regions; plan again with latency added to every call
(`--latency-ms`), to model a regional endpoint. Then it checks the same converged account the
way the published guides do, one AWS CLI command per setting run one after another by a shell
script (`cli_checks` is the list), and compares.
"""

import argparse
import collections
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CTGUARD = os.path.join(ROOT, "target", "release", "ctguard")
AWS_CLI = os.path.join(ROOT, ".venv-awscli", "bin", "aws")
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
ACCOUNT = "123456789012"
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
           "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1",
           "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1"]
REGION_COUNTS = (1, 4, 17)
PLAN_RUNS = 9
LATENCY_PLAN_RUNS = 5
READS = ("get", "list", "describe", "head", "lookup")


def spawn(script, *args):
    proc = subprocess.Popen([PYTHON, os.path.join(ROOT, "tests", "emulator", script), *args,
                             "--port", "0", "--exit-on-stdin-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        sys.exit(f"{script} did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


class Emulator:
    """server.py with proxy.py in front of it; `url` is the proxy's, where calls are counted."""

    def __enter__(self):
        self.server, upstream = spawn("server.py", "--host", "127.0.0.1")
        self.proxy, self.url = spawn("proxy.py", "--upstream", upstream)
        return self

    def __exit__(self, *exc):
        for proc in (self.proxy, self.server):
            proc.kill()
            proc.wait()

    def _post(self, path, body=b""):
        req = urllib.request.Request(f"{self.url}{path}", data=body, method="POST")
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def requests(self):
        with urllib.request.urlopen(f"{self.url}/_ctguard/requests") as r:
            return json.load(r)

    def clear(self):
        self._post("/_ctguard/requests/clear")

    def latency(self, ms):
        self._post("/_ctguard/faults", json.dumps({"latency_ms": ms}).encode())


def operation(req):
    if req["operation"]:
        return req["operation"].rsplit(".", 1)[-1]
    return f"S3 {req['method']} {'?' + req['query'].split('=')[0] if req['query'] else ''}".strip()


def by_operation(reqs):
    return dict(collections.Counter(f"{r['service']} {operation(r)}" for r in reqs).most_common())


def mutates(req):
    op = (req["operation"].rsplit(".", 1)[-1] or req["path"].lstrip("/")).lower()
    if not req["operation"] and req["method"] in ("GET", "HEAD"):
        return False
    return not op.startswith(READS)


def aws_env(emu):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=emu.url, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    return env


def timed(emu, argv, what):
    emu.clear()
    start = time.perf_counter()
    done = subprocess.run(argv, env=aws_env(emu), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, emu.requests(), done.stdout


def ctguard(emu, *args):
    elapsed, reqs, _ = timed(emu, [CTGUARD, *args], f"ctguard {' '.join(args)}")
    return elapsed, reqs


def export_profile(tmp, regions):
    subprocess.run([CTGUARD, "profiles", "export", "ai-agent-guard", tmp], check=True, capture_output=True)
    path = os.path.join(tmp, "profiles", "ai-agent-guard.toml")
    text = open(path).read().replace('regions = "all-enabled"', f"regions = {json.dumps(regions)}")
    open(path, "w").write(text)
    return path


def resolve(text, variables):
    for _ in range(5):
        for key, value in variables.items():
            text = text.replace("${" + key + "}", value)
    return text


# ---------------------------------------------------------------------------------------------
# The per-setting checks, as the guides in the source documents do them: one AWS CLI command
# for each setting ctguard keeps true, on a converged account (every command must succeed).

def cli_checks(profile_path, regions):
    """[(what, shell command)] for the profile's resources, in a shell script's order. Commands
    may use the shell variables earlier ones set (`NAME=$(aws ...)`), as a script would."""
    doc = tomllib.load(open(profile_path, "rb"))
    home = regions[0]
    variables = {"account_id": ACCOUNT, "region": home, "partition": "aws", "profile": doc["profile"]["name"]}
    variables.update({k: v for k, v in doc.get("variables", {}).items() if isinstance(v, str)})
    name = lambda value: resolve(value, variables)  # noqa: E731
    q = shlex.quote
    checks = []

    def check(what, command, region=home):
        checks.append((what, f"aws --region {region} {command} > /dev/null"))

    def capture(what, var, command):
        checks.append((what, f"{var}=$(aws --region {home} {command} --output text)"))

    bucket, access = name(doc["bucket"]["name"]), name(doc["access_log_bucket"]["name"])
    for b in (bucket, access):
        for sub in ("bucket-encryption", "bucket-versioning", "public-access-block", "bucket-ownership-controls",
                    "bucket-policy", "bucket-lifecycle-configuration", "bucket-tagging"):
            check(f"s3 {b} {sub}", f"s3api get-{sub} --bucket {q(b)}")
    check(f"s3 {bucket} logging", f"s3api get-bucket-logging --bucket {q(bucket)}")

    alias = doc["trail"]["kms"]["alias"]
    capture("kms key behind the alias", "KEY_ID", f"kms describe-key --key-id {q(alias)} --query KeyMetadata.KeyId")
    check("kms key rotation", 'kms get-key-rotation-status --key-id "$KEY_ID"')
    check("kms key policy", 'kms get-key-policy --key-id "$KEY_ID" --policy-name default')

    trail = name(doc["trail"]["name"])
    check("trail settings", f"cloudtrail get-trail --name {q(trail)}")
    check("trail logging", f"cloudtrail get-trail-status --name {q(trail)}")
    check("trail event selectors", f"cloudtrail get-event-selectors --trail-name {q(trail)}")

    logs = doc["cloudwatch_logs"]
    log_group = logs["log_group"]
    check("log group retention", f"logs describe-log-groups --log-group-name-prefix {q(log_group)}")
    roles = [logs["role_name"]] + ([doc["events"]["forwarder_role"]] if len(regions) > 1 else [])
    for role in roles:
        var = "POLICY_" + role.upper().replace("-", "_")
        check(f"role {role} trust", f"iam get-role --role-name {q(role)}")
        capture(f"role {role} inline policies", var, f"iam list-role-policies --role-name {q(role)} --query 'PolicyNames[0]'")
        check(f"role {role} inline policy", f'iam get-role-policy --role-name {q(role)} --policy-name "${var}"')
        check(f"role {role} attached policies", f"iam list-attached-role-policies --role-name {q(role)}")

    topic = f"arn:aws:sns:{home}:{ACCOUNT}:{doc['alerts']['topic']}"
    check("topic policy and key", f"sns get-topic-attributes --topic-arn {q(topic)}")
    check("topic subscriptions", f"sns list-subscriptions-by-topic --topic-arn {q(topic)}")
    check("topic tags", f"sns list-tags-for-resource --resource-arn {q(topic)}")

    for alarm in doc["alarms"]:
        if alarm.get("requires_data_events"):
            continue  # not deployed: the trail records no data events
        check(f"metric filter {alarm['id']}",
              f"logs describe-metric-filters --log-group-name {q(log_group)} --filter-name-prefix {q(alarm['name'])}")
        check(f"alarm {alarm['id']}", f"cloudwatch describe-alarms --alarm-names {q(alarm['name'])}")

    config = doc["config"]
    check("config service-linked role", "iam get-role --role-name AWSServiceRoleForConfig")
    for region in regions:
        for rule in doc["events"]["rules"]:
            check(f"{region} rule {rule['name']}", f"events describe-rule --name {q(rule['name'])}", region)
            check(f"{region} targets {rule['name']}", f"events list-targets-by-rule --rule {q(rule['name'])}", region)
        check(f"{region} config recorder", "configservice describe-configuration-recorders", region)
        check(f"{region} config recorder status", "configservice describe-configuration-recorder-status", region)
        check(f"{region} config delivery channel", "configservice describe-delivery-channels", region)
        for rule in config["rules"]:
            home_only = rule.get("home_region_only", "IAM" in rule["identifier"].split("_"))
            if region == home or not home_only:
                check(f"{region} config rule {rule['name']}",
                      f"configservice describe-config-rules --config-rule-names {q(rule['name'])}", region)
    return checks


def cli_script(checks):
    lines = ["set -euo pipefail", f"aws() {{ {shlex.quote(AWS_CLI)} \"$@\"; }}"]
    for what, command in checks:
        lines += [f"# {what}", command]
    return "\n".join(lines) + "\n"


def run_cli_checks(emu, checks, tmp):
    path = os.path.join(tmp, "checks.sh")
    open(path, "w").write(cli_script(checks))
    elapsed, reqs, _ = timed(emu, ["bash", path], "the AWS CLI checks")
    return elapsed, reqs


# ---------------------------------------------------------------------------------------------

def bench(n, latency_ms, cli_regions):
    regions = REGIONS[:n]
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        p = export_profile(tmp, regions)
        apply_s, apply_reqs = ctguard(emu, "apply", "--auto-approve", "-p", p)
        again_s, again_reqs = ctguard(emu, "apply", "--auto-approve", "-p", p)
        plans = [ctguard(emu, "plan", "--detailed-exitcode", "-p", p) for _ in range(PLAN_RUNS)]
        plan_reqs = plans[-1][1]
        _, _, plan_json = timed(emu, [CTGUARD, "plan", "--format", "json", "-p", p], "ctguard plan --format json")
        result = {
            "regions": n,
            "resources": len(json.loads(plan_json)["resource_changes"]),
            "apply_s": apply_s,
            "apply_calls": len(apply_reqs),
            "apply_writes": sum(map(mutates, apply_reqs)),
            "again_s": again_s,
            "again_calls": len(again_reqs),
            "again_writes": sum(map(mutates, again_reqs)),
            "again_writes_by_op": by_operation([r for r in again_reqs if mutates(r)]),
            "plan_s": statistics.median(t for t, _ in plans),
            "plan_calls": len(plan_reqs),
            "plan_by_op": by_operation(plan_reqs),
        }
        if n in cli_regions:
            checks = cli_checks(p, regions)
            cli_s, cli_reqs = run_cli_checks(emu, checks, tmp)
            result.update(cli_checks=len(checks), cli_s=cli_s, cli_calls=len(cli_reqs),
                          cli_writes=sum(map(mutates, cli_reqs)))
        if latency_ms:
            emu.latency(latency_ms)
            slow = [ctguard(emu, "plan", "--detailed-exitcode", "-p", p) for _ in range(LATENCY_PLAN_RUNS)]
            result.update(latency_ms=latency_ms, plan_latency_s=statistics.median(t for t, _ in slow),
                          plan_latency_calls=len(slow[-1][1]))
            if n in cli_regions:
                cli_s, cli_reqs = run_cli_checks(emu, checks, tmp)
                result.update(cli_latency_s=cli_s)
            emu.latency(0)
        return result


def version_ms():
    times = []
    for _ in range(20):
        start = time.perf_counter()
        subprocess.run([CTGUARD, "--version"], check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def machine():
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": model,
            "aws_cli": subprocess.run([AWS_CLI, "--version"], capture_output=True, text=True).stdout.strip()}


def report(out):
    res = out["results"]
    print(f"machine: {out['machine']['cpus']} CPUs, {out['machine']['cpu']}; {out['machine']['aws_cli']}")
    print(f"ctguard --version: {out['version_ms']:.1f} ms (median of 20)\n")
    print("| regions | resources | apply from empty | calls (writes) | second apply | writes "
          f"| plan, converged (median of {PLAN_RUNS}) | plan calls |")
    print("|---|---|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['regions']} | {r['resources']} | {r['apply_s']:.2f} s | {r['apply_calls']} ({r['apply_writes']}) "
              f"| {r['again_s']:.2f} s | {r['again_writes']} | {r['plan_s']:.2f} s | {r['plan_calls']} |")
    one, all_ = res[0], res[-1]
    print(f"\nplan over {all_['regions']} regions / plan over {one['regions']} region: "
          f"{all_['plan_s'] / one['plan_s']:.2f}x (no added latency)")
    if "plan_latency_s" in one:
        ms = one["latency_ms"]
        print(f"\nplan with {ms:g} ms added to every call (median of {LATENCY_PLAN_RUNS}):\n")
        print(f"| regions | plan calls | plan, no added latency | plan, +{ms:g} ms per call | same calls one at a time |")
        print("|---|---|---|---|---|")
        for r in res:
            serial = r["plan_latency_calls"] * ms / 1000
            print(f"| {r['regions']} | {r['plan_latency_calls']} | {r['plan_s']:.2f} s | {r['plan_latency_s']:.2f} s "
                  f"| ≥ {serial:.1f} s |")
        print(f"\nplan over {all_['regions']} regions / plan over {one['regions']} region, +{ms:g} ms per call: "
              f"{all_['plan_latency_s'] / one['plan_latency_s']:.2f}x")
    cli = [r for r in res if "cli_s" in r]
    if cli:
        print("\nctguard plan vs the same checks with the AWS CLI, one command per setting, in sequence:\n")
        head = "| regions | AWS CLI checks | calls | AWS CLI time | ctguard plan | plan calls | ratio |"
        print(head + ("" if "cli_latency_s" not in cli[0] else f" AWS CLI, +{cli[0]['latency_ms']:g} ms | plan, "
                      f"+{cli[0]['latency_ms']:g} ms | ratio |"))
        print("|---" * (7 if "cli_latency_s" not in cli[0] else 10) + "|")
        for r in cli:
            row = (f"| {r['regions']} | {r['cli_checks']} | {r['cli_calls']} | {r['cli_s']:.1f} s | {r['plan_s']:.2f} s "
                   f"| {r['plan_calls']} | {r['cli_s'] / r['plan_s']:.0f}x |")
            if "cli_latency_s" in r:
                row += (f" {r['cli_latency_s']:.1f} s | {r['plan_latency_s']:.2f} s "
                        f"| {r['cli_latency_s'] / r['plan_latency_s']:.0f}x |")
            print(row)
    for r in res:
        if r["again_writes"]:
            print(f"\nsecond apply at {r['regions']} regions made {r['again_writes']} mutating calls: "
                  f"{r['again_writes_by_op']}")
    print(f"\nplan calls by operation, {all_['regions']} regions:")
    for op, n in all_["plan_by_op"].items():
        print(f"  {n:5}  {op}")


def main():
    parser = argparse.ArgumentParser(description="Benchmark ctguard (release build) against the emulator.")
    parser.add_argument("--latency-ms", type=float, default=20,
                        help="latency the proxy adds to every call for the second set of plans (0: skip them)")
    parser.add_argument("--regions", default=",".join(map(str, REGION_COUNTS)),
                        help="region counts to measure, comma-separated (default 1,4,17)")
    parser.add_argument("--cli-regions", default="1",
                        help="region counts at which to run the AWS CLI checks too (default 1; '' for none)")
    parser.add_argument("--print-cli-script", type=int, metavar="REGIONS",
                        help="print the AWS CLI check script for this many regions and exit")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = parser.parse_args()
    if args.print_cli_script:
        with tempfile.TemporaryDirectory() as tmp:
            print(cli_script(cli_checks(export_profile(tmp, REGIONS[:args.print_cli_script]),
                                        REGIONS[:args.print_cli_script])), end="")
        return
    counts = [int(n) for n in args.regions.split(",") if n]
    cli_regions = {int(n) for n in args.cli_regions.split(",") if n}
    out = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "version_ms": version_ms(),
           "results": [bench(n, args.latency_ms, cli_regions) for n in counts]}
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        report(out)


if __name__ == "__main__":
    main()
