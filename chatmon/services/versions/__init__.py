"""Did the change help? Before/after figures around each change of system prompt or model.

For every change of prompt version or model (a ``change_event`` of kind ``prompt`` or
``model``) in a window, the requests just before it are compared with the requests just
after it, and each figure gets a 95 % confidence interval:

- **requests**, and the **error rate** (``error`` / ``interrupted`` of all requests),
  **satisfaction** (thumbs-up share of the rated requests) and the **implicit-flag
  rate** (flagged share of all requests): Wilson score intervals.
- **p50 / p95 latency**: the distribution-free interval of a quantile, read off the
  stored log-scale histogram bins (``latency_bin``, :mod:`chatmon.services.histogram`).
  The ``q``-quantile of ``n`` values lies, with 95 % confidence, between the order
  statistics of ranks ``floor(nq - 1.96 sqrt(nq(1-q)))`` and
  ``ceil(nq + 1.96 sqrt(nq(1-q))) + 1`` (the normal approximation of the binomial
  count of values below the quantile; Conover, *Practical Nonparametric Statistics*,
  §3.2). The rank's bin gives the value to within 1 %, so no row is read and nothing
  is resampled.
- **cost per request** (over the requests with a known cost): the mean with a normal
  interval, ``mean ± 1.96 s / sqrt(n)`` from the count, sum and sum of squares (the
  central limit theorem; below :data:`MIN_REQUESTS` costs it is "not enough data").

**Comparable windows.** Both sides have the same length: as long as the window asked
for, but never reaching past the previous or next change (of prompt, model or chatmon
version: their effects would mix in) nor past now. For a prompt change the before side
counts only requests of the old version and the after side only the new one (a worker
may pick up a new prompt file slightly before the change is recorded); for a model
change, every request of each side counts. Synthetic probe requests are in no figure.

**Verdict.** A figure is *better* or *worse* only when the two 95 % intervals do not
overlap (a conservative test: overlapping intervals can still hide a real difference,
but non-overlapping ones rarely arise by chance). The change's verdict is ``worse``
(something got worse, nothing better), ``better``, ``mixed``, ``no clear change``, or
``not enough data`` when either side has fewer than :data:`MIN_REQUESTS` requests.

**Reading.** A side's whole hours come from the prompt-version rollups and its partial
edge hours from the rows (:mod:`.sides`), so a week of requests costs a few thousand
rollup rows, not every request. Inside: :mod:`.statistics` (estimates, intervals, one
figure judged), :mod:`.tally` (a side's sums and figures), :mod:`.sides` (reading a
side from the rollups and rows), :mod:`.report` (changes,
comparable windows, verdicts, the versions list). Import the names below from
``chatmon.services.versions``.
"""

from chatmon.services.versions.report import (
    BOUNDARY_KINDS,
    COMPARED_KINDS,
    MAX_CHANGES,
    MAX_VERSIONS,
    Change,
    Verdict,
    VersionRow,
    VersionsReport,
    comparable_windows,
    compare_changes,
    judge,
    report,
    verdict,
    version_rows,
)
from chatmon.services.versions.sides import figures_by_version, side_figures
from chatmon.services.versions.statistics import (
    METRICS,
    MIN_RATED,
    MIN_REQUESTS,
    NOTHING,
    Z95,
    Comparison,
    Estimate,
    Metric,
    compare,
    mean_interval,
    quantile_interval,
    wilson,
)
from chatmon.services.versions.tally import Side, Tally

__all__ = [
    "BOUNDARY_KINDS",
    "COMPARED_KINDS",
    "Change",
    "Comparison",
    "Estimate",
    "MAX_CHANGES",
    "MAX_VERSIONS",
    "METRICS",
    "MIN_RATED",
    "MIN_REQUESTS",
    "Metric",
    "NOTHING",
    "Side",
    "Tally",
    "Verdict",
    "VersionRow",
    "VersionsReport",
    "Z95",
    "comparable_windows",
    "compare",
    "compare_changes",
    "figures_by_version",
    "judge",
    "mean_interval",
    "quantile_interval",
    "report",
    "side_figures",
    "verdict",
    "version_rows",
    "wilson",
]
