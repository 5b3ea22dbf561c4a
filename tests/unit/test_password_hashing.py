"""Argon2 runs one computation at a time in a process: each takes 64 MiB while it runs."""

import threading
import time
from typing import Any

import pytest

from domain.service import accounts


class _Spy:
    """The real hasher, with the number of computations running at once recorded."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def _around(self, call: Any, *args: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.01)  # widen the window in which an overlap would show
            return call(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return str(self._around(self.real.hash, password))

    def verify(self, password: str, stored: str) -> bool:
        return bool(self._around(self.real.verify, password, stored))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    watched = _Spy(accounts.hasher())
    monkeypatch.setattr(accounts, "hasher", lambda: watched)
    return watched


def test_concurrent_hashes_and_verifications_run_one_at_a_time(spy: _Spy) -> None:
    stored = accounts.hash_password("mật-khẩu-đủ-dài-1")
    results: list[bool] = []

    def log_in(password: str) -> None:
        results.append(accounts._verify(password, stored))

    threads = [
        threading.Thread(target=log_in, args=(p,))
        for p in ["mật-khẩu-đủ-dài-1", "sai-mật-khẩu-2", "mật-khẩu-đủ-dài-1"]
    ] + [threading.Thread(target=accounts.hash_password, args=("mật-khẩu-khác-3",))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spy.most == 1
    assert sorted(results) == [False, True, True]  # the answers are still the real ones
