"""The ``deepms`` command line. Heavy imports live inside the commands so ``--help`` is instant.

Model commands (``register``, ``promote``, ``models``, ``predict``) never name a task: a model
carries its predictor class, and the predictor reads inputs and writes outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _datasets_list(args: argparse.Namespace) -> int:
    from deepms.datasets.registry import get_dataset, list_datasets

    for name in list_datasets(task=args.task):
        dataset = get_dataset(name)
        print(f"{name:40s} {len(dataset.files):3d} file(s)  {dataset.description}")
    return 0


def _datasets_verify(args: argparse.Namespace) -> int:
    from deepms.datasets.registry import get_dataset, resolve_file

    for name in args.names:
        for datafile in get_dataset(name).files:
            path = resolve_file(datafile, mirror=args.mirror, download=not args.no_download)
            print(f"ok  {datafile.sha256[:12]}  {path}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from deepms.registry import register

    version = register(
        args.run_id, args.name, tracking_uri=args.tracking_uri, predictor=args.predictor
    )
    print(f"registered {version.name} version {version.version} from run {version.run_id}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from deepms.registry import promote

    version = promote(
        args.name,
        args.alias,
        require=args.require,
        version=args.version,
        tracking_uri=args.tracking_uri,
    )
    why = version.tags.get(f"deepms.promoted.{args.alias}.why", "")
    print(f"{version.name} version {version.version} is now @{args.alias} ({why})")
    return 0


def _models(args: argparse.Namespace) -> int:
    from deepms.registry import list_models

    rows = list_models(args.tracking_uri, name=args.name)
    if not rows:
        print("no registered models (register one with `deepms register RUN_ID`)")
        return 0
    header = ("name", "version", "aliases", "status", "run", "created", "metrics")
    table = [
        (
            r["name"],
            str(r["version"]),
            ",".join(r["aliases"]) or "-",
            r["status"],
            (r["run_id"] or "-")[:12],
            r["created"].strftime("%Y-%m-%d %H:%M"),
            "  ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items()) or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


PREDICT_DESCRIPTION = (
    "MODEL: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID[/PATH], a checkpoint or an "
    "MLflow model folder. Input: CSV/TSV/parquet, or what the model's predictor reads (e.g. FASTA "
    "for peptide models); output format by extension (.tsv, .parquet, .msp). The options of the "
    "model's predictor: deepms predict MODEL --help."
)
URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlruns/mlflow.db)"


def _predict_parser(
    predictor: type | None = None, add_help: bool = True
) -> argparse.ArgumentParser:
    """``deepms predict``'s options: the common ones, plus those ``predictor`` declares."""
    parser = argparse.ArgumentParser(
        prog="deepms predict", description=PREDICT_DESCRIPTION, add_help=add_help
    )
    known = predictor is not None
    parser.add_argument("model", nargs=None if known else "?")
    parser.add_argument("--input", required=known)
    parser.add_argument("--output", required=known)
    parser.add_argument("--predictor", help="predictor class for a bare checkpoint")
    parser.add_argument("--tracking-uri", help=URI_HELP)
    parser.add_argument("--chunk-size", type=int, default=20_000, help="rows read at a time")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="a record that cannot be predicted: skip it (named with its line and cause on "
        "stderr's count and in OUTPUT.rejected.tsv; the rest is predicted) or stop at it "
        "(default: skip)",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in getattr(predictor, "options", ()):
        title = option.group or f"{predictor.__name__} options"
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        text = option.help + (f" (default: {option.default})" if option.default is not None else "")
        groups[title].add_argument(
            option.flag, dest=option.name, type=option.type, choices=option.choices, help=text
        )
    return parser


def _predict(argv: Sequence[str]) -> int:
    """Resolve MODEL first: its predictor's declared options make up the rest of the parser."""
    import tempfile

    from deepms.registry.reference import resolve_model
    from deepms.registry.resolve import load_predictor, load_resolved, predictor_class

    first = _predict_parser(add_help=False)
    first.add_argument("-h", "--help", action="store_true")
    known, _ = first.parse_known_args(argv)
    if not known.model:
        if known.help:
            _predict_parser().parse_args(["--help"])  # prints the common options, exits 0
        first.error("the following arguments are required: model")
    with tempfile.TemporaryDirectory(prefix="deepms-model-") as tmp:
        resolved = resolve_model(known.model, tmp, known.tracking_uri)
        cls = predictor_class(resolved, known.predictor)
        parser = _predict_parser(cls)
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            flags = " ".join(o.flag for o in cls.options) or "none"
            parser.error(
                f"unrecognized arguments: {' '.join(unknown)} ({cls.__name__} takes {flags})"
            )
        values = {o: getattr(args, o.name) for o in cls.options}
        runtime = {o.name: v for o, v in values.items() if o.kind == "run"}
        predictor = load_resolved(resolved, known.predictor, **runtime)
    auxiliary = [
        load_predictor(value, tracking_uri=args.tracking_uri)
        for option, value in values.items()
        if option.kind == "model" and value is not None
    ]
    input_options = {
        option.keyword: value
        for option, value in values.items()
        if option.kind == "input" and value is not None
    }
    counts = predictor.predict_file(
        args.input,
        args.output,
        chunk_size=args.chunk_size,
        auxiliary=auxiliary,
        progress=not args.no_progress,
        input_options=input_options,
        on_error=args.on_error,
    )
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    print(f"wrote {args.output}: {summary}")
    return 0


def _add_model_commands(commands: argparse._SubParsersAction) -> None:
    uri_help = URI_HELP
    register = commands.add_parser(
        "register", help="log a run's best checkpoint as an MLflow model and register it"
    )
    register.add_argument("run_id")
    register.add_argument("--name", help="registered model name (default: the run's task)")
    register.add_argument("--predictor", help="predictor class (default: the run's config)")
    register.add_argument("--tracking-uri", help=uri_help)
    register.set_defaults(func=_register)

    promote = commands.add_parser(
        "promote", help="point an alias at a version if its run meets a requirement"
    )
    promote.add_argument("name")
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--version", help="version to promote (default: the newest)")
    promote.add_argument("--require", help='e.g. "test_median_pcc>=0.85"; refused otherwise')
    promote.add_argument("--tracking-uri", help=uri_help)
    promote.set_defaults(func=_promote)

    models = commands.add_parser("models", help="registered models, versions, aliases, metrics")
    models.add_argument("--name", help="only this registered model")
    models.add_argument("--tracking-uri", help=uri_help)
    models.set_defaults(func=_models)

    commands.add_parser(  # parsed by _predict: its options depend on the model's predictor
        "predict",
        help="predict a file with a model (e.g. a spectral library from a FASTA)",
        description=PREDICT_DESCRIPTION,
        add_help=False,
    )


def _compare(args: argparse.Namespace) -> int:
    from deepms.tracking.compare import compare, format_table

    result = compare(
        args.task,
        metric=args.metric,
        top=args.top,
        param=args.param,
        curve=args.curve,
        ascending=args.ascending,
        output_dir=args.output_dir,
        tracking_uri=args.tracking_uri,
        log=not args.no_log,
        all_status=args.all_status,
    )
    print(format_table(result.table, args.format))
    info = sys.stderr if args.format == "csv" else sys.stdout  # keep csv on stdout clean
    order = "ascending" if result.ascending else "descending"
    print(f"\nsorted by {result.metric} ({order}); {len(result.table)} run(s)", file=info)
    for note in result.notes:
        print(f"note: {note}", file=info)
    for path in result.files.values():
        print(f"wrote {path}", file=info)
    if result.run_id:
        print(f"logged comparison run {result.run_id} (compare-{result.task})", file=info)
    return 0


def _add_compare_command(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="table and plots of a task's tracked runs, sorted by a metric",
        description="Reads the MLflow store: one row per run of the task (key tags, the params "
        "that differ, test metrics), top N by the metric; writes metric_vs_<param>.png, "
        "learning_curves_<metric>.png and comparison.csv, and logs them as a run compare-<task>.",
    )
    compare.add_argument("--task", required=True, help="e.g. pdeep (the runs' `task` tag)")
    compare.add_argument("--metric", help="sort metric (default: the task's test_metric)")
    compare.add_argument("--top", type=int, default=10, help="rows shown and plotted")
    compare.add_argument("--param", help="x axis of the metric plot (default: most varied param)")
    compare.add_argument("--curve", help="metric history overlaid (default: the task's monitor)")
    order = compare.add_mutually_exclusive_group()
    order.add_argument(
        "--ascending",
        dest="ascending",
        action="store_true",
        default=None,
        help="lowest first (default: from the task's mode, min/max)",
    )
    order.add_argument("--descending", dest="ascending", action="store_false", default=None)
    compare.add_argument("--output-dir", help="default: outputs/compare/<task>/")
    compare.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlruns/)"
    )
    compare.add_argument("--no-log", action="store_true", help="do not log the comparison run")
    compare.add_argument("--all-status", action="store_true", help="include failed/killed runs")
    compare.add_argument("--format", choices=["table", "markdown", "csv"], default="table")
    compare.set_defaults(func=_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepms",
        description="Deep learning on mass-spectrometry proteomics data. "
        "Train with `python train.py task=<name>`; these commands manage data and models: "
        "register a run's best checkpoint, promote it behind an alias, predict with it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    datasets = commands.add_parser("datasets", help="the named public data sets").add_subparsers(
        dest="action", required=True
    )
    listing = datasets.add_parser("list", help="list catalogued data sets")
    listing.add_argument("--task", help="only the data sets of this task (e.g. pdeep)")
    listing.set_defaults(func=_datasets_list)
    verify = datasets.add_parser(
        "verify", help="resolve data sets (mirror, cache, download) and check their sha256"
    )
    verify.add_argument("names", nargs="+")
    verify.add_argument("--mirror", default=None, help="local mirror folder (default: env)")
    verify.add_argument("--no-download", action="store_true")
    verify.set_defaults(func=_datasets_verify)
    _add_model_commands(commands)
    _add_compare_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["predict"]:  # its options depend on the model: parsed by _predict
            return _predict(argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except Exception as err:
        from deepms.errors import DeepMSError

        if isinstance(err, DeepMSError | ValueError | FileNotFoundError):
            print(f"deepms: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
