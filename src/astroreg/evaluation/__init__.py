"""Evaluation: metrics, diagnostic plots, the run report and the sections a recipe asks for.

Metrics use ``e = pred - true``; redshift statistics use ``e_z = (pred - true) / (1 + true)``
(keys ending in ``_ez``, see :func:`redshift_metrics`), also in bins of the true redshift
(:func:`redshift_bin_metrics`). Plots are PNGs written
atomically; :func:`write_report` assembles ``report.md``; :func:`recipe_report_sections`
gives the sections a recipe asks for, paper tables only when ``evaluation.paper_tables``
names a registered set (:func:`list_paper_tables`).

Members are imported on first use (PEP 562): the run folder code imports
:func:`labelled_metrics` without paying for matplotlib and scikit-learn.
"""

from __future__ import annotations

from astroreg._lazy import lazy_members

_METRICS = "astroreg.evaluation._metrics"
_PLOTS = "astroreg.evaluation._plots"
_TABLES = "astroreg.evaluation._tables"
_REPORT = "astroreg.evaluation._report"
_PAPER = "astroreg.evaluation._paper"
_REGIMES = "astroreg.evaluation._regimes"

_WHERE = {
    "regression_metrics": _METRICS,
    "redshift_metrics": _METRICS,
    "classification_metrics": _METRICS,
    "binned_metrics": _METRICS,
    "evaluate_predictions": _METRICS,
    "labelled_metrics": _METRICS,
    "robust_residual_stats": _METRICS,
    "residuals_by_snr": _METRICS,
    "snr_bin_labels": _METRICS,
    "REGRESSION_METRICS": _METRICS,
    "REDSHIFT_METRICS": _METRICS,
    "plot_pred_vs_true": _PLOTS,
    "plot_residuals": _PLOTS,
    "plot_residual_hist": _PLOTS,
    "plot_loss_curves": _PLOTS,
    "plot_confusion_matrix": _PLOTS,
    "plot_comparison": _PLOTS,
    "comparison_table": _REPORT,
    "redshift_table": _REPORT,
    "domain_markdown": _REPORT,
    "format_table": _REPORT,
    "format_metrics": _REPORT,
    "markdown_table": _REPORT,
    "write_metrics_json": _REPORT,
    "read_metrics_json": _REPORT,
    "write_report": _REPORT,
    "mae_ratio_table": _TABLES,
    "model_size_table": _TABLES,
    "target_ranges": _TABLES,
    "range_normalised_errors": _TABLES,
    "ablation_table": _TABLES,
    "ablation_markdown": _TABLES,
    "quantile_edges": _REGIMES,
    "regime_metrics": _REGIMES,
    "low_end_metrics": _REGIMES,
    "regimes_for_frames": _REGIMES,
    "regimes_markdown": _REGIMES,
    "plot_regimes": _REGIMES,
    "REDSHIFT_BIN_EDGES": _REGIMES,
    "redshift_bin_metrics": _REGIMES,
    "redshift_bin_edges": _REGIMES,
    "redshift_bins_for_frames": _REGIMES,
    "redshift_bins_markdown": _REGIMES,
    "plot_redshift_bins": _REGIMES,
    "PAPER_001": "astroreg.evaluation._paper001",
    "paper_tables_markdown": "astroreg.evaluation._paper001",
    "PaperTables": _PAPER,
    "PublishedAblation": _PAPER,
    "ReportInputs": _PAPER,
    "register_paper_tables": _PAPER,
    "list_paper_tables": _PAPER,
    "get_paper_tables": _PAPER,
    "check_paper_tables": _PAPER,
    "recipe_paper_tables": _PAPER,
    "recipe_report_sections": _PAPER,
    "redshift_targets": _PAPER,
}

__all__, __getattr__, __dir__ = lazy_members(__name__, _WHERE)
