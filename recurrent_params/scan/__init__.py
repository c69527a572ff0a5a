"""The linear-scan core shared by the diagonal cells."""

from recurrent_params.scan._alloc import empty_cache
from recurrent_params.scan.linear_scan import linear_scan, scan_implementation

__all__ = ["linear_scan", "scan_implementation", "empty_cache"]
