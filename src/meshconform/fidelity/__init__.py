"""Fidelity of the local reference data plane: Istio's own simulation cases, run with real traffic."""
