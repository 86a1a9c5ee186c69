"""The locustfile: Bookinfo users (anonymous page views, a signed-in reader, API calls) and a plain
GET user, each one stream on one keep-alive connection per target (perf/wire.py). Imported only inside
the Locust processes (gevent).

Timing is the same in both models: `intended` is when the request was due (open: the schedule's
time; closed: the moment it was sent), and the latency recorded is done - intended. In the open
model Locust's own statistics get the corrected latency too, so its CSV/HTML agree with ours (the users
fire Locust's request event themselves, in both models)."""

from __future__ import annotations

import time

import gevent
from locust import User, constant, constant_throughput, task

from meshconform.perf.recording import Recorder
from meshconform.perf.schedule import Stream
from meshconform.perf.spec import PhaseSpec, Target
from meshconform.perf.timer import precise_sleep_until
from meshconform.perf.wire import Connection

API_PATHS = ("/api/v1/products", "/api/v1/products/0", "/api/v1/products/0/reviews", "/api/v1/products/0/ratings")


class Control:
    """Process-wide state the engine sets up: the phase, its clock origin, the recorder."""

    spec: PhaseSpec
    origin: float | None = None
    recorder: Recorder | None = None
    stopping: bool = False
    in_flight: dict[int, tuple[str, float]] = {}  # id -> (key, intended), for replies still out at the end
    _next_id = 0

    @classmethod
    def begin(cls, now: float) -> None:
        if cls.origin is None:
            cls.origin = now
            end = now + cls.spec.total_s
            step_of = (lambda t: cls.spec.rate_at(t - now)[2]) if cls.spec.steps else None
            cls.recorder = Recorder(now + cls.spec.warmup_s, end, step_of)

    @classmethod
    def target_at(cls, t: float) -> Target:
        targets = cls.spec.targets
        if len(targets) == 1:
            return targets[0]
        block = int((t - (cls.origin or 0.0)) / cls.spec.block_s)
        return targets[block % len(targets)]

    @classmethod
    def user_rate(cls, t: float) -> float:
        rate, users, _ = cls.spec.rate_at(t - (cls.origin or t))
        return rate / max(1, users)


def sleep_until(moment: float) -> None:
    """gevent's timers run on the event loop's cached clock, which can lag perf_counter (badly right
    after a long start-up); a timer that fires early is simply slept again. About a millisecond late:
    for the engine's own bookkeeping; sends use `timer.precise_sleep_until`."""
    while (pause := moment - time.perf_counter()) > 0:
        gevent.sleep(pause)


class _Paced(User):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        Control.begin(time.perf_counter())
        self.open = Control.spec.mode == "open"
        self.stream = Stream(time.perf_counter(), Control.user_rate)
        self.connections: dict[str, Connection] = {}  # by target name: one connection each, like wrk's
        self.setup_session()

    def on_stop(self) -> None:
        for connection in self.connections.values():
            connection.close()

    def connection(self, target: Target) -> Connection:
        found = self.connections.get(target.name)
        if found is None:
            found = self.connections[target.name] = Connection(target.base_url, target.host)
        return found

    def setup_session(self) -> None:
        """Per-user preparation outside the measurement (the signed-in reader logs in here)."""

    def next_request(self) -> tuple[str, str, str, str | None]:
        """(name, method, path, form body) of the next request."""
        raise NotImplementedError

    @task
    def tick(self) -> None:
        recorder = Control.recorder
        assert recorder is not None
        if self.open:
            due = self.stream.next_due()
            if due >= recorder.window_end or Control.stopping:
                gevent.sleep(0.2)  # the schedule is over; idle until the engine quits
                return
            precise_sleep_until(due, gevent.sleep)
        elif Control.stopping or time.perf_counter() >= recorder.window_end:
            gevent.sleep(0.2)
            return
        name, method, path, body = self.next_request()
        sent = time.perf_counter()
        intended = due if self.open else sent
        target = Control.target_at(intended)
        key = f"{target.name}/{name}"
        Control._next_id += 1
        ident = Control._next_id
        Control.in_flight[ident] = (key, intended)
        reply = self.connection(target).request(method, path, body)
        done = time.perf_counter()
        Control.in_flight.pop(ident, None)
        timing = self.stream.timing(intended, sent, done)
        recorder.record(key, timing, reply.ok, reply.error)
        self.environment.events.request.fire(
            request_type=method, name=key, response_time=(done - intended) * 1000, response_length=reply.length,
            response=None, context={}, exception=None if reply.ok else Exception(reply.error), start_time=time.time())


class Get(_Paced):
    """GET the phase's path (bench and tests: any HTTP server)."""

    def next_request(self) -> tuple[str, str, str, str | None]:
        return "get", "GET", Control.spec.path, None


class PageVisitor(_Paced):
    """An anonymous reader: the product page (productpage calls details and reviews, reviews ratings)."""

    weight = 3

    def next_request(self) -> tuple[str, str, str, str | None]:
        return "page", "GET", "/productpage", None


class SignedInReader(_Paced):
    """A signed-in reader: logs in once (not measured), then reads the page with its session cookie."""

    weight = 1

    def setup_session(self) -> None:
        target = Control.spec.targets[0]
        login = self.connection(target).request("POST", "/login", f"username={Control.spec.login_user}")
        if not login.ok:
            raise RuntimeError(f"the signed-in reader could not log in: {login.error}")

    def next_request(self) -> tuple[str, str, str, str | None]:
        return "page-signed-in", "GET", "/productpage", None


class ApiClient(_Paced):
    """A program using the JSON API: products, details, reviews and ratings in turn."""

    weight = 1

    def next_request(self) -> tuple[str, str, str, str | None]:
        self._turn = (getattr(self, "_turn", -1) + 1) % len(API_PATHS)
        return "api", "GET", API_PATHS[self._turn], None


USER_CLASSES: dict[str, type[_Paced]] = {c.__name__: c for c in (Get, PageVisitor, SignedInReader, ApiClient)}


def configure(spec: PhaseSpec) -> list[type[User]]:
    """The phase's user classes, with the wait time of its model."""
    Control.spec = spec
    unknown = [name for name in spec.user_classes if name not in USER_CLASSES]
    if unknown:
        raise ValueError(f"unknown user class(es) {unknown}; known: {sorted(USER_CLASSES)}")
    classes: list[type[User]] = [USER_CLASSES[name] for name in spec.user_classes]
    for cls in classes:
        if spec.mode == "closed" and spec.rate > 0:
            cls.wait_time = constant_throughput(spec.rate / max(1, spec.users))
        else:
            cls.wait_time = constant(0)
    return classes
