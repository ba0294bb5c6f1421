"""Testing: the shared harness of design §1.6 — the real CLI and daemon against local stand-ins.

`Harness` starts, on 127.0.0.1, the Kubernetes API stand-in (always on; see
operatord.testing.kube_server for its semantics), writes a kubeconfig pointing at it, and
starts any extra components passed in. `env()` is what a subprocess needs: `KUBECONFIG`,
`OPERATORD_NAMESPACE`, plus each component's variables (the Prometheus component adds
`OPERATORD_PROMETHEUS_URL`, the moto component `AWS_ENDPOINT_URL` and credentials).

    from operatord.testing.harness import Harness
    from operatord.testing import kubeobjects as k
    from operatord.testing.moto_server import MotoServer   # EC2 with fault hooks (moto_server.py)

    with Harness() as h:                       # or Harness(PrometheusServer(...), MotoServer())
        h.kube.create(k.node("gpu-1"))         # seed objects directly (no HTTP)
        result = h.cli("status", "-o", "json") # the real `operatord` in a subprocess
        assert result.returncode == 0
        h.kube.get("Node", "gpu-1")            # read back what the CLI wrote

A component is anything with `start()`, `stop()` and `env() -> dict[str, str]` (the
`Component` protocol); components start in the order given, after the Kubernetes stand-in,
and stop in reverse. Adding one to the harness is a constructor argument, not an edit here.
`h.client()` gives an official-client ApiClient on the stand-in for tests that need one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import yaml

from operatord.testing.kube_server import KubeStandIn

NAMESPACE = "operatord"


class Component(Protocol):
    """A local stand-in the harness starts and stops; `env()` is valid between the two."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def env(self) -> dict[str, str]: ...


def write_kubeconfig(path: Path, server: str, *, namespace: str = NAMESPACE) -> Path:
    """A kubeconfig with one context pointing at `server` (plain HTTP, a dummy token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "harness-token"}}],
        "contexts": [
            {"name": "standin", "context": {"cluster": "standin", "user": "tester", "namespace": namespace}}
        ],
        "current-context": "standin",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Harness:
    """Context manager: the Kubernetes stand-in plus optional components (see module docstring)."""

    def __init__(
        self, *components: Component, namespace: str = NAMESPACE, workdir: Path | None = None
    ) -> None:
        self.kube = KubeStandIn()
        self.components: tuple[Component, ...] = components
        self.namespace = namespace
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="operatord-harness-"))
        self.kubeconfig = self.workdir / "kubeconfig"
        self._started: list[Component] = []

    def __enter__(self) -> Harness:
        self.kube.start()
        try:
            write_kubeconfig(self.kubeconfig, self.kube.url, namespace=self.namespace)
            for component in self.components:
                component.start()
                self._started.append(component)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for component in reversed(self._started):
            component.stop()
        self._started.clear()
        self.kube.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """Variables that point the real CLI and daemon at this harness."""
        out = {"KUBECONFIG": str(self.kubeconfig), "OPERATORD_NAMESPACE": self.namespace}
        for component in self._started:
            out.update(component.env())
        return out

    def cli(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `operatord ARGS...` (this interpreter, `-m operatord`) with the harness env; never raises
        on a non-zero exit (tests assert on returncode, stdout and stderr)."""
        full_env = {**_clean_environ(), **self.env(), **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "operatord", *args],
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )

    def client(self) -> Any:
        """An official-client ApiClient configured for the stand-in."""
        from kubernetes import client  # noqa: PLC0415  (only tests that ask pay for the import)

        return client.ApiClient(client.Configuration(host=self.kube.url))

    def seed(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            self.kube.create(obj)


def _clean_environ() -> dict[str, str]:
    """The parent's environment without variables that would point the CLI elsewhere."""
    drop = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OPERATORD_")}
