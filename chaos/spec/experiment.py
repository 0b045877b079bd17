"""A chaos experiment as a document: what to run, under which load, which steady state must
hold, which faults to inject when, how to roll back, and when to give up.

Times in an experiment are seconds from the start of the load (t=0). The run has three
windows: ``before`` (steady state is probed at its end; faults wait for it), ``during``
(every fault starts and ends inside it) and ``after`` (the system must be back).

This module holds the pydantic models and the vocabulary (actions, selector words). Build
an ``Experiment`` with ``chaos.spec.loading`` (``load_experiment(path)`` reads a YAML
file and ``parse_experiment(doc)`` a mapping) rather than ``Experiment.model_validate``:
they add the cross-field checks (chaos.spec.checks: times inside the windows,
selectors valid for the action, names of nodes) and raise ``ExperimentError`` naming the
field path, the bad value, the fix and (for a file) the line.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaos.slo.spec import SLO, Availability
from chaos.spec.resource_check import ResourceCheck
from loadgen.profile import LoadProfile

Backend = Literal["serve_core", "ray_serve"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
FaultAction = Literal["kill-replica", "kill-proxy", "kill-controller", "kill-gcs", "kill-node", "restart-node",
                      "partition", "heal", "netem", "cpu-burn", "deploy"]
FAULT_ACTIONS: tuple[str, ...] = typing.get_args(FaultAction)
RollbackAction = Literal["heal", "restart-node", "redeploy"]
Window = Literal["before", "during", "after", "whole"]
HTTPMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]

# Node selector words (anything else is a node name such as head, w1, w2).
EVERY_WORKER, EVERY_NODE, RANDOM_WORKER, ANY = "worker", "all", "random-worker", "any"
SELECTOR_WORDS = (EVERY_WORKER, EVERY_NODE, RANDOM_WORKER, ANY)

# What each action needs and takes.
NODE_ACTIONS = frozenset({"kill-proxy", "kill-node", "restart-node", "partition", "heal", "netem", "cpu-burn"})
CLUSTER_ACTIONS = frozenset({"kill-controller", "kill-gcs", "deploy"})  # no target: one per cluster
HOLD_ACTIONS = frozenset({"partition", "netem", "cpu-burn"})  # duration_s is how long the fault holds
ACTION_ARGS: dict[str, frozenset[str]] = {
    "kill-replica": frozenset(), "kill-proxy": frozenset(), "kill-controller": frozenset(),
    "kill-gcs": frozenset({"down_for_s"}), "kill-node": frozenset(), "restart-node": frozenset(),
    "partition": frozenset({"mode"}), "heal": frozenset(), "netem": frozenset({"delay_ms", "jitter_ms", "loss_pct"}),
    "cpu-burn": frozenset({"cores"}), "deploy": frozenset({"config"}),
}
DEFAULT_DOWN_FOR_S = 5.0
MAX_WORKERS = 256  # node names are listed (w1..wN): an unbounded count would exhaust memory validating


# -- the document -------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # .inf or .nan: a clear error, not a run that never ends


class EmbeddedTarget(_Strict):
    """The cluster `serve-core cluster up` starts on this machine."""

    kind: Literal["embedded"] = "embedded"
    name: str = Field("default", description="Cluster name (serve-core cluster up --name).")
    workers: int = Field(2, ge=1, le=MAX_WORKERS, description="Worker nodes the experiment expects (w1..wN).")
    state_root: str | None = Field(None, description="State directory root of the cluster (default: serve-core's).")


class ComposeTarget(_Strict):
    """A cluster run by docker compose (compose/docker-compose.yml; chaos.targets.compose drives it)."""

    kind: Literal["compose"] = "compose"
    project: str = Field(..., description="Compose project name (docker compose -p).")
    file: str = Field("compose/docker-compose.yml", description="Compose file (informational: the target finds the "
                                                                 "project's containers by their labels).")
    workers: int = Field(2, ge=1, le=MAX_WORKERS, description="Worker nodes the experiment expects (w1..wN).")


TargetSpec = Annotated[EmbeddedTarget | ComposeTarget, Field(discriminator="kind")]


class Application(_Strict):
    """What is deployed and what the load calls."""

    import_path: str | None = Field(None, description="module:attribute of the application, for every backend.")
    import_paths: dict[Backend, str] = Field(
        default_factory=dict, description="Per-backend import paths, taking precedence over import_path.")
    swap_import: bool = Field(
        True, description="With one import_path for both backends, rewrite the module's `import serve_core as "
                          "serve` / `from ray import serve` line to the backend being run.")
    config: str | None = Field(None, description="A serve config YAML to deploy instead of an import path.")
    configs: dict[Backend, str] = Field(
        default_factory=dict, description="Per-backend serve configs, taking precedence over config (a config "
                                          "with serve_core-only fields, such as idempotent, cannot go to Ray Serve).")
    fresh: bool = Field(False, description="With config: delete the config's applications before deploying, so "
                                           "the run starts from their initial replicas (chaos.targets.deploy_config).")
    name: str = Field("default", description="Application name.")
    route: str = Field("/", description="Route prefix the application serves and the load calls.")
    method: HTTPMethod = Field("GET", description="HTTP method of the load's requests.")
    payload: Any = Field(None, description="JSON request body sent with every request.")
    payload_name: str | None = Field(None, description="A load generator's named payload, e.g. example:sklearn "
                                                       "(python -m loadgen examples lists them).")
    payload_file: str | None = Field(None, description="A .json file holding the body, or a .jsonl file of bodies "
                                                       "used in turn.")
    ready_timeout_s: float = Field(180.0, gt=0, description="How long the deploy may take until the route answers.")

    @field_validator("import_path")
    @classmethod
    def _import_path_form(cls, v: str | None) -> str | None:
        if v is not None:
            _check_import_path(v)
        return v

    @field_validator("import_paths")
    @classmethod
    def _import_paths_form(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v.values():
            _check_import_path(path)
        return v

    @field_validator("route")
    @classmethod
    def _route_form(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"a route starts with '/', for example '/{v}'")
        return v

    @model_validator(mode="after")
    def _something_to_deploy(self) -> Application:
        if self.import_path is None and not self.import_paths and self.config is None and not self.configs:
            raise ValueError("give import_path (module:attribute, e.g. tests.e2e.fault_app:app), "
                             "import_paths per backend, config, or configs per backend")
        given = [k for k in ("payload", "payload_name", "payload_file") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of payload, payload_name or payload_file, not {' and '.join(given)}")
        return self

    def config_for(self, backend: str) -> str | None:
        paths: dict[str, str] = {str(k): v for k, v in self.configs.items()}
        return paths.get(backend, self.config)

    def deploys(self, backend: str) -> str | None:
        """What ``backend`` deploys (a config or an import path), for messages."""
        return self.config_for(backend) or self.import_path_for(backend)

    def import_path_for(self, backend: str) -> str | None:
        paths: dict[str, str] = {str(k): v for k, v in self.import_paths.items()}
        return paths.get(backend, self.import_path)

    def needs_swap(self, backend: str) -> bool:
        """True when the backend runs the shared import_path (the module's serve import may
        have to be rewritten for it)."""
        return self.swap_import and backend not in self.import_paths and self.import_path is not None


def _check_import_path(v: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", v):
        raise ValueError(f"write module:attribute, e.g. tests.e2e.fault_app:app (got {v!r})")


PROXY_WORDS = ("all", "workers", "head")


class Load(_Strict):
    """Open-loop load (Locust) during the whole run."""

    profile: LoadProfile = Field(..., description="Arrival rate over time (kind: constant, step, spike, ramp, "
                                                  "diurnal, trace); its duration_s covers the whole run.")
    workers: int = Field(1, ge=1, description="Locust worker processes.")
    timeout_s: float = Field(5.0, gt=0, description="A request unanswered this long after its intended start failed.")
    proxies: list[str] = Field(
        ["workers"], min_length=1,
        description="Proxies the load is spread over: all, workers, or node names (a word or a list).")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Port where the load generator exports metrics.")
    retry_reset: bool = Field(
        False, description="Behave as a load balancer in front of the proxies: an idempotent request whose connection "
        "is reset before any answer (its proxy was killed holding it) is sent once more to the next proxy. The report "
        "counts them apart; off, such a request is lost, as for a client talking to one proxy.")

    @field_validator("proxies", mode="before")
    @classmethod
    def _one_word(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class SteadyState(_Strict):
    """The hypothesis: SLOs that must hold, and the windows they are judged over."""

    slos: list[SLO] = Field(..., min_length=1, description="SLOs (availability, latency, recovery, promql).")
    before_s: float = Field(..., gt=0, description="Seconds of load before the first fault; probed at its end.")
    during_s: float = Field(..., gt=0, description="Seconds in which faults start and end.")
    after_s: float = Field(..., ge=0, description="Seconds of load after the faults, to see the system recover.")
    judge: list[Window] = Field(["during", "after", "whole"], min_length=1,
                                description="Windows whose SLO results decide the verdict.")
    require_before: bool = Field(True, description="Abort without faults when the SLOs fail before them.")
    settle_s: float = Field(5.0, ge=0, description="Wait after the load ends so Prometheus scrapes the last samples.")
    resources: ResourceCheck | None = Field(
        None, description="Sample every process's memory and open files during the run and judge that they stay flat "
                          "(chaos.spec.resource_check, chaos.run.resources); a window of its own, 'resources', in the journal.")


class Selector(_Strict):
    """What a fault hits. ``node``: a node name (head, w1, ...), ``worker`` (every worker),
    ``all`` (every node), ``random-worker`` (one worker, chosen with the seed) or ``any``
    (one node, or for kill-replica any replica). A string is shorthand: ``w1`` is
    ``{node: w1}``, ``deployment:Work`` is ``{deployment: Work}``, and pairs join with commas."""

    node: str | None = Field(None, description="Node name, or worker / all / random-worker / any.")
    deployment: str | None = Field(None, description="kill-replica: only replicas of this deployment.")
    app: str | None = Field(None, description="kill-replica: only replicas of this application.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            out: dict[str, str] = {}
            for part in (p.strip() for p in data.split(",") if p.strip()):
                key, sep, value = part.partition(":")
                if not sep:
                    key, value = "node", part
                if key.strip() not in ("node", "deployment", "app"):
                    raise ValueError(f"{part!r}: write a node name, or node:NAME, deployment:NAME, app:NAME "
                                     "(joined by commas)")
                out[key.strip()] = value.strip()
            return out
        return data

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("node", self.node), ("app", self.app), ("deployment", self.deployment)) if v]
        return " ".join(parts) or "(cluster)"


class FaultArgs(_Strict):
    """Arguments of a fault; which ones an action takes is checked per action."""

    down_for_s: float | None = Field(None, ge=0, description="kill-gcs: seconds from the kill to the relaunch.")
    delay_ms: float | None = Field(None, ge=0, description="netem: added delay each way.")
    jitter_ms: float | None = Field(None, ge=0, description="netem: delay jitter.")
    loss_pct: float | None = Field(None, ge=0, le=100, description="netem: share of packets dropped.")
    cores: int | None = Field(None, ge=1, description="cpu-burn: cores kept busy.")
    mode: Literal["cut", "freeze"] | None = Field(
        None, description="partition: cut (default; every packet in and out dropped, as a cut cable) or freeze "
                          "(every process of the node stopped; its kernel still answers TCP).")
    config: str | None = Field(None, min_length=1, description="deploy: a serve config YAML applied at that moment "
                                                               "(a rollout, a canary's user_config), as chaos.targets.deploy_config does.")

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RandomTimes(_Strict):
    """Random start times inside a window, from the experiment's seed."""

    count: int | None = Field(None, ge=1, description="Exactly this many faults in the window.")
    rate_per_min: float | None = Field(None, gt=0, description="Poisson arrivals at this many per minute.")
    min_gap_s: float = Field(0.0, ge=0, description="At least this many seconds between two of them.")

    @model_validator(mode="after")
    def _one(self) -> RandomTimes:
        if (self.count is None) == (self.rate_per_min is None):
            raise ValueError("give exactly one of count (how many faults) or rate_per_min")
        return self


class Schedule(_Strict):
    """When a fault starts: ``at_s``; or ``every_s`` from ``start_s`` to ``end_s``; or
    ``random`` times between ``start_s`` and ``end_s``. start_s/end_s default to the during
    window."""

    at_s: float | None = Field(None, ge=0, description="Seconds from the start of the load.")
    every_s: float | None = Field(None, gt=0, description="Repeat with this period.")
    random: RandomTimes | None = Field(None, description="Random times: {count: N} or {rate_per_min: R}.")
    start_s: float | None = Field(None, ge=0, description="every/random: first moment (default: start of during).")
    end_s: float | None = Field(None, ge=0, description="every/random: last moment (default: end of during).")

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        kinds = [k for k in ("at_s", "every_s", "random") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of at_s, every_s or random" + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.at_s is not None and (self.start_s is not None or self.end_s is not None):
            raise ValueError("start_s/end_s go with every_s or random, not at_s")
        if self.start_s is not None and self.end_s is not None and self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must not be before start_s ({self.start_s})")
        return self

    @property
    def kind(self) -> str:
        return "at" if self.at_s is not None else "every" if self.every_s is not None else "random"

    def bounds(self, during: tuple[float, float]) -> tuple[float, float, bool]:
        """(first, last, last included) moments a fault may start at, for a during window."""
        if self.at_s is not None:
            return self.at_s, self.at_s, True
        first = self.start_s if self.start_s is not None else during[0]
        if self.end_s is not None:
            return first, self.end_s, True
        return first, during[1], False

    def every_times(self, during: tuple[float, float]) -> list[float]:
        """The start times of an every_s schedule (empty for other kinds)."""
        if self.every_s is None:
            return []
        first, last, included = self.bounds(during)
        times: list[float] = []
        k = 0
        while True:
            t = first + k * self.every_s
            if t > last + 1e-9 or (not included and t >= last - 1e-9):
                return times
            times.append(round(t, 9))
            k += 1


class Fault(_Strict):
    """One entry of the method: an action on a target, on a schedule."""

    name: str | None = Field(None, description="Label in the journal (default: the action).")
    action: FaultAction = Field(..., description="The fault to inject.")
    target: Selector = Field(default_factory=Selector, description="What it hits (node, deployment, app).")
    args: FaultArgs = Field(default_factory=FaultArgs, description="Arguments of the action.")
    schedule: Schedule = Field(..., description="When: {at_s}, {every_s, start_s, end_s} or {random: {...}}.")
    duration_s: float | None = Field(
        None, gt=0, description="partition, netem, cpu-burn: how long it holds; kill-node: restart the node after it.")

    @property
    def label(self) -> str:
        return self.name or self.action

    @property
    def length_s(self) -> float:
        """How long the fault lasts once started (0 for an instantaneous one)."""
        if self.action == "kill-gcs":
            return self.args.down_for_s if self.args.down_for_s is not None else DEFAULT_DOWN_FOR_S
        return self.duration_s or 0.0

    @property
    def random_gap_s(self) -> float:
        """Least time between two random starts: min_gap_s, and never overlapping."""
        gap = self.schedule.random.min_gap_s if self.schedule.random is not None else 0.0
        return max(gap, self.length_s)

    def start_bounds(self, during: tuple[float, float]) -> tuple[float, float, bool]:
        """(first, last, last included) start times; random times leave room for the fault
        to end inside the window."""
        first, last, included = self.schedule.bounds(during)
        if self.schedule.random is not None:
            return first, last - self.length_s, included or self.length_s > 0
        return first, last, included


class Rollback(_Strict):
    """An action run at the end of every run, also after an abort, an error or Ctrl-C."""

    action: RollbackAction = Field(..., description="heal, restart-node or redeploy.")
    target: Selector = Field(default_factory=Selector, description="Nodes it applies to (heal, restart-node).")
    only_if_down: bool = Field(True, description="restart-node: only nodes the cluster reports down.")


class BurnRateAbort(_Strict):
    """Stop when the error budget burns faster than ``above`` times the sustainable rate,
    measured over the last ``window_s`` seconds."""

    kind: Literal["burn_rate"] = "burn_rate"
    above: float = Field(..., gt=0, description="Burn-rate limit, e.g. 14.4 (2% of a 30-day budget in an hour).")
    window_s: float = Field(30.0, gt=0, description="Window of the burn rate.")
    objective: float | None = Field(None, gt=0, lt=1, description="Availability objective (default: the first "
                                                                 "availability SLO's).")
    route: str | None = Field(None, description="Only this route.")


class ClientFailuresAbort(_Strict):
    """Stop when the load generator has seen more than ``above`` failed requests."""

    kind: Literal["client_failures"] = "client_failures"
    above: int = Field(..., ge=0, description="Failed client requests tolerated.")


AbortCondition = Annotated[BurnRateAbort | ClientFailuresAbort, Field(discriminator="kind")]


class Experiment(_Strict):
    """A chaos experiment. Build it with ``parse_experiment`` or ``load_experiment``."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Name (letters, digits, _ . -); the journal directory starts with it.")
    description: str = Field("", description="What the experiment checks, in a sentence or two.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random choice (times, targets).")
    target: TargetSpec = Field(default_factory=EmbeddedTarget, description="Where it runs (kind: embedded, compose).")
    backend: Backend = Field("serve_core", description="What serves the application: serve_core or ray_serve.")
    application: Application = Field(..., description="What is deployed and called.")
    load: Load = Field(..., description="Open-loop load during the run.")
    steady_state: SteadyState = Field(..., description="SLOs and the before/during/after windows.")
    method: list[Fault] = Field(default_factory=list, description="The faults and their schedules.")
    rollbacks: list[Rollback] = Field(default_factory=list, description="Actions run at the end, always.")
    abort: list[AbortCondition] = Field(default_factory=list, description="Conditions that stop the run early.")

    # -- the timeline --

    @property
    def run_s(self) -> float:
        s = self.steady_state
        return s.before_s + s.during_s + s.after_s

    @property
    def during(self) -> tuple[float, float]:
        s = self.steady_state
        return s.before_s, s.before_s + s.during_s

    def window(self, name: str) -> tuple[float, float]:
        """Offsets (from the start of the load) of a window."""
        s = self.steady_state
        return {"before": (0.0, s.before_s), "during": self.during,
                "after": (self.during[1], self.run_s), "whole": (0.0, self.run_s)}[name]

    def node_names(self) -> list[str]:
        return ["head"] + [f"w{i}" for i in range(1, self.target.workers + 1)]

    def availability_objective(self) -> float | None:
        for slo in self.steady_state.slos:
            if isinstance(slo, Availability):
                return slo.objective
        return None

