# operatord: the controller (`operatord run`), the node agent (`operatord agent`) and the on-call CLI.
# Built from the repository root:  docker build -t operatord:0.1.0 .
# Installs with the same lock as development and CI (constraints.txt), so the image runs exactly
# the versions the tests ran.

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operatord ./operatord
RUN python -m venv /opt/operatord \
 && /opt/operatord/bin/pip install --constraint constraints.txt .

FROM python:3.11.7-slim-bookworm
# journalctl for the agent's journald source (kernel Xid lines reach it through the journal).
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd=252.* \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 operatord \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin operatord
COPY --from=build /opt/operatord /opt/operatord
WORKDIR /app
# The shipped policy and fault rules: relative rule globs of the operatord-policy ConfigMap
# ("faults/*.yaml") resolve against /app/policies.
COPY policies ./policies
COPY runbooks ./runbooks
ENV PATH=/opt/operatord/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# Non-root by number, so Kubernetes can verify runAsNonRoot. The agent's pod sets uid 0 itself
# (documented in the chart README) to read root-owned journal files.
USER 10001:10001
ENTRYPOINT ["operatord"]
CMD ["--help"]
