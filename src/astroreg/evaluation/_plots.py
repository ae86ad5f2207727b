"""Diagnostic figures for regression and classification runs.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot, so no global backend switch and no figure leaks), writes a PNG atomically
(temporary file in the same folder, then :func:`os.replace`) and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from numpy.typing import ArrayLike, NDArray

from astroreg.data._atomic import atomic_path
from astroreg.evaluation._metrics import _check_pair, _robust_stats, redshift_metrics, regression_metrics
from astroreg.evaluation._regimes import assign_bins

__all__ = [
    "plot_pred_vs_true",
    "plot_residuals",
    "plot_residual_hist",
    "plot_loss_curves",
    "plot_confusion_matrix",
    "plot_comparison",
]

#: Above this many points, scatter plots become hexbin density plots.
HEXBIN_THRESHOLD = 5000
_DPI = 120


def _png_path(path: str | os.PathLike) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"plot path must end in '.png'; got '{out}'")
    return out


def _new_figure(width: float = 6.0, height: float = 5.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _new_axes(width: float, height: float) -> tuple[Figure, Any]:
    """A new figure of ``width`` x ``height`` inches holding one axes."""
    fig = _new_figure(width, height)
    return fig, fig.add_subplot()


def save_figure(fig: Figure, path: Path, dpi: float | None = None) -> Path:
    """Lay out ``fig`` and write it as a PNG to ``path`` atomically, with matplotlib's own text renderer.

    Importing GaiaXPy sets matplotlib's global ``text.usetex`` (its plotter module does), and
    most machines have no LaTeX: every astroreg figure is drawn without it.
    """
    with rc_context({"text.usetex": False}):
        for text in fig.findobj(Text):
            text.set_usetex(False)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _finish(fig: Figure, ax: Any, out: Path, *, xlabel: str, ylabel: str, title: str | None) -> Path:
    """Label the axes, add the title when there is one and write ``fig`` to ``out``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return save_figure(fig, out)


def _axis_label(prefix: str, label: str, unit: str | None) -> str:
    text = f"{prefix} {label}".strip()
    return f"{text} [{unit}]" if unit else text


def _unit_suffix(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _density(ax: Any, fig: Figure, x: NDArray, y: NDArray, threshold: int, extent: Any = None) -> None:
    """Scatter for small samples, log-scaled hexbin above ``threshold`` points."""
    if x.size > threshold:
        hb = ax.hexbin(x, y, gridsize=60, mincnt=1, bins="log", cmap="viridis", extent=extent)
        fig.colorbar(hb, ax=ax, label="objects per cell")
    else:
        size = 12.0 if x.size < 500 else 4.0
        ax.scatter(x, y, s=size, alpha=0.6, edgecolors="none", rasterized=True)


def _residual_axes(t: NDArray, r: NDArray, hexbin_threshold: int) -> tuple[Figure, Any]:
    """Residual ``r`` against true value ``t`` (scatter or hexbin) over a dashed zero line."""
    fig, ax = _new_axes(7.0, 4.5)
    _density(ax, fig, t, r, hexbin_threshold)
    ax.axhline(0.0, color="black", lw=1.0, ls="--")
    return fig, ax


def _binned(
    x: NDArray, y: NDArray, index: NDArray, n_bins: int, stat: Callable[[NDArray], Any], *, min_count: int = 1,
) -> list[tuple[Any, Any]]:
    """``(median of x, stat(y))`` for each bin ``k < n_bins`` of ``index`` holding ``min_count`` objects or more."""
    out = []
    for k in range(n_bins):
        in_bin = index == k
        if in_bin.sum() >= min_count:
            out.append((np.median(x[in_bin]), stat(y[in_bin])))
    return out


def _text_box(ax: Any, text: str) -> None:
    ax.text(
        0.03,
        0.97,
        text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        family="monospace",
        fontsize=9,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
    )


def _is_redshift(redshift: bool, redshift_like: bool | None) -> bool:
    """``redshift``, or its old spelling ``redshift_like`` when that is given."""
    return bool(redshift or redshift_like)


def _residuals(t: NDArray, p: NDArray, redshift: bool) -> NDArray:
    if redshift:
        if np.any(t <= -1.0):
            raise ValueError("redshift=True needs y_true > -1 so that 1 + z is positive")
        return (p - t) / (1.0 + t)
    return p - t


def _residual_inputs(
    path: str | os.PathLike, y_true: ArrayLike, y_pred: ArrayLike, redshift: bool, redshift_like: bool | None,
    bins_name: str, bins: int,
) -> tuple[Path, NDArray, NDArray, bool]:
    """Checked ``(output path, y_true, residuals, redshift)`` of the residual plots; ``bins`` must be >= 1."""
    out = _png_path(path)
    if bins < 1:
        raise ValueError(f"{bins_name} must be >= 1; got {bins}")
    t, p = _check_pair(y_true, y_pred)
    redshift = _is_redshift(redshift, redshift_like)
    return out, t, _residuals(t, p, redshift), redshift


def _residual_label(label: str, unit: str | None, redshift: bool) -> str:
    if redshift:
        return "e_z = (pred - true) / (1 + true)"
    return _axis_label("pred - true", label, unit)


def _inset_text(t: NDArray, p: NDArray, unit: str | None, redshift: bool) -> str:
    """The metrics box of :func:`plot_pred_vs_true`; a redshift adds the ``e_z`` statistics."""
    m = regression_metrics(t, p)
    u = _unit_suffix(unit)
    if not redshift:
        return (f"n    = {t.size}\nRMSE = {m['rmse']:.4g}{u}\n"
                f"NMAD = {m['nmad']:.4g}{u}\nbias = {m['bias']:+.4g}{u}")
    z = redshift_metrics(t, p, names=("y_true", "y_pred"))
    # Both NMADs and both biases are shown: each line says of which error.
    rows = [
        ("n", f"{t.size}"),
        ("RMSE", f"{m['rmse']:.4g}"),
        ("NMAD(pred-true)", f"{m['nmad']:.4g}"),
        ("bias(pred-true)", f"{m['bias']:+.4g}"),
        ("sigma_IQR(e_z)", f"{z['sigma_iqr_ez']:.4g}"),
        ("sigma_NMAD(e_z)", f"{z['sigma_nmad_ez']:.4g}"),
        ("bias(e_z)", f"{z['bias_ez']:+.4g}"),
        ("outliers", f"{100 * z['outlier_rate']:.2f}%"),
        ("catastrophic", f"{100 * z['catastrophic_rate']:.2f}%"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)} = {v}" for k, v in rows)


def plot_pred_vs_true(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    path: str | os.PathLike,
    *,
    label: str = "value",
    unit: str | None = None,
    title: str | None = None,
    hexbin_threshold: int = HEXBIN_THRESHOLD,
    redshift: bool = False,
    redshift_like: bool | None = None,
) -> Path:
    """Predicted against true values, with the 1:1 line and a metrics box.

    The box gives n, RMSE, NMAD and median bias of ``pred - true``; for a redshift
    (``redshift=True``) it also gives the statistics of ``e_z = (pred - true) / (1 +
    true)`` of :func:`~astroreg.evaluation.redshift_metrics`: sigma_IQR, sigma_NMAD,
    median bias, outlier and catastrophic rates (in percent).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, in ``unit``.
    path : path-like
        Output PNG file; parent folders are created.
    label : str, default "value"
        Name of the quantity, e.g. ``"teff"``.
    unit : str, optional
        Unit shown on the axes and in the metrics box, e.g. ``"K"`` or ``"dex"``.
    title : str, optional
        Figure title.
    hexbin_threshold : int, default 5000
        Above this many objects a log-density hexbin replaces the scatter plot.
    redshift : bool, default False
        The quantity is a redshift (recipe ``targets[].kind: redshift``): add the
        ``e_z`` statistics to the box.
    redshift_like : bool, optional
        Old name of ``redshift``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        On invalid arrays (see :func:`~astroreg.evaluation.regression_metrics`), a
        redshift with ``y_true <= -1``, or a path that does not end in ``.png``.

    Examples
    --------
    >>> plot_pred_vs_true([1, 2, 3], [1.1, 2.0, 2.8], "runs/x/plots/teff.png",
    ...                   label="teff", unit="K")  # doctest: +SKIP
    """
    out = _png_path(path)
    t, p = _check_pair(y_true, y_pred)
    box = _inset_text(t, p, unit, _is_redshift(redshift, redshift_like))
    lo = float(min(t.min(), p.min()))
    hi = float(max(t.max(), p.max()))
    pad = 0.02 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad

    fig, ax = _new_axes(6.0, 5.5)
    _density(ax, fig, t, p, hexbin_threshold, extent=(lo, hi, lo, hi))
    ax.plot([lo, hi], [lo, hi], color="black", lw=1.0, ls="--", label="1:1")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    _text_box(ax, box)
    ax.legend(loc="lower right")
    return _finish(fig, ax, out, xlabel=_axis_label("true", label, unit),
                   ylabel=_axis_label("predicted", label, unit), title=title)


def plot_residuals(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    path: str | os.PathLike,
    *,
    label: str = "value",
    unit: str | None = None,
    title: str | None = None,
    n_bins: int = 15,
    redshift: bool = False,
    hexbin_threshold: int = HEXBIN_THRESHOLD,
    redshift_like: bool | None = None,
) -> Path:
    """Residual against true value, with the running median and 16/84th percentiles.

    The running statistics are computed in ``n_bins`` bins holding equal numbers of
    objects (quantiles of ``y_true``); bins with fewer than 3 objects are skipped.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, in ``unit``.
    path : path-like
        Output PNG file.
    label, unit, title : str, optional
        Quantity name, unit and figure title (see :func:`plot_pred_vs_true`).
    n_bins : int, default 15
        Number of bins for the running statistics.
    redshift : bool, default False
        Plot ``e_z = (pred - true) / (1 + true)`` instead of ``pred - true``.
    hexbin_threshold : int, default 5000
        Above this many objects a hexbin replaces the scatter plot.
    redshift_like : bool, optional
        Old name of ``redshift``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        On invalid arrays, ``n_bins < 1`` or a path not ending in ``.png``.
    """
    out, t, r, redshift = _residual_inputs(path, y_true, y_pred, redshift, redshift_like, "n_bins", n_bins)

    fig, ax = _residual_axes(t, r, hexbin_threshold)
    edges = np.unique(np.quantile(t, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size >= 2:
        running = _binned(t, r, assign_bins(t, edges), edges.size - 1,
                          lambda v: np.percentile(v, [16.0, 50.0, 84.0]), min_count=3)
        if running:
            centers = [c for c, _ in running]
            p16, med, p84 = ([q[i] for _, q in running] for i in range(3))
            # Red lines stay visible over both the blue scatter and the viridis hexbin.
            ax.plot(centers, med, color="tab:red", lw=2.0, label="running median")
            ax.plot(centers, p16, color="tab:red", lw=1.2, ls="--", label="16th / 84th pct")
            ax.plot(centers, p84, color="tab:red", lw=1.2, ls="--")
            ax.legend(loc="upper right")
    return _finish(fig, ax, out, xlabel=_axis_label("true", label, unit),
                   ylabel=_residual_label(label, unit, redshift), title=title)


def plot_residual_hist(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    path: str | os.PathLike,
    *,
    label: str = "value",
    unit: str | None = None,
    title: str | None = None,
    bins: int = 50,
    redshift: bool = False,
    redshift_like: bool | None = None,
) -> Path:
    """Histogram of residuals with their median, NMAD and the zero line.

    The histogram spans the 0.5th to 99.5th percentiles so that a few outliers do not
    squash the core; the number left outside is printed in the text box.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, in ``unit``.
    path : path-like
        Output PNG file.
    label, unit, title : str, optional
        Quantity name, unit and figure title.
    bins : int, default 50
        Number of histogram bins.
    redshift : bool, default False
        Histogram ``e_z = (pred - true) / (1 + true)`` instead of ``pred - true``.
    redshift_like : bool, optional
        Old name of ``redshift``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        On invalid arrays, ``bins < 1`` or a path not ending in ``.png``.
    """
    out, _, r, redshift = _residual_inputs(path, y_true, y_pred, redshift, redshift_like, "bins", bins)
    median, nmad = _robust_stats(r)
    lo, hi = (float(v) for v in np.percentile(r, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    outside = int(np.sum((r < lo) | (r > hi)))

    fig, ax = _new_axes(6.0, 4.5)
    counts, _, _ = ax.hist(r, bins=bins, range=(lo, hi), color="tab:blue", alpha=0.8)
    # Head-room so the text box and legend do not cover the peak.
    ax.set_ylim(0.0, max(float(counts.max()), 1.0) * 1.45)
    ax.axvline(0.0, color="black", lw=1.0, ls="--")
    ax.axvline(median, color="tab:red", lw=1.5, label="median")
    u = "" if redshift else _unit_suffix(unit)
    of = "(e_z)" if redshift else ""
    rows = [("n", f"{r.size}"), (f"bias{of}", f"{median:+.4g}{u}"), (f"NMAD{of}", f"{nmad:.4g}{u}"),
            ("outside", f"{outside}")]
    width = max(len(k) for k, _ in rows)
    _text_box(ax, "\n".join(f"{k.ljust(width)} = {v}" for k, v in rows))
    ax.legend(loc="upper right")
    return _finish(fig, ax, out, xlabel=_residual_label(label, unit, redshift), ylabel="objects", title=title)


def plot_loss_curves(
    history: pd.DataFrame, path: str | os.PathLike, *, title: str | None = None,
    log_scale: bool | None = None,
) -> Path:
    """Training and validation loss against epoch, marking the best validation epoch.

    Parameters
    ----------
    history : pandas.DataFrame
        One row per epoch with columns ``epoch``, ``train_loss`` and ``val_loss``; NaN
        entries (an epoch without validation) are skipped. With a ``member`` column (an
        ensemble's), each member's curves are drawn.
    path : path-like
        Output PNG file.
    title : str, optional
        Figure title.
    log_scale : bool, optional
        Logarithmic loss axis. By default it is used when all losses are positive and
        span more than a factor of 30.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``history`` is not a DataFrame, lacks a column, has no finite loss, or the
        path does not end in ``.png``.
    """
    out = _png_path(path)
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"history must be a pandas.DataFrame; got {type(history).__name__}")
    required = ["epoch", "train_loss", "val_loss"]
    missing = [c for c in required if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks column(s) {missing}; columns are: {list(history.columns)}; "
            f"expected {required}"
        )
    # An ensemble's history has a ``member`` column: one pair of curves per member.
    groups = list(history.groupby("member")) if "member" in history.columns else [(None, history)]
    members = []
    for member, part in groups:
        epoch = part["epoch"].to_numpy(dtype=np.float64, na_value=np.nan)
        curves = {}
        for col in ("train_loss", "val_loss"):
            loss = part[col].to_numpy(dtype=np.float64, na_value=np.nan)
            keep = np.isfinite(loss) & np.isfinite(epoch)
            curves[col] = (epoch[keep], loss[keep])
        members.append((member, curves))
    values = np.concatenate([c[1] for _, curves in members for c in curves.values()])
    if values.size == 0:
        raise ValueError("history has no finite train_loss or val_loss values to plot")
    if log_scale is None:
        log_scale = bool(np.all(values > 0) and values.max() / values.min() > 30.0)

    fig, ax = _new_axes(6.5, 4.5)
    styles = {"train_loss": ("training", "tab:blue"), "val_loss": ("validation", "tab:orange")}
    for i, (member, curves) in enumerate(members):
        for col, (x, y) in curves.items():
            if y.size:
                name, color = styles[col]
                label = name if member is None else f"{name}, member {member}"
                ax.plot(x, y, marker="o" if y.size < 30 else None, ms=3, color=color, label=label,
                        alpha=1.0 if i == 0 else 0.55, ls=("-", "--", ":", "-.")[i % 4])
        x_val, y_val = curves["val_loss"]
        if y_val.size:
            best = int(np.argmin(y_val))
            ax.axvline(x_val[best], color="grey", lw=1.0, ls=":",
                       label=f"best val{'' if member is None else f' ({member})'}: epoch {x_val[best]:g} "
                             f"({y_val[best]:.4g})")
    if log_scale:
        ax.set_yscale("log")
    ax.legend(loc="upper right")
    return _finish(fig, ax, out, xlabel="epoch", ylabel="loss", title=title)


def plot_confusion_matrix(
    matrix: ArrayLike,
    labels: Sequence[Any],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Confusion matrix coloured by row fraction and annotated with counts.

    Parameters
    ----------
    matrix : array-like of shape (n_labels, n_labels)
        Counts; rows are true classes, columns predicted ones (as returned by
        :func:`~astroreg.evaluation.classification_metrics`).
    labels : sequence of length n_labels
        Class names in row / column order.
    path : path-like
        Output PNG file.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``matrix`` is not square, has negative or non-finite entries, does not match
        ``labels``, or the path does not end in ``.png``.
    """
    out = _png_path(path)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"matrix must be square of shape (n_labels, n_labels); got {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("matrix entries must be finite, non-negative counts")
    names = [str(v) for v in labels]
    if len(names) != m.shape[0]:
        raise ValueError(f"got {len(names)} labels for a {m.shape[0]}x{m.shape[0]} matrix")
    row_sum = m.sum(axis=1, keepdims=True)
    fraction = np.divide(m, row_sum, out=np.zeros_like(m), where=row_sum > 0)

    n = m.shape[0]
    size = min(max(4.0, 0.8 * n + 2.0), 14.0)
    fig, ax = _new_axes(size + 1.0, size)
    image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:g}", ha="center", va="center", fontsize=9,
                        color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    return _finish(fig, ax, out, xlabel="predicted", ylabel="true", title=title)


def plot_comparison(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    metric: str = "rmse",
    title: str | None = None,
) -> Path:
    """Bar chart of one metric across models, one panel per target.

    Targets get their own panels because their units differ.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table with columns ``model``, ``target`` and ``metric``, such as the
        output of :func:`~astroreg.evaluation.comparison_table`.
    path : path-like
        Output PNG file.
    metric : str, default "rmse"
        Column to plot.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If a column is missing, the table is empty, or the path does not end in ``.png``.
    """
    out = _png_path(path)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas.DataFrame; got {type(table).__name__}")
    missing = [c for c in ("model", "target", metric) if c not in table.columns]
    if missing:
        raise ValueError(
            f"table lacks column(s) {missing}; columns are: {list(table.columns)}"
        )
    if table.empty:
        raise ValueError("table is empty; nothing to compare")
    targets = list(dict.fromkeys(table["target"]))
    n_models = table["model"].nunique()
    fig = _new_figure(4.0 * min(len(targets), 4), 1.2 + 0.4 * n_models)
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, target in zip(axes, targets):
        rows = table[table["target"] == target]
        values = rows[metric].to_numpy(dtype=np.float64, na_value=np.nan)
        ax.barh(range(len(rows)), values, color="tab:blue")
        ax.set_yticks(range(len(rows)), [str(m) for m in rows["model"]])
        ax.invert_yaxis()
        ax.set_title(str(target))
        ax.set_xlabel(metric)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out)
