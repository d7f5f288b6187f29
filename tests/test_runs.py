"""Many photos (`blender_gradhog.runs`): manifests, resume, exactly-once after SIGKILL, local worker
processes and a Dask cluster on loopback.

The orchestration is checked with a cheap stand-in for the alignment (``fake_align``: a pose made
from the job's key); the real alignment runs through ``gradhog align --manifest`` in the tests
marked ``bpy``.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blender_gradhog import runs
from torch_backend.cli import CliError

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {"mesh": None, "mask": None, "bbox": None, "lens_mm": 50.0, "sensor_width_mm": 36.0,
            "options": {"top_k": 3, "no_refine": True, "seed": 0}}
POSE_FIELDS = ("azimuth", "elevation", "roll", "distance", "shift_x", "shift_y", "lens_mm", "score")


def fake_align(job: dict) -> dict:
    """A deterministic stand-in for ``cli_align.align_one``: a 'pose' hashed from the job's key."""
    if "bad" in Path(job["photo"]).name:
        return {"photo": job["photo"], "mesh": job["mesh"], "key": job["key"], "error": "bad photo"}
    time.sleep(float(os.environ.get("FAKE_ALIGN_SECONDS", "0")))
    digest = hashlib.sha256(job["key"].encode()).digest()
    import torch

    return {"photo": job["photo"], "mesh": job["mesh"], "key": job["key"], "azimuth": digest[0] * 360 / 256,
            "elevation": digest[1] / 4.0, "seconds": 0.01, "pid": os.getpid(), "threads": torch.get_num_threads()}


def write_files(folder: Path, names) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def fake_jobs(folder: Path, count: int, bad=()) -> list[dict]:
    names = [f"{'bad' if index in bad else 'photo'}{index:02d}.png" for index in range(count)]
    write_files(folder, names + ["m.obj"])
    return runs.read_manifest(_csv(folder, "photo\n" + "".join(f"{name}\n" for name in names)),
                              {**DEFAULTS, "mesh": str(folder / "m.obj")})


def _csv(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# Manifests and folders
# --------------------------------------------------------------------------------------------

def test_csv_and_json_lines_manifests_give_the_same_jobs(tmp_path):
    write_files(tmp_path, ["photos/a.png", "photos/a_mask.png", "b.jpg", "chair.obj", "box.obj"])
    csv_path = _csv(tmp_path, "photo, mesh, mask, bbox, lens_mm, sensor_width_mm\n"
                              "photos/a.png, chair.obj, photos/a_mask.png, , 35, \n"
                              "# a comment line\n\n"
                              f"{tmp_path / 'b.jpg'}, box.obj, , \"10 20 110 220\", , 24\n")
    json_path = _csv(tmp_path, '{"photo": "photos/a.png", "mesh": "chair.obj", "mask": "photos/a_mask.png", '
                               '"lens_mm": 35}\n'
                               f'{{"photo": "{tmp_path / "b.jpg"}", "mesh": "box.obj", "bbox": [10, 20, 110, 220], '
                               '"sensor_width_mm": 24}\n', "manifest.jsonl")
    from_csv = runs.read_manifest(csv_path, DEFAULTS)
    assert runs.read_manifest(json_path, DEFAULTS) == from_csv
    first, second = from_csv
    assert first["photo"] == str((tmp_path / "photos/a.png").resolve())
    assert first["mask"] == str((tmp_path / "photos/a_mask.png").resolve())
    assert (first["lens_mm"], first["sensor_width_mm"], first["bbox"]) == (35.0, 36.0, None)
    assert second["mesh"] == str((tmp_path / "box.obj").resolve())
    assert (second["lens_mm"], second["sensor_width_mm"], second["bbox"]) == (50.0, 24.0, [10, 20, 110, 220])
    assert first["key"] != second["key"]


def test_job_key_follows_paths_and_options(tmp_path):
    write_files(tmp_path, ["a.png", "m.obj"])
    base = runs.make_job({"photo": "a.png", "mesh": "m.obj"}, tmp_path, DEFAULTS)
    same = runs.make_job({"photo": str(tmp_path / "." / "a.png"), "mesh": "m.obj"}, tmp_path, DEFAULTS)
    assert same["key"] == base["key"]
    for change in ({"seed": 1}, {"no_refine": False}, {"iterations": 5}):
        options = {**DEFAULTS, "options": {**DEFAULTS["options"], **change}}
        assert runs.make_job({"photo": "a.png", "mesh": "m.obj"}, tmp_path, options)["key"] != base["key"]
    assert runs.make_job({"photo": "a.png", "mesh": "m.obj"}, tmp_path, {**DEFAULTS, "lens_mm": 35.0})["key"] != base["key"]
    cache = {**DEFAULTS, "options": {**DEFAULTS["options"], "cache_dir": "/elsewhere"}}
    assert runs.make_job({"photo": "a.png", "mesh": "m.obj"}, tmp_path, cache)["key"] == base["key"]
    assert runs.make_job({"photo": "a.png", "mesh": "m.obj", "bbox": "1,2,3,4"}, tmp_path, DEFAULTS)["key"] != base["key"]


@pytest.mark.parametrize("text, message", [
    ("photo,mesh\na.png,m.obj\nb.png\n", "line 3: 1 cells for 2 columns"),
    ("photo,mesh,colour\na.png,m.obj,red\n", "line 2: unknown column(s) colour"),
    ("image,mesh\na.png,m.obj\n", "line 1: the CSV header has no 'photo' column"),
    ("photo,mesh,bbox\na.png,m.obj,1 2 3\n", "line 2: bbox must be 4 numbers"),
    ("photo,mesh,bbox\na.png,m.obj,5 5 1 9\n", "line 2: bbox must be 4 numbers"),
    ("photo,mesh,lens_mm\na.png,m.obj,wide\n", "line 2: lens_mm must be a number"),
    ("photo,mesh,lens_mm\na.png,m.obj,-5\n", "line 2: lens_mm must be a positive number"),
    ("photo,mesh\n,m.obj\n", "line 2: no photo"),
    ("photo\na.png\n", "line 2: no mesh"),
    ("photo,mesh\na.png,m.obj\n\na.png,m.obj\n", "line 4: repeats line 2"),
    ('{"photo": "a.png", "mesh": "m.obj"}\n{"photo": "b.png", \n', "line 2: not JSON"),
    ('{"photo": "a.png", "mesh": "m.obj"}\n["b.png"]\n', "line 2: expected a JSON object"),
    ("# nothing\n", "lists no photo"),
])
def test_manifest_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(CliError, match="manifest.csv " + message.replace("(", r"\(").replace(")", r"\)")
                       if message.startswith("line") else message):
        runs.read_manifest(_csv(tmp_path, text), DEFAULTS)


def test_photo_folder_pairs_masks_by_name(tmp_path):
    write_files(tmp_path, ["b.png", "a.jpg", "a_mask.png", "notes.txt", "m.obj"])
    jobs = runs.folder_jobs(tmp_path, {**DEFAULTS, "mesh": str(tmp_path / "m.obj")})
    assert [Path(job["photo"]).name for job in jobs] == ["a.jpg", "b.png"]
    assert Path(jobs[0]["mask"]).name == "a_mask.png" and jobs[1]["mask"] is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="no photo"):
        runs.folder_jobs(tmp_path / "empty", DEFAULTS)


# --------------------------------------------------------------------------------------------
# Results file: resume, exactly once, bad photos, torn lines
# --------------------------------------------------------------------------------------------

def test_interrupted_run_resumes_each_photo_exactly_once(tmp_path):
    jobs, out = fake_jobs(tmp_path, 6), tmp_path / "results.jsonl"
    calls = []

    def interrupted(job):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(job["key"])
        return fake_align(job)

    with pytest.raises(KeyboardInterrupt):
        runs.run_many(jobs, out, align=interrupted, quiet=True)
    assert [record["key"] for record in lines(out)] == calls
    summary = runs.run_many(jobs, out, align=lambda job: calls.append(job["key"]) or fake_align(job), quiet=True)
    assert (summary.done, summary.skipped, summary.failed) == (3, 3, 0)
    assert sorted(calls) == sorted(job["key"] for job in jobs)  # every job ran once, in all
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(job["key"] for job in jobs)
    assert all(record == fake_align(job) for record, job in zip(records, jobs))
    again = runs.run_many(jobs, out, align=pytest.fail, quiet=True)
    assert (again.done, again.skipped) == (0, 6) and len(lines(out)) == 6


def test_bad_photo_is_reported_in_its_line_and_retried_on_request(tmp_path, capsys):
    jobs, out = fake_jobs(tmp_path, 4, bad={1}), tmp_path / "results.jsonl"
    summary = runs.run_many(jobs, out, align=fake_align)
    assert (summary.done, summary.failed) == (3, 1)
    assert "[2/4] bad01.png: error: bad photo" in capsys.readouterr().err
    assert [record.get("error") for record in lines(out)] == [None, "bad photo", None, None]
    assert "3 done, 0 skipped (already in the results), 1 failed" in summary.line()
    retried = runs.run_many(jobs, out, align=fake_align, retry_failed=True, quiet=True)
    assert (retried.done, retried.skipped, retried.failed, retried.skipped_failed) == (0, 3, 1, 0)
    again = runs.run_many(jobs, out, align=fake_align, quiet=True)
    assert (again.skipped, again.skipped_failed) == (4, 1) and "1 of them failed" in again.line()
    assert sorted(record["key"] for record in lines(out)) == sorted(job["key"] for job in jobs)


def test_unfinished_last_line_is_cut_and_its_photo_done_again(tmp_path):
    jobs, out = fake_jobs(tmp_path, 3), tmp_path / "results.jsonl"
    whole = json.dumps(fake_align(jobs[0])) + "\n"
    torn = json.dumps(fake_align(jobs[1]))[:25]
    out.write_text(whole + torn)
    summary = runs.run_many(jobs, out, align=fake_align, quiet=True)
    assert (summary.done, summary.skipped) == (2, 1)
    assert [record["key"] for record in lines(out)] == [job["key"] for job in jobs]


def test_foreign_results_file_is_refused(tmp_path):
    jobs, out = fake_jobs(tmp_path, 1), tmp_path / "results.jsonl"
    out.write_text('{"photo": "x.png"}\n')
    with pytest.raises(CliError, match="line 1: not a gradhog results line"):
        runs.run_many(jobs, out, align=fake_align, quiet=True)


KILLED_RUN = """
import sys, time
sys.path[:0] = [{tests!r}, {repo!r}]
from blender_gradhog import runs
from test_runs import fake_align, DEFAULTS
jobs = runs.read_manifest({manifest!r}, dict(DEFAULTS, mesh={mesh!r}))
runs.run_many(jobs, {out!r}, align=fake_align, quiet=True)
"""


def test_sigkill_at_any_moment_then_resume_gives_every_photo_exactly_once(tmp_path):
    jobs, out = fake_jobs(tmp_path, 12), tmp_path / "results.jsonl"
    script = KILLED_RUN.format(tests=str(REPO / "tests"), repo=str(REPO), manifest=str(tmp_path / "manifest.csv"),
                               mesh=str(tmp_path / "m.obj"), out=str(out))
    for kill_after in (1, 5):  # two kills: the second run resumes a killed run and is killed too
        process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "FAKE_ALIGN_SECONDS": "0.15"})
        deadline = time.monotonic() + 60
        while (not out.exists() or out.read_text().count("\n") < kill_after) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it was killed"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        written = out.read_text().count("\n")
        assert kill_after <= written < len(jobs)
    # A torn line as power loss can leave it, on top of the kill.
    with open(out, "a") as handle:
        handle.write('{"photo": "half a li')
    summary = runs.run_many(jobs, out, align=fake_align, quiet=True)
    assert summary.skipped == written and summary.done == len(jobs) - written
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(job["key"] for job in jobs)
    assert {record["key"]: record["azimuth"] for record in records} == \
        {job["key"]: fake_align(job)["azimuth"] for job in jobs}


# --------------------------------------------------------------------------------------------
# Local worker processes and a Dask cluster
# --------------------------------------------------------------------------------------------

def test_two_worker_processes_share_the_cores_and_write_each_photo_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ALIGN_SECONDS", "0.05")
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    import test_runs as importable  # the spawned workers import it by this name

    jobs, out = fake_jobs(tmp_path, 6, bad={4}), tmp_path / "results.jsonl"
    summary = runs.run_many(jobs, out, align=importable.fake_align, workers=2, quiet=True)
    assert (summary.done, summary.failed) == (5, 1)
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(job["key"] for job in jobs)
    good = [record for record in records if "error" not in record]
    assert all(record["pid"] != os.getpid() for record in good)
    assert {record["threads"] for record in good} == {max(1, (os.cpu_count() or 1) // 2)}


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


def test_dask_cluster_on_loopback_writes_the_same_lines_as_one_process(tmp_path, dask_cluster, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    import test_runs as importable

    dask_cluster.scale(2)
    jobs = fake_jobs(tmp_path, 5, bad={2})
    alone, clustered = tmp_path / "alone.jsonl", tmp_path / "cluster.jsonl"
    runs.run_many(jobs, alone, align=importable.fake_align, quiet=True)
    summary = runs.run_many(jobs, clustered, align=importable.fake_align, scheduler=dask_cluster.scheduler_address,
                            quiet=True)
    assert (summary.done, summary.failed) == (4, 1)
    strip = lambda record: {key: value for key, value in record.items() if key not in ("pid", "threads")}  # noqa: E731
    by_key = {record["key"]: strip(record) for record in lines(alone)}
    assert {record["key"]: strip(record) for record in lines(clustered)} == by_key
    assert {record.get("pid") for record in lines(clustered)} - {None, os.getpid()}


# --------------------------------------------------------------------------------------------
# The real alignment: `gradhog align --manifest` (bpy)
# --------------------------------------------------------------------------------------------

def _demo():
    from blender_gradhog import cli_align

    folder = Path(cli_align.demo_assets())
    return folder, json.loads((folder / "demo_truth.json").read_text())


def _same_pose(a: dict, b: dict) -> bool:
    return all(a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-6) for name in POSE_FIELDS)


@pytest.mark.bpy
def test_gradhog_align_manifest_end_to_end_with_bad_rows(tmp_path, capsys):
    pytest.importorskip("bpy")
    from blender_gradhog import cli, cli_align

    folder, truth = _demo()
    (tmp_path / "mesh.xyz").write_text("not a mesh\n")
    manifest = _csv(tmp_path, "photo,mesh,mask,lens_mm,sensor_width_mm\n"
                              f"{folder / truth['photo']},{folder / truth['mesh']},{folder / truth['mask']},"
                              f"{truth['lens_mm']},{truth['sensor_width_mm']}\n"
                              f"missing.png,{folder / truth['mesh']},,,\n"
                              f"{folder / truth['photo']},mesh.xyz,,,\n")
    out = tmp_path / "results.jsonl"
    code = cli.main(["align", "--manifest", str(manifest), "--out", str(out), "--no-refine", "--quiet"])
    stdout = capsys.readouterr().out
    assert code == 1  # a photo failed; the others were still aligned
    assert "1 done, 0 skipped (already in the results), 2 failed" in stdout
    good, missing, bad_mesh = lines(out)
    assert {"azimuth", "elevation", "roll", "distance", "score", "candidates", "photo", "mesh", "key"} <= set(good)
    assert good["photo"] == str(folder / truth["photo"]) and "error" not in good
    assert cli_align.rotation_error_degrees(good, truth) < 12.0  # coarse grid only
    assert "no such photo" in missing["error"] and missing["photo"] == str(tmp_path / "missing.png")
    assert "unsupported mesh format" in bad_mesh["error"]
    assert cli.main(["align", "--manifest", str(manifest), "--out", str(out), "--no-refine", "--quiet"]) == 1
    assert "0 done, 3 skipped (already in the results, 2 of them failed" in capsys.readouterr().out
    assert len(lines(out)) == 3


@pytest.fixture(scope="module")
def real_manifest(tmp_path_factory):
    """A 3-photo manifest of the demo chair and its lines from one `gradhog align` process."""
    pytest.importorskip("bpy")
    from blender_gradhog import cli

    folder, truth = _demo()
    tmp = tmp_path_factory.mktemp("real")
    photo, mesh, mask = (folder / truth[name] for name in ("photo", "mesh", "mask"))
    x0, y0, x1, y1 = truth["bbox"]
    manifest = _csv(tmp, '{"photo": "%s", "mesh": "%s", "mask": "%s"}\n'
                         '{"photo": "%s", "mesh": "%s", "bbox": [%s, %s, %s, %s]}\n'
                         '{"photo": "%s", "mesh": "%s", "mask": "%s", "lens_mm": 60}\n'
                    % (photo, mesh, mask, photo, mesh, x0, y0, x1, y1, photo, mesh, mask), "manifest.jsonl")
    out = tmp / "alone.jsonl"
    assert cli.main(["align", "--manifest", str(manifest), "--out", str(out), "--no-refine", "--quiet"]) == 0
    return manifest, {record["key"]: record for record in lines(out)}


def _gradhog(*arguments) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blender_gradhog.cli", "align", *map(str, arguments),
                             "--no-refine", "--quiet"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.bpy
@pytest.mark.slow
def test_real_run_killed_then_resumed_gives_the_same_lines(tmp_path, real_manifest):
    manifest, alone = real_manifest
    out = tmp_path / "results.jsonl"
    process = _gradhog("--manifest", manifest, "--out", out)
    deadline = time.monotonic() + 300
    while (not out.exists() or out.read_text().count("\n") < 1) and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert out.read_text().count("\n") < 3
    resumed = _gradhog("--manifest", manifest, "--out", out)
    output = resumed.communicate()[0]
    assert resumed.returncode == 0, output
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(alone)
    assert all(_same_pose(record, alone[record["key"]]) for record in records)


@pytest.mark.bpy
@pytest.mark.slow
def test_real_run_on_two_worker_processes_matches_one_process(tmp_path, real_manifest):
    from blender_gradhog import cli

    manifest, alone = real_manifest
    out = tmp_path / "jobs2.jsonl"
    assert cli.main(["align", "--manifest", str(manifest), "--out", str(out), "--jobs", "2", "--no-refine",
                     "--quiet"]) == 0
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(alone)
    assert all(_same_pose(record, alone[record["key"]]) for record in records)


@pytest.mark.bpy
@pytest.mark.slow
def test_real_run_on_a_dask_cluster_matches_one_process(tmp_path, real_manifest, dask_cluster):
    from blender_gradhog import cli

    manifest, alone = real_manifest
    out = tmp_path / "dask.jsonl"
    assert cli.main(["align", "--manifest", str(manifest), "--out", str(out), "--scheduler",
                     dask_cluster.scheduler_address, "--no-refine", "--quiet"]) == 0
    records = lines(out)
    assert sorted(record["key"] for record in records) == sorted(alone)
    assert all(_same_pose(record, alone[record["key"]]) for record in records)


def test_lens_cells_take_exif_auto_or_millimetres(tmp_path):
    write_files(tmp_path, ["a.png", "b.png", "c.png", "m.obj"])
    jobs = runs.read_manifest(_csv(tmp_path, "photo,mesh,lens_mm\na.png,m.obj,auto\nb.png,m.obj,EXIF\nc.png,m.obj,\n"),
                              {**DEFAULTS, "lens_mm": "exif", "sensor_width_mm": None})
    assert [job["lens_mm"] for job in jobs] == ["auto", "exif", "exif"]
    assert jobs[0]["sensor_width_mm"] is None
    with pytest.raises(CliError, match="lens_mm"):
        runs.read_manifest(_csv(tmp_path, "photo,mesh,lens_mm\na.png,m.obj,wide\n"), DEFAULTS)
