"""Which file is which: a record's identity is its place in its source, (file id, line).

A file is identified by its content, not its path (Filebeat's fingerprint): the
SHA-256 of its first `HEAD_BYTES` bytes (decompressed), written `"<n>:<hex>"` with `n`
the number of bytes hashed (fewer for a smaller file). So log rotation that renames
`access.log` to `access.log.1`, or compresses it to `access.log.2.gz`, keeps its id,
and a file that grew keeps its id and its earlier lines keep their numbers.

A fingerprint alone is not proof: two different logs may begin with the same bytes
(the same health checks at midnight on two servers). So a file is only taken as a
known one when, besides a matching fingerprint, its line at the known file's last line
number is the same line (a hash of it): then only its later lines are new. A file
whose start is the same as a known file's but whose lines differ gets an id of its own.

Pure planning, no Spark: the ingest job reads the heads and line counts, asks
`line_probes` which line hashes it needs, looks them up, and calls `plan`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

HEAD_BYTES = 1024


def fingerprint(head: bytes) -> str:
    """`"<n>:<sha256 hex>"` of a file's first bytes (`head`, at most HEAD_BYTES of them)."""
    return f"{len(head)}:{hashlib.sha256(head).hexdigest()}"


def _fingerprint_parts(file_id: str) -> tuple[int, str]:
    base = file_id.split("~", 1)[0]
    size, digest = base.split(":", 1)
    return int(size), digest


@dataclass(frozen=True)
class KnownFile:
    """A file bronze holds lines of: its id and the highest line number ingested."""

    file_id: str
    lines: int


@dataclass(frozen=True)
class Candidate:
    """A listed file not known by path, size and mtime: its first bytes and line count."""

    uri: str
    head: bytes
    lines: int


@dataclass(frozen=True)
class Decision:
    """What to ingest of one candidate: lines after `skip_lines`, under `file_id`.

    `file_id` is None when the file holds nothing new (a copy of a file already known or
    read in this run): `same_as` names that file.
    """

    uri: str
    file_id: str | None
    skip_lines: int
    same_as: str | None = None


def _same_start_as_known(candidate: Candidate, known: KnownFile) -> bool:
    size, digest = _fingerprint_parts(known.file_id)
    return 0 < size <= len(candidate.head) and hashlib.sha256(candidate.head[:size]).hexdigest() == digest


def _same_start(a: Candidate, b: Candidate) -> bool:
    size = min(len(a.head), len(b.head))
    return size > 0 and a.head[:size] == b.head[:size]


def _ordered(candidates: Iterable[Candidate]) -> list[Candidate]:
    # Longest first: a copy or an older, shorter version is then compared with the file
    # that contains it, never the reverse.
    return sorted(candidates, key=lambda c: (-c.lines, c.uri))


def _comparisons(candidates: list[Candidate], known: list[KnownFile]):
    """(candidate, earlier candidate or known file, line to compare) in the order `plan` tries them."""
    ordered = _ordered(candidates)
    for i, candidate in enumerate(ordered):
        for earlier in ordered[:i]:
            if _same_start(candidate, earlier):
                yield candidate, earlier, min(candidate.lines, earlier.lines)
        for entry in known:
            if _same_start_as_known(candidate, entry):
                yield candidate, entry, min(candidate.lines, entry.lines)


def line_probes(candidates: list[Candidate], known: list[KnownFile]) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """The line hashes `plan` needs: ((candidate uri, line) ..., (known file id, line) ...)."""
    of_candidates: set[tuple[str, int]] = set()
    of_known: set[tuple[str, int]] = set()
    for candidate, other, line in _comparisons(candidates, known):
        of_candidates.add((candidate.uri, line))
        if isinstance(other, Candidate):
            of_candidates.add((other.uri, line))
        else:
            of_known.add((other.file_id, line))
    return of_candidates, of_known


def plan(
    candidates: list[Candidate],
    known: list[KnownFile],
    candidate_hashes: dict[tuple[str, int], int],
    known_hashes: dict[tuple[str, int], int],
) -> list[Decision]:
    """Decide, for every candidate, its file id and how many of its lines are already in.

    `*_hashes` answer `line_probes` (a missing line hashes to None: not the same file).
    """
    tries: dict[str, list] = {}
    for candidate, other, line in _comparisons(candidates, known):
        tries.setdefault(candidate.uri, []).append((other, line))
    used = {k.file_id for k in known}
    decided: dict[str, Decision] = {}
    for candidate in _ordered(candidates):
        decision = None
        for other, line in tries.get(candidate.uri, []):
            mine = candidate_hashes.get((candidate.uri, line))
            if isinstance(other, Candidate):
                theirs = candidate_hashes.get((other.uri, line))
                earlier = decided[other.uri]
                other_id, same_as = earlier.file_id, earlier.same_as or other.uri
            else:
                theirs = known_hashes.get((other.file_id, line))
                other_id, same_as = other.file_id, other.file_id
            if mine is None or mine != theirs:
                continue
            if candidate.lines <= other.lines:
                decision = Decision(candidate.uri, None, candidate.lines, same_as=same_as)
            else:  # a known file that grew since (earlier candidates are never shorter)
                decision = Decision(candidate.uri, other_id, other.lines)
            break
        if decision is None:
            decision = Decision(candidate.uri, _new_id(candidate, used), 0)
        if decision.file_id:
            used.add(decision.file_id)
        decided[candidate.uri] = decision
    return sorted(decided.values(), key=lambda d: d.uri)


def _new_id(candidate: Candidate, used: set[str]) -> str:
    base = fingerprint(candidate.head)
    if base not in used:
        return base
    # Same first bytes as another file, different lines: an id of its own, from its path.
    suffix = hashlib.sha256(candidate.uri.encode()).hexdigest()[:16]
    file_id, n = f"{base}~{suffix}", 1
    while file_id in used:
        n += 1
        file_id = f"{base}~{suffix}{n}"
    return file_id
