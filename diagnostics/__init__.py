"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

# Transition radii
from diagnostics._transitions import Driver, Transition, model_transitions
from diagnostics.radii import spectral_radius, transition_radii

__all__: list[str] = [
    # Transition radii
    "transition_radii",
    "spectral_radius",
    "model_transitions",
    "Transition",
    "Driver",
]
