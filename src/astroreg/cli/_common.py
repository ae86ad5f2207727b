"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import yaml

THREADS_HELP = ("torch threads (default: the cores not kept busy by other processes, at least 1, or "
                "OMP_NUM_THREADS where set)")


class LazyCommands(argparse._SubParsersAction):
    """Subcommands, some of whose arguments are added only when that command is parsed.

    ``ingest`` and ``simulate`` take their option defaults from modules that import numpy,
    pandas and h5py (half a second); ``astroreg --version``, ``astroreg --help`` and the
    argument errors of every other command skip that. Installed with
    ``parser.register("action", "parsers", LazyCommands)`` before ``add_subparsers``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._later: dict[str, tuple[Callable[[argparse.ArgumentParser], None], argparse.ArgumentParser]] = {}

    def fill_later(self, name: str, fill: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``fill(parser)`` on the ``name`` subcommand's parser when that command is parsed."""
        self._later[name] = (fill, self.choices[name])

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        later = self._later.pop(values[0], None) if values else None
        if later is not None:
            later[0](later[1])
        super().__call__(parser, namespace, values, option_string)


def add_filled_later(subparsers, name: str, fill: Callable[[argparse.ArgumentParser], None],
                     **kwargs) -> argparse.ArgumentParser:
    """Add a subcommand whose arguments ``fill(parser)`` adds when it is parsed (see :class:`LazyCommands`).

    With any other ``subparsers`` (a plain ``argparse`` one) the arguments are added now.
    """
    parser = subparsers.add_parser(name, **kwargs)
    if isinstance(subparsers, LazyCommands):
        subparsers.fill_later(name, fill)
    else:
        fill(parser)
    return parser


def add_command(sub, name: str, *, help: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand whose ``--help`` ends with an example."""
    return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts that must be at least 1 (``--chunk-size``, ``--jobs``, ``--n``).

    Raises
    ------
    argparse.ArgumentTypeError
        For anything but a whole number >= 1; argparse turns it into a usage error (exit 2).

    Examples
    --------
    >>> positive_int("256")
    256
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def parse_overrides(items: list[str] | None) -> dict:
    """``--set training.epochs=3`` pairs as a dict, values parsed as YAML scalars.

    Raises
    ------
    ValueError
        For an item without ``=`` or a value that is not valid YAML; the message names the
        key and the value.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. training.epochs=3), got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or type(err).__name__
            raise ValueError(
                f"--set {key.strip()}: value {value!r} is not valid YAML ({problem}); quote a string "
                f"(--set '{key.strip()}=\"...\"') or close the brackets (e.g. {key.strip()}=[1, 2])"
            ) from None
    return out


def add_threads(p: argparse.ArgumentParser, *, recorded: bool) -> None:
    """Add ``--threads N`` (torch's intra-op threads) to a command that trains or predicts.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    recorded : bool
        Whether the command has a recipe, where the value becomes ``training.threads``
        (and so is written to the run's ``config.yaml``).
    """
    where = "; the same as --set training.threads=N, which it replaces" if recorded else ""
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help=THREADS_HELP + where)


def recipe_overrides(args: argparse.Namespace) -> dict:
    """The recipe overrides of a command: its ``--set`` pairs, then ``--threads`` as ``training.threads``.

    Raises
    ------
    ValueError
        For a malformed ``--set`` item (see :func:`parse_overrides`).

    Examples
    --------
    >>> recipe_overrides(argparse.Namespace(set=["training.epochs=3"], threads=1))
    {'training.epochs': 3, 'training.threads': 1}
    """
    out = parse_overrides(getattr(args, "set", None))
    if getattr(args, "threads", None) is not None:
        out["training.threads"] = args.threads
    return out


def check_dataset(path: str | os.PathLike) -> Path:
    """Open and close an astroreg dataset, so that a missing or foreign file is refused before any work.

    Only h5py and numpy are loaded here, never torch.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not HDF5 or not an astroreg dataset.
    """
    from astroreg.data import Dataset

    with Dataset(path) as ds:
        return ds.path


def check_recipe_outputs(args: argparse.Namespace, out: str | os.PathLike | None, kind: str):
    """The recipe of a training command, its dataset and its output place, all checked before torch loads.

    Loads ``args.recipe`` with ``--set``/``--threads`` (:func:`recipe_overrides`), opens the
    dataset (``args.data`` or the recipe's) and checks the output: the exact folder
    ``out`` (of ``kind``, e.g. ``run`` or ``ablation``), or else that ``args.runs`` is
    writable. Returns the recipe.
    """
    from astroreg.config import load_recipe
    from astroreg.data import check_output_dir, check_writable_folder

    recipe = load_recipe(args.recipe, recipe_overrides(args))
    data = check_dataset(args.data or recipe.dataset.path)
    if out is not None:
        check_output_dir(out, kind=kind, inputs=[data], overwrite=args.overwrite)
    else:
        check_writable_folder(args.runs)
    return recipe


def check_run_folder(path: str | os.PathLike) -> Path:
    """Refuse a path that is not a finished run folder, by its files, before torch is loaded.

    The run is opened (and its preprocessor checked) later by
    :meth:`astroreg.pipeline.Run.open`; this is the part of that check that needs no torch.

    Raises
    ------
    ValueError
        If ``path`` is missing, not a folder, or lacks ``config.yaml``, ``model.pt`` or the
        preprocessor file.
    """
    from astroreg.data._outputs import PREPROCESSOR_FILES, RUN_FILES

    p = Path(path)
    missing = [f for f in RUN_FILES if not (p / f).is_file()]
    if not any((p / f).is_file() for f in PREPROCESSOR_FILES):
        missing.append(PREPROCESSOR_FILES[0])
    if not p.is_dir() or missing:
        found = "does not exist" if not p.exists() else "is not a folder" if not p.is_dir() else f"lacks {missing}"
        raise ValueError(f"{p} is not a complete astroreg run folder (it {found}); "
                         "give a folder made by `astroreg train` (runs/<recipe>-<stamp>)")
    return p
