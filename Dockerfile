# lsr-engine: the REST search service (CPU). Builds from the repository alone:
#   docker build -t lsr-engine . && docker run -p 8000:8000 -v lsr-data:/data lsr-engine
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LSR_DATA_DIR=/data \
    LSR_MODELS_DIR=/opt/lsr/models \
    NUMBA_CACHE_DIR=/opt/lsr/numba-cache \
    NUMBA_THREADING_LAYER=omp

WORKDIR /opt/lsr/src

# libgomp: Numba's OpenMP threading layer (thread-safe when several request threads search)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# torch first, the CPU build, so that pip never pulls a CUDA wheel for it
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY app ./app
COPY encoders ./encoders
COPY index ./index
RUN pip install . \
    && lsr models pull splade-tiny \
    && useradd --system --uid 10001 --home-dir /opt/lsr lsr \
    && mkdir -p /data /opt/lsr/numba-cache \
    && chown -R lsr /data /opt/lsr/numba-cache

USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"]
CMD ["lsr", "serve", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "8000"]
