"""What keeps training runs on one output folder from hurting each other or losing work.

* **Lock** (:func:`acquire_run_lock`): ``<output_dir>/run.lock`` holds the owner's pid, host and
  start time. It is created atomically (written to a private temporary file, then hard-linked to
  its name, which fails if a lock exists) and removed when the run ends. A second run on the
  folder is refused naming the owner; a lock whose pid no longer lives on this host (or is this
  process's own pid, reused after a container restart) is stale and taken over with a message;
  a lock of another host cannot be checked from here and is only taken over when asked
  (``--take-over-lock``). A live owner is never overridden.
* **Earlier runs** (:func:`keep_earlier_run`): a fresh start (no ``--resume``) in a folder
  that holds an earlier run's files moves them to ``previous/<time>/``: nothing is overwritten.
* **Orphans** (:func:`remove_orphan_temporaries`): a run killed while writing a checkpoint leaves
  ``.last.pt.XXXX.tmp``; the next run that holds the lock removes such files.
* **Resume config** (:func:`resume_config_changes`): a resumed run whose config differs from the
  checkpoint's in a key that changes the result is refused unless explicitly allowed; the keys
  that do not change the result are listed in :data:`RESULT_NEUTRAL_KEYS`.
* **Loss log** (:func:`truncate_loss_log`): entries after the checkpoint's step (written by the
  run that was killed) are dropped on resume, so each step appears once.
* **config.yaml** (:func:`write_run_config`): written after the checks, with the history of
  allowed changes as a header, so it tells what ran.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pose_data import atomic_write

from .runtime import DistributedContext

__all__ = [
    "LOCK_NAME",
    "RESULT_NEUTRAL_KEYS",
    "LockOwner",
    "ResumeConfigError",
    "RunLock",
    "RunLockError",
    "acquire_run_lock",
    "begin_training",
    "open_run_folder",
    "remove_orphan_temporaries",
    "resume_config_changes",
    "truncate_loss_log",
    "write_run_config",
]

LOCK_NAME = "run.lock"

# Config keys (dotted; a key covers its sub-keys) whose change does not change what a resumed run
# computes: paths of the run's own folder, logging, validation, checkpoint cadence, data loading
# processes and the step count (training step k is the same whatever the total; not so under
# the lifting run's cosine schedule, where a changed total is result-changing). Any other key,
# and the world size, changes the result: a resume that changes it is refused unless allowed.
RESULT_NEUTRAL_KEYS: dict[str, frozenset[str]] = {
    "ProHMRConfig": frozenset(
        {
            "output_dir",
            "data.num_workers",
            "train.total_steps",
            "train.log_steps",
            "train.val_steps",
            "train.image_log_steps",
            "train.checkpoint_steps",
            "train.num_val_samples",
            "report",
        }
    ),
    "LiftingConfig": frozenset(
        {
            "output_dir",
            "val_file",
            "total_steps",
            "log_steps",
            "val_steps",
            "checkpoint_steps",
            "num_val_samples",
        }
    ),
}


class RunLockError(RuntimeError):
    """The output folder is locked by another run (or its lock cannot be read)."""


class ResumeConfigError(ValueError):
    """``--resume`` with a config that differs from the checkpoint's in a result-changing key."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: process id, host name and start time (local ISO time)."""

    pid: int
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"


def _this_owner() -> LockOwner:
    return LockOwner(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read_owner(path: Path) -> LockOwner | None:
    """The lock's owner; None when the lock vanished meanwhile.

    Raises:
        RunLockError: naming the file, if it is not a lock this module wrote.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        owner = LockOwner(int(data["pid"]), str(data["host"]), str(data["started"]))
    except (ValueError, KeyError, TypeError) as error:
        raise RunLockError(
            f"lock file {path} is unreadable (expected JSON with pid, host and started, got "
            f"{text[:80]!r}: {error}); if no run uses {path.parent}, remove it"
        ) from None
    if owner.pid <= 0:
        raise RunLockError(f"lock file {path} holds pid {owner.pid}; expected a pid > 0")
    return owner


def _create_exclusive(path: Path, owner: LockOwner) -> bool:
    """Create the lock with its whole content at once; False if a lock exists."""
    content = json.dumps({"pid": owner.pid, "host": owner.host, "started": owner.started})
    descriptor, name = tempfile.mkstemp(
        prefix=f".{path.name}.{owner.pid}.", suffix=".tmp", dir=path.parent
    )  # created with O_CREAT | O_EXCL under a fresh name
    temporary = Path(name)
    try:
        os.write(descriptor, content.encode() + b"\n")
        os.fsync(descriptor)
        os.close(descriptor)
        try:
            os.link(temporary, path)  # atomic, fails if the lock exists
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _remove_if_owned_by(path: Path, owner: LockOwner) -> None:
    """Remove the lock if it still holds ``owner`` (another starter may have replaced it)."""
    private = path.with_name(f".{path.name}.{os.getpid()}.stale")
    try:
        os.rename(path, private)
    except FileNotFoundError:
        return
    try:
        if _read_owner(private) != owner:  # a fresh lock of another starter: put it back
            try:
                os.link(private, path)
            except FileExistsError:
                pass
    finally:
        private.unlink(missing_ok=True)


class RunLock:
    """A held ``run.lock``; :meth:`release` (or leaving a ``with`` block) removes it."""

    def __init__(self, path: Path, owner: LockOwner) -> None:
        self.path = path
        self.owner = owner

    def release(self) -> None:
        """Remove the lock if it is still ours (never another run's)."""
        try:
            if _read_owner(self.path) == self.owner:
                self.path.unlink(missing_ok=True)
        except RunLockError:
            pass

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_run_lock(
    folder: str | os.PathLike[str],
    *,
    take_over_foreign: bool = False,
    log: Callable[[str], None] = _say,
) -> RunLock:
    """Lock ``folder`` (created if absent) for this process.

    Args:
        folder: the run's output folder.
        take_over_foreign: take over a lock written on another host (whose process this host
            cannot check); only for a run known to be dead.
        log: receives the message when a stale or foreign lock is taken over.

    Raises:
        RunLockError: naming the folder and the owner (pid, host, start time) when a live
            process on this host holds the lock, or a process of another host does and
            ``take_over_foreign`` is False; naming the lock file when it cannot be read.
        ValueError: if ``folder`` exists and is not a folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`output_dir` must be a folder, got the file {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = _this_owner()
    for _ in range(5):
        if _create_exclusive(path, me):
            return RunLock(path, me)
        owner = _read_owner(path)
        if owner is None:  # released meanwhile
            continue
        if owner.host == me.host:
            # our own pid in a lock we do not hold: an ended run had it (a restarted container)
            if owner.pid != me.pid and _pid_alive(owner.pid):
                raise RunLockError(
                    f"output folder {folder} is in use by another run ({owner.describe()}; lock "
                    f"{path}); wait for it to end, or use another output_dir (if that pid is "
                    "no training run but a reused one, remove the lock)"
                )
            log(
                f"taking over the stale lock {path}: its run ({owner.describe()}) is no longer "
                "alive on this host"
            )
        elif take_over_foreign:
            log(
                f"taking over the lock {path} of another host ({owner.describe()}) as "
                "--take-over-lock asks"
            )
        else:
            raise RunLockError(
                f"output folder {folder} is locked by a run of another host ({owner.describe()}; "
                f"lock {path}); this host ({me.host}) cannot tell whether it is alive. If that "
                "run is dead, start again with --take-over-lock"
            )
        _remove_if_owned_by(path, owner)
    raise RunLockError(f"could not lock {folder}: {path} keeps changing hands")


def remove_orphan_temporaries(
    folder: str | os.PathLike[str], *, log: Callable[[str], None] = _say
) -> list[Path]:
    """Remove the temporary files interrupted atomic writes left in ``folder`` and its
    ``checkpoints/`` (``.NAME.XXXX.tmp``). Call only while holding the folder's lock.

    Returns:
        The removed files.
    """
    folder = Path(folder)
    removed = []
    for directory in (folder, folder / "checkpoints"):
        for path in sorted(directory.glob(".*.tmp")):
            if path.name.startswith(f".{LOCK_NAME}."):  # another starter's lock being written
                pid = path.name[len(LOCK_NAME) + 2 :].split(".")[0]  # .run.lock.PID.XXXX.tmp
                if not pid.isdigit() or _pid_alive(int(pid)):
                    continue
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        names = ", ".join(str(path) for path in removed)
        log(f"removed {len(removed)} temporary file(s) left by an interrupted write: {names}")
    return removed


#: Entries of an output folder that are not a run's own files: a fresh start leaves them.
KEPT_IN_PLACE = frozenset({LOCK_NAME, "previous", "data"})


def keep_earlier_run(
    folder: str | os.PathLike[str], *, log: Callable[[str], None] = _say
) -> Path | None:
    """A fresh start in a folder that holds an earlier run's files (checkpoints, loss logs,
    config.yaml, reports, TensorBoard logs): move them into ``previous/<time>/`` so that the
    new run overwrites nothing. The lock, ``previous/`` and ``data/`` (a lifting run's
    generated data set) stay. Call only while holding the folder's lock, before the run
    writes anything.

    Returns:
        The folder the earlier run's files went to, or None if there were none.
    """
    folder = Path(folder)
    entries = [e for e in sorted(folder.iterdir()) if e.name not in KEPT_IN_PLACE]
    entries = [e for e in entries if not (e.name.startswith(".") and e.name.endswith(".tmp"))]
    if not entries:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / "previous" / stamp
    suffix = 1
    while target.exists():
        suffix += 1
        target = folder / "previous" / f"{stamp}-{suffix}"
    target.mkdir(parents=True)
    for entry in entries:
        os.replace(entry, target / entry.name)
    log(
        f"kept the earlier run's files of {folder} in {target} (a fresh start; pass --resume "
        "to continue a run instead)"
    )
    return target


def open_run_folder(
    folder: str | os.PathLike[str],
    ctx: DistributedContext,
    *,
    take_over_foreign: bool = False,
    keep_earlier: bool = False,
    log: Callable[[str], None] = _say,
) -> RunLock | None:
    """Start of a training program: the main rank locks ``folder``, removes orphaned
    temporary files and, with ``keep_earlier`` (a fresh start), moves an earlier run's files
    aside (:func:`keep_earlier_run`); the other ranks hold no lock and wait for it (barrier
    under DDP).

    Raises:
        RunLockError, ValueError: see :func:`acquire_run_lock` (main rank).
    """
    lock = None
    if ctx.is_main:
        lock = acquire_run_lock(folder, take_over_foreign=take_over_foreign, log=log)
        remove_orphan_temporaries(folder, log=log)
        if keep_earlier:
            keep_earlier_run(folder, log=log)
    if ctx.distributed:
        import torch.distributed

        torch.distributed.barrier()
    return lock


def add_run_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """The training programs' flags for the run folder: ``--resume``, ``--allow-config-change``
    and ``--take-over-lock`` (read by :func:`run_in_folder` and the training functions)."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue output_dir's run from checkpoints/last.pt (refused if the config differs "
        "from the checkpoint's in a key that changes the result; see --allow-config-change)",
    )
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: continue with result-changing config changes (lr, batch size, "
        "seed, model sizes, data, ...); recorded in the checkpoint and config.yaml",
    )
    parser.add_argument(
        "--take-over-lock",
        action="store_true",
        help="take over the output folder's run.lock when it was written on another host "
        "(whose run this host cannot check; only for a run you know is dead). A lock of a dead "
        "run on this host is taken over without it; a live run's lock never is",
    )


def run_in_folder(
    program: str,
    folder: str | os.PathLike[str],
    ctx: DistributedContext,
    run: Callable[[], int],
    *,
    resume: bool,
    take_over_foreign: bool = False,
) -> int:
    """Run a training program's body while holding ``folder``'s lock (:func:`open_run_folder`);
    a fresh start (not ``resume``) first moves an earlier run's files to ``previous/``.

    A lock held by another run, or a resume whose config changes are refused, ends the program
    with the message (``SystemExit``, prefixed by ``program``); the lock is released however
    ``run`` ends.
    """
    try:
        lock = open_run_folder(
            folder, ctx, take_over_foreign=take_over_foreign, keep_earlier=not resume
        )
    except RunLockError as error:
        raise SystemExit(f"{program}: {error}") from None
    try:
        return run()
    except ResumeConfigError as error:
        raise SystemExit(f"{program}: {error}") from None
    finally:
        if lock is not None:
            lock.release()


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict) and (values or not prefix):
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: values}


def _neutral(key: str, neutral: frozenset[str]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in neutral)


_ABSENT = "<absent>"


def resume_config_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    kind: str,
    checkpoint: str | os.PathLike[str],
    allow: bool,
) -> dict[str, list[Any]]:
    """The dotted keys whose values differ between the checkpoint's config and this run's.

    Args:
        old, new: the configs as dicts (``config_to_dict``); a ``world_size`` entry may be added.
        kind: the config class name, a key of :data:`RESULT_NEUTRAL_KEYS`.
        checkpoint: the checkpoint file, for the message.
        allow: accept result-changing differences (``--allow-config-change``).

    Returns:
        ``{dotted key: [old value, new value]}`` for every difference (neutral ones included).

    Raises:
        ResumeConfigError: listing ``key: old -> new`` for each result-changing difference,
            when ``allow`` is False.
    """
    flat_old, flat_new = _flatten(old), _flatten(new)
    changes = {
        key: [flat_old.get(key, _ABSENT), flat_new.get(key, _ABSENT)]
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key, _ABSENT) != flat_new.get(key, _ABSENT)
    }
    neutral = RESULT_NEUTRAL_KEYS[kind]
    if "total_steps" in neutral and "constant" not in (
        old.get("lr_schedule", "constant"),
        new.get("lr_schedule", "constant"),
    ):
        # a decaying schedule is a function of the step and the total: a new total moves the
        # rates of the remaining steps
        neutral = neutral - {"total_steps"}
    changing = {key: pair for key, pair in changes.items() if not _neutral(key, neutral)}
    if changing and not allow:
        listed = "; ".join(f"{key}: {a!r} -> {b!r}" for key, (a, b) in changing.items())
        raise ResumeConfigError(
            f"--resume from {checkpoint}: the config differs from the checkpoint's in keys that "
            f"change the result ({listed}); resume with the checkpoint's values, use another "
            "output_dir, or pass --allow-config-change to continue with the new values (the "
            "change is recorded in the checkpoint and config.yaml)"
        )
    return changes


def _write_text_atomically(path: Path, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def truncate_loss_log(
    path: str | os.PathLike[str], step: int, *, log: Callable[[str], None] = _say
) -> int:
    """Keep the entries of steps ``1..step`` of a JSON-lines loss log, each once (the last
    entry of a step wins), and drop the rest (a killed run's steps after its checkpoint, a
    half-written line); the file is replaced atomically.

    Returns:
        The number of lines dropped.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    kept: dict[int, str] = {}
    for line in lines:
        try:
            entry_step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
        if 1 <= entry_step <= step:
            kept[entry_step] = line
    dropped = len(lines) - len(kept)
    if dropped:
        _write_text_atomically(path, "".join(kept[s] + "\n" for s in sorted(kept)))
        log(f"{path}: dropped {dropped} entr{'y' if dropped == 1 else 'ies'} after step {step}")
    return dropped


def write_run_config(
    path: str | os.PathLike[str], config: dict[str, Any], history: list[dict[str, Any]]
) -> Path:
    """Write ``config.yaml`` (atomically): the config the run continues with, headed by the
    changes allowed at earlier resumes (``history``), so that it tells what ran."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["# The config of the run in this folder."]
    for entry in history:
        header.append(f"# Resumed after step {entry['step']} with changed values (old -> new):")
        header += [f"#   {key}: {a!r} -> {b!r}" for key, (a, b) in entry["changes"].items()]
    if history:
        header.append("# The values below hold from the last of those resumes on.")
    text = "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False)
    _write_text_atomically(path, text)
    return path


def begin_training(
    config: dict[str, Any],
    state: dict[str, Any] | None,
    *,
    kind: str,
    checkpoint: str | os.PathLike[str],
    loss_log: str | os.PathLike[str] | None,
    config_path: str | os.PathLike[str] | None,
    allow_config_change: bool = False,
    world_size: int | None = None,
    log: Callable[[str], None] = _say,
) -> list[dict[str, Any]]:
    """After the checkpoint to resume from is read (``state``; None on a fresh start): check
    the config against the checkpoint's, cut the loss log back to the checkpoint's step and
    write ``config.yaml``. Call before anything is trained or written.

    Args:
        config: this run's config (``config_to_dict``).
        state: the checkpoint (with 'step', 'config', optional 'config_history' and
            'world_size') or None.
        loss_log: this rank's loss log (None: none to cut).
        config_path: where to write config.yaml (None on the ranks that write no files).
        world_size: this run's world size, compared with the checkpoint's when both are known.

    Returns:
        The config history to store in the checkpoints this run writes (entries
        ``{'step', 'changes'}``).

    Raises:
        ResumeConfigError: see :func:`resume_config_changes`.
        ValueError: naming the checkpoint, if it lacks 'step' or 'config'.
    """
    step = 0
    history: list[dict[str, Any]] = []
    if state is None and Path(checkpoint).is_file():
        log(
            f"starting afresh: the checkpoint {checkpoint} of an earlier run in this folder will "
            "be overwritten (pass --resume to continue it instead)"
        )
    if state is not None:
        missing = [key for key in ("step", "config") if key not in state]
        if missing:
            raise ValueError(
                f"--resume from {checkpoint}: expected a training checkpoint with 'step' and "
                f"'config', got one without {missing}"
            )
        step = int(state["step"])
        old, new = dict(state["config"]), dict(config)
        if world_size is not None and "world_size" in state:
            old["world_size"], new["world_size"] = int(state["world_size"]), world_size
        changes = resume_config_changes(
            old, new, kind=kind, checkpoint=checkpoint, allow=allow_config_change
        )
        history = list(state.get("config_history", []))
        if changes:
            history.append({"step": step, "changes": changes})
            listed = "; ".join(f"{key}: {a!r} -> {b!r}" for key, (a, b) in changes.items())
            log(f"resuming after step {step} with config changes: {listed}")
    if loss_log is not None:
        truncate_loss_log(loss_log, step, log=log)
    if config_path is not None:
        write_run_config(config_path, config, history)
    return history
