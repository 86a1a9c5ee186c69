"""The public types of meshconform's pytest fixtures, from one module, so users' own tests are typed:

    from meshconform.testing import MeshConfig, Request, Vantage

    def test_reviews_v3(mesh_config: MeshConfig, mesh_meshed_client: Vantage) -> None: ...
"""

from __future__ import annotations

from meshconform.fixtures.record import ResultRecord
from meshconform.platform.api import Endpoint, Platform, Vantage, Workload
from meshconform.suite.config import MeshConfig
from meshconform.suite.timeouts import Timeouts
from meshconform.traffic.model import Request, Response

__all__ = ["Endpoint", "MeshConfig", "Platform", "Request", "Response", "ResultRecord", "Timeouts", "Vantage",
           "Workload"]
