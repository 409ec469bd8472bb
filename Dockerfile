# evdsearch gRPC server. CPU by default; GPU variant:
#   docker build --build-arg BASE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 --build-arg EXTRAS=gpu -t evdsearch:gpu .
# Run on your own artefacts (an index folder and a KB folder from `evdsearch index` / `evdsearch kb import`):
#   docker run -p 50051:50051 -v $PWD/runs/quickstart:/data evdsearch
# or build everything from the embedded shapes world inside the container:
#   docker run -p 50051:50051 evdsearch evdsearch quickstart --host 0.0.0.0
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG EXTRAS=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY evdsearch ./evdsearch
COPY engine ./engine
COPY indexer ./indexer
COPY training ./training
COPY benchmarks ./benchmarks
COPY proto ./proto
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -c constraints.txt ".[${EXTRAS}]"
ENV PATH=/opt/venv/bin:$PATH
# Run as an unprivileged user: the code and venv stay root-owned (read-only to the server);
# the quickstart writes its runs/ under this user's home.
RUN useradd --create-home --uid 10001 --user-group evdsearch
USER evdsearch
WORKDIR /home/evdsearch
EXPOSE 50051
HEALTHCHECK CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c=g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')); \
sys.exit(0 if c.Check(h.HealthCheckRequest(), timeout=3).status==1 else 1)"
CMD ["evdsearch", "serve", "--index", "/data/index", "--kb", "/data/kb", "--host", "0.0.0.0", "--port", "50051"]
