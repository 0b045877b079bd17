"""Where faults land: the Target protocol every cluster kind implements (base.py), the
embedded cluster (embedded.py, through the `serve-core cluster` command) and the compose
project (compose.py, through the Docker API), and the small drivers a target runs on the
cluster to deploy an application or a config (deploy_app.py, deploy_config.py)."""

from __future__ import annotations

from chaos.spec.experiment import ComposeTarget, EmbeddedTarget
from chaos.targets.base import Target


def make_target(spec: EmbeddedTarget | ComposeTarget, backend: str = "serve_core") -> Target:
    """The target an experiment's ``target:`` names."""
    if isinstance(spec, EmbeddedTarget):
        from chaos.targets.embedded import EmbeddedCluster

        return EmbeddedCluster(spec.name, spec.state_root, backend=backend)
    from chaos.targets.compose import ComposeCluster

    return ComposeCluster(spec.project, backend=backend)
