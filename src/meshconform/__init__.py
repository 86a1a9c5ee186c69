"""meshconform: conformance suite and test harness for service meshes."""
__version__ = "0.1.0"
