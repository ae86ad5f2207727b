"""Report sections that follow the recipe, and the registry of paper-table sets.

A run's report holds what every recipe gets (the MAE of the model against
``evaluation.compare_to``, the residuals in bins of S/N when ``evaluation.snr_column``
is set) and, only when the recipe names one in ``evaluation.paper_tables``, the tables
of a paper with its published values beside ours. Without ``paper_tables`` no section
or file mentions a paper.

A set is a small class registered under a name::

    @register_paper_tables("my-paper")
    class MyPaper(PaperTables):
        description = "paper 002: Table 1"

        def report(self, inputs):
            return ["## Table 1 of paper 002\\n\\n..."], {"tables.md": "..."}

``stellar-params`` (paper 001, :mod:`astroreg.evaluation._paper001`) is built in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from astroreg.evaluation._report import markdown_table
from astroreg.evaluation._tables import mae_ratio_table

if TYPE_CHECKING:
    from astroreg.config import Recipe

__all__ = [
    "PaperTables",
    "PublishedAblation",
    "ReportInputs",
    "register_paper_tables",
    "list_paper_tables",
    "get_paper_tables",
    "check_paper_tables",
    "recipe_paper_tables",
    "recipe_report_sections",
    "redshift_targets",
    "snr_markdown",
]

_SETS: dict[str, PaperTables] = {}


@dataclass(frozen=True)
class ReportInputs:
    """What a paper-table set may draw on, as :func:`recipe_report_sections` received it."""

    recipe: Recipe
    regression: Mapping[str, Any]
    model: str
    model_info: Mapping[str, Mapping[str, Any]]
    frame: pd.DataFrame
    snr: pd.DataFrame | None


@dataclass(frozen=True)
class PublishedAblation:
    """Published ablation ratios to the full model.

    ``values`` is ``{variant: {"parameters": float, "time": float, "mae": {target:
    float}}}``; ``source`` is cited under the table; ``label`` names the table in
    headings and legends (e.g. ``"paper Table 5"``).
    """

    values: Mapping[str, Mapping[str, Any]]
    source: str
    label: str


class PaperTables:
    """Base of a registered paper-table set; a set overrides what its paper has.

    Attributes
    ----------
    name : str
        Registry name (set by :func:`register_paper_tables`), the recipe's
        ``evaluation.paper_tables``.
    description : str
        One line: which paper, which tables.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def report(self, inputs: ReportInputs) -> tuple[list[str], dict[str, str]]:
        """Markdown sections for ``report.md`` (each starting ``## ``) and extra files ``{name: text}``."""
        return [], {}

    def ablation(self) -> PublishedAblation | None:
        """The paper's ablation ratios to show beside ``astroreg ablate``'s, or None."""
        return None


def register_paper_tables(name: str) -> Callable[[type[PaperTables]], type[PaperTables]]:
    """Register a :class:`PaperTables` subclass under ``name`` (a recipe's ``evaluation.paper_tables``).

    Raises
    ------
    ValueError
        If ``name`` is taken.
    TypeError
        If the class is not a :class:`PaperTables`.
    """

    def deco(cls: type[PaperTables]) -> type[PaperTables]:
        if not (isinstance(cls, type) and issubclass(cls, PaperTables)):
            raise TypeError(f"paper tables {name!r}: register a subclass of PaperTables, got {cls!r}")
        if name in _SETS:
            raise ValueError(f"paper tables {name!r} are already registered")
        cls.name = name
        _SETS[name] = cls()
        return cls

    return deco


def list_paper_tables() -> list[str]:
    """Names of the registered paper-table sets (values of ``evaluation.paper_tables``)."""
    return sorted(_SETS)


def get_paper_tables(name: str) -> PaperTables:
    """The registered set ``name``.

    Raises
    ------
    ValueError
        If no set has that name; the message lists the known ones.
    """
    try:
        return _SETS[name]
    except KeyError:
        raise ValueError(
            f"evaluation.paper_tables {name!r} is not a known set of paper tables; known sets: "
            f"{list_paper_tables()}; pick one of them or remove the key (no paper tables)"
        ) from None


def check_paper_tables(name: str | None) -> None:
    """Raise ValueError unless ``name`` is None or a registered set (call it before training).

    Examples
    --------
    >>> check_paper_tables("stellar-params")
    >>> check_paper_tables(None)
    """
    if name is not None:
        get_paper_tables(name)


def recipe_paper_tables(recipe: Recipe) -> PaperTables | None:
    """The set the recipe's ``evaluation.paper_tables`` names, or None when it names none."""
    name = recipe.evaluation.paper_tables
    return None if name is None else get_paper_tables(name)


def redshift_targets(recipe: Recipe) -> list[str]:
    """Names of the recipe's redshift targets (``kind: redshift``, or the old ``redshift_like: true``)."""
    return [t.name for t in recipe.targets if t.is_redshift]


def snr_markdown(snr: pd.DataFrame) -> str:
    """The report section of a :func:`~astroreg.evaluation.residuals_by_snr` table."""
    table = snr.drop(columns=[c for c in ("snr_lo", "snr_hi") if c in snr.columns]).reset_index(drop=True)
    return "\n".join(["## Residuals in bins of S/N", "", markdown_table(table), "",
                      "`median`: median of pred - true; `sigma_mad`: 1.4826 x its median absolute deviation.", ""])


def recipe_report_sections(
    recipe: Recipe,
    *,
    regression: Mapping[str, Any],
    model: str,
    model_info: Mapping[str, Mapping[str, Any]],
    frame: pd.DataFrame,
    snr: pd.DataFrame | None,
) -> tuple[list[str], dict[str, str]]:
    """The recipe's sections of ``report.md`` and its extra files.

    In order: the MAE of ``model`` against ``evaluation.compare_to`` (those of them
    that are regression models), headed "MAE of `model` against the baselines";
    the sections of the ``evaluation.paper_tables`` set, if the recipe names one; the
    residuals in bins of S/N, if ``snr`` is given. Files come only from a paper-table
    set (``stellar-params``: ``tables.md``).

    Parameters
    ----------
    recipe : Recipe
        The run's recipe.
    regression : dict
        Regression metrics of the run, ``{"split": .., "models": {name: {target: {..}}}}``
        (classifiers left out).
    model : str
        The recipe's network (``recipe.model.name``).
    model_info : dict
        ``{name: {"parameters": .., "predict_objects_per_s": ..}}`` (``model_info.json``).
    frame : pandas.DataFrame
        The network's predictions on the evaluation split (``<t>_true``, ``<t>_pred``).
    snr : pandas.DataFrame or None
        :func:`~astroreg.evaluation.residuals_by_snr` table, or None.

    Returns
    -------
    sections : list of str
        Markdown sections, each starting with ``## `` (pass to ``write_report(sections=...)``).
    files : dict of str to str
        ``{file name: text}`` to write in the run folder; empty without ``paper_tables``.

    Raises
    ------
    ValueError
        If ``evaluation.paper_tables`` names no registered set, or ``model`` is not in
        ``regression``.

    Examples
    --------
    >>> sections, files = recipe_report_sections(recipe, regression=metrics, model="paper_cnn",
    ...     model_info=info, frame=frame, snr=None)  # doctest: +SKIP
    """
    paper = recipe_paper_tables(recipe)
    models = regression.get("models", {})
    sections: list[str] = []
    against = [c for c in recipe.evaluation.compare_to if c in models and c != model]
    if against:
        ratios = mae_ratio_table(regression, model, against)
        sections.append(f"## MAE of `{model}` against the baselines\n\n{markdown_table(ratios)}\n\n"
                        "A ratio below 1 means the network is better.")
    files: dict[str, str] = {}
    if paper is not None:
        inputs = ReportInputs(recipe=recipe, regression=regression, model=model, model_info=model_info or {},
                              frame=frame, snr=snr)
        extra, files = paper.report(inputs)
        sections += [s for s in extra if s.strip()]
    if snr is not None:
        sections.append(snr_markdown(snr))
    return sections, dict(files)


# The built-in sets register themselves on import.
from astroreg.evaluation import _paper001  # noqa: F401
