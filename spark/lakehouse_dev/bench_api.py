"""Latency of the analytics API: sequential requests per route, p50/p95 over real HTTP.

    python -m lakehouse_dev.bench_api --warehouse ./warehouse            # starts `lakehouse serve` itself
    python -m lakehouse_dev.bench_api --url http://127.0.0.1:8000 -n 500  # or measures a running one

Each route is called `-n` times one after another (after a few warm-up calls) with its
default window (every report date) and `limit`; the time is the client's, from sending the
request to having read the whole body. The key, if the server needs one, comes from the
environment variable named by `api.api_key_env`.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from lakehouse.config import PROFILES, load_config

ROUTES = ("requests_per_endpoint", "top_ips", "error_rate", "top_products", "countries")


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def measure(url: str, requests: int, limit: int, api_key: str | None) -> dict[str, list[float]]:
    """Seconds of each of `requests` sequential calls per route."""
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for route in ROUTES:
            path = f"/analytics/{route}"
            for _ in range(5):
                client.get(path, params={"limit": limit}).raise_for_status()
            seconds = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path, params={"limit": limit})
                response.read()
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
            timings[route] = seconds
    return timings


def _start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "lakehouse", "serve", "--port", str(port)]
    cmd += ["--warehouse", args.warehouse] if args.warehouse else []
    cmd += ["--profile", args.profile] if args.profile else []
    proc = subprocess.Popen(cmd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("lakehouse serve did not start") from None
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dev.bench_api", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running API (default: start `lakehouse serve` on a free port)")
    parser.add_argument("--warehouse", help="warehouse whose export to serve (when starting the server)")
    parser.add_argument("--profile", choices=PROFILES)
    parser.add_argument("-n", "--requests", type=int, default=200, help="sequential requests per route (default 200)")
    parser.add_argument("--limit", type=int, default=10, help="`limit` of every request (default 10)")
    args = parser.parse_args(argv)
    config = load_config(profile=args.profile)
    api_key = config.api.api_key
    proc = None
    url = args.url
    if url is None:
        proc, url = _start_server(args)
    try:
        timings = measure(url, args.requests, args.limit, api_key)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    print(f"{'route':<24} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for route, seconds in timings.items():
        ms = [s * 1000 for s in seconds]
        print(
            f"{route:<24} {len(ms):>5} {percentile(ms, 0.5):>8.2f} {percentile(ms, 0.95):>8.2f} "
            f"{max(ms):>8.2f} {statistics.fmean(ms):>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
