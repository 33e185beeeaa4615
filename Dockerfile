# One image for the web server, the RQ workers and the scheduler.
FROM python:3.11-slim-bookworm

RUN echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends -t bookworm-backports libvirt-dev libvirt-clients \
    && apt-get install -y --no-install-recommends gcc pkg-config openssh-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY vmotion vmotion
COPY inventory inventory
COPY migrations_app migrations_app
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=1 python manage.py collectstatic --no-input -v 0

ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "vmotion.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
