"""diagnostics: transition radii, memory sensitivity, Hessian structure, effective LRs."""

__all__: list[str] = []
