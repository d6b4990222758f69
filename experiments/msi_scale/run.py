"""Scale study of the imzML reader: a generated ~1 M pixel image is written, read and re-written.

Each phase runs in its own process, so its peak RSS (``ru_maxrss``) is that phase's alone:

* ``imports``: nothing but the imports (the RSS floor of every phase);
* ``generate``: ``generate_imzml`` writes a continuous imzML + ibd (synthetic regions + noise);
* ``checksum``: the declared SHA-1 of the ibd, streamed;
* ``read``: ``iter_pixel_chunks`` over every pixel (TIC normalised, file axis, no checksum);
* ``embed_write``: read -> a fixed random 2-D projection (a stand-in for the task's embedding
  network) -> ``write_imzml`` of the 2-D embedding, all streamed;
* ``prostate`` / ``prostate_pyimzml``: the real 33,035-pixel file with deepms and with pyimzML's
  ``ImzMLParser`` + ``getspectrum`` (parse + every spectrum), for comparison.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/msi_scale/run.py --n-pixels 1000000

With ``--model CHECKPOINT`` (a trained ``task=msi`` encoder) it runs the real model instead, and
writes ``results_model.{json,md}``:

* ``imports``: with ``--model``, torch, lightning and the loaded checkpoint too (the floor);
* ``model_generate``: a synthetic continuous imzML on the model's own m/z axis (its 422 sorted
  prostate centres), so the predictor copies columns as it does for the training file;
* ``model_predict``: ``MsiPredictor.predict_file``, the path of ``deepms predict``: the imzML
  streamed in chunks, preprocessed with the saved statistics, embedded by the encoder, written
  to parquet (x, y, tsne_1..3) plus the RGB PNG map.

Each runs under ``/usr/bin/time -v`` (its "Maximum resident set size" is reported beside the
process's own ``ru_maxrss``). The synthetic spectra are not tissue: the embedding is
meaningless, only throughput and memory are measured.

Files go to ``--workdir`` (default /tmp, never the repository) and are deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import machine_line, provenance, table, write_results  # noqa: E402

PROSTATE = Path(
    os.environ.get("DEEPMS_DATA_MIRROR", HERE.parents[1].parent / "shared" / "data")
) / "msi" / "msight_mouse_prostate.imzML"  # fmt: skip


def _phase(
    name: str, path: Path, n_pixels: int, n_bins: int, chunk_size: int, model: Path | None = None
) -> dict:
    """Run one phase in this process; returns seconds, pixels and peak RSS."""
    import numpy as np

    from deepms.io.imzml import iter_pixel_chunks, verify_checksum
    from deepms.io.imzml_write import generate_imzml, write_imzml

    if model is not None:  # torch, lightning and the checkpoint load before the clock starts
        from deepms.io.imzml_write import synthetic_chunks
        from deepms.io.msi_axis import MzAxis
        from deepms.tasks.msi.predict import MsiPredictor

        predictor = MsiPredictor.from_checkpoint(model)
        axis = MzAxis.from_continuous(predictor.mz)  # the model's own (sorted) m/z centres
        _, _, chunks = synthetic_chunks(n_pixels, axis.n_bins, seed=0, chunk_size=chunk_size)
    start, pixels = time.perf_counter(), n_pixels
    if name == "imports":  # the interpreter + numpy + deepms.io alone: the floor of every phase
        pixels = 0
    elif name == "generate":
        generate_imzml(path, n_pixels=n_pixels, n_bins=n_bins, seed=0)
    elif name == "checksum":
        verify_checksum(path)
    elif name == "read":
        pixels = sum(len(c) for c in iter_pixel_chunks(path, None, "tic", chunk_size, None, False))
    elif name == "embed_write":
        from deepms.io.imzml import PixelChunk
        from deepms.io.msi_axis import MzAxis

        projection = np.random.default_rng(0).normal(size=(n_bins, 2)).astype(np.float32)

        def embedded():
            for chunk in iter_pixel_chunks(path, None, "tic", chunk_size, None, False):
                yield PixelChunk(chunk.x, chunk.y, chunk.index, chunk.intensities @ projection)

        axis = MzAxis.da(1.0, 3.0, 1.0)  # two "bins": the embedding's coordinates
        write_imzml(path.with_name("embedding.imzML"), embedded(), axis)
    elif name == "model_generate":
        write_imzml(path, chunks, axis, pixel_size=(10.0, 10.0))
    elif name == "model_predict":
        out = path.with_name("pixels.parquet")
        pixels = predictor.predict_file(path, out, chunk_size=chunk_size, progress=False)["inputs"]
    elif name == "prostate":
        pixels = sum(len(c) for c in iter_pixel_chunks(path, None, "tic", chunk_size))
    elif name == "prostate_pyimzml":
        import warnings

        from pyimzml.ImzMLParser import ImzMLParser

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = ImzMLParser(str(path), parse_lib="ElementTree")
        pixels = len(parser.coordinates)
        for i in range(pixels):
            parser.getspectrum(i)
    seconds = time.perf_counter() - start
    return {
        "phase": name,
        "pixels": pixels,
        "seconds": round(seconds, 2),
        "pixels_per_s": round(pixels / seconds) if pixels else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _sizes(path: Path) -> dict:
    return {
        "imzml_mb": round(path.stat().st_size / 2**20, 1),
        "ibd_mb": round(path.with_suffix(".ibd").stat().st_size / 2**20, 1),
    }


def _timed_child(cmd: list[str], env: dict) -> dict:
    """Run a phase under ``/usr/bin/time -v``; its JSON plus time's maximum resident set size."""
    out = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for line in out.stderr.splitlines():
        if "Maximum resident set size" in line:
            result["time_v_max_rss_mb"] = round(int(line.split(":")[-1]) / 1024, 1)
    return result


def run_model(args: argparse.Namespace) -> None:
    """The real encoder on a generated file on its own axis: generate, then predict_file."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    synthetic = args.workdir / "synthetic_model.imzML"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    results: dict = {"n_pixels": args.n_pixels, "chunk_size": args.chunk_size}
    results["model"] = str(args.model)
    phases = []
    try:
        for phase in ("imports", "model_generate", "model_predict"):
            cmd = [sys.executable, __file__, "--phase", phase, "--path", str(synthetic)]
            cmd += ["--n-pixels", str(args.n_pixels), "--chunk-size", str(args.chunk_size)]
            cmd += ["--model", str(args.model)]
            phases.append(_timed_child(cmd, env))
            print(phases[-1], flush=True)
            if phase == "model_generate":
                results["files"] = _sizes(synthetic)
            if phase == "model_predict":
                parquet = synthetic.with_name("pixels.parquet")
                png = synthetic.with_name("pixels_rgb.png")
                results["outputs"] = {
                    "parquet_mb": round(parquet.stat().st_size / 2**20, 1),
                    "rgb_png_kb": round(png.stat().st_size / 2**10, 1) if png.exists() else None,
                }
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    results["phases"] = phases
    results.update(provenance())
    rows = [
        (p["phase"], p["pixels"], p["seconds"], p["pixels_per_s"], p["peak_rss_mb"],
         p.get("time_v_max_rss_mb"))
        for p in phases
    ]  # fmt: skip
    lines = [
        f"# msi_scale with the trained encoder: {args.n_pixels:,} pixels (chunk {args.chunk_size})",
        "",
        f"Model: `{args.model}`. Files: {results.get('files')}. Outputs: {results.get('outputs')}",
        "",
        *table(
            ["phase", "pixels", "seconds", "pixels/s", "ru_maxrss MB", "time -v max RSS MB"], rows
        ),
        "",
        machine_line(results),
        "",
    ]
    print("\n".join(lines))
    if not args.no_write:
        (HERE / "results_model.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (HERE / "results_model.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pixels", type=int, default=1_000_000)
    parser.add_argument("--n-bins", type=int, default=300)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deepms_msi_scale"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: one phase, JSON out
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write results files")
    parser.add_argument("--model", type=Path, help="a task=msi checkpoint: embed with it")
    args = parser.parse_args()
    if args.phase:
        result = _phase(
            args.phase, args.path, args.n_pixels, args.n_bins, args.chunk_size, args.model
        )
        print(json.dumps(result))
        return
    if args.model:
        run_model(args)
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    synthetic = args.workdir / "synthetic.imzML"
    runs = [(p, synthetic) for p in ("imports", "generate", "checksum", "read", "embed_write")]
    runs += [("prostate", PROSTATE), ("prostate_pyimzml", PROSTATE)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    results = {"n_pixels": args.n_pixels, "n_bins": args.n_bins, "chunk_size": args.chunk_size}
    phases = []
    try:
        for phase, path in runs:
            cmd = [sys.executable, __file__, "--phase", phase, "--path", str(path)]
            cmd += ["--n-pixels", str(args.n_pixels), "--n-bins", str(args.n_bins)]
            cmd += ["--chunk-size", str(args.chunk_size)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            phases.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(phases[-1], flush=True)
            if phase == "generate":
                results["files"] = _sizes(synthetic)
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    results["phases"] = phases
    results.update(provenance())
    rows = [
        (p["phase"], p["pixels"], p["seconds"], p["pixels_per_s"], p["peak_rss_mb"]) for p in phases
    ]
    lines = [
        f"# msi_scale: {args.n_pixels:,} pixels x {args.n_bins} bins (chunk {args.chunk_size})",
        "",
        f"Files: {results.get('files')}",
        "",
        *table(["phase", "pixels", "seconds", "pixels/s", "peak RSS MB"], rows),
        "",
        machine_line(results),
        "",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_results(HERE, results, "\n".join(lines))


if __name__ == "__main__":
    main()
