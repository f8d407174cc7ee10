"""Run directories: the single source of truth that the runner writes and every face reads.

Layout of ``runs/<run-id>/`` (schema version 4)::

    config.toml      the resolved config; ``scaletui run runs/<id>/config.toml`` re-runs it
    meta.json        schema version, id, creation time, environment facts (written once, atomically)
    run.sqlite       status and heartbeat, loss curves, final per-model results, progress, checkpoints, events (WAL)
    arrays/test_set.npz                 test inputs x (n, d) and targets y (n,), float64
    arrays/w<width>_n<size>_d<depth>_s<first>-<last>.npz  outputs on the test set (models, n) and final
                     weights, per shard
    arrays/w<width>_n<size>_d<depth>_s<first>.checkpoint.npz  an unfinished shard's latest training state
                     (removed when it ends)

Every model is keyed by its coordinates in the sweep: (width, data size, depth, seed).
    runner.log       the runner process's own output
    runner.lock      held (an OS file lock) by the one runner writing the run, for as long as it lives

One write comes from a face, by design: :func:`rename_run` replaces config.toml atomically with only
``name`` changed. The runner writes config.toml once, at creation, and reads it only when it starts (a
resume), so a rename never races a result; every other file is the runner's alone.

Crash safety: SQLite in WAL mode commits atomically, so a ``kill -9`` loses at most the rows buffered
since the last flush (about a second) and a reader never sees half a record. Array files are written to a
temporary name, fsynced and renamed; a model's row is committed only after its arrays exist. A checkpoint
is written after the curve rows up to its step are committed, so on resume the rows and the state agree.

Schema versions: 2 added ``target.teacher_bias_std``, whose default is not what runs of version 1 were
trained with; reading an older run fills each field it lacks with the value it was trained with
(:data:`TRAINED_WITH`), so it opens and resumes as the run it was. 3 added checkpoints (the ``checkpoints``
table and files, ``execution.checkpoint_seconds``, which changes no result): an older run reads as one
without any and, when resumed, gains the table and checkpoints at the default interval. 4 keyed every
model by (width, data size, depth, seed) so a sweep can vary the training set's size and the depth: a
reader opens an older run as it is, each row at the run's one data size and depth (its tables are read
through views that add those columns, nothing is written); a runner resuming one first rebuilds its tables
with the columns, in one transaction, and renames its checkpoint files, so the run goes on where it
stopped. Label noise is drawn from a stream of its own since version 4, so an older run with
``data.noise`` above 0 is refused on resume rather than continued on a different training set.

The run's life across runner sessions (a run stopped and resumed has several) is kept without a schema
version: ``run.started`` is the first session's start and stays so; ``run.session_started`` the current (or
last) session's; ``run.ran`` the seconds the earlier sessions ran, so the run's duration is the time it
trained, summed; ``session_shards`` holds, for the current session, the step each shard was taken up from
and when, which is what the ETA measures its rate on (:func:`estimate_remaining`). The columns and table
are added (``ALTER TABLE … ADD COLUMN``, ``CREATE TABLE IF NOT EXISTS``) when a runner opens an older run;
a reader of a run without them reads its one recorded session as the whole (as before), and an older
scaletui reads and resumes a run with them as it always did (it names every column it writes).
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from scaletui.config import (
    Config,
    ConfigError,
    Group,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    parameter_count,
    parse_toml,
    seeds_label,
)
from scaletui.present import group_label

SCHEMA_VERSION = 4
# Config fields added in a schema version, with the value every run of an older version was trained with.
TRAINED_WITH: dict[int, dict[tuple[str, str], Any]] = {2: {("target", "teacher_bias_std"): 0.0}}
FAILURE_NOTE = "failure.txt"  # written only when a failure could not be recorded in run.sqlite
HEARTBEAT_SECONDS = 2.0
STALE_AFTER_SECONDS = 15.0
# "not responding": the runner still holds the run's lock but its heartbeat stopped (stopped with SIGSTOP, or
# swapped out): alive, so nothing may write the run in its place.
ACTIVE_STATUSES = ("created", "running", "not responding")
LOCK_FILE = "runner.lock"
LOCK_WAIT_SECONDS = 2.0  # a reader's probe holds the lock for microseconds; a runner waits this long past it
RUN_TABLES = frozenset({"run", "curves", "models", "progress", "events"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL, pid INTEGER, host TEXT, device TEXT,
    started REAL, finished REAL, heartbeat REAL, error TEXT,
    session_started REAL, ran REAL
);
CREATE TABLE IF NOT EXISTS curves (
    width INTEGER NOT NULL, n_train INTEGER NOT NULL, depth INTEGER NOT NULL, seed INTEGER NOT NULL,
    step INTEGER NOT NULL, train_loss REAL, test_loss REAL, PRIMARY KEY (width, n_train, depth, seed, step)
);
CREATE TABLE IF NOT EXISTS models (
    width INTEGER NOT NULL, n_train INTEGER NOT NULL, depth INTEGER NOT NULL, seed INTEGER NOT NULL,
    n_params INTEGER NOT NULL, train_loss REAL, test_loss REAL, diverged_step INTEGER NOT NULL,
    wall_seconds REAL, arrays TEXT NOT NULL, PRIMARY KEY (width, n_train, depth, seed)
);
CREATE TABLE IF NOT EXISTS progress (
    width INTEGER NOT NULL, n_train INTEGER NOT NULL, depth INTEGER NOT NULL, first_seed INTEGER NOT NULL,
    models INTEGER NOT NULL, step INTEGER NOT NULL, steps INTEGER NOT NULL, started REAL, updated REAL,
    PRIMARY KEY (width, n_train, depth, first_seed)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    width INTEGER NOT NULL, n_train INTEGER NOT NULL, depth INTEGER NOT NULL, first_seed INTEGER NOT NULL,
    models INTEGER NOT NULL, step INTEGER NOT NULL, file TEXT NOT NULL, written REAL NOT NULL,
    PRIMARY KEY (width, n_train, depth, first_seed)
);
CREATE TABLE IF NOT EXISTS session_shards (
    width INTEGER NOT NULL, n_train INTEGER NOT NULL, depth INTEGER NOT NULL, first_seed INTEGER NOT NULL,
    models INTEGER NOT NULL, from_step INTEGER NOT NULL, started REAL NOT NULL,
    PRIMARY KEY (width, n_train, depth, first_seed)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL
);
"""


class StoreError(Exception):
    """A run that cannot be found or read; the message says which and why, in one line."""


class CheckpointRefused(StoreError):
    """A checkpoint file that must not be continued from: damaged, of another config, shard or schema."""


def group_stem(group: Group) -> str:
    """The start of a group's file names: ``w000016_n0001000_d1``."""
    return f"w{group.width:06d}_n{group.n_train:07d}_d{group.depth}"


def checkpoint_name(group: Group, first_seed: int) -> str:
    """The file of a shard's checkpoint, beside its arrays: one per shard, keyed by its group and first seed."""
    return f"{group_stem(group)}_s{first_seed:05d}.checkpoint.npz"


# The tables of schema 4 with their key columns, and how each is read in a run of schema 3 (one data size,
# one depth): the same rows with those two columns added as constants.
KEYED_TABLES = {
    "curves": "width, {n} AS n_train, {d} AS depth, seed, step, train_loss, test_loss",
    "models": "width, {n} AS n_train, {d} AS depth, seed, n_params, train_loss, test_loss, diverged_step, "
    "wall_seconds, arrays",
    "progress": "width, {n} AS n_train, {d} AS depth, first_seed, models, step, steps, started, updated",
    "checkpoints": "width, {n} AS n_train, {d} AS depth, first_seed, models, step, file, written",
}


def _has_grid_columns(conn: sqlite3.Connection, table: str) -> bool:
    """Whether a table has schema 4's key columns (True for a table that does not exist yet)."""
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    return not columns or "n_train" in columns


def resume_refusal(run: Run) -> str | None:
    """Why a run cannot be continued by this scaletui, in one line, or None: an older run with label noise
    would train its unfinished models on other labels (the noise stream changed in schema 4)."""
    if run.meta["schema_version"] < 4 and run.config.data.noise > 0:
        return (
            f"run {run.id} was made by an older scaletui (schema {run.meta['schema_version']}) that drew label "
            "noise differently; resuming would train its unfinished models on other labels: re-run its config.toml"
        )
    return None


def migrate_to_grid_keys(conn: sqlite3.Connection, run_dir: Path) -> None:
    """Rebuild a schema-3 run's keyed tables with the data size and depth columns, in one transaction, and
    give its checkpoint files their schema-4 names; then record schema 4 in meta.json. Safe to repeat: a
    kill part-way leaves either the old tables (files renamed so far are found under either name) or the new.
    """
    run = Run(run_dir)
    if (refusal := resume_refusal(run)) is not None:
        raise StoreError(refusal)
    n, d = run.config.data_sizes[0], run.config.depths[0]  # a schema-3 run has one of each
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, columns in KEYED_TABLES.items():
            if _has_grid_columns(conn, table):
                continue
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_schema3")
            create = next(part for part in _SCHEMA.split(";") if f"EXISTS {table} (" in part)
            conn.execute(create)
            conn.execute(f"INSERT INTO {table} SELECT {columns.format(n=n, d=d)} FROM {table}_schema3")
            conn.execute(f"DROP TABLE {table}_schema3")
        for width, first, old in conn.execute("SELECT width, first_seed, file FROM checkpoints").fetchall():
            new = checkpoint_name(Group(width, n, d), first)
            if old != new:
                with suppress(FileNotFoundError):
                    os.replace(run_dir / "arrays" / old, run_dir / "arrays" / new)
                conn.execute("UPDATE checkpoints SET file = ? WHERE file = ?", (new, old))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    if meta.get("schema_version", SCHEMA_VERSION) < SCHEMA_VERSION:
        meta["schema_version"] = SCHEMA_VERSION
        atomic_write_bytes(run_dir / "meta.json", json.dumps(meta, indent=2).encode())


class RunLocked(StoreError):
    """Another live process is the run's writer."""


def acquire_runner_lock(run_dir: Path) -> int:
    """Take the run's writer lock for the life of this process and return its file descriptor.

    An ``flock`` rather than a pid in a file: the kernel releases it when the process dies, however it dies,
    so a lock can never outlive its runner, and a runner that is alive but stopped (SIGSTOP) still holds it.
    Raises :class:`RunLocked` naming the holder's pid when another runner has it.
    """
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunLocked(
                    f"run {run_dir.name} already has a runner (pid {holder}); refusing to start a second writer"
                ) from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def runner_lock_held(run_dir: Path) -> bool:
    """Whether a live process holds the run's writer lock (False for runs written before the lock existed)."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return False


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:40].strip("-") or "run"


def new_run_id(name: str) -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{_slug(name)}-{secrets.token_hex(2)}"


class RunWriter:
    """The one writer of a run directory (the runner process)."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.conn = _connect(run_dir / "run.sqlite")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(_SCHEMA)
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(run)")}
        for column in ("session_started", "ran"):  # a run written before sessions were kept apart
            if column not in have:
                self.conn.execute(f"ALTER TABLE run ADD COLUMN {column} REAL")
        if not all(_has_grid_columns(self.conn, table) for table in KEYED_TABLES):
            migrate_to_grid_keys(self.conn, run_dir)
        self._pending_curves: list[tuple[Any, ...]] = []

    @classmethod
    def create(cls, runs_dir: Path, cfg: Config, run_id: str | None = None) -> RunWriter:
        """Make a new run directory holding the config and meta; the runner fills in the rest.

        The directory is assembled under a hidden name and renamed into place whole, so a reader listing the
        runs directory never meets a run that is half made (a meta.json without its database tables).
        """
        runs_dir.mkdir(parents=True, exist_ok=True)
        run_id = run_id or new_run_id(cfg.name)
        run_dir = runs_dir / run_id
        if run_dir.exists():
            raise FileExistsError(f"{run_dir} already exists")
        building = runs_dir / f".{run_id}.creating"
        building.mkdir()
        (building / "arrays").mkdir()
        atomic_write_bytes(building / "config.toml", config_to_toml(cfg).encode())
        meta = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "created": time.time(),
            "created_iso": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write_bytes(building / "meta.json", json.dumps(meta, indent=2).encode())
        first = cls(building)
        first.conn.execute("INSERT INTO run (id, status) VALUES (1, 'created')")
        first.conn.close()  # SQLite names its WAL files after the path it opened: reopen after the rename
        building.rename(run_dir)
        return cls(run_dir)

    def close(self) -> None:
        self.flush()
        self.conn.close()

    def group(self, width: int) -> Group:
        """A width's group in a run that sweeps width alone (its one data size and depth)."""
        return Run(self.dir).group(width)

    def write_environment(self, facts: dict[str, Any]) -> None:
        meta = json.loads((self.dir / "meta.json").read_text())
        meta["environment"] = facts
        atomic_write_bytes(self.dir / "meta.json", json.dumps(meta, indent=2).encode())

    def write_test_set(self, x: np.ndarray, y: np.ndarray) -> None:
        atomic_write_bytes(self.dir / "arrays" / "test_set.npz", _npz_bytes({"x": x, "y": y}))

    def record_launch(self, pid: int) -> None:
        """The launcher's note of the runner's pid, so a runner killed while starting is seen as dead."""
        self.conn.execute("UPDATE run SET pid=?, host=? WHERE id=1 AND status='created'", (pid, socket.gethostname()))

    def mark_running(self, device: str) -> None:
        """A runner session begins: ``started`` keeps the run's first start (listings sort and show it); the
        session before this one, if any, is added to ``ran`` (from its start to its end, or to its last
        heartbeat when its runner died; a run written before sessions were kept apart has its one recorded
        session from ``started``); the shards taken up in that session are forgotten."""
        (self.dir / FAILURE_NOTE).unlink(missing_ok=True)
        now = time.time()
        with self._transaction():
            self.conn.execute(
                "UPDATE run SET status='running', pid=?, host=?, device=?, "
                "ran = COALESCE(ran, 0) + COALESCE(MAX(0, COALESCE(finished, heartbeat) - "
                "COALESCE(session_started, started)), 0), "
                "started = COALESCE(started, ?), session_started = ?, heartbeat=?, finished=NULL, error=NULL "
                "WHERE id=1",
                (os.getpid(), socket.gethostname(), device, now, now, now),
            )
            self.conn.execute("DELETE FROM session_shards")

    def take_up_shard(self, group: Group, first_seed: int, models: int, from_step: int) -> None:
        """This session begins training a shard at ``from_step`` (its checkpoint's, or 0): the ETA counts as
        this session's work only the steps past it."""
        self.conn.execute(
            "INSERT OR REPLACE INTO session_shards VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*group, first_seed, models, from_step, time.time()),
        )

    def mark_ended(self, status: str, error: str | None = None) -> None:
        self.flush()
        self.conn.execute("UPDATE run SET status=?, finished=?, error=? WHERE id=1", (status, time.time(), error))

    def discard_pending(self) -> None:
        self._pending_curves = []

    def write_failure_note(self, message: str) -> None:
        atomic_write_bytes(self.dir / FAILURE_NOTE, message.encode())

    def heartbeat(self) -> None:
        self.conn.execute("UPDATE run SET heartbeat=? WHERE id=1", (time.time(),))

    def log_event(self, level: str, message: str) -> None:
        self.conn.execute("INSERT INTO events (time, level, message) VALUES (?, ?, ?)", (time.time(), level, message))

    def add_curve_points(self, group: Group, seeds: Iterable[int], step: int, train, test) -> None:
        """Buffer one evaluation's losses; :meth:`flush` commits them."""
        self._pending_curves += [
            (*group, s, step, _nan_to_none(tr), _nan_to_none(te)) for s, tr, te in zip(seeds, train, test, strict=True)
        ]

    def flush(self) -> None:
        if not self._pending_curves:
            return
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending_curves)
        self._pending_curves = []

    def set_progress(self, group: Group, first_seed: int, models: int, step: int, steps: int) -> None:
        now = time.time()
        self.conn.execute(
            "INSERT INTO progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (width, n_train, depth, first_seed) "
            "DO UPDATE SET step=excluded.step, updated=excluded.updated",
            (*group, first_seed, models, step, steps, now, now),
        )

    def add_shard_result(
        self,
        group: Group,
        seeds: list[int],
        n_params: int,
        train_loss: np.ndarray,
        test_loss: np.ndarray,
        diverged_step: np.ndarray,
        wall_seconds: float,
        outputs: np.ndarray,
        weights: dict[str, np.ndarray],
    ) -> None:
        """Persist a finished shard: arrays first, then its model rows in one transaction."""
        name = f"{group_stem(group)}_s{seeds[0]:05d}-{seeds[-1]:05d}.npz"
        arrays = {
            "seeds": np.asarray(seeds),
            "outputs": outputs,
            **{f"weight_{k}": v for k, v in weights.items()},
        }
        atomic_write_bytes(self.dir / "arrays" / name, _npz_bytes(arrays))
        self.flush()
        rows = [
            (*group, s, n_params, _nan_to_none(tr), _nan_to_none(te), int(d), wall_seconds, name)
            for s, tr, te, d in zip(seeds, train_loss, test_loss, diverged_step, strict=True)
        ]
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def write_checkpoint(self, group: Group, seeds: list[int], state: dict[str, np.ndarray], fingerprint: str) -> None:
        """Save a shard's training state at its step: the curve rows up to that step are committed first,
        then the file is written atomically, then its row; a kill anywhere in between leaves the previous
        checkpoint or this one, and rows that agree with either."""
        self.flush()
        name = checkpoint_name(group, seeds[0])
        arrays = {
            "schema_version": np.array(SCHEMA_VERSION),
            "fingerprint": np.array(fingerprint),
            "width": np.array(group.width),
            "n_train": np.array(group.n_train),
            "depth": np.array(group.depth),
            "seeds": np.asarray(seeds),
            **{f"state/{k}": v for k, v in state.items()},
        }
        atomic_write_bytes(self.dir / "arrays" / name, _npz_bytes(arrays))
        self.conn.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*group, seeds[0], len(seeds), int(state["step"]), name, time.time()),
        )

    def read_checkpoint(self, group: Group, seeds: list[int], fingerprint: str) -> dict[str, np.ndarray] | None:
        """The saved training state of this shard, or None when it has no checkpoint.

        Raises CheckpointRefused, naming the file, for one that is damaged or was written by another schema
        version, for another config (its fingerprint) or for another shard.
        """
        path = self.dir / "arrays" / checkpoint_name(group, seeds[0])
        where = f"checkpoint arrays/{path.name}"
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}  # reads every member: a bad CRC shows here
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise CheckpointRefused(f"{where} is damaged ({exc.__class__.__name__})") from None
        missing = [k for k in ("schema_version", "fingerprint", "width", "seeds", "state/step") if k not in arrays]
        if missing:
            raise CheckpointRefused(f"{where} is damaged (no {missing[0]!r})")
        version, width_saved, seeds_saved = arrays["schema_version"], arrays["width"], arrays["seeds"]
        if any(a.dtype.kind not in "iu" for a in (version, width_saved, seeds_saved)) or seeds_saved.ndim != 1:
            raise CheckpointRefused(f"{where} is damaged (its identity is not a width and a list of seeds)")
        # Schema 3's state is schema 4's; its file holds no data size or depth: its run had one of each.
        if version.shape != () or int(version) not in (3, SCHEMA_VERSION):
            raise CheckpointRefused(f"{where} is from schema version {version}, not {SCHEMA_VERSION}")
        if str(arrays["fingerprint"]) != fingerprint:
            raise CheckpointRefused(f"{where} is from another config")
        cell = tuple(int(arrays[k]) if k in arrays else None for k in ("n_train", "depth"))
        if int(version) == SCHEMA_VERSION and cell != (group.n_train, group.depth):
            raise CheckpointRefused(f"{where} holds data size {cell[0]}, depth {cell[1]}, not this shard's")
        if width_saved.shape != () or int(width_saved) != group.width or seeds_saved.tolist() != list(seeds):
            raise CheckpointRefused(
                f"{where} holds width {width_saved}, {seeds_label(seeds_saved)}, not this shard's {seeds_label(seeds)}"
            )
        return {k.removeprefix("state/"): v for k, v in arrays.items() if k.startswith("state/")}

    def drop_checkpoint(self, group: Group, first_seed: int) -> None:
        """Forget a shard's checkpoint once its results are stored: the row, then the file."""
        self.conn.execute(
            "DELETE FROM checkpoints WHERE width = ? AND n_train = ? AND depth = ? AND first_seed = ?",
            (*group, first_seed),
        )
        (self.dir / "arrays" / checkpoint_name(group, first_seed)).unlink(missing_ok=True)

    def finished_models(self) -> set[tuple[int, int, int, int]]:
        """Every finished model's (width, data size, depth, seed)."""
        return set(self.conn.execute("SELECT width, n_train, depth, seed FROM models").fetchall())

    def forget_unfinished(self, resume_points: dict[tuple[Group, int, int], int]) -> None:
        """Before a resume: keep the checkpoints the shards take up, given as (group, first seed, models) → step,
        and the curve rows up to each one's step; drop every other trace of unfinished models (curves,
        progress, checkpoints) and the temporary files a kill left mid-write.

        A shard's seeds are consecutive, so its models are the seeds first_seed … first_seed + models − 1.
        """
        now = time.time()
        with self._transaction():
            self.conn.execute("DELETE FROM checkpoints")
            self.conn.executemany(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (*group, first, n, step, checkpoint_name(group, first), now)
                    for (group, first, n), step in resume_points.items()
                ],
            )
            same = "{0}.width = {1}.width AND {0}.n_train = {1}.n_train AND {0}.depth = {1}.depth"
            self.conn.execute(
                f"DELETE FROM curves WHERE NOT EXISTS (SELECT 1 FROM models m WHERE {same.format('m', 'curves')} "
                f"AND m.seed = curves.seed) AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE "
                f"{same.format('c', 'curves')} AND curves.seed BETWEEN c.first_seed AND c.first_seed + c.models - 1 "
                "AND curves.step <= c.step)"
            )
            self.conn.execute(
                f"DELETE FROM progress WHERE NOT EXISTS (SELECT 1 FROM models m WHERE {same.format('m', 'progress')} "
                "AND m.seed = progress.first_seed)"
            )
        kept = {checkpoint_name(group, first) for group, first, _ in resume_points}
        for path in (self.dir / "arrays").iterdir():
            if (path.name.endswith(".checkpoint.npz") and path.name not in kept) or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def train_losses_before(self, group: Group, seeds: list[int], step: float) -> np.ndarray | None:
        """The shard's training losses at its last stored evaluation at or before ``step`` (None if none)."""
        where = "width = ? AND n_train = ? AND depth = ?"
        rows = self.conn.execute(
            f"SELECT train_loss FROM curves WHERE {where} AND seed BETWEEN ? AND ? AND step = "
            f"(SELECT MAX(step) FROM curves WHERE {where} AND seed = ? AND step <= ?) ORDER BY seed",
            (*group, seeds[0], seeds[-1], *group, seeds[0], step),
        ).fetchall()
        if len(rows) != len(seeds):
            return None
        return np.array([np.nan if v is None else v for (v,) in rows], dtype=float)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


@dataclass(frozen=True)
class RunStatus:
    """What a reader can say about a run's life: ``dead`` means the runner stopped without saying so."""

    status: str
    pid: int | None
    host: str | None
    device: str | None
    started: float | None
    finished: float | None
    heartbeat: float | None
    error: str | None
    session_started: float | None = None  # the current (or last) runner session's start; ``started`` is the first's
    ran: float = 0.0  # seconds the earlier sessions ran

    @property
    def is_live(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> float | None:
        """The time the run has trained, summed over its runner sessions: the earlier ones (``ran``) and the
        last, to its end, to now while it is live, or to its last heartbeat when its runner died. The wall
        time since ``started`` would also count the hours a stopped run waited to be resumed."""
        start = self.session_started if self.session_started is not None else self.started
        if start is None:
            return None
        end = self.finished or (time.time() if self.is_live else self.heartbeat)
        return None if end is None else self.ran + max(0.0, end - start)


def estimate_remaining(cfg: Config, progress: list[dict[str, Any]], session_started: float, now: float) -> float | None:
    """Seconds until the sweep is done, from what this runner session has trained; None before it has
    measured anything.

    Each shard the session took up (``from_step``, ``taken_up`` in its progress row) has trained
    ``models × (step − from_step)`` model-steps in ``updated − taken_up`` seconds: steps done before a resume
    are not this session's and count for nothing. That gives the seconds per model-step of each width (data
    size, depth) measured; a width not measured yet costs ``a + b·m``, m its multiply-adds per model-step
    (parameters × points per step), with a and b fitted to the measured widths (least squares weighted by
    their seconds; through the origin, proportional to m, while one size has been measured). The work left,
    ``seeds × steps`` of every width less what its progress rows have done, times those costs, is the
    training time left; it is scaled by the session's wall time over its training time, so the time between
    shards and the runner's start (and, with workers, the shards trained side by side) count as they have
    so far. Wide widths trained last are therefore not priced at the narrow ones' rate, and a resume does
    not count the work before it.
    """
    steps, seeds = cfg.training.steps, cfg.seeds.count
    done: dict[Group, float] = {}
    busy: dict[Group, float] = {}
    work: dict[Group, float] = {}
    for row in progress:
        group = Group(row["width"], row["n_train"], row["depth"])
        done[group] = done.get(group, 0.0) + row["models"] * row["step"]
        taken, start = row.get("from_step"), row.get("taken_up")
        if taken is None or start is None or row["updated"] is None or start < session_started:
            continue
        if row["step"] > taken and row["updated"] > start:
            busy[group] = busy.get(group, 0.0) + row["updated"] - start
            work[group] = work.get(group, 0.0) + row["models"] * (row["step"] - taken)
    measured = {g: busy[g] / work[g] for g in busy if work.get(g, 0) > 0}
    trained = sum(busy[g] for g in measured)
    if not measured or trained <= 0 or now <= session_started:
        return None

    def size(group: Group) -> float:
        cell = cfg.cell(group.n_train, group.depth)
        points = cell.training.batch_size or cell.data.n_train
        return float(parameter_count(cfg.target.input_dim, group.width, group.depth) * points)

    a, b = _fit_cost([(size(g), measured[g], busy[g]) for g in measured])
    left = 0.0
    for n_train, depth in cfg.cells:
        for width in cfg.model.widths:
            group = Group(width, n_train, depth)
            remaining = max(0.0, seeds * steps - done.get(group, 0.0))
            left += remaining * measured.get(group, a + b * size(group))
    return left * (now - session_started) / trained


def _fit_cost(points: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Seconds per model-step as ``a + b·m`` from measured (m, seconds per model-step, weight), a and b never
    negative: weighted least squares over two sizes or more, else a line through the origin."""
    total = sum(w for _, _, w in points)
    mean_m = sum(m * w for m, _, w in points) / total
    mean_s = sum(s * w for _, s, w in points) / total
    spread = sum(w * (m - mean_m) ** 2 for m, _, w in points)
    if spread > 0:
        b = sum(w * (m - mean_m) * (s - mean_s) for m, s, w in points) / spread
        a = mean_s - b * mean_m
        if b < 0:  # wider was not dearer: the measured mean for every width
            return mean_s, 0.0
        if a >= 0:
            return a, b
    return 0.0, sum(w * s * m for m, s, w in points) / sum(w * m * m for m, _, w in points)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ModelTable:
    """Final results, one entry per finished model, as parallel arrays sorted by (width, data size, depth,
    seed)."""

    width: np.ndarray
    n_train: np.ndarray
    depth: np.ndarray
    seed: np.ndarray
    n_params: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    diverged_step: np.ndarray
    wall_seconds: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_step >= 0

    def __len__(self) -> int:
        return len(self.width)


@dataclass
class CurveTable:
    """Loss curves as parallel arrays sorted by (width, data size, depth, seed, step)."""

    width: np.ndarray
    n_train: np.ndarray
    depth: np.ndarray
    seed: np.ndarray
    step: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray


def _as_trained(raw: dict[str, Any], schema_version: int) -> dict[str, Any]:
    """A saved config of an older schema with the fields it lacks set to what its run was trained with."""
    for version, added in TRAINED_WITH.items():
        if schema_version < version:
            for (section, key), value in added.items():
                table = raw.setdefault(section, {})
                if isinstance(table, dict):  # anything else is refused, naming the section, by validation
                    table.setdefault(key, value)
    return raw


class Run:
    """Read access to one run directory; safe while the runner is still writing it."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.id = run_dir.name
        self.meta = self._read_meta()
        self.config = self._read_config()
        db = run_dir / "run.sqlite"
        if not db.is_file():
            raise StoreError(f"{run_dir}: run.sqlite is missing")
        self._legacy_views: str | None = None  # for a schema-3 run, the WITH clause that adds its cell columns

    def _read_meta(self) -> dict[str, Any]:
        path = self.dir / "meta.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{path}: missing") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: unreadable ({exc.__class__.__name__})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("schema_version"), int):
            raise StoreError(f"{path}: no schema_version")
        if meta["schema_version"] > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {meta['schema_version']} is newer than this scaletui "
                f"understands ({SCHEMA_VERSION}); upgrade scaletui"
            )
        return meta

    def _read_config(self) -> Config:
        path = self.dir / "config.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StoreError(f"{path}: missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path}: unreadable ({exc.__class__.__name__})") from None
        try:
            raw = parse_toml(text, str(path))
            return config_from_dict(_as_trained(raw, self.meta["schema_version"]), str(path))
        except ConfigError as exc:
            raise StoreError(str(exc)) from None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = _connect(self.dir / "run.sqlite")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.dir / 'run.sqlite'}: cannot open ({exc})") from None
        try:
            with closing(conn):
                conn.execute("PRAGMA query_only = 1")
                if self._legacy_views is None:
                    self._legacy_views = self._views_for_old_tables(conn)
                yield conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.dir / 'run.sqlite'}: unreadable ({exc})") from None

    def _views_for_old_tables(self, conn: sqlite3.Connection) -> str:
        """A WITH clause under which a run written before schema 4 reads like one of schema 4: each keyed table
        shadowed by itself plus its run's one data size and depth as columns (empty for a schema-4 run)."""
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        old = [t for t in KEYED_TABLES if t in tables and not _has_grid_columns(conn, t)]
        if not old:
            return ""
        n, d = self.config.data_sizes[0], self.config.depths[0]
        views = (f"{t} AS (SELECT {KEYED_TABLES[t].format(n=int(n), d=int(d))} FROM main.{t})" for t in old)
        return "WITH " + ", ".join(views) + " "

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._db() as conn:
            return conn.execute(self._legacy_views + sql if sql.startswith("SELECT") else sql, args).fetchall()

    def _cell_of(self, n_train: int | None, depth: int | None) -> tuple[int, int]:
        """The (data size, depth) a caller means: the run's only value where it left one out."""
        sizes, depths = self.config.data_sizes, self.config.depths
        if n_train is None and len(sizes) > 1:
            raise StoreError(f"{self.id} sweeps {len(sizes)} data sizes: say which (n_train)")
        if depth is None and len(depths) > 1:
            raise StoreError(f"{self.id} sweeps {len(depths)} depths: say which (depth)")
        return (sizes[0] if n_train is None else n_train), (depths[0] if depth is None else depth)

    def status(self) -> RunStatus:
        """The recorded status, with a live-looking run whose runner is gone reported as ``dead``."""
        with self._db() as conn:  # by name: a run written before sessions were kept apart lacks the last two
            cursor = conn.execute("SELECT * FROM run")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if not rows:
            raise StoreError(f"{self.dir / 'run.sqlite'}: no status row")
        fields = ("status", "pid", "host", "device", "started", "finished", "heartbeat", "error", "session_started")
        st = RunStatus(**{k: rows[0].get(k) for k in fields}, ran=rows[0].get("ran") or 0.0)
        note = self.dir / FAILURE_NOTE
        if st.is_live and note.is_file():
            error = note.read_text(encoding="utf-8", errors="replace").strip()
            return dataclasses.replace(st, status="failed", error=error or "the runner failed (no reason recorded)")
        if st.is_live:
            here = st.host == socket.gethostname()
            if st.status == "running":
                stale = st.heartbeat is None or time.time() - st.heartbeat > STALE_AFTER_SECONDS
            else:  # created: launched (or about to be) but not yet training
                stale = st.pid is None and time.time() - float(self.meta.get("created", 0)) > STALE_AFTER_SECONDS
            if here and runner_lock_held(self.dir):  # its runner is alive, whatever its heartbeat says
                return dataclasses.replace(st, status="not responding") if stale and st.status == "running" else st
            gone = here and st.pid is not None and not _pid_alive(st.pid)
            if stale or gone:
                return dataclasses.replace(st, status="dead")
        return st

    def models(self) -> ModelTable:
        rows = self._query(
            "SELECT width, n_train, depth, seed, n_params, train_loss, test_loss, diverged_step, wall_seconds "
            "FROM models ORDER BY width, n_train, depth, seed"
        )
        cols = list(zip(*rows, strict=True)) if rows else [()] * 9
        as_float = [np.array([np.nan if v is None else v for v in c], dtype=float) for c in cols[5:7]]
        return ModelTable(
            width=np.array(cols[0], dtype=int),
            n_train=np.array(cols[1], dtype=int),
            depth=np.array(cols[2], dtype=int),
            seed=np.array(cols[3], dtype=int),
            n_params=np.array(cols[4], dtype=int),
            train_loss=as_float[0],
            test_loss=as_float[1],
            diverged_step=np.array(cols[7], dtype=int),
            wall_seconds=np.array([np.nan if v is None else v for v in cols[8]], dtype=float),
        )

    def curves(self, width: int | None = None, n_train: int | None = None, depth: int | None = None) -> CurveTable:
        """Loss curves, all of them or those of one width, data size or depth (any combination)."""
        given = [(name, v) for name, v in (("width", width), ("n_train", n_train), ("depth", depth)) if v is not None]
        where = ("WHERE " + " AND ".join(f"{name} = ?" for name, _ in given)) if given else ""
        rows = self._query(
            f"SELECT width, n_train, depth, seed, step, train_loss, test_loss FROM curves {where} "
            "ORDER BY width, n_train, depth, seed, step",
            tuple(v for _, v in given),
        )
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        ints = [np.array(c, dtype=int) for c in cols[:5]]
        floats = [np.array([np.nan if v is None else v for v in c], dtype=float) for c in cols[5:]]
        return CurveTable(*ints, *floats)

    def latest_test_losses(self) -> dict[Group, tuple[int, np.ndarray]]:
        """Per group (width, data size, depth), the newest evaluated step and its test losses: cheap enough to
        poll for live views."""
        rows = self._query(
            "SELECT c.width, c.n_train, c.depth, c.step, c.test_loss FROM curves c JOIN "
            "(SELECT width, n_train, depth, MAX(step) AS step FROM curves GROUP BY width, n_train, depth) m "
            "ON c.width = m.width AND c.n_train = m.n_train AND c.depth = m.depth AND c.step = m.step "
            "ORDER BY c.width, c.n_train, c.depth, c.seed"
        )
        latest: dict[Group, tuple[int, list[float]]] = {}
        for width, n_train, depth, step, loss in rows:
            latest.setdefault(Group(width, n_train, depth), (step, []))[1].append(np.nan if loss is None else loss)
        return {g: (step, np.array(losses, dtype=float)) for g, (step, losses) in latest.items()}

    def progress(self) -> list[dict[str, Any]]:
        """Each shard's progress row; ``from_step`` and ``taken_up`` say where and when the current runner
        session took it up (None for a shard it has not, and in a run written before sessions were kept)."""
        keys = ("width", "n_train", "depth", "first_seed", "models", "step", "steps", "started", "updated")
        rows = self._query(f"SELECT {', '.join(keys)} FROM progress ORDER BY width, n_train, depth, first_seed")
        taken: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        if self._has_table("session_shards"):
            sql = "SELECT width, n_train, depth, first_seed, from_step, started FROM session_shards"
            taken = {tuple(row[:4]): tuple(row[4:]) for row in self._query(sql)}
        return [
            {
                **dict(zip(keys, r, strict=True)),
                **dict(zip(("from_step", "taken_up"), taken.get(tuple(r[:4]), (None, None)), strict=True)),
            }
            for r in rows
        ]

    def _has_table(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def remaining_seconds(self, status: RunStatus | None = None, now: float | None = None) -> float | None:
        """The ETA of a running run (see :func:`estimate_remaining`), or None: not running, or no rate
        measured in this runner session yet. ``status``: the one just read, if the caller has it."""
        st = status or self.status()
        if st.status != "running" or st.session_started is None:
            return None
        return estimate_remaining(self.config, self.progress(), st.session_started, time.time() if now is None else now)

    def group(self, width: int) -> Group:
        """A width's group in a run that sweeps width alone (its one data size and depth)."""
        return Group(width, *self._cell_of(None, None))

    def parameter_counts(self) -> dict[int, int]:
        """N of every width of a run that sweeps width alone, known before any model of that width finished."""
        _, depth = self._cell_of(None, None)
        return {w: parameter_count(self.config.target.input_dim, w, depth) for w in self.config.model.widths}

    def groups(self) -> list[Group]:
        """Every (width, data size, depth) the config sweeps, in the order shards are planned."""
        cfg = self.config
        return [Group(w, n, d) for n, d in cfg.cells for w in cfg.model.widths]

    def progress_fraction(self) -> tuple[float, dict[Group, int]]:
        """Overall fraction of the sweep's work done (wide nets weighted by their cost) and each group's step."""
        cfg = self.config
        steps = cfg.training.steps
        done: dict[Group, float] = {}
        for row in self.progress():
            group = Group(row["width"], row["n_train"], row["depth"])
            done[group] = done.get(group, 0.0) + row["step"] * row["models"]
        groups = self.groups()
        cost = {g: 2000 + g.n_train + parameter_count(cfg.target.input_dim, g.width, g.depth) for g in groups}
        total = sum(cost.values())
        fraction = sum(cost[g] * min(1.0, done.get(g, 0.0) / (cfg.seeds.count * steps)) for g in groups) / total
        return fraction, {g: int(done.get(g, 0.0) / cfg.seeds.count) for g in groups}

    def checkpoints(self) -> list[dict[str, Any]]:
        """The unfinished shards' latest checkpoints: width, first_seed, models, step, written (a time).

        A run of schema 1 has none (nor the table)."""
        with self._db() as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'").fetchall():
                return []
            rows = conn.execute(  # a shard killed between storing its results and dropping its checkpoint is done
                self._legacy_views + "SELECT width, n_train, depth, first_seed, models, step, written "
                "FROM checkpoints c WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.width = c.width AND "
                "m.n_train = c.n_train AND m.depth = c.depth AND m.seed = c.first_seed) "
                "ORDER BY width, n_train, depth, first_seed"
            ).fetchall()
        keys = ("width", "n_train", "depth", "first_seed", "models", "step", "written")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def resume_points(self) -> list[tuple[str, int]]:
        """What a resume of the run would take up now: each unfinished width's (and, split by seeds, each
        shard's) label and the step it continues from, its checkpoint's or 0 where it has none (see
        :func:`scaletui.present.resume_points_text`). Read before the resume starts: the runner replaces them."""
        cfg = self.config
        finished = set(self._query("SELECT width, n_train, depth, seed FROM models"))
        saved = self.checkpoints()
        sizes, depths, count = len(cfg.data_sizes), len(cfg.depths), cfg.seeds.count

        def label(group: Group, seeds: list[int]) -> str:
            name = group_label(*group, sizes, depths)
            return name if len(seeds) == count else f"{name}, {seeds_label(seeds)}"

        points = []
        for group in self.groups():
            left = [s for s in range(count) if (*group, s) not in finished]
            for c in saved:
                if (c["width"], c["n_train"], c["depth"]) == tuple(group):
                    seeds = list(range(c["first_seed"], c["first_seed"] + c["models"]))
                    points.append((label(group, seeds), int(c["step"])))
                    left = [s for s in left if s not in seeds]
            if left:
                points.append((label(group, left), 0))
        return points

    def events(self, after_id: int = 0) -> list[tuple[int, float, str, str]]:
        return self._query("SELECT id, time, level, message FROM events WHERE id > ? ORDER BY id", (after_id,))

    def _load_npz(self, name: str, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Read some (or all) arrays of an .npz; members are read lazily, so skipping weights is cheap."""
        path = self.dir / "arrays" / name
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in (keys or data.files)}
        except FileNotFoundError:
            raise StoreError(f"{path}: missing") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise StoreError(f"{path}: unreadable ({exc.__class__.__name__})") from None

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        data = self._load_npz("test_set.npz")
        return data["x"], data["y"]

    def outputs(
        self, width: int, n_train: int | None = None, depth: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seeds and their outputs on the test set, (seeds,) and (seeds, n_test), for the finished models of one
        width at one data size and depth (either may be left out when the run has only one)."""
        cell = self._cell_of(n_train, depth)
        rows = self._query(
            "SELECT arrays FROM models WHERE width = ? AND n_train = ? AND depth = ? GROUP BY arrays "
            "ORDER BY MIN(seed)",
            (width, *cell),
        )
        names = [r[0] for r in rows]
        seeds, outputs = [], []
        for name in names:
            data = self._load_npz(name, ("seeds", "outputs"))
            seeds.append(data["seeds"])
            outputs.append(data["outputs"])
        if not names:
            return np.zeros(0, dtype=int), np.zeros((0, 0))
        return np.concatenate(seeds), np.concatenate(outputs)

    def weights(
        self, width: int, seed: int, n_train: int | None = None, depth: int | None = None
    ) -> dict[str, np.ndarray]:
        """One model's final weights, keyed W0, b0, W1, b1, ... (W0 has shape (input_dim, width))."""
        cell = self._cell_of(n_train, depth)
        rows = self._query(
            "SELECT arrays FROM models WHERE width = ? AND n_train = ? AND depth = ? AND seed = ?",
            (width, *cell, seed),
        )
        if not rows:
            raise StoreError(f"{self.id}: no finished model at width {width}, seed {seed}")
        data = self._load_npz(rows[0][0])
        index = int(np.nonzero(data["seeds"] == seed)[0][0])
        return {k.removeprefix("weight_"): v[index] for k, v in data.items() if k.startswith("weight_")}


@dataclass(frozen=True)
class RunListing:
    """One line of ``scaletui ls``: a readable run, or a damaged one with the reason."""

    id: str
    path: Path
    run: Run | None
    status: RunStatus | None
    finished_models: int
    error: str | None

    @property
    def created(self) -> float:
        if self.run is not None:
            return float(self.run.meta.get("created", 0.0))
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0


def is_run_dir(path: Path) -> bool:
    """A scaletui run directory, recognised by its own markers, never by a file name alone: a meta.json holding
    the project's ``schema_version`` and ``run_id``, or a run.sqlite holding the run tables. Either suffices, so
    a run with one of the two damaged is still recognised (and can be listed as damaged, and removed)."""
    return path.is_dir() and not path.name.startswith(".") and (_has_run_meta(path) or _has_run_tables(path))


def _has_run_meta(path: Path) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict) and isinstance(meta.get("schema_version"), int) and isinstance(meta.get("run_id"), str)
    )


def _has_run_tables(path: Path) -> bool:
    db = path / "run.sqlite"
    if not db.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return False
    return names >= RUN_TABLES


def list_runs(runs_dir: Path) -> list[RunListing]:
    """Every run in the directory, oldest first; a damaged run is listed with its error, never raised."""
    if not runs_dir.is_dir():
        return []
    listings = []
    for path in runs_dir.iterdir():
        if not is_run_dir(path):
            continue
        try:
            run = Run(path)
            status = run.status()
            count = run._query("SELECT COUNT(*) FROM models")[0][0]
            listings.append(RunListing(path.name, path, run, status, count, None))
        except StoreError as exc:
            listings.append(RunListing(path.name, path, None, None, 0, str(exc)))
    return sorted(listings, key=lambda r: (r.created, r.id))


def resolve_run(runs_dir: Path, ref: str) -> Path:
    """A run directory from an id, a unique id prefix, a path, ``latest``, or a run's name (the name the
    runs screen shows, when one run has it); only recognised runs (:func:`is_run_dir`) are ever returned."""
    candidate = Path(ref)
    if candidate.is_dir() and is_run_dir(candidate):
        return candidate
    if ref == "latest":
        runs = list_runs(runs_dir)
        if not runs:
            raise StoreError(f"no runs in {runs_dir}")
        return runs[-1].path
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", ref):
        if candidate.is_dir():
            raise StoreError(f"{ref} is a directory but not a scaletui run (no run meta.json or run.sqlite)")
        raise StoreError(f"{ref!r} is not a run id, a run directory, or 'latest'")
    if is_run_dir(runs_dir / ref):
        return runs_dir / ref
    matches = sorted(p for p in runs_dir.glob(f"{ref}*") if is_run_dir(p)) if runs_dir.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StoreError(f"{ref!r} matches {len(matches)} runs in {runs_dir}; give more of the id")
    named = [item for item in list_runs(runs_dir) if item.run is not None and item.run.config.name == ref]
    if len(named) == 1:
        return named[0].path
    if len(named) > 1:
        ids = ", ".join(item.id for item in named)
        raise StoreError(f"{len(named)} runs in {runs_dir} are named {ref!r} ({ids}); give an id")
    if candidate.is_dir():
        raise StoreError(f"{ref} is a directory but not a scaletui run (no run meta.json or run.sqlite)")
    raise StoreError(f"no run {ref!r} in {runs_dir}")


def removable_run(runs_dir: Path, ref: str) -> Path:
    """The run that ``rm REF`` may delete: a recognised run that is neither the working directory, nor the runs
    directory, nor a folder holding it."""
    run_dir = resolve_run(runs_dir, ref)
    here = run_dir.resolve()
    if here == Path.cwd().resolve():
        raise StoreError(f"{ref} is the current directory; step out of it and name the run")
    runs_home = runs_dir.resolve()
    if here == runs_home or here in runs_home.parents:
        raise StoreError(f"{ref} is the runs directory or holds it; name a run inside it")
    return run_dir


def delete_run(run_dir: Path) -> None:
    """Remove a recognised run directory; a run whose runner is alive (or starting) is refused."""
    if not is_run_dir(run_dir):
        raise StoreError(f"{run_dir} is not a scaletui run directory")
    if runner_lock_held(run_dir):
        raise StoreError(f"run {run_dir.name} has a live runner; stop it before deleting it")
    try:
        status = Run(run_dir).status().status
    except StoreError:
        status = "damaged"  # a damaged run that is recognised as one can be removed
    starting = status == "created" and time.time() - run_dir.stat().st_mtime < STALE_AFTER_SECONDS
    if status in ("running", "not responding") or starting:
        raise StoreError(f"run {run_dir.name} is {'starting' if starting else status}; stop it before deleting it")
    shutil.rmtree(run_dir)


def rename_run(run_dir: Path, name: str) -> None:
    """Give a run a new display name (its config's ``name``); the id and directory stay as they are."""
    run = Run(run_dir)
    renamed = config_from_dict({**config_to_dict(run.config), "name": name}, "new name")
    atomic_write_bytes(
        run_dir / "config.toml", config_to_toml(dataclasses.replace(run.config, name=renamed.name)).encode()
    )


def open_run(runs_dir: Path, ref: str) -> Run:
    return Run(resolve_run(runs_dir, ref))
