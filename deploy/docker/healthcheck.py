"""Container health check: GET http://127.0.0.1:<port>/health/ready, exit 0 on
200 and 1 otherwise (503 while starting, loading the model or draining; no
answer at all). The slim image has no curl; the standard library suffices.

    healthcheck.py            the port from the service's own variable
                              (SUPPORTDESK_SERVICE picks which, see PORTS)
    healthcheck.py 8101       that port
    healthcheck.py 8101 /health   another path (liveness)
"""

import os
import sys
import urllib.error
import urllib.request

# service -> (the variable the service reads its probe port from, its default)
PORTS = {
    "gateway": ("GATEWAY_PORT", 8000),
    "session": ("SESSION_OPS_PORT", 8101),
    "agent": ("AGENT_OPS_PORT", 8102),
    "ingest": ("INGEST_OPS_PORT", 8103),
}


def port_from_environment() -> int:
    service = os.environ.get("SUPPORTDESK_SERVICE", "")
    if service not in PORTS:
        raise SystemExit(f"healthcheck: SUPPORTDESK_SERVICE={service!r}; give the port as an argument")
    variable, default = PORTS[service]
    return int(os.environ.get(variable) or default)


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else port_from_environment()
    path = argv[2] if len(argv) > 2 else "/health/ready"
    url = f"http://127.0.0.1:{port}{path}"
    # No proxy: HTTP(S)_PROXY in the container must not capture a loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as error:  # 503: starting, not ready, draining
        print(f"{url}: {error.code} {error.read(1000).decode(errors='replace')}")  # noqa: T201
        return 1
    except OSError as error:  # refused, timed out
        print(f"{url}: {error}")  # noqa: T201
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
