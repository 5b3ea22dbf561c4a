"""Child process of bench.relay: drain the same outbox once per variant and report.

Usage: python -m bench.relay_worker MODE:BATCH:MAX_BATCHES ...   (MODE direct | prefect)
The database comes from WELFARE_* variables, the Prefect server from PREFECT_API_URL. Before
each variant every outbox row is made pending again (bench.relay.reset). `direct` calls
`Relay.drain`; `prefect` runs the product's `outbox-relay` flow once (mail off), one
`handle-events` task run per batch. Prints one JSON line per variant: seconds (wall and
CPU), the relay's counts, and this process's own peak RSS so far (`own_peak_rss_mb`).
"""

import asyncio
import json
import sys
import time
from dataclasses import asdict


def main() -> None:
    from bench.prefect_local import own_peak_rss_mb
    from bench.relay import reset
    from flows.runtime import get_app, get_relay

    app = get_app()  # built before any clock starts
    relay = get_relay()
    for variant in sys.argv[1:]:
        mode, batch, max_batches = variant.split(":")
        reset(app.engine)
        relay.batch_size = int(batch)
        t0, cpu0 = time.perf_counter(), time.process_time()
        if mode == "prefect":
            from flows.relay import relay_flow

            summary = asyncio.run(relay_flow(max_batches=int(max_batches), mail=False))
        else:
            summary = asdict(relay.drain(max_batches=int(max_batches)))
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        rss_mb = own_peak_rss_mb()
        line = {
            "mode": mode,
            "batch": int(batch),
            "seconds": seconds,
            "cpu_s": cpu_s,
            "rss_mb": rss_mb,
        }
        sys.stdout.write(json.dumps({**line, **summary}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
