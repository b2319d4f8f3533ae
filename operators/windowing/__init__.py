"""Windowing: event-time windows, per partition and per service.

The contract: windows are tumbling, aligned to `ALIGN_TO`, and close on event time — when an
event at least the allowed lateness past a window's end arrives, when an idle, caught-up
source lets system time move the watermark on (``advance``), or at the end of the input
(``close_all``); an event for a closed window is returned as late, never dropped.

- `TumblingWindows`: the one windowing rule, subclassed by the log and trace signals;
- `ServiceWindowDetector`: a service's points scored by its `DetectorBank` and folded into
  `ServiceWindow`\\ s (`service_window` holds the folding functions);
- `PartitionAligner`: an unkeyed partition's events in event-time order, within a bound of
  disorder, for the per-service steps after it.
"""

from airis.operators.windowing.event_windows import ALIGN_TO, TumblingWindows
from airis.operators.windowing.partition_aligner import PartitionAligner
from airis.operators.windowing.service_window import add_assessment, add_point, close_window
from airis.operators.windowing.windowed_detector import ServiceWindowDetector

__all__ = [
    "ALIGN_TO",
    "PartitionAligner",
    "ServiceWindowDetector",
    "TumblingWindows",
    "add_assessment",
    "add_point",
    "close_window",
]
