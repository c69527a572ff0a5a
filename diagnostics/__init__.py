"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

# Transition radii (the Transition/Driver protocol)
from diagnostics.autocorrelation import autocorrelation, correlation_time
from diagnostics.block_parameters import block_recurrent_parameters
from diagnostics.correlated_inputs import correlated_inputs

# Data-parallel support
from diagnostics.distributed import ShardReducer, resolve_process_group, unwrap_model

# Effective learning rates
from diagnostics.effective_lr import EffectiveLRs, effective_learning_rates, supported_optimizers
from diagnostics.effective_lr_tracker import EffectiveLRTracker
from diagnostics.estimators import (
    Eigenpairs,
    FunctionOperator,
    HutchinsonEstimate,
    LinearOperator,
    eigsh,
    hutchinson,
)

# Hessian
from diagnostics.hessian_diagonality import (
    DiagonalityReport,
    hessian_diagonality,
    participation_number,
)
from diagnostics.hessian_operator import HessianOperator
from diagnostics.memory_sensitivity import MemorySensitivityReport, memory_sensitivity
from diagnostics.memory_theory import normalized_exp_sensitivity, second_moment, sensitivity
from diagnostics.parameter_blocks import ParameterBlock
from diagnostics.parameter_groups import (
    PARAMETER_GROUPS,
    grouped_summary,
    recurrent_parameter_groups,
)

# Transition radii
from diagnostics.radii import spectral_radius, transition_radii
from diagnostics.signal_propagation import (
    SignalPropagationReport,
    recurrent_layers,
    signal_propagation,
)
from diagnostics.spectral_radius_grad import differentiable_spectral_radius
from diagnostics.transitions import (
    Driver,
    Transition,
    lsc_transitions,  # noqa: F401  (deprecated alias, not in __all__)
    model_transitions,
)

__all__ = [
    # Memory sensitivity (curse of memory)
    "memory_sensitivity",
    "MemorySensitivityReport",
    "correlated_inputs",
    "second_moment",
    "sensitivity",
    "normalized_exp_sensitivity",
    # Signal propagation through deep stacks, input autocorrelation
    "signal_propagation",
    "SignalPropagationReport",
    "recurrent_layers",
    "autocorrelation",
    "correlation_time",
    # Hessian
    "HessianOperator",
    "ParameterBlock",
    "hessian_diagonality",
    "DiagonalityReport",
    "participation_number",
    "block_recurrent_parameters",
    # Estimators for any linear operator (diagnostics.estimators)
    "LinearOperator",
    "FunctionOperator",
    "hutchinson",
    "HutchinsonEstimate",
    "eigsh",
    "Eigenpairs",
    # Effective learning rates
    "effective_learning_rates",
    "EffectiveLRs",
    "EffectiveLRTracker",
    "supported_optimizers",
    "recurrent_parameter_groups",
    "grouped_summary",
    "PARAMETER_GROUPS",
    # Transition radii
    "transition_radii",
    "spectral_radius",
    "differentiable_spectral_radius",
    "model_transitions",
    "Transition",
    "Driver",
    # Data-parallel support
    "unwrap_model",
    "resolve_process_group",
    "ShardReducer",
]
