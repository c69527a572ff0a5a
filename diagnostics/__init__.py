"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

from diagnostics.correlated_inputs import correlated_inputs
from diagnostics.memory_sensitivity import MemorySensitivityReport, memory_sensitivity
from diagnostics.memory_theory import normalized_exp_sensitivity, second_moment, sensitivity

__all__ = [
    # Memory sensitivity (curse of memory)
    "memory_sensitivity",
    "MemorySensitivityReport",
    "correlated_inputs",
    "second_moment",
    "sensitivity",
    "normalized_exp_sensitivity",
]
