"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective learning rates."""

__all__: list[str] = []
