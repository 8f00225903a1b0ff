# authserver in a container: `docker build -t authserver .`, then
#   docker run -p 8000:8000 -v authserver-data:/var/lib/authserver \
#       -e AUTHSERVER_ISSUER=https://auth.example.com authserver
# See docs/deployment.md ("A container"). The configuration file, if any, is
# /etc/authserver/authserver.toml (mount it read-only); AUTHSERVER_* variables
# override it.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs: no tests, no scripts, no .venv (see .dockerignore).
WORKDIR /opt/authserver
COPY pyproject.toml README.md ./
COPY authserver ./authserver
RUN pip install '.[postgresql]' \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/authserver authserver \
    && install -d -o authserver -g authserver -m 0700 /var/lib/authserver

# Not root. The default SQLite database is ./var/authserver.db of this folder: a volume.
USER authserver
WORKDIR /var/lib/authserver
VOLUME ["/var/lib/authserver"]
EXPOSE 8000

# Liveness: /healthz answers while the process serves (no curl in the slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# All interfaces of the container; set AUTHSERVER_ISSUER to the URL clients use.
ENTRYPOINT ["authserver", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
