"""Many photos: ``gradhog align --manifest M`` and ``gradhog align --photo DIR --mesh MESH``.

The orchestration around the single-photo alignment (:func:`blender_gradhog.cli_align.align_files`):
the manifest is read into a job list, jobs already in the results file are skipped, the rest run in
this process, in ``--jobs N`` local worker processes, or on a Dask cluster (``--scheduler``), and
each result is appended to a JSON-lines file by this process only, one line per photo.

Crash safety: every line is written with one ``os.write`` on an ``O_APPEND`` descriptor and
fsync'ed before the next job's result is taken, so a run killed at any moment (SIGKILL, power loss)
leaves whole lines plus at most one unfinished last line; on restart that tail is cut off and the
photos without a line run again, so every photo ends up exactly once.

Nothing here imports ``bpy``; ``cli_align.align_one`` imports it in whatever
process runs the job.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga")
#: Columns a manifest may have (``photo`` required; ``mesh`` unless ``--mesh`` gives a default).
MANIFEST_COLUMNS = ("photo", "mesh", "mask", "bbox", "lens_mm", "sensor_width_mm")
#: ``gradhog align`` flags that are not run-wide alignment options: every other flag (``--seed``,
#: ``--no-refine``, ...) is forwarded to each photo's alignment and is part of the job's key.
NOT_FORWARDED = ("func", "command", "photo", "mesh", "mask", "bbox", "lens_mm", "sensor_width_mm", "out",
                 "overlay", "save_blend", "manifest", "jobs", "scheduler", "retry_failed", "quiet")
#: Forwarded flags that cannot change a result, hence left out of the key.
NOT_IN_KEY = ("cache_dir", "no_cache")

Job = dict
Align = Callable[[Job], dict]


def _cli_error(message: str) -> Exception:
    from . import _backend

    return _backend.cli.CliError(message)


# --------------------------------------------------------------------------------------------
# Jobs: manifest rows and photo folders
# --------------------------------------------------------------------------------------------

def job_key(job: Job) -> str:
    """Identity of a job: the photo's and mesh's resolved paths plus every option that changes it.

    A results line carries its job's key; a rerun skips the jobs whose key is already there.
    """
    identity = {name: job.get(name) for name in MANIFEST_COLUMNS}
    identity["options"] = {name: value for name, value in job.get("options", {}).items() if name not in NOT_IN_KEY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _resolved(value: str, folder: Path) -> str:
    path = Path(value).expanduser()
    return str((path if path.is_absolute() else folder / path).resolve())


def _number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def _lens(value):
    """A lens cell: ``"exif"``, ``"auto"`` (as ``--lens-mm``) or a positive number of millimetres."""
    if isinstance(value, str) and value.strip().lower() in ("exif", "auto"):
        return value.strip().lower()
    return _number(value, "lens_mm")


def _bbox(value) -> list[float]:
    # CSV cells hold "x0 y0 x1 y1" (spaces, commas or semicolons); JSON lines hold a list.
    parts = value.replace(",", " ").replace(";", " ").split() if isinstance(value, str) else value
    try:
        box = [float(part) for part in parts]
    except (TypeError, ValueError):
        box = []
    if len(box) != 4 or not all(map(math.isfinite, box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"bbox must be 4 numbers x0 y0 x1 y1 with x1 > x0 and y1 > y0, got {value!r}")
    return box


def make_job(row: dict, folder: Path, defaults: dict) -> Job:
    """One job from a manifest row (paths relative to ``folder``) over the run-wide ``defaults``.

    ``defaults`` holds ``mesh`` (or None), ``mask``, ``bbox``, ``lens_mm``, ``sensor_width_mm`` and
    ``options`` (run-wide ``gradhog align`` flags by attribute name, e.g. ``{"seed": 0}``; flags
    left out take the command's defaults). Raises ValueError naming the faulty column.
    """
    unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; expected {', '.join(MANIFEST_COLUMNS)}")
    cell = {name: row[name] for name in MANIFEST_COLUMNS
            if row.get(name) is not None and str(row[name]).strip() != ""}
    if "photo" not in cell:
        raise ValueError("no photo")
    mesh = cell.get("mesh", defaults.get("mesh"))
    if mesh is None:
        raise ValueError("no mesh (give a mesh column or --mesh)")
    job = {"photo": _resolved(str(cell["photo"]), folder), "mesh": _resolved(str(mesh), folder),
           "mask": _resolved(str(cell["mask"]), folder) if "mask" in cell else defaults.get("mask"),
           "bbox": _bbox(cell["bbox"]) if "bbox" in cell else defaults.get("bbox"),
           "lens_mm": _lens(cell.get("lens_mm", defaults.get("lens_mm", "exif"))),
           "sensor_width_mm": _number(cell["sensor_width_mm"], "sensor_width_mm") if "sensor_width_mm" in cell
           else defaults.get("sensor_width_mm")}
    job["options"] = dict(defaults.get("options") or {})
    job["key"] = job_key(job)
    return job


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, row)`` of a CSV (with a header) or JSON-lines manifest; blank and ``#`` lines skipped."""
    text = path.read_text(encoding="utf-8-sig")
    first = next((line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    if first.startswith("{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise _cli_error(f"{path} line {number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise _cli_error(f"{path} line {number}: expected a JSON object, got {type(row).__name__}")
            yield number, row
        return
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return
    reader = csv.reader([line for _, line in lines], skipinitialspace=True)
    header = [name.strip() for name in next(reader)]
    if "photo" not in header:
        raise _cli_error(f"{path} line {lines[0][0]}: the CSV header has no 'photo' column "
                         f"(columns: {', '.join(MANIFEST_COLUMNS)})")
    for (number, _), cells in zip(lines[1:], reader):
        if len(cells) != len(header):
            raise _cli_error(f"{path} line {number}: {len(cells)} cells for {len(header)} columns")
        yield number, dict(zip(header, (cell.strip() for cell in cells)))


def read_manifest(path: str | os.PathLike, defaults: dict) -> list[Job]:
    """The jobs of a manifest (CSV with a header, or JSON lines), in file order.

    Relative paths are relative to the manifest's folder. Raises CliError naming the line of the
    first bad row (unknown column, missing photo or mesh, bad number or box, repeated job).
    """
    path = Path(path)
    if not path.is_file():
        raise _cli_error(f"{path}: no such manifest")
    jobs, seen = [], {}
    for number, row in _manifest_rows(path):
        try:
            job = make_job(row, path.resolve().parent, defaults)
        except ValueError as error:
            raise _cli_error(f"{path} line {number}: {error}") from None
        if job["key"] in seen:
            raise _cli_error(f"{path} line {number}: repeats line {seen[job['key']]} (same photo, mesh and options)")
        seen[job["key"]] = number
        jobs.append(job)
    if not jobs:
        raise _cli_error(f"{path}: the manifest lists no photo")
    return jobs


def folder_jobs(folder: str | os.PathLike, defaults: dict) -> list[Job]:
    """One job per image in ``folder`` (sorted by name), all of ``defaults['mesh']``.

    An image named ``<stem>_mask.<ext>`` is not a photo but the mask of ``<stem>.<any ext>``.
    """
    folder = Path(folder)
    images = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    masks = {path.stem[: -len("_mask")]: path for path in images if path.stem.endswith("_mask")}
    jobs = []
    for path in images:
        if path.stem.endswith("_mask"):
            continue
        row = {"photo": str(path)}
        if path.stem in masks:
            row["mask"] = str(masks[path.stem])
        jobs.append(make_job(row, folder, defaults))
    if not jobs:
        raise _cli_error(f"{folder}: no photo ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return jobs


# --------------------------------------------------------------------------------------------
# The results file: whole lines only
# --------------------------------------------------------------------------------------------

def read_results(path: str | os.PathLike) -> list[dict]:
    """The records of a results file, after cutting off an unfinished last line (a killed run).

    Raises CliError when a complete line is not a JSON object with a ``key`` (not our file).
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "r+b") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())
            data = data[: data.rfind(b"\n") + 1]
    records = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "key" not in record:
            raise _cli_error(f"{path} line {number}: not a gradhog results line; use another --out")
        records.append(record)
    return records


class ResultsFile:
    """Append-only JSON-lines writer: one ``os.write`` of a whole line, then fsync."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        created = not self.path.exists()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            # The new directory entry must survive a power loss too.
            directory = os.open(self.path.resolve().parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def append(self, record: dict) -> None:
        """Write ``record`` as one line (strict JSON, non-finite floats as null) and fsync it."""
        from .options import json_ready

        data = (json.dumps(json_ready(record), allow_nan=False) + "\n").encode()
        written = os.write(self.fd, data)
        while written < len(data):  # a short write (disk full, signal) continues the same line
            written += os.write(self.fd, data[written:])
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------
# One alignment, in whatever process runs it
# --------------------------------------------------------------------------------------------

# bpy holds one scene per process: jobs sharing a process (Dask worker threads) take turns.
BPY_LOCK = threading.Lock()


def drop_inherited_blender_paths() -> None:
    # A process spawned by one that had imported bpy inherits sys.path with Blender's
    # ``bpy/<version>/scripts/modules``, whose ``bpy`` package then shadows the bpy module itself.
    if "bpy" in sys.modules:
        return
    sys.path[:] = [entry for entry in sys.path
                   if not ("bpy" in Path(entry).parts and "scripts" in Path(entry).parts)]


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Executors: each yields results lines as jobs finish
# --------------------------------------------------------------------------------------------

def run_serial(jobs: list[Job], align: Align) -> Iterator[dict]:
    """Jobs one after the other in this process (bpy imported once)."""
    for job in jobs:
        yield align(job)


def run_pool(jobs: list[Job], align: Align, workers: int) -> Iterator[dict]:
    """Jobs on ``workers`` spawned processes, each with ``cores // workers`` torch threads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))
    try:
        futures = [pool.submit(align, job) for job in jobs]
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                raise _cli_error("a worker process died (out of memory or a crash in Blender); "
                                 "the finished photos are written: run the same command again to resume") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(jobs: list[Job], align: Align, scheduler: str) -> Iterator[dict]:
    """Jobs on the Dask cluster at ``scheduler`` (``tcp://host:8786``); results come back here."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise _cli_error("--scheduler needs dask.distributed: pip install 'distributed'") from None
    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as error:
        raise _cli_error(f"cannot reach the Dask scheduler at {scheduler} ({error})") from None
    with client:
        futures = client.map(align, jobs, key=[f"gradhog-align-{job['key']}" for job in jobs], pure=False)
        job_of = {future.key: job for future, job in zip(futures, jobs)}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as error:  # noqa: BLE001 -- e.g. a job whose workers died too often
                job = job_of[future.key]
                yield {"photo": job["photo"], "mesh": job["mesh"], "key": job["key"],
                       "error": f"{type(error).__name__}: {error}"}


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

@dataclass
class Summary:
    """Counts of one run: ``done`` (this run, with a pose), ``skipped`` (already in the results, of
    which ``skipped_failed`` with an error), ``failed`` (this run); seconds per photo aligned."""

    total: int
    skipped: int = 0
    skipped_failed: int = 0
    done: int = 0
    failed: int = 0
    seconds: list = field(default_factory=list)
    wall_seconds: float = 0.0

    def line(self) -> str:
        median = f"median {statistics.median(self.seconds):.1f} s per photo" if self.seconds else "no photo aligned"
        earlier = f", {self.skipped_failed} of them failed: --retry-failed" if self.skipped_failed else ""
        return (f"{self.done} done, {self.skipped} skipped (already in the results{earlier}), "
                f"{self.failed} failed; {median}; {self.wall_seconds:.1f} s in all")


class _Progress:
    """tqdm bar on a terminal; on a pipe or a log file one plain line per photo (or nothing)."""

    def __init__(self, total: int, quiet: bool):
        self.count, self.total, self.quiet = 0, total, quiet
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=sys.stderr, dynamic_ncols=True)

    def update(self, record: dict, summary: Summary) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix(failed=summary.failed, refresh=False)
            self.bar.update(1)
        elif not self.quiet:
            state = f"error: {record['error']}" if "error" in record else f"ok ({_seconds(record):.1f} s)"
            print(f"[{self.count}/{self.total}] {Path(record['photo']).name}: {state}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _seconds(record: dict) -> float:
    return float(record.get("total_seconds") or record.get("seconds") or 0.0)


def run_many(jobs: list[Job], out: str | os.PathLike, *, align: Align, workers: int = 1,
             scheduler: str | None = None, retry_failed: bool = False, quiet: bool = False) -> Summary:
    """Run the ``jobs`` not yet in ``out`` and append one line each to ``out`` as they finish.

    Args:
        jobs: from :func:`read_manifest` or :func:`folder_jobs` (each with a ``key``).
        out: JSON-lines results file; created, or resumed (its unfinished last line cut off).
        align: picklable top-level ``align(job) -> line`` (``cli_align.align_one``); it must not
            raise for a bad photo but return a line with ``error``.
        workers: local worker processes (1: this process).
        scheduler: Dask scheduler address; overrides ``workers``.
        retry_failed: drop the lines with ``error`` first, so their photos run again.
        quiet: no progress output on stderr.
    """
    started = time.perf_counter()
    records = read_results(out)
    if retry_failed and any("error" in record for record in records):
        _rewrite(out, [record for record in records if "error" not in record])
        records = read_results(out)
    done = {record["key"]: "error" in record for record in records}
    todo = [job for job in jobs if job["key"] not in done]
    summary = Summary(total=len(jobs), skipped=len(jobs) - len(todo),
                      skipped_failed=sum(done.get(job["key"], False) for job in jobs))
    progress = _Progress(len(todo), quiet)
    if scheduler:
        results = run_dask(todo, align, scheduler)
    elif workers > 1 and len(todo) > 1:
        results = run_pool(todo, align, workers)
    else:
        results = run_serial(todo, align)
    try:
        with ResultsFile(out) as writer:
            for record in results:
                writer.append(record)
                if "error" in record:
                    summary.failed += 1
                else:
                    summary.done += 1
                    summary.seconds.append(_seconds(record))
                progress.update(record, summary)
    finally:
        progress.close()
        close = getattr(results, "close", None)
        if close:
            close()
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _rewrite(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Replace ``path`` atomically (temporary file, fsync, rename) with ``records``."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.writelines(json.dumps(record, allow_nan=False) + "\n" for record in records)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------------
# `gradhog align` in batch mode
# --------------------------------------------------------------------------------------------

def is_batch(args) -> bool:
    """True when ``gradhog align`` was given a manifest or a folder of photos."""
    return bool(getattr(args, "manifest", None)) or bool(args.photo and Path(args.photo).is_dir())


def check_single(args) -> None:
    """Reject batch-only flags and missing inputs in single-photo mode."""
    if not args.photo or not args.mesh:
        raise _cli_error("give --photo and --mesh (or --manifest, or --photo with a folder)")
    if getattr(args, "jobs", 1) != 1 or getattr(args, "scheduler", None) or getattr(args, "retry_failed", False):
        raise _cli_error("--jobs, --scheduler and --retry-failed need --manifest or a folder of photos")


def defaults_from_args(args) -> dict:
    """Run-wide defaults of the jobs: ``gradhog align``'s flags."""
    options = {name: value for name, value in vars(args).items() if name not in NOT_FORWARDED}
    defaults = dict(options=options, mesh=args.mesh, mask=None, bbox=list(args.bbox) if args.bbox else None,
                    lens_mm=args.lens_mm, sensor_width_mm=args.sensor_width_mm)
    return defaults


def run_from_args(args, align: Align) -> int:
    """``gradhog align --manifest M`` / ``--photo DIR --mesh MESH`` with ``align(job) -> line`` per
    photo: 0 when every photo has a pose, else 1."""
    for flag in ("mask", "overlay", "save_blend"):
        if getattr(args, flag, None):
            raise _cli_error(f"--{flag.replace('_', '-')} is for one photo; a manifest has a mask column")
    if args.manifest and args.photo:
        raise _cli_error("give --manifest or --photo, not both")
    if getattr(args, "jobs", 1) < 1:
        raise _cli_error(f"--jobs must be >= 1, got {args.jobs}")
    if args.top_k < 1:
        raise _cli_error(f"--top-k must be >= 1, got {args.top_k}")
    if not Path(args.out).resolve().parent.is_dir():
        raise _cli_error(f"{args.out}: the folder {Path(args.out).resolve().parent} does not exist")
    defaults = defaults_from_args(args)
    if args.manifest:
        jobs = read_manifest(args.manifest, defaults)
    else:
        if not args.mesh:
            raise _cli_error("--photo with a folder needs --mesh")
        jobs = folder_jobs(args.photo, defaults)
    summary = run_many(jobs, args.out, align=align, workers=getattr(args, "jobs", 1), scheduler=getattr(args, "scheduler", None),
                       retry_failed=getattr(args, "retry_failed", False), quiet=args.quiet)
    print(f"gradhog align: {summary.line()} -> {args.out}")
    return 1 if summary.failed or summary.skipped_failed else 0
