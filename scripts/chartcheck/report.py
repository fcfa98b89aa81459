"""Collects check results so one run reports every failure, with the time each stage took."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


class Failures:
    """The failed checks of one unit of work (a values set, a fixture, a stage)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.items.append(what)
        return ok

    def extend(self, prefix: str, items: list[str]) -> None:
        self.items.extend(f"{prefix}: {item}" for item in items)


class Report:
    """Every stage's outcome; prints as it goes and sums up at the end."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0
        self.timings: list[tuple[str, float]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[Failures]:
        failures = Failures()
        start = time.monotonic()
        try:
            yield failures
        except Exception as err:  # a crash in a check is a failed check, reported with the rest
            failures.items.append(f"crashed: {type(err).__name__}: {err}")
        elapsed = time.monotonic() - start
        self.timings.append((name, elapsed))
        if failures.items:
            for item in failures.items:
                print(f"FAIL [{name}] {item}", file=sys.stderr)
            self.failed.append(name)
            print(f"helm-lint[{name}]: {len(failures.items)} check(s) failed ({elapsed:.1f}s)", file=sys.stderr)
        else:
            self.passed += 1
            print(f"helm-lint[{name}]: ok ({elapsed:.1f}s)")
        sys.stdout.flush()

    def finish(self, total: float) -> int:
        print(f"helm-lint: {self.passed} passed, {len(self.failed)} failed")
        print(f"helm-lint: {total:.1f}s in all")
        if self.failed:
            print(f"helm-lint: failed stages: {', '.join(self.failed)}", file=sys.stderr)
            return 1
        return 0
