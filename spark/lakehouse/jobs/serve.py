"""Serve the analytics API and its Prometheus metrics over the exported gold tables, and
the IP collector (`POST /ingest-ip`, `POST /ingest-ips`).

    lakehouse serve                                   # http://127.0.0.1:8000/docs
    lakehouse serve --warehouse ./warehouse --port 8000
    LAKEHOUSE_API_KEY=... lakehouse serve --host 0.0.0.0

Reads the database `lakehouse export` writes (`export.url`: the SQLite file of a local
warehouse, or PostgreSQL) with a Python driver; no Spark session is started. Binds to
loopback by default (`api.host`); any other address is refused unless an API key is set
(env var named by `api.api_key_env`), which every route but /health then requires.
Accepted IPs go to the sink `ip_events.sink` names: the landing folder `ip_events.landing`
(local profile) or the Kafka topic `kafka.topics.ip_events` (the other profiles).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from lakehouse.config import PROFILES, Config, load_config

log = logging.getLogger("lakehouse.serve")


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def refusal(config: Config, host: str) -> str | None:
    """Why the API must not listen on `host`, or None when it may."""
    from lakehouse.api.app import weak_key

    if problem := weak_key(config.api.api_key):
        return f"lakehouse serve: {problem}; set a longer one in the environment variable named by api.api_key_env"
    if is_loopback(host) or config.api.api_key:
        return None
    return (
        f"lakehouse serve: refusing to listen on {host} without an API key: "
        f"set the environment variable named by api.api_key_env, or bind to 127.0.0.1"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse serve", description="Analytics API and metrics over the exported gold tables.")
    parser.add_argument("--host", help="address to bind (default: api.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: api.port, 8000)")
    parser.add_argument("--warehouse", help="warehouse dir or s3a:// url (default: from conf/lakehouse.yaml)")
    parser.add_argument("--profile", choices=PROFILES, help="config profile (default: $LAKEHOUSE_PROFILE or local)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    config = load_config(profile=args.profile)
    if args.warehouse:
        config = config.with_warehouse(args.warehouse)
    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    if problem := refusal(config, host):
        print(problem, file=sys.stderr)
        return 2

    import uvicorn

    from lakehouse.api.app import create_app
    from lakehouse.io.gold_db import database_from
    from lakehouse.io.ip_sink import KafkaSink, LandingSink, publish_orphans, sink_from

    sink = sink_from(config)
    if isinstance(sink, LandingSink):
        # IPs acknowledged by a server that was killed are in hidden files: make them visible now.
        for path in publish_orphans(sink.folder):
            log.warning("published %s, left by a server that did not stop cleanly", path)
    if isinstance(sink, KafkaSink) and not sink.answers(timeout=5):
        # Not fatal: the analytics routes work without it; the ingest routes answer 503 until it is up.
        log.warning("%s: no broker or no such topic; ingested IPs get 503 until it is there", sink.describe())
    app = create_app(config, sink=sink)
    log.info(
        "serving %s on http://%s:%d (docs at /docs, API key %s); ingested IPs go to the %s",
        database_from(config.export).display, host, port, "required" if config.api.api_key else "off", sink.describe(),
    )
    uvicorn.run(app, host=host, port=port, log_level="debug" if args.verbose else "warning", access_log=args.verbose,
                **proxy_options(config))
    return 0


def proxy_options(config: Config) -> dict:
    """uvicorn's forwarded-header settings. uvicorn believes X-Forwarded-For from loopback by
    default: behind no proxy, any local client could name its own address (and so its own
    rate-limit bucket). Only the proxies of `api.trusted_proxies` are believed."""
    trusted = config.api.trusted_proxies
    return {"proxy_headers": trusted is not None, "forwarded_allow_ips": trusted or ""}


if __name__ == "__main__":
    sys.exit(main())
