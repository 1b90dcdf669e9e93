FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SMSPORTAL_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml requirements.lock ./
COPY . .
RUN pip install --no-cache-dir -c requirements.lock -e . \
    && useradd --create-home smsportal && mkdir -p /app/var && chown smsportal /app/var
USER smsportal
EXPOSE 8000
CMD ["gunicorn", "smsportal.wsgi"]
