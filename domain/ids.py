"""Identifiers: time-ordered UUIDs (version 7 layout) as canonical strings.

Time order keeps B-tree inserts on the right edge of the index, which matters for the
audit log and the outbox on PostgreSQL; randomness keeps ids unguessable.
"""

import os
import time
import uuid


def new_id() -> str:
    """A new UUIDv7-style identifier: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | rand
    # Set version 7 and the RFC 4122 variant bits.
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))
