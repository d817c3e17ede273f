# Production image for the worker and edge services of docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md cli.py ./
COPY livescore ./livescore
COPY providers ./providers
COPY pipeline ./pipeline
COPY edge ./edge
COPY store ./store
COPY commands ./commands
COPY fixtures ./fixtures
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["livescore", "serve", "--port", "8000"]
