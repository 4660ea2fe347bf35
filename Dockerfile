# The campaign engine's image: the API (`uvicorn api.main:app`) and the worker
# (`python worker.py`, the default command) run from it. See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (no .data/, .venv/ or tests in the image).
COPY pyproject.toml README.md worker.py cli.py cli_status.py ./
COPY campaign_engine ./campaign_engine
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api

# Byte-compile the sources: the workflow sandbox re-imports the workflow modules for every
# workflow run, and without .pyc files (the app runs as a user that cannot write them) it
# would compile them from source each time.
RUN pip install . \
    && python -m compileall -q /app \
    && useradd --system --uid 10001 --home-dir /app engine \
    && mkdir -p /data \
    && chown engine /data

USER engine
ENV CAMPAIGN_DATA_DIR=/data
EXPOSE 8000

CMD ["python", "worker.py"]
