FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SMSPORTAL_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml requirements.lock ./
# .dockerignore keeps .venv, var/, .env, secrets/, .git and test output out of the image.
COPY . .
# media/ holds uploaded CSV imports; docker-compose.yml mounts a volume there, which starts
# out owned like this folder.
RUN pip install --no-cache-dir -c requirements.lock -e . \
    && useradd --create-home smsportal \
    && mkdir -p /app/var/media && chown smsportal /app/var /app/var/media
# Static files belong to the image: every web container needs the manifest that production's
# CompressedManifestStaticFilesStorage reads, and STATIC_ROOT ($SMSPORTAL_VAR_DIR/static) is on no
# volume. Settings import only with PRODUCTION's required variables, so this one step gets
# throwaway values: nothing connects to them and they stay out of the image's environment.
RUN PRODUCTION=true SECRET_KEY=build-time-placeholder-not-used-at-run-time \
    DATABASE_URL=postgresql://build@127.0.0.1:9/unused REDIS_URL=redis://127.0.0.1:9/0 \
    python manage.py collectstatic --noinput
USER smsportal
EXPOSE 8000
CMD ["gunicorn", "smsportal.wsgi"]
