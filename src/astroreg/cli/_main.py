"""``astroreg``: one command, with a subcommand per job."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
from collections.abc import Sequence

from astroreg import __version__
from astroreg.cli._common import LazyCommands

EPILOG = """examples:
  astroreg demo                                   # simulate a small survey, train, compare with baselines
  astroreg simulate galaxy-images --n 40000 --out data/galaxy-images.h5
  astroreg train recipes/galaxy-flux.yaml
  astroreg resume runs/galaxy-flux-<stamp>.partial   # a run that was interrupted or killed goes on
  astroreg predict runs/galaxy-flux-<stamp> --data new.h5 --out predictions.parquet
  astroreg simulate sdss-stars --n 50000 --out data/sdss-stars-mock --jobs 2
  astroreg ingest sdss-spectra --spectra data/sdss-stars-mock/spectra --catalog data/sdss-stars-mock/sspp-labels.fits \\
      --out data/sdss-stars.h5
  astroreg train stellar-params; astroreg ablate stellar-params; astroreg tune stellar-params --trials 50
run `astroreg <command> --help` for the options of each command."""

# What to do about the usual file-system failures, by errno.
_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write to another disk",
    errno.EDQUOT: "your disk quota is used up: free some space or write to another disk",
    errno.EROFS: "the file system is read-only: choose a folder you can write to",
    errno.EACCES: "choose a folder you can write to, or check the file's permissions",
    errno.EPERM: "choose a folder you can write to, or check the file's permissions",
    errno.EISDIR: "a folder is in the way: give a file path",
    errno.ENOTDIR: "part of the path is a file, not a folder: check the path",
    errno.ENOENT: "check the path; relative paths start at the current folder",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EFBIG: "the file would be larger than a limit (ulimit -f) or the file system allows: write elsewhere",
    errno.EIO: "the device reported an input/output error: check the disk",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or use fewer --jobs",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from astroreg.cli import _ablate, _demo, _info, _ingest, _run, _simulate, _tune

    parser = argparse.ArgumentParser(
        prog="astroreg",
        description="Learn physical parameters of astronomical objects from survey data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astroreg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full Python traceback instead of one line")
    parser.register("action", "parsers", LazyCommands)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (_demo, _simulate, _ingest, _run, _tune, _ablate, _info):
        module.register(sub)
    return parser


def describe_os_error(err: OSError) -> str:
    """One line for a failed file operation: ``<path>: <cause> (<what to do>)``.

    Parameters
    ----------
    err : OSError
        Raised by Python, h5py, pyarrow or torch. An ``OSError`` raised with a message of
        its own (no error number) keeps that message.

    Examples
    --------
    >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "out.h5"))
    'out.h5: No space left on device (the disk is full: free some space or write to another disk)'
    """
    text = " ".join(str(err).split())  # h5py's messages span lines
    code = err.errno
    if code is None:
        # h5py names the C library's error inside its message: "... errno = 28, error message = ..."
        found = re.search(r"errno = (\d+)", text)
        code = int(found[1]) if found else None
    path = err.filename2 if err.filename2 is not None else err.filename
    if path is None:
        found = re.search(r"(?:file)?name = '([^']*)'", text)
        path = found[1] if found else None
    if code is None or (err.strerror is None and path is None):
        return text
    cause = err.strerror or os.strerror(code)
    advice = _ADVICE.get(code)
    line = f"{os.fsdecode(path)}: {cause}" if path is not None else cause
    return f"{line} ({advice})" if advice else line


def _command_name(args: argparse.Namespace) -> str:
    parts = [args.command, getattr(args, "ingest_layout", None) or getattr(args, "survey", None)]
    return " ".join(p for p in parts if p)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``astroreg`` command; returns the exit status.

    Exit status 0 on success, 2 for bad input and file-system failures (a one-line
    ``astroreg <command>: error: ...`` on stderr; ``--debug`` shows the traceback
    instead), 130 when interrupted with Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    name = _command_name(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"astroreg {name}: interrupted; finished files are complete, unfinished ones were not written",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        # OSError covers FileNotFoundError, PermissionError, a full disk, IsADirectoryError, and the
        # I/O errors of h5py, pyarrow (ArrowIOError) and torch that derive from it.
        if args.debug:
            raise
        text = describe_os_error(err) if isinstance(err, OSError) else str(err)
        print(f"astroreg {name}: error: {text}", file=sys.stderr)
        return 2
    except Exception as err:
        from concurrent.futures.process import BrokenProcessPool

        if args.debug or not isinstance(err, BrokenProcessPool):
            raise
        print(f"astroreg {name}: error: a worker process died unexpectedly (out of memory, or killed): {err}; "
              "run again with fewer --jobs", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
