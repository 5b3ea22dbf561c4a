"""SQLite's WAL copied into the database file on a thread of its own, not inside a command.

In WAL mode a commit appends the pages it changed to the `-wal` file; a *checkpoint* later
copies them into the database file and fsyncs it. SQLite's automatic checkpoint runs inside
whichever commit crosses the threshold, so that one command pays for the copy and the fsync of
every command since the last one: ≈ 50 ms for 10,000 pages on these machines, ≈ 0.13 ms a
command on average and far more under disk load (bench/NOTES.md, session 4).

`WalCheckpointer` runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection every `every`
commits of its engine. PASSIVE never waits for readers or writers and never blocks them:
commands go on appending to the WAL while it copies. SQLite's automatic checkpoint stays
configured as a backstop (a process whose thread cannot keep up, or a reader holding an old
snapshot, still has the WAL checkpointed, as before). Durability is unchanged: a commit is
durable once it is in the WAL (per `synchronous`), whether or not it has been checkpointed.

Several processes on one database each run one; a checkpoint copies every writer's frames,
so the others then find little to do.
"""

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

EVERY_COMMITS = 64
"""≈ 1,700 pages (≈ 7 MB) of WAL at ≈ 27 pages a command: small enough that readers search a
short WAL index, large enough that the fsync is paid a few times a second at the peak."""


class WalCheckpointer:
    """Checkpoints the WAL of the database file at `path` after every `every` commits."""

    def __init__(self, path: str, every: int = EVERY_COMMITS) -> None:
        self.path = path
        self.every = every
        self.runs = 0
        """Checkpoints run so far (tests and diagnostics)."""
        self.last: tuple[int, int, int] | None = None
        """(busy, frames in the WAL, frames checkpointed) of the last run, as SQLite returns."""
        self._commits = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._halt: threading.Event | None = None  # the running thread's own stop signal
        self._lock = threading.Lock()

    def committed(self) -> None:
        """Count a commit; every `every`th wakes the thread. Called on the committing thread:
        an increment and a comparison (the count may race between threads; it only decides
        when the next checkpoint runs)."""
        self._commits += 1
        if self._commits >= self.every:
            self._commits = 0
            self.request()

    def request(self) -> None:
        """Ask for a checkpoint now. The thread starts on first use (an idle process runs
        none) and again after `stop` (a disposed engine can be used again)."""
        with self._lock:
            if self._thread is None:
                self._halt = threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._halt,),
                    name="sqlite-wal-checkpointer",
                    daemon=True,
                )
                self._thread.start()
            self._idle.clear()
            self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no requested checkpoint is pending (tests, and orderly shutdown)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """End the thread (its connection closed); a later `request` starts a new one."""
        with self._lock:
            thread, halt = self._thread, self._halt
            self._thread = self._halt = None
        if halt is not None:
            halt.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._lock:
            if self._thread is None:
                self._wake.clear()  # the stop signal must not wake a later thread

    def _run(self, halt: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                if halt.is_set():
                    return
                self._wake.clear()
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None)
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last = (int(row[0]), int(row[1]), int(row[2])) if row else None
                    self.runs += 1
                except sqlite3.Error as err:
                    # Not fatal: the automatic checkpoint still runs inside commits. A broken
                    # connection is reopened at the next request.
                    log.warning("background WAL checkpoint failed: %s", err)
                    if conn is not None:
                        conn.close()
                        conn = None
                finally:
                    if not self._wake.is_set():
                        self._idle.set()
        finally:
            if conn is not None:
                conn.close()
            self._idle.set()
