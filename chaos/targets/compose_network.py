"""The compose target's network faults (partition, netem, heal), applied in a node container's
network namespace by a short-lived helper container: the node's own image, as root with only
NET_ADMIN and NET_RAW (the node containers hold no NET_ADMIN). A held fault's helper lives for
the fault and heals when stopped, or by itself shortly after the fault should have ended; a
fault without a duration stays until ``heal``. A mixin of ``ComposeCluster``, which gives it the
Docker seam, the clock, and its nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.spec.schedule import PlannedFault
from chaos.targets.base import TargetError, tail
from chaos.targets.compose_containers import (
    APPLIED,
    Container,
    cut_apply,
    heal_script,
    helper_how,
    helper_script,
    netem_apply,
)
from chaos.targets.docker_api import Docker, HelperState

HELPER_TIMEOUT_S = 60.0  # a network-fault helper applies (or heals) within this, or the fault fails


class NetworkFaults:
    docker: Docker
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]

    def _node(self, name: str | None) -> Container:
        raise NotImplementedError

    def _hold(self, seconds: float) -> None:
        raise NotImplementedError

    def _helper_until(self, helper: str, done: Callable[[HelperState], bool], what: str,
                      c: Container) -> HelperState:
        """Poll a helper until ``done`` (or it exits); a TargetError (the helper removed) on a timeout."""
        deadline = self.monotonic() + HELPER_TIMEOUT_S
        while True:
            state = self.docker.helper_state(helper)
            if done(state) or not state.running:
                return state
            if self.monotonic() > deadline:
                self.docker.remove_helper(helper)
                raise TargetError(f"cannot {what} node {c.node}", f"its network-fault helper did not finish "
                                  f"within {HELPER_TIMEOUT_S:.0f}s", f"docker logs of {c.name}-netfault-*")
            self.sleep(0.1)

    def _net_fault(self, c: Container, apply: str, hold_s: float | None, what: str) -> str:
        """Apply a network fault in ``c``'s namespace through a helper; held for ``hold_s`` (then
        healed) or left until ``heal``. The ``how=`` the helper printed."""
        if not c.running:
            raise TargetError(f"cannot {what} node {c.node}", f"its container is {c.status}",
                              f"start it first (restart-node {c.node})")
        helper = self.docker.run_helper(c, helper_script(apply, hold_s))
        try:
            state = self._helper_until(helper, lambda s: APPLIED in s.stdout, what, c)
            if APPLIED not in state.stdout:
                raise TargetError(f"cannot {what} node {c.node}", tail(state.stderr or state.stdout)
                                  or f"its network-fault helper exited with {state.code}",
                                  "the helper runs the node's image as root with NET_ADMIN: it needs sh, tc "
                                  "and iptables there (or SERVE_CORE_NET_HELPER_IMAGE naming an image with them)"
                                  if state.code != 4 else "inject loss only (loss_pct) or run on a kernel with sch_netem")
            if hold_s is not None:
                self._hold(hold_s)
                self.docker.stop_helper(helper)
                healed = self._helper_until(helper, lambda s: not s.running, "heal", c)
                if healed.running or healed.code != 0:
                    raise TargetError(f"node {c.node}'s network fault may not be healed",
                                      tail(healed.stderr) or f"its helper exited with {healed.code}",
                                      f"heal it: a `heal` fault on {c.node}, or restart its container")
            return helper_how(state.stdout)
        finally:
            self.docker.remove_helper(helper)

    def _partition(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        if fault.args.get("mode") == "freeze":
            self.docker.pause(c)
            if fault.duration_s:
                try:
                    self._hold(fault.duration_s)
                finally:
                    self.docker.unpause(c)
            how = "docker pause"
        else:
            how = self._net_fault(c, cut_apply(), fault.duration_s or None, "cut off the network") or "iptables drop"
        return {"node": fault.node}, {"container": c.name, "how": how, "healed": bool(fault.duration_s)}

    def _netem(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        delay, jitter, loss = (float(fault.args.get(k) or 0.0) for k in ("delay_ms", "jitter_ms", "loss_pct"))
        how = self._net_fault(c, netem_apply(delay, jitter, loss), fault.duration_s or None,
                              "delay or drop the packets of")
        return {"node": fault.node}, {"container": c.name, "how": how, "delay_ms": delay, "loss_pct": loss}

    def _heal(self, fault: PlannedFault) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self._node(fault.node)
        if c.status == "paused":
            self.docker.unpause(c)
        stopped = self.docker.helpers_of(c)
        for helper in stopped:  # a held fault's helper heals when stopped
            self.docker.stop_helper(helper)
        if c.status in ("running", "paused"):
            helper = self.docker.run_helper(c, heal_script())
            try:
                self._helper_until(helper, lambda s: not s.running, "heal", c)
            finally:
                self.docker.remove_helper(helper)
        for helper in stopped:
            self._helper_until(helper, lambda s: not s.running, "heal", c)
            self.docker.remove_helper(helper)
        return {"node": fault.node}, {"container": c.name, "helpers_stopped": len(stopped)}
