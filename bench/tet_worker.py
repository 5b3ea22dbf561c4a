"""Child process of bench.tet_list: the relay flow, warmed up, waiting for its cue.

Usage: python -m bench.tet_worker   (WELFARE_* and PREFECT_API_URL from the environment)
Builds the application and runs one empty relay flow and one empty `tet` policy flow (a
served flow process has done so long before a list arrives), prints "ready", waits for a
line on stdin, then runs the product's `outbox-relay` flow once until the outbox is drained
(mail off) and prints one JSON line: the wall-clock end, seconds (wall and this process's
CPU), the relay's counts, and this process's own peak RSS (`own_peak_rss_mb`).
"""

import asyncio
import json
import sys
import time


def main() -> None:
    from bench.prefect_local import own_peak_rss_mb
    from flows.policies import policy_flow
    from flows.relay import relay_flow
    from flows.runtime import get_relay

    get_relay()
    asyncio.run(relay_flow(max_batches=100, mail=False))  # also drains set-up events
    asyncio.run(policy_flow("tet")([]))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = asyncio.run(relay_flow(max_batches=100_000, mail=False))
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    rss_mb = own_peak_rss_mb()
    out = {"end": time.time(), "seconds": seconds, "cpu_s": cpu_s, "rss_mb": rss_mb, **summary}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
