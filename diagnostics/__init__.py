"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

# Effective learning rates
from diagnostics.effective_lr import EffectiveLRs, effective_learning_rates, supported_optimizers
from diagnostics.effective_lr_tracker import EffectiveLRTracker

# Hessian
from diagnostics.hessian_diagonality import (
    DiagonalityReport,
    hessian_diagonality,
    participation_number,
)
from diagnostics.hessian_operator import HessianOperator, HutchinsonEstimate, ParameterBlock

__all__ = [
    # Hessian
    "HessianOperator",
    "HutchinsonEstimate",
    "ParameterBlock",
    "hessian_diagonality",
    "DiagonalityReport",
    "participation_number",
    # Effective learning rates
    "effective_learning_rates",
    "EffectiveLRs",
    "EffectiveLRTracker",
    "supported_optimizers",
]
