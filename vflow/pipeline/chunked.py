"""Chunked runs: one graph over chunks of the input, in worker processes or as Ray tasks, resumable.

``run_chunked`` builds the graph once (everything is validated before any frame flows), plans chunks at
scene cuts or keyframes (:mod:`.chunkplan`), and keeps the plan with each chunk's state in
``WORK_DIR/manifest.json``. Each chunk runs the ordinary runtime on a copy of the graph: decode gets the
chunk's time range widened by the context its stages declare, a ``trim`` before the encoder drops the
context frames, the encoder writes the chunk's own segment. The audio is one more job: the graph's audio
path alone, run once over the whole file. When every job is done the segments and the audio are joined
without re-encoding (:func:`vflow.media.concat.join`) into the output, atomically.

A rerun of the same command continues from the manifest and never redoes a finished chunk; a changed graph
or input starts over, saying which changed. A chunk whose frame count differs from its plan fails; a failed
chunk (a killed worker too) is tried up to ``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .build import Pipeline
from .chunkplan import Chunk, ChunkError, Scan, plan, scan
from .graph import EdgeSpec, Endpoint, GraphSpec, StageSpec
from .runner import Report, StageStats

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
MAX_ATTEMPTS = 3
TRIM = "chunk_trim"


@dataclass
class Options:
    """How to run chunked: ``backend`` "chunks" (worker processes here) or "ray"."""

    backend: str = "chunks"
    chunk_seconds: float = 60.0
    work_dir: Path | None = None   # default: OUTPUT.vflow next to the output
    workers: int | None = None     # default: the CPU count (chunks) or what the cluster has (ray)
    address: str | None = None     # Ray cluster address; None starts a local one
    fresh: bool = False


@dataclass
class Job:
    """One unit of work for a worker: a graph to run and the frames its encoder must receive."""

    chunk: int | None           # the chunk's index; None: the audio job
    spec: GraphSpec
    encoder: str
    frames: int | None          # expected at the encoder (None: audio)
    output: str
    allow_modules: list[str] = field(default_factory=list)
    threads: int = 1
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return "audio" if self.chunk is None else f"chunk {self.chunk}"


@dataclass
class Progress:
    """What the progress view shows: chunk states and frames across chunks."""

    chunks: list[Chunk]
    frames_total: int
    running: set[int] = field(default_factory=set)
    reused: int = 0

    @property
    def frames_done(self) -> int:
        return sum(c.frames for c in self.chunks if c.state == "done")


# -- the graph of a chunk ------------------------------------------------------------------------------
def _only(pipeline: Pipeline, kind: str) -> str:
    names = [n for n, s in pipeline.spec.stages.items() if _type_of(pipeline, n) == kind]
    if len(names) != 1:
        raise ChunkError(f"the chunked backends run graphs with exactly one '{kind}' stage; "
                         f"this one has {len(names)} ({', '.join(names) or 'none'}): use --backend stream")
    return names[0]


def _type_of(pipeline: Pipeline, name: str) -> str:
    return getattr(type(pipeline.stage(name)), "registry_name", "") or pipeline.spec.stages[name].type


def _upstream(edges: list[EdgeSpec], to: Endpoint) -> set[str]:
    """The stages that feed the input ``to``, directly or through others."""
    seen: set[str] = set()
    todo = [e.src.stage for e in edges if e.dst == to]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [e.src.stage for e in edges if e.dst.stage == name]
    return seen


def _subgraph(spec: GraphSpec, edges: list[EdgeSpec], keep: set[str]) -> GraphSpec:
    out = copy.deepcopy(spec)
    out.stages = {n: s for n, s in out.stages.items() if n in keep}
    out.edges = [copy.deepcopy(e) for e in edges if e.src.stage in keep and e.dst.stage in keep]
    return out


def chunk_spec(spec: GraphSpec, edges: list[EdgeSpec], decode: str, encode: str, chunk: Chunk,
               decode_params: dict[str, Any], segment: Path) -> GraphSpec:
    """The graph of one chunk: its video path only, decode over the chunk's range with context, a trim to the
    chunk's own frames before the encoder, the encoder writing ``segment``."""
    into = Endpoint(encode, "video")
    out = _subgraph(spec, edges, _upstream(edges, into) | {encode})
    out.edges = [e for e in out.edges if e.dst != into]
    feed = next(e for e in edges if e.dst == into)
    name = TRIM
    while name in out.stages:
        name += "_"
    out.stages[name] = StageSpec(name, "trim", {"start": chunk.start, "end": chunk.end})
    out.edges += [EdgeSpec(feed.src, Endpoint(name, "video")), EdgeSpec(Endpoint(name, "video"), into)]
    out.stages[decode].params.update(decode_params, start=chunk.decode_start, end=chunk.decode_end)
    for p in ("start", "end", *decode_params):
        out.stages[decode].param_text.pop(p, None)
    return with_output(out, encode, segment)


def audio_spec(pipeline: Pipeline, encode: str) -> GraphSpec | None:
    """The graph's audio path alone, its encoder writing only audio; None when the graph writes no audio."""
    into, edges = Endpoint(encode, "audio"), pipeline.edges
    feed = next((e for e in edges if e.dst == into), None)
    info = pipeline.info(feed.src.stage, feed.src.port or "audio") if feed is not None else None
    if not getattr(info, "streams", ()):
        return None
    out = _subgraph(pipeline.spec, edges, _upstream(edges, into) | {encode})
    out.edges = [e for e in out.edges if e.dst != Endpoint(encode, "video")]
    out.stages[encode].params["audio_only"] = True
    return out


def with_output(spec: GraphSpec, encode: str, path: Path) -> GraphSpec:
    """A copy of ``spec`` whose encoder writes ``path``."""
    out = copy.deepcopy(spec)
    out.stages[encode].params["path"] = str(path)
    out.stages[encode].param_text.pop("path", None)
    return out


# -- identity and the manifest -------------------------------------------------------------------------
def input_identity(path: str | Path) -> dict[str, Any]:
    """Size, mtime and a hash of the first and last MiB: enough to tell that the file changed."""
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": h.hexdigest()}


def graph_hash(spec: GraphSpec, chunk_seconds: float) -> str:
    """The graph as it will run (variables substituted, --set applied) and the chunk length."""
    text = json.dumps({"graph": spec.to_dict(), "chunk_seconds": chunk_seconds}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_manifest(work: Path, manifest: dict[str, Any]) -> None:
    tmp = work / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, work / MANIFEST)


def load_manifest(work: Path, graph: str, identity: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The manifest to continue from, or None with why not ("" when there is none)."""
    path = work / MANIFEST
    if not path.is_file():
        return None, ""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"its manifest could not be read ({e})"
    if manifest.get("version") != MANIFEST_VERSION:
        return None, "its manifest is from another version of vflow"
    if manifest.get("graph_hash") != graph:
        return None, "the graph (or a --set param, or --chunk-seconds) changed since it was made"
    old = manifest.get("input", {})
    changed = [k for k in ("path", "size", "mtime_ns", "hash") if old.get(k) != identity[k]]
    if changed:
        return None, f"the input file changed since it was made ({', '.join(changed)} differ)"
    return manifest, ""


# -- running jobs ----------------------------------------------------------------------------------------
def run_job(job: Job) -> dict[str, Any]:
    """Run one job's graph (in a worker) and check its frame count. Errors come back as ChunkError text."""
    try:
        pipeline = Pipeline(job.spec, allow_modules=job.allow_modules)
        report = pipeline.run()
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - sent back as plain text (any error pickles)
        raise ChunkError(f"{job.key}: {type(e).__name__}: {e}") from None
    frames = report.stages[job.encoder].frames_in
    if job.frames is not None and frames != job.frames:
        Path(job.output).unlink(missing_ok=True)
        raise ChunkError(f"{job.key}: {frames} frames reached the encoder, the plan has {job.frames}")
    return {"frames": frames, "wall_s": report.wall_s, "warnings": report.warnings,
            "stages": {n: asdict(s) for n, s in report.stages.items()}}


def _init_worker(threads: int) -> None:
    """A worker: die with the parent (a killed run leaves no worker writing on), use ``threads`` cores."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


Done = Callable[[Job, dict[str, Any]], None]


def _run_local(jobs: Iterable[Job], workers: int, threads: int, done: Done, tick: Callable[[set[int | None]], None],
               warn: Callable[[str], None]) -> None:
    """Jobs in ``workers`` spawned processes; a failed job (a killed worker's too) is tried again."""
    todo = deque(jobs)
    attempts: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")
    while todo:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
        running: dict[Future, Job] = {}
        broken = False
        try:
            while (todo or running) and not broken:
                while todo and len(running) < workers:
                    job = todo.popleft()
                    running[pool.submit(run_job, job)] = job
                tick({j.chunk for j in running.values()})
                finished, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    try:
                        done(job, fut.result())
                        continue
                    except BrokenProcessPool:
                        broken = True
                        error: BaseException = ChunkError(f"{job.key}: its worker process died")
                    except ChunkError as e:
                        error = e
                    _retry(job, error, attempts, todo, warn)
            if broken:  # every job still in flight was lost with the pool
                for job in running.values():
                    _retry(job, ChunkError(f"{job.key}: its worker process died"), attempts, todo, warn)
        finally:
            _stop_pool(pool)


def _retry(job: Job, error: BaseException, attempts: dict[str, int], todo: deque[Job],
           warn: Callable[[str], None]) -> None:
    attempts[job.key] = attempts.get(job.key, 0) + 1
    if attempts[job.key] >= MAX_ATTEMPTS:
        raise ChunkError(f"{error} (failed {attempts[job.key]} times)")
    warn(f"{error}; trying it again")
    todo.append(job)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop now: queued jobs cancelled, running workers killed (their partial segments stay in the work dir,
    under names no later run uses)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=5)


def _run_ray(jobs: Iterable[Job], workers: int | None, address: str | None, done: Done,
             tick: Callable[[set[int | None]], None], warn: Callable[[str], None]) -> None:
    """Jobs as Ray tasks (a killed worker's task is retried by Ray, a failed one by us)."""
    try:
        import ray
    except ImportError:
        raise ChunkError("--backend ray needs Ray: pip install 'vflow[ray]'") from None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
    try:
        task = ray.remote(max_retries=MAX_ATTEMPTS)(run_job)
        todo = deque(jobs)
        attempts: dict[str, int] = {}
        running: dict[Any, Job] = {}
        while todo or running:
            while todo:
                job = todo.popleft()
                options = {"num_cpus": job.threads, **job.resources}
                running[task.options(**options).remote(job)] = job
            tick({j.chunk for j in running.values()})
            finished, _ = ray.wait(list(running), num_returns=1, timeout=0.25)
            for ref in finished:
                job = running.pop(ref)
                try:
                    done(job, ray.get(ref))
                except ray.exceptions.RayError as e:
                    cause = e.cause if isinstance(getattr(e, "cause", None), ChunkError) else e
                    _retry(job, ChunkError(str(cause).strip().splitlines()[-1]), attempts, todo, warn)
    finally:
        if started:
            ray.shutdown()


# -- the whole run ----------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """A built graph, read for what the chunk jobs need."""

    spec: GraphSpec
    edges: list[EdgeSpec]
    decode: str
    encode: str
    input: str
    output: Path
    decode_params: dict[str, Any]
    context: tuple[int, int]
    frame_factor: int           # frames out per frame in: 2 with field-rate deinterlacing
    cuts: bool
    resources: dict[str, float]
    audio: GraphSpec | None


def _check_chunkable(pipeline: Pipeline, stages: dict[str, Any], encode: str) -> None:
    """Every stage must feed the encoder, and only the encoder may write a file (each chunk would write it)."""
    feeding = _upstream(pipeline.edges, Endpoint(encode, "video")) | _upstream(pipeline.edges, Endpoint(encode, "audio"))
    for name, st in stages.items():
        if name != encode and name not in feeding:
            raise ChunkError(f"stage '{name}' does not feed the encoder, so no chunk would run it: "
                             f"use --backend stream")
        if name != encode and st.files_written():
            raise ChunkError(f"stage '{name}' writes '{st.files_written()[0]}', which every chunk would write "
                             f"again: use --backend stream")


def prepare(pipeline: Pipeline) -> Prepared:
    """Build the graph (validating it), read what chunking needs off the built stages, release them."""
    pipeline.build()
    try:
        decode, encode = _only(pipeline, "decode"), _only(pipeline, "encode")
        stages = {n: pipeline.stage(n) for n in pipeline.spec.stages}
        _check_chunkable(pipeline, stages, encode)
        dec = stages[decode]
        # deinterlacing is decided once, on the file's first frames, as a stream run decides it (a chunk's own
        # first frames could say otherwise); combing that appears only later is not followed in chunks
        params: dict[str, Any] = {"deinterlace": "off"}
        if dec.deinterlacing:  # type: ignore[attr-defined]
            order = dec.detection.order if dec.detection else "auto"  # type: ignore[attr-defined]
            params = {"deinterlace": "on", "field_order": order if order in ("tff", "bff") else "tags"}
        before = sum(s.context()[0] for s in stages.values())
        after = sum(s.context()[1] for s in stages.values())
        gpus = max((s.resources().get("num_gpus", 0.0) for s in stages.values()), default=0.0)
        return Prepared(
            spec=copy.deepcopy(pipeline.spec), edges=pipeline.edges, decode=decode, encode=encode,
            input=str(dec.path), output=Path(stages[encode].path), decode_params=params,  # type: ignore[attr-defined]
            context=(before, after), frame_factor=2 if getattr(dec, "_field_rate", False) else 1,
            cuts=any(_type_of(pipeline, n) == "scene_split" for n in stages),
            resources={"num_gpus": gpus} if gpus else {}, audio=audio_spec(pipeline, encode))
    finally:
        pipeline.release()


BACKENDS = ("chunks", "ray")


def run_chunked(pipeline: Pipeline, options: Options, on_progress: Callable[[Progress], None] | None = None,
                warn: Callable[[str], None] = lambda m: print(f"vflow: {m}", file=sys.stderr)) -> dict[str, Any]:
    """Run ``pipeline`` chunked; returns the report's figures (``chunks``: total, reused, run)."""
    from ..media.concat import join

    if options.backend not in BACKENDS:
        raise ChunkError(f"unknown backend '{options.backend}' (stream, chunks or ray)")
    t0 = time.perf_counter()
    p = prepare(pipeline)
    work = Path(options.work_dir) if options.work_dir else p.output.with_name(p.output.name + ".vflow")
    manifest, plan_s = _manifest(p, work, options, warn)
    chunks = [Chunk(**c) for c in manifest["chunks"]]
    segments = manifest.setdefault("segments", {})
    for c in chunks:  # a segment that is gone is made again
        if c.state == "done" and not (work / segments.get(str(c.index), "")).is_file():
            c.state = "pending"
    reused = sum(c.state == "done" for c in chunks)
    progress = Progress(chunks, manifest["frames"], reused=reused)
    cpus = os.cpu_count() or 1
    workers = options.workers or (cpus if options.backend == "chunks" else None)
    jobs = _jobs(p, manifest, chunks, work, list(pipeline.allow_modules), threads=max(1, cpus // (workers or cpus)))
    totals: dict[str, Any] = {"stages": {}, "warnings": []}

    def done(job: Job, result: dict[str, Any]) -> None:
        name = Path(job.output).name
        if job.chunk is None:
            manifest["audio"] = {"state": "done", "file": name}
        else:
            chunk = chunks[job.chunk]
            chunk.state, chunk.wall_s = "done", round(result["wall_s"], 3)
            segments[str(job.chunk)] = name
            manifest["chunks"][job.chunk] = chunk.to_dict()
        write_manifest(work, manifest)
        _add_stats(totals["stages"], result["stages"])
        totals["warnings"] += [f"{job.key}: {w}" for w in result["warnings"]]

    def tick(running: set[int | None]) -> None:
        progress.running = {k for k in running if k is not None}
        if on_progress is not None:
            on_progress(progress)

    if options.backend == "ray":
        _run_ray(jobs, workers, options.address, done, tick, warn)
    else:
        _run_local(jobs, workers or 1, jobs[0].threads if jobs else 1, done, tick, warn)
    tick(set())
    t_join = time.perf_counter()
    audio = work / manifest["audio"]["file"] if manifest["audio"]["state"] == "done" else None
    join([work / segments[str(c.index)] for c in chunks], audio, p.output)
    join_s = time.perf_counter() - t_join
    shutil.rmtree(work, ignore_errors=True)
    return {"ok": True, "wall_s": round(time.perf_counter() - t0, 4), "backend": options.backend,
            "chunks": {"total": len(chunks), "reused": reused, "run": len(chunks) - reused},
            "frames": manifest["frames"] * p.frame_factor, "plan_s": round(plan_s, 4), "join_s": round(join_s, 4),
            "stages": totals["stages"], "warnings": totals["warnings"], "error": None}


def _manifest(p: Prepared, work: Path, options: Options, warn: Callable[[str], None]) -> tuple[dict[str, Any], float]:
    """The work dir's manifest to continue from, or a new plan (with the time planning took)."""
    identity = input_identity(p.input)
    ghash = graph_hash(p.spec, options.chunk_seconds)
    if options.fresh and work.exists():
        shutil.rmtree(work)
    manifest, why = load_manifest(work, ghash, identity)
    if why:
        warn(f"work dir '{work}': {why}; starting over")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        return manifest, 0.0
    t0 = time.perf_counter()
    chunks = plan(scan(p.input, cuts=p.cuts), options.chunk_seconds, *p.context)
    manifest = {"version": MANIFEST_VERSION, "graph_hash": ghash, "input": identity,
                "chunk_seconds": options.chunk_seconds, "context": list(p.context),
                "frames": sum(c.frames for c in chunks), "audio": {"state": "pending"},
                "chunks": [c.to_dict() for c in chunks], "segments": {}}
    write_manifest(work, manifest)
    return manifest, time.perf_counter() - t0


def _jobs(p: Prepared, manifest: dict[str, Any], chunks: list[Chunk], work: Path, allow: list[str],
          threads: int) -> list[Job]:
    """The chunks still to run, and the audio if it is not done. Files get this run's own id: a worker of a
    killed run, still writing, never writes the files this one reads."""
    run_id, ext = secrets.token_hex(4), p.output.suffix
    jobs = []
    for c in chunks:
        if c.state != "done":
            segment = work / f"seg-{c.index:05d}-{run_id}{ext}"
            spec = chunk_spec(p.spec, p.edges, p.decode, p.encode, c, p.decode_params, segment)
            jobs.append(Job(c.index, spec, p.encode, c.frames * p.frame_factor, str(segment), allow, threads,
                            p.resources))
    audio = manifest["audio"]
    if p.audio is not None and not (audio["state"] == "done" and (work / audio["file"]).is_file()):
        target = work / f"audio-{run_id}{ext}"
        jobs.append(Job(None, with_output(p.audio, p.encode, target), p.encode, None, str(target), allow, threads))
    return jobs


def _add_stats(total: dict[str, dict[str, Any]], stages: dict[str, dict[str, Any]]) -> None:
    """Sum the per-chunk figures of each stage (frames, busy, wait and wall times); keep the largest queue
    peak."""
    for name, s in stages.items():
        t = total.setdefault(name, {"name": name, "type_name": s["type_name"], "queue_size": s["queue_size"],
                                    "frames_in": 0, "frames_out": 0, "busy_s": 0.0, "wait_s": 0.0, "wall_s": 0.0,
                                    "peak_queue": 0})
        for k in ("frames_in", "frames_out", "busy_s", "wait_s", "wall_s"):
            t[k] += s[k]
        t["peak_queue"] = max(t["peak_queue"], s["peak_queue"])


def as_report(figures: dict[str, Any]) -> Report:
    """A chunked run's figures as a Report (each stage's summed over its chunks), for the HTML report."""
    stages = {n: StageStats(**{**s, "state": "done"}) for n, s in figures["stages"].items()}
    return Report(figures["ok"], figures["wall_s"], stages, figures["error"], list(figures["warnings"]))


__all__ = ["Chunk", "ChunkError", "Options", "Progress", "Scan", "as_report", "plan", "prepare", "run_chunked",
           "scan"]
