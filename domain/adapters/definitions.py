"""Loading `workflow_defs/*.yaml`: validated, every problem reported, published versions frozen.

A (policy, version) becomes published the first time it is loaded into a database; from then
on its content hash is fixed, and a file that changes it is refused: bump `version` instead.
Cases keep the version they were filed under, so old versions stay loadable from the database.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

import domain.rules  # noqa: F401  (registers the built-in rules the schema refers to)
from domain.adapters.repository import SNAPSHOT
from domain.audit import canonical_json
from domain.errors import DefinitionError, NotFound, Problem
from domain.workflow import Definition, validate_definition


def content_hash(raw: Mapping[str, Any]) -> str:
    """Hash of the meaning, not the formatting: comments and key order do not count."""
    return hashlib.sha256(canonical_json(raw)).hexdigest()


def _bool_keys(node: Any, path: str) -> Iterable[str]:
    # PyYAML reads a bare `on:`/`yes:` key as a boolean; refuse instead of misreading.
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, bool):
                yield f"{path}: key {k!r} was read as a boolean; quote it"
            yield from _bool_keys(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _bool_keys(v, f"{path}[{i}]")


def read_file(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), f"cannot read: {exc}")]
    if not isinstance(raw, dict):
        return None, [Problem(str(path), "the file must hold a mapping")]
    problems = [Problem(str(path), msg) for msg in _bool_keys(raw, "")]
    return raw, problems


@dataclass
class LoadedDefinition:
    definition: Definition
    raw: dict[str, Any]
    sha256: str
    source: str


def check_files(paths: Iterable[Path]) -> tuple[list[LoadedDefinition], list[Problem]]:
    """Validate definition files; all problems of all files at once."""
    loaded: list[LoadedDefinition] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, int], str] = {}
    for path in paths:
        raw, file_problems = read_file(path)
        problems.extend(file_problems)
        if raw is None:
            continue
        defn, more = validate_definition(raw, str(path))
        problems.extend(more)
        if defn is None:
            continue
        if path.stem != defn.policy:
            problems.append(Problem(f"{path}: policy", f"must equal the file name '{path.stem}'"))
        key = (defn.policy, defn.version)
        if key in seen:
            problems.append(Problem(f"{path}: version", f"{key} is also defined in {seen[key]}"))
        seen[key] = str(path)
        plain = json.loads(canonical_json(raw))  # dates → ISO text, as stored in the database
        loaded.append(LoadedDefinition(defn, plain, content_hash(raw), str(path)))
    return loaded, problems


def definition_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("_"))


@dataclass
class DefinitionStore:
    """Every known (policy, version); new cases use each policy's newest version."""

    versions: dict[tuple[str, int], Definition] = field(default_factory=dict)

    def get(self, policy: str, version: int) -> Definition:
        try:
            return self.versions[(policy, version)]
        except KeyError:
            raise NotFound("policy version", f"{policy} v{version}") from None

    def current(self, policy: str) -> Definition:
        candidates = [v for (p, v) in self.versions if p == policy]
        if not candidates:
            raise NotFound("policy", policy)
        return self.versions[(policy, max(candidates))]

    def policies(self) -> list[str]:
        return sorted({p for p, _ in self.versions})


def publish(conn: Connection, loaded: list[LoadedDefinition], now: datetime) -> list[Problem]:
    """Record new versions; report any file that changed an already-published version."""
    problems = []
    for item in loaded:
        d = item.definition
        row = conn.execute(
            select(SNAPSHOT.c.sha256).where(
                SNAPSHOT.c.policy == d.policy, SNAPSHOT.c.version == d.version
            )
        ).first()
        if row is None:
            conn.execute(
                insert(SNAPSHOT).values(
                    policy=d.policy,
                    version=d.version,
                    sha256=item.sha256,
                    content=item.raw,
                    published_at=now,
                )
            )
        elif row[0] != item.sha256:
            problems.append(
                Problem(
                    f"{item.source}: version",
                    f"{d.policy} version {d.version} is already published with other content; "
                    "bump `version` to publish a change",
                )
            )
    return problems


def load_store(conn: Connection, directory: Path, now: datetime) -> DefinitionStore:
    """Validate the files, publish new versions, and load every published version."""
    loaded, problems = check_files(definition_files(directory))
    problems.extend(publish(conn, loaded, now))
    if problems:
        raise DefinitionError(problems)
    store = DefinitionStore()
    for policy, version, content in conn.execute(
        select(SNAPSHOT.c.policy, SNAPSHOT.c.version, SNAPSHOT.c.content)
    ).all():
        defn, more = validate_definition(content, f"database:{policy}@{version}")
        if defn is None:
            raise DefinitionError(more)
        store.versions[(policy, version)] = defn
    return store
