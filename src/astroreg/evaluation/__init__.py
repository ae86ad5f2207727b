"""Evaluation: metrics, diagnostic plots and the run report.

Metrics use ``e = pred - true``; redshift statistics use ``(pred - true) / (1 + true)``.
Plots are PNGs written atomically; :func:`write_report` assembles ``report.md``.
"""

from astroreg.evaluation._metrics import (
    binned_metrics,
    classification_metrics,
    evaluate_predictions,
    redshift_metrics,
    regression_metrics,
    residuals_by_snr,
    robust_residual_stats,
    snr_bin_labels,
)
from astroreg.evaluation._plots import (
    plot_comparison,
    plot_confusion_matrix,
    plot_loss_curves,
    plot_pred_vs_true,
    plot_residual_hist,
    plot_residuals,
)
from astroreg.evaluation._tables import (
    PAPER_001,
    ablation_markdown,
    ablation_table,
    mae_ratio_table,
    model_size_table,
    paper_tables_markdown,
    range_normalised_errors,
    target_ranges,
)
from astroreg.evaluation._report import (
    comparison_table,
    domain_markdown,
    format_table,
    markdown_table,
    read_metrics_json,
    write_metrics_json,
    write_report,
)

__all__ = [
    "regression_metrics",
    "redshift_metrics",
    "classification_metrics",
    "binned_metrics",
    "evaluate_predictions",
    "robust_residual_stats",
    "residuals_by_snr",
    "snr_bin_labels",
    "plot_pred_vs_true",
    "plot_residuals",
    "plot_residual_hist",
    "plot_loss_curves",
    "plot_confusion_matrix",
    "plot_comparison",
    "comparison_table",
    "domain_markdown",
    "format_table",
    "markdown_table",
    "write_metrics_json",
    "read_metrics_json",
    "write_report",
    "PAPER_001",
    "mae_ratio_table",
    "model_size_table",
    "target_ranges",
    "range_normalised_errors",
    "ablation_table",
    "ablation_markdown",
    "paper_tables_markdown",
]
