"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

# Transition radii (the Transition/Driver protocol)
from diagnostics.correlated_inputs import correlated_inputs

# Data-parallel support
from diagnostics.distributed import ShardReducer, resolve_process_group, unwrap_model

# Effective learning rates
from diagnostics.effective_lr import EffectiveLRs, effective_learning_rates, supported_optimizers
from diagnostics.effective_lr_tracker import EffectiveLRTracker
from diagnostics.estimators import eigsh, hutchinson

# Hessian
from diagnostics.hessian_diagonality import (
    DiagonalityReport,
    hessian_diagonality,
    participation_number,
)
from diagnostics.hessian_operator import HessianOperator, HutchinsonEstimate, ParameterBlock
from diagnostics.memory_sensitivity import MemorySensitivityReport, memory_sensitivity
from diagnostics.memory_theory import normalized_exp_sensitivity, second_moment, sensitivity

# Transition radii
from diagnostics.radii import spectral_radius, transition_radii
from diagnostics.spectral_radius_grad import differentiable_spectral_radius
from diagnostics.transitions import Driver, Transition, lsc_transitions, model_transitions

__all__ = [
    # Memory sensitivity (curse of memory)
    "memory_sensitivity",
    "MemorySensitivityReport",
    "correlated_inputs",
    "second_moment",
    "sensitivity",
    "normalized_exp_sensitivity",
    # Hessian
    "HessianOperator",
    "HutchinsonEstimate",
    "ParameterBlock",
    "hessian_diagonality",
    "DiagonalityReport",
    "participation_number",
    # Estimators for any linear operator
    "hutchinson",
    "eigsh",
    # Effective learning rates
    "effective_learning_rates",
    "EffectiveLRs",
    "EffectiveLRTracker",
    "supported_optimizers",
    # Transition radii
    "transition_radii",
    "spectral_radius",
    "differentiable_spectral_radius",
    "model_transitions",
    "lsc_transitions",
    "Transition",
    "Driver",
    # Data-parallel support
    "unwrap_model",
    "resolve_process_group",
    "ShardReducer",
]
