"""Fixtures for the runbook tests (the world they run in is harnessworld.World)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helm"))  # the chart renderer (chartkit) is shared

from chartkit import CHART  # noqa: E402
from harnessworld import World  # noqa: E402
from helm_python import chart as hc  # noqa: E402

from operatord.testing.harness import Harness  # noqa: E402
from operatord.testing.moto_server import MotoServer  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    aws = MotoServer()
    with pytest.MonkeyPatch.context() as mp, Harness(aws, workdir=tmp_path_factory.mktemp("runbooks")) as h:
        # Every in-process command builds new boto3 sessions, and each parses botocore's EC2 model
        # JSON again (~0.6 s). botocore caches per Loader; share that cache for the module (same
        # search path, same data; what `operatord` does with it is unchanged).
        shared: dict[object, object] = {}
        init = botocore.loaders.Loader.__init__

        def sharing_init(self: botocore.loaders.Loader, *args: object, **kwargs: object) -> None:
            init(self, *args, **kwargs)
            self._cache = shared

        mp.setattr(botocore.loaders.Loader, "__init__", sharing_init)
        yield World(h, aws, hc.Chart.load(str(CHART)))
