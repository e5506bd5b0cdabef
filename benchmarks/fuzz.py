"""The long differential fuzz run: N seeded cases of serial tclean against pclean.

    python benchmarks/fuzz.py --cases 300 [--first 1000] [--out benchmarks/fuzz]

Each case (tests/fuzzing.py: a random dataset, a random tclean call on it, a random chunk plan)
runs in a fresh process, so a CASA crash ends one case, not the run, and is recorded; pclean
uses one embedded 2-worker cluster for the whole run. Writes ``<out>/cases.jsonl`` (one record
per case, as it goes; a rerun skips the seeds already there) and ``<out>/table.md``: counts per
outcome, the worst pixel difference among equal cases, what was drawn, and every failing seed
with its message. A seed that fails is a regression test to keep (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

# a case passes when pclean equals serial tclean, refused the call up front, or both refused
# it; "serial-timeout" is a case whose serial reference itself did not finish in the time
# (pclean never ran): not a failure of pclean, and listed by seed in the table
PASSING = ("equal", "rejected", "both-failed", "serial-timeout")
SERIAL_DONE = "serial tclean done in"  # tests/fuzzing.py prints it once the reference exists


def run_one(seed: int, scheduler: str, cache: str, timeout: float) -> dict:
    cmd = [sys.executable, os.path.join(ROOT, "tests", "fuzzing.py"), str(seed),
           "--scheduler", scheduler, "--cache", cache]
    t0 = time.time()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        partial = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        if SERIAL_DONE in partial:
            return {"seed": seed, "status": "timeout", "total_s": time.time() - t0,
                    "message": f"pclean gave no result in {timeout:.0f} s"}
        return {"seed": seed, "status": "serial-timeout", "total_s": time.time() - t0,
                "message": f"serial tclean gave no result in {timeout:.0f} s"}
    for line in reversed(out.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"seed": seed, "status": "harness-crash", "total_s": time.time() - t0,
            "message": f"exit {out.returncode}: {out.stderr.strip()[-1500:]}"}


def table(records: list[dict]) -> str:
    counts = collections.Counter(r["status"] for r in records)
    equal = [r for r in records if r["status"] == "equal"]
    worst = max(equal, key=lambda r: r.get("worst") or 0.0, default=None)
    lines = [f"# Differential fuzz run: {len(records)} cases", "",
             "| outcome | cases |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.most_common()]
    failing = [r for r in records if r["status"] not in PASSING]
    lines += ["", f"passing: {len(records) - len(failing)} of {len(records)}"]
    if worst:
        lines.append(f"worst max|diff|/peak among equal cases: {worst.get('worst', 0):.3g} "
                     f"(seed {worst['seed']})")
    drawn = collections.Counter()
    for r in records:
        p = r.get("params") or {}
        drawn[f"weighting={p.get('weighting')}"] += 1
        drawn[f"deconvolver={p.get('deconvolver', '-') if p.get('niter') else 'niter=0'}"] += 1
        drawn[f"specmode={p.get('specmode')}"] += 1
        drawn[f"stokes={p.get('stokes')}"] += 1
        drawn[f"interpolation={p.get('interpolation')}"] += 1
        drawn[f"chunks={'default' if r.get('chunks') is None else 'given'}"] += 1
        drawn[f"array={str(r.get('data')).split('.')[0]}"] += 1
    lines += ["", "drawn: " + ", ".join(f"{k} {v}" for k, v in sorted(drawn.items()))]
    rejected = collections.Counter((r.get("message") or "")[:90] for r in records
                                   if r["status"] == "rejected")
    if rejected:
        lines += ["", "rejected before any worker started:"]
        lines += [f"- {n} x {msg}" for msg, n in rejected.most_common()]
    slow = [r["seed"] for r in records if r["status"] == "serial-timeout"]
    if slow:
        lines += ["", "serial tclean did not finish in the time (pclean not run): seeds "
                  + ", ".join(map(str, slow))]
    if failing:
        lines += ["", "failing seeds:"]
        lines += [f"- {r['seed']} {r['status']}: {(r.get('message') or '')[:300]}"
                  for r in failing]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--first", type=int, default=1000, help="first seed")
    ap.add_argument("--out", default=os.path.join(HERE, "fuzz"))
    ap.add_argument("--cache", default=None, help="dataset cache (default: <out>/ms-cache)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    cache = args.cache or os.path.join(args.out, "ms-cache")
    log = os.path.join(args.out, "cases.jsonl")
    records = []
    if os.path.exists(log):
        with open(log) as f:
            records = [json.loads(line) for line in f if line.strip()]
    done = {r["seed"] for r in records}
    from pclean.run import cluster

    with cluster.connect(None, nworkers=2) as client, open(log, "a") as out:
        address = client.scheduler.address
        for seed in range(args.first, args.first + args.cases):
            if seed in done:
                continue
            r = run_one(seed, address, cache, args.timeout)
            records.append(r)
            out.write(json.dumps(r, default=str) + "\n")
            out.flush()
            print(f"{seed} {r['status']} {r.get('worst', '')} "
                  f"{(r.get('message') or '')[:160]}", flush=True)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table(records))
    print(table(records))
    return 0 if all(r["status"] in PASSING for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
