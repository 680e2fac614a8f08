# syntax=docker/dockerfile:1
# TVM Hub image: build the package in one stage, run it as a non-root user in another.
# Set DATABASE_URL and JWT_SECRET (and TVM_ENV=production) when running in production;
# without DATABASE_URL the hub starts its embedded PostgreSQL in the /var/lib/tvm volume.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/tvm
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY actors ./actors
COPY storage ./storage
COPY api ./api
RUN /opt/tvm/bin/pip install --no-cache-dir . \
 && find /opt/tvm -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 tvm \
 && useradd --system --uid 10001 --gid tvm --home-dir /var/lib/tvm --shell /usr/sbin/nologin tvm \
 && mkdir -p /var/lib/tvm \
 && chown tvm:tvm /var/lib/tvm
COPY --from=build /opt/tvm /opt/tvm
ENV PATH=/opt/tvm/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TVM_HOST=0.0.0.0 \
    TVM_PORT=8000 \
    TVM_DATA_DIR=/var/lib/tvm
USER tvm
WORKDIR /var/lib/tvm
VOLUME ["/var/lib/tvm"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os,sys,urllib.request; p=os.environ.get('TVM_PORT','8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{p}/health/live', timeout=4).status == 200 else 1)"
ENTRYPOINT ["tvm-hub"]
CMD ["serve"]
