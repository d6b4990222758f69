"""The ``deepms`` command line. Heavy imports live inside the commands so ``--help`` is instant."""

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepms",
        description="Deep learning on mass-spectrometry proteomics data. "
        "Train with `python train.py task=<name>`; these commands manage data and models.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        from deepms.errors import DeepMSError

        if isinstance(err, DeepMSError):
            print(f"deepms: error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
