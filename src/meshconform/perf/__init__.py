"""Performance baselines: Locust load (closed, or open at a fixed rate with coordinated-omission
correction), HDR histograms in microseconds, mesh cost, versioned results, baseline comparison.

Locust (gevent) is imported only in the load-generator processes (`engine`, `scenarios`); every
other module here is safe to import from pytest or asyncio code."""
