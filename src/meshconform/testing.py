"""What a check of your own needs, from one module: the fixtures' public types (so your tests type-check), the
decorator that declares a conformance unit, and the helpers meshconform's own checks use (convergence, shares,
the proxies' records). A check package (suite/extensions.py) imports from here only:

    from meshconform.testing import MeshConfig, Request, Vantage, conformance_test, wait_for_marker

    def test_reviews_v3(mesh_config: MeshConfig, mesh_meshed_client: Vantage) -> None: ...
"""

from __future__ import annotations

from meshconform.fixtures.record import ResultRecord
from meshconform.platform.api import Endpoint, Platform, Vantage, Workload
from meshconform.stats.proportions import DEFAULT_ALPHA
from meshconform.suite.checks import miss_kind, new_marker, outcomes, wait_for, wait_for_all, wait_for_marker
from meshconform.suite.config import MeshConfig, UnitManifests
from meshconform.suite.convergence import NeverConverged, await_convergence, await_settled, under_way
from meshconform.suite.extensions import CheckPackage
from meshconform.suite.failures import assert_failed_as, failed_as, log_outcomes, records_for
from meshconform.suite.features import Profile
from meshconform.suite.sampling import ShareSample, measure_counted, measure_shares
from meshconform.suite.timeouts import Timeouts
from meshconform.suite.timing import LatencyBounds
from meshconform.suite.unit import chosen_by, conformance_test, deferred
from meshconform.traffic.model import Request, Response

__all__ = ["DEFAULT_ALPHA", "CheckPackage", "Endpoint", "LatencyBounds", "MeshConfig", "NeverConverged", "Platform",
           "Profile", "Request", "Response", "ResultRecord", "ShareSample", "Timeouts", "UnitManifests", "Vantage",
           "Workload", "assert_failed_as", "await_convergence", "await_settled", "chosen_by", "conformance_test",
           "deferred", "failed_as", "log_outcomes", "measure_counted", "measure_shares", "miss_kind", "new_marker",
           "outcomes", "records_for", "under_way", "wait_for", "wait_for_all", "wait_for_marker"]
