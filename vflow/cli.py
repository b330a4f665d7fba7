"""The command line: ``vflow run | check | preview | compare | stages | eval | bench | models | degrade | train``."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from .pipeline import Cancelled, Pipeline, Report, StageError, VflowError, available
from .pipeline.graph import confirm_allow_modules
from .pipeline.outputs import PartialFile, check_not_inputs, check_writable
from .pipeline.progress import LiveView
from .pipeline.sampling import Samples
from .pipeline.stage import stage_params
from .stopping import Interrupted, stop_signals, while_running


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vflow", description="Streaming video restoration with YAML graphs of stages.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (("run", "run a graph"), ("check", "validate a graph without running it")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("graph", help="a graph file, or the name of a shipped graph (e.g. copy)")
        c.add_argument("-i", "--input", help="input video, or a folder of them (default: the bundled sample clip)")
        c.add_argument("-o", "--output", help="output file, or folder for a folder input "
                                              "(default: ./vflow-out/NAME-GRAPH.mp4)")
        c.add_argument("--set", action="append", default=[], metavar="STAGE.PARAM=VALUE", help="override a param")
        c.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="set a ${variable}")
        c.add_argument("--debug", action="store_true", help="show tracebacks")
        c.add_argument("--allow-module", action="append", default=[], metavar="PKG",
                       help="let 'type: PKG.mod:Class' import this package (repeatable)")
        if name == "check":
            c.add_argument("--draw", metavar="SVG", help="print the graph and draw it as an SVG file")
        if name == "run":
            c.add_argument("--json", metavar="REPORT", help="write the run's figures as JSON")
            c.add_argument("-q", "--quiet", action="store_true", help="no live view or summary")
            c.add_argument("--report", metavar="HTML", help="write a self-contained HTML report of the run")
            c.add_argument("--reference", metavar="VIDEO", help="score the output against this video in the report "
                                                                "(PSNR, SSIM)")
            c.add_argument("--backend", choices=["stream", "chunks", "ray"], default="stream",
                           help="stream: one process (default); chunks: chunks in worker processes here, "
                                "resumable; ray: chunks as Ray tasks (pip install 'vflow[ray]')")
            c.add_argument("--chunk-seconds", type=float, default=60.0, metavar="S",
                           help="chunk length for chunks/ray (default 60; borders at scene cuts or keyframes)")
            c.add_argument("--work-dir", metavar="DIR", help="chunks, segments and manifest (default: OUTPUT.vflow)")
            c.add_argument("--workers", type=int, metavar="N", help="parallel chunks (default: the CPU count)")
            c.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: a local Ray)")
            c.add_argument("--fresh", action="store_true", help="start over instead of resuming the work dir")
            c.add_argument("--recursive", action="store_true", help="a folder input: its subfolders too")
    pv = sub.add_parser("preview", help="run a graph on a few seconds and show them before|after (PNG and MP4)")
    pv.add_argument("graph", help="a graph file, or the name of a shipped graph")
    pv.add_argument("-i", "--input", help="input video (default: the bundled sample clip)")
    pv.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for preview.mp4 and preview.png")
    pv.add_argument("--seconds", type=float, default=3.0, help="how much to run (default 3)")
    pv.add_argument("--at", type=float, help="start, in seconds (default: centred in the longest shot)")
    pv.add_argument("--mode", choices=["side", "wipe", "diff"], default="side", help="the preview video's layout")
    pv.add_argument("--set", action="append", default=[], metavar="STAGE.PARAM=VALUE", help="override a param")
    pv.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="set a ${variable}")
    pv.add_argument("--allow-module", action="append", default=[], metavar="PKG",
                    help="let 'type: PKG.mod:Class' import this package (repeatable)")
    pv.add_argument("--debug", action="store_true", help="show tracebacks")
    cp = sub.add_parser("compare", help="two videos frame by frame (matched by time): a contact sheet or a video")
    cp.add_argument("a", help="the first video (e.g. the original)")
    cp.add_argument("b", help="the second video (e.g. the restored one)")
    cp.add_argument("-o", "--output", required=True, help="OUT.png (contact sheet with zoomed crops) or OUT.mp4")
    cp.add_argument("--mode", choices=["side", "wipe", "diff"], default="side", help="layout (default side)")
    cp.add_argument("--frames", type=int, default=4, help="moments on the contact sheet (default 4)")
    sub.add_parser("stages", help="list every registered stage with its params")
    e = sub.add_parser("eval", help="PSNR and SSIM of a video against a reference, or of restoration methods "
                                    "on held-out degraded/clean clips (--model/--graph)")
    e.add_argument("--reference", help="the reference video")
    e.add_argument("--distorted", help="the video to measure")
    e.add_argument("--model", action="append", default=[], metavar="M",
                   help="a model (name or file) to score on the validation clips beside the baselines; repeatable")
    e.add_argument("--graph", action="append", default=[], metavar="G", help="a graph to score as well; repeatable")
    e.add_argument("--baselines", help="comma-separated baselines (input, hqdn3d, nlmeans, model:NAME, graph:NAME; "
                                       "'' for none; default: input, hqdn3d, nlmeans, restore_classic, two Real-ESRGAN)")
    e.add_argument("--config", default="configs/film1x.yaml", help="the training config whose validation files to use")
    e.add_argument("--clips", type=int, help="clips per degradation family (default 16: vflow.evaluate.EVAL_CLIPS)")
    e.add_argument("--frames", type=int, default=9, help="frames per clip, odd (default 9)")
    e.add_argument("--size", type=int, default=192, help="clip side in pixels (default 192)")
    e.add_argument("--families", help="rows to score (default: blur,noise,compression,film,vhs,mix,clean)")
    e.add_argument("--device", default="cpu", help="device for models and graphs (default cpu)")
    e.add_argument("--json", metavar="REPORT", help="write per-frame figures as JSON")
    e.add_argument("--no-ssim", action="store_true", help="PSNR only (faster)")
    b = sub.add_parser("bench", help="throughput benchmarks (restore: models on CPU or CUDA)")
    b.add_argument("what", choices=["restore"])
    b.add_argument("--device", help="cpu or cuda (default: cuda when there is one)")
    b.add_argument("--quick", action="store_true", help="batch 1 and 4 only, 2 timed runs, no CPU options table")
    b.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    m = sub.add_parser("models", help="list the model zoo, or convert its weights (import-ncnn)")
    m.add_argument("action", nargs="?", choices=["list", "import-ncnn"], default="list")
    m.add_argument("names", nargs="*", help="models to convert (default: all)")
    d = sub.add_parser("degrade", help="show the training degradation chain on an image or clip as a PNG grid")
    d.add_argument("input", help="an image or a video (its first frames)")
    d.add_argument("-o", "--output", required=True, help="the PNG grid to write")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--frames", type=int, default=3, help="frames to show, as rows (default 3)")
    d.add_argument("--scale", type=int, choices=[1, 2], default=1, help="1: same size; 2: half size (SR pairs)")
    d.add_argument("--size", type=int, default=256, help="longest side of the clean clip, px (default 256)")
    t = sub.add_parser("train", help="train our restoration GAN from a recipe (e.g. configs/film1x.yaml)")
    t.add_argument("config", help="the training config (YAML)")
    t.add_argument("--resume", action="store_true", help="continue identically from the config's last checkpoint")
    t.add_argument("--steps", type=int, help="stop at this step (counting resumed ones; default: the config's)")
    t.add_argument("--device", choices=["cpu", "cuda"], help="default: the config's (auto: CUDA when there is one)")
    t.add_argument("--set", action="append", default=[], metavar="KEY.SUB=VALUE", help="override a config value")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _load(args: argparse.Namespace) -> Pipeline:
    variables: dict[str, str | None] = {"input": args.input, "output": args.output}
    for assignment in args.var:
        name, eq, value = assignment.partition("=")
        if not eq:
            raise VflowError(f"--var expects NAME=VALUE, got '{assignment}'")
        variables[name.strip()] = value
    pipeline = Pipeline.load(args.graph, **variables)
    pipeline.allow_modules = confirm_allow_modules(pipeline.spec, args.allow_module)
    for assignment in args.set:
        pipeline.set(assignment)
    return pipeline


def _run(args: argparse.Namespace) -> int:
    if args.input and Path(args.input).is_dir():
        return _run_folder(args)
    if args.backend != "stream":
        return _run_chunked(args)
    pipeline = _load(args).build()
    for what, path in (("--json report", args.json), ("--report", args.report)):
        if path:  # the report must not be lost after a night's run: check where it goes now
            check_writable(Path(path).resolve().parent)
            check_not_inputs([path], pipeline.files_read(), what)
    stats = pipeline.stats
    samples = Samples(stats)
    error: VflowError | None = None
    t0 = time.perf_counter()
    try:
        with while_running():
            if args.quiet:
                pipeline.run(on_tick=samples.tick)
            else:
                with LiveView(stats, pipeline.warnings) as view:
                    pipeline.run(on_tick=lambda: (view.tick(), samples.tick()))
    except VflowError as e:
        error = e
    report = Report(error is None, time.perf_counter() - t0, {s.name: s for s in stats},
                    None if error is None else str(error), list(pipeline.warnings))
    if args.json:
        report_file = PartialFile(args.json)
        report_file.write_text(json.dumps(report.to_dict(), indent=2))
        report_file.close(ok=True)
    if args.report:
        _write_report(args, pipeline, report, samples)
    if args.quiet and pipeline.warnings:  # the live view shows them otherwise
        for warning in pipeline.warnings:
            print(f"vflow: warning: {warning}", file=sys.stderr)
    if error is not None:
        raise error
    outputs = [p for s in pipeline.spec.stages.values() for k, p in s.params.items() if k == "path" and s.type == "encode"]
    if outputs and not args.quiet:
        Console(stderr=True).print(f"wrote {', '.join(outputs)}")
    return 0


def _run_folder(args: argparse.Namespace) -> int:
    """Every video of the folder in turn (see vflow.batch); exit 1 when one failed."""
    from .batch import plan_folder, write_index

    if not args.output:
        raise VflowError(f"-i '{args.input}' is a folder: give -o, the folder for the restored files")
    if args.json:
        raise VflowError("--json takes one file: a folder run writes a report per file and an index.html")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise VflowError(f"-o '{out_dir}' is a file; a folder input needs an output folder")
    check_writable(out_dir)
    items = plan_folder(Path(args.input), out_dir, args.recursive)
    if not items:
        raise VflowError(f"-i '{args.input}' is a folder, and there is no video file in it"
                         + ("" if args.recursive else " (--recursive for subfolders)"))
    index = out_dir / "index.html"
    console = Console(stderr=True)
    for n, item in enumerate(items, 1):
        if item.output.exists():  # outputs take their name only when complete
            item.state, item.why = "skipped", "its output is complete already"
        else:
            console.print(f"[{n}/{len(items)}] {item.source}", markup=False, highlight=False)
            one = argparse.Namespace(**{**vars(args), "input": str(item.source), "output": str(item.output),
                                        "report": str(item.report)})
            t0 = time.perf_counter()
            try:
                (_run_chunked if args.backend != "stream" else _run)(one)
                item.state = "done"
            except VflowError as e:  # the others go on; Ctrl-C and stop signals stop the folder run
                if isinstance(e, Cancelled):
                    raise
                item.state, item.why = "failed", str(e)
                console.print(f"vflow: {item.source}: failed: {e}", markup=False, highlight=False)
            item.wall_s = time.perf_counter() - t0
        write_index(index, items, Path(args.graph).stem)
    failed = [it for it in items if it.state == "failed"]
    counts = {s: sum(it.state == s for it in items) for s in ("done", "skipped", "failed")}
    print(f"{len(items)} files: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; index: {index}")
    for it in failed:
        print(f"  failed: {it.source}: {it.why}")
    return 1 if failed else 0


def _write_report(args: argparse.Namespace, pipeline: Pipeline, report: Report, samples: Samples | None) -> None:
    from .report import reference_scores, render

    scores = None
    outputs = [str(s.params["path"]) for s in pipeline.spec.stages.values() if s.type == "encode"]
    if args.reference and report.ok and outputs:
        s = reference_scores(args.reference, outputs[0])
        scores = {"reference": args.reference, "frames": s["frames"], "PSNR (dB)": round(s["psnr_mean"], 2),
                  "SSIM": None if s["ssim_mean"] is None else round(s["ssim_mean"], 4)}
    page = PartialFile(args.report)
    page.write_text(render(pipeline, report, samples, scores))
    page.close(ok=True)


def _run_chunked(args: argparse.Namespace) -> int:
    from .pipeline.chunked import Options, run_chunked
    from .pipeline.progress import ChunkView

    if args.workers is not None and args.workers < 1:
        raise VflowError(f"--workers must be at least 1 (got {args.workers})")
    if args.chunk_seconds <= 0:
        raise VflowError(f"--chunk-seconds must be > 0 (got {args.chunk_seconds})")
    pipeline = _load(args)
    for path in (args.json, args.report):
        if path:
            check_writable(Path(path).resolve().parent)
    options = Options(args.backend, args.chunk_seconds, Path(args.work_dir) if args.work_dir else None,
                      args.workers, args.address, args.fresh)
    t0 = time.perf_counter()
    report: dict = {}
    error: VflowError | None = None
    try:
        with while_running():
            if args.quiet:
                report = run_chunked(pipeline, options)
            else:
                with ChunkView() as view:
                    report = run_chunked(pipeline, options, on_progress=view.update)
    except VflowError as e:
        error = e
    if args.json:
        if error is not None:
            report = {"ok": False, "wall_s": round(time.perf_counter() - t0, 4), "backend": args.backend,
                      "error": str(error), "warnings": [], "stages": {}}
        report_file = PartialFile(args.json)
        report_file.write_text(json.dumps(report, indent=2))
        report_file.close(ok=True)
    if error is not None:
        raise error
    if args.report:  # the stages' figures summed over the chunks; no plots over time (each chunk has its own)
        from .pipeline.chunked import as_report

        _write_report(args, pipeline, as_report(report), None)
    for warning in report["warnings"]:
        print(f"vflow: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        c = report["chunks"]
        Console(stderr=True).print(f"{report['frames']} frames in {c['total']} chunks ({c['reused']} reused, "
                                   f"{c['run']} run) in {report['wall_s']:.1f} s")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from .preview import preview

    out_dir = Path(args.output)
    check_writable(out_dir)
    args.output = str(out_dir / "after.mp4")
    pipeline = _load(args)
    with while_running():
        result = preview(pipeline, out_dir, args.seconds, args.at, args.mode)
    print(f"previewed {result.frames} frames ({result.start:.2f}-{result.end:.2f} s): wrote {result.video} and "
          f"{result.still}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import contact_sheet, video

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".png", ".mp4"):
        raise VflowError(f"compare: -o must end in .png (a contact sheet) or .mp4 (a video), not '{suffix}'")
    if args.frames < 1:
        raise VflowError(f"--frames must be at least 1 (got {args.frames})")
    check_writable(Path(args.output).resolve().parent)
    check_not_inputs([args.output], [args.a, args.b])
    names = (Path(args.a).name, Path(args.b).name)
    with while_running():
        if suffix == ".png":
            n = contact_sheet(args.a, args.b, args.output, args.frames, args.mode, names)
        else:
            n = video(args.a, args.b, args.output, args.mode, names)
    print(f"wrote {args.output} ({n} {'moments' if suffix == '.png' else 'frames'})")
    return 0


def _check(args: argparse.Namespace) -> int:
    pipeline = _load(args)
    pipeline.check()
    print(f"{args.graph}: ok ({len(pipeline.spec.stages)} stages, {len(pipeline.spec.edges)} edges)")
    from .stages.encode import Encode

    for name in pipeline.spec.stages:  # what each encoder will write: a 10-bit capture must not leave as 8-bit
        if isinstance(st := pipeline.stage(name), Encode):
            print(f"  {name}: {st.describe()}")
    for warning in pipeline.warnings:
        print(f"vflow: warning: {warning}", file=sys.stderr)
    if args.draw:
        from .drawing import as_svg, as_text

        check_writable(Path(args.draw).resolve().parent)
        print(as_text(pipeline))
        picture = PartialFile(args.draw)
        picture.write_text(as_svg(pipeline))
        picture.close(ok=True)
        print(f"wrote {args.draw}")
    return 0


def _stages(_: argparse.Namespace) -> int:
    console = Console()
    for name, cls in available().items():
        table = Table(title=f"{name}  ({cls.__module__}.{cls.__qualname__})", title_justify="left")
        for col in ("param", "type", "default"):
            table.add_column(col)
        for p in stage_params(cls).values():
            table.add_row(p.name, p.type_name, "(required)" if p.required else repr(p.default))
        console.print(table)
        doc = inspect.cleandoc(cls.__doc__ or "")
        console.print(f"inputs: {', '.join(cls.inputs) or '-'}; outputs: {', '.join(cls.outputs) or '-'}")
        if doc:
            console.print(doc, markup=False, highlight=False)
        console.print()
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.model or args.graph or args.baselines:
        return _eval_methods(args)
    if not (args.reference and args.distorted):
        raise VflowError("eval: give --reference and --distorted, or --model/--graph/--baselines to score methods")
    from .report import reference_scores

    s = reference_scores(args.reference, args.distorted, not args.no_ssim, args.json)
    ssim = f", SSIM {s['ssim_mean']:.4f}" if s["ssim_mean"] is not None else ""
    print(f"{s['frames']} frames: PSNR {s['psnr_mean']:.2f} dB{ssim}")
    return 0


def _eval_methods(args: argparse.Namespace) -> int:
    from .evaluate import DEFAULT_METHODS, EVAL_CLIPS, ROWS, eval_pairs, score, table
    from .train.loop import data_config, load_config

    try:
        dcfg = data_config(load_config(args.config))
        families = [f for f in args.families.split(",") if f] if args.families is not None else list(ROWS)
        pairs = eval_pairs(dcfg, EVAL_CLIPS if args.clips is None else args.clips, args.frames, args.size, families)
    except (OSError, ValueError, KeyError) as e:
        raise VflowError(f"eval: {e}") from e
    methods = [m for m in args.baselines.split(",") if m] if args.baselines is not None else list(DEFAULT_METHODS)
    methods += [f"model:{m}" for m in args.model] + [f"graph:{g}" for g in args.graph]
    done = lambda m: print(f"  scored {m}", file=sys.stderr)  # noqa: E731
    print(f"{len(pairs)} clips of {args.frames} frames at {args.size}x{args.size} from the validation files of "
          f"{args.config}; PSNR (dB) / SSIM against the clean clips:", file=sys.stderr)
    print(table(score(pairs, methods, args.device, done)))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .benchmark import restore

    restore(args.device, args.quick, not args.no_compile)
    return 0


def _degrade(args: argparse.Namespace) -> int:
    from .train.preview import preview

    if args.frames < 1 or args.size < 16:
        raise VflowError(f"--frames must be at least 1 and --size at least 16 (got {args.frames}, {args.size})")
    print(preview(args.input, args.output, args.seed, args.frames, args.scale, args.size))
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.loop import load_config, train

    try:
        cfg = load_config(args.config, args.set)
        if args.steps is not None:
            cfg["train"]["steps"] = args.steps
        if args.device:
            cfg["train"]["device"] = args.device
        history = train(cfg, resume=args.resume, quiet=args.quiet)
    except (OSError, ValueError, KeyError) as e:   # a bad config, missing data, a run to resume or not
        raise VflowError(f"train: {e}") from e
    if history:
        last = history[-1]
        print(f"step {int(last['step'])}: " + " ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "step"))
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import import_ncnn, list_models

    if args.action == "import-ncnn":
        try:
            for path in import_ncnn(args.names or None):
                print(f"converted {path}")
        except (FileNotFoundError, ValueError) as e:
            raise VflowError(str(e)) from e
        return 0
    for m in list_models():
        state = "available" if m.available else "not installed"
        print(f"{m.name}: {m.architecture} x{m.scale}, {m.params / 1e6:.2f} M params, "
              f"{m.size_bytes / 2**20:.0f} MiB, {state}\n  licence: {m.licence}\n  source:  {m.source}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``vflow`` command. Ctrl-C, SIGTERM and SIGHUP stop the run within seconds, remove partial output and
    exit 128 + the signal's number (130, 143, 129)."""
    with stop_signals():
        try:
            return _main(argv)
        except KeyboardInterrupt as e:  # before or after the run itself: nothing is half written
            what = e.what if isinstance(e, Interrupted) else "Ctrl-C"
            print(f"vflow: interrupted ({what})", file=sys.stderr)
            return _interrupted(own_process=argv is None, signum=getattr(e, "signum", 2))


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    command = {"run": _run, "check": _check, "preview": _preview, "compare": _compare, "stages": _stages, "models": _models,
               "eval": _eval, "bench": _bench, "degrade": _degrade, "train": _train}[args.command]
    try:
        return command(args)
    except Cancelled as e:
        print(f"vflow: {e}", file=sys.stderr)
        return _interrupted(own_process=argv is None, signum=e.signal)
    except VflowError as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"vflow: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, StageError) else 2


def _interrupted(own_process: bool, signum: int) -> int:
    """Exit code 128 + signum. As the program itself (argv from the command line), leave at once: the stages
    have stopped (or were abandoned inside a long call) and their partial output is removed, and the
    interpreter's own teardown (torch's alone takes about a second, a busy stage thread any time) would keep
    a Ctrl-C waiting."""
    if own_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)
    return 128 + signum
