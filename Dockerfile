# The Slipway image: the worker (default) and the API, from the locked dependencies.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY slipway ./slipway
COPY activities ./activities
COPY workflows ./workflows
COPY starter ./starter
COPY migrations ./migrations
COPY worker.py ./
RUN uv sync --frozen --no-dev

CMD ["python", "-m", "worker"]
