#!/usr/bin/env python3
"""The benchmark matrix of docs/performance.md: `pdd bench` for payloads of 1, 50 and 400 KB,
signed and unsigned, at concurrency 1, 16, 64 and 256, one run each, on a quiet machine.

    cargo build --release && python3 benches/matrix.py [--duration 5] [--out results.json]

Prints a Markdown table (and keeps every run's JSON in --out)."""

import argparse
import json
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--pdd", default="target/release/pdd")
ap.add_argument("--duration", default="5")
ap.add_argument("--warmup", default="1")
ap.add_argument("--payloads", default="1,50,400")
ap.add_argument("--concurrency", default="1,16,64,256")
ap.add_argument("--scenarios", default="signed,unsigned")
ap.add_argument("--out", default=None)
args = ap.parse_args()

runs = []
print("| payload | scenario | conc. | exchanges/s | p50 ms | p90 ms | p99 ms | max ms | errors | peak RSS MB | store B/exch. | % of RSA ceiling |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for kb in args.payloads.split(","):
    for scenario in args.scenarios.split(","):
        for c in args.concurrency.split(","):
            cmd = [args.pdd, "bench", "--scenario", scenario, "--payload-kb", kb,
                   "--concurrency", c, "--duration", args.duration, "--warmup", args.warmup, "--json"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            try:
                r = json.loads(p.stdout)
            except json.JSONDecodeError:
                print(f"| {kb} KB | {scenario} | {c} | failed: {p.stderr.strip()[:200]} |", flush=True)
                continue
            runs.append(r)
            ratio = r.get("ratio_to_ceiling")
            store = r.get("store_bytes_per_exchange")
            print(f"| {kb} KB | {scenario} | {c} | {r['exchanges_per_s']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']} | "
                  f"{r['peak_rss_mb']:.0f} | {store:.0f} | "
                  f"{'' if ratio is None else f'{100 * ratio:.1f}'} |" if store is not None else
                  f"| {kb} KB | {scenario} | {c} | {r['exchanges_per_s']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']} | "
                  f"{r['peak_rss_mb']:.0f} | - | {'' if ratio is None else f'{100 * ratio:.1f}'} |",
                  flush=True)
if runs:
    r = runs[0]
    print(f"\nRSA-2048 ceiling: {r['rsa_sign_per_core_per_s']:.0f} signatures/s per core x "
          f"{r['server_cores']} cores = {r['rsa_sign_ceiling_per_s']:.0f}/s (first run)")
if args.out:
    with open(args.out, "w") as f:
        json.dump(runs, f, indent=1)
sys.exit(0 if runs and all(r["errors"] == 0 for r in runs) else 1)
