# One image for the web server, the RQ workers and the scheduler. It holds the product only:
# each COPY names what runs in production (the lab, dev tools, tests and benchmark stay out).
FROM python:3.11-slim-bookworm

# libvirt from backports, through the archive the image's own apt sources name.
COPY scripts/add-backports.sh /tmp/add-backports.sh
RUN bash /tmp/add-backports.sh \
    && apt-get update \
    && apt-get install -y --no-install-recommends -t bookworm-backports libvirt-dev libvirt-clients \
    && apt-get install -y --no-install-recommends gcc pkg-config openssh-client \
    && rm -rf /var/lib/apt/lists/* /tmp/add-backports.sh

WORKDIR /app
COPY pyproject.toml README.md ./
COPY vmotion vmotion
COPY core core
COPY hypervisor hypervisor
COPY inventory inventory
COPY migrations_app migrations_app
COPY api api
RUN pip install --no-cache-dir .
COPY manage.py ./
COPY templates templates
COPY static static
RUN DEBUG=1 python manage.py collectstatic --no-input -v 0

ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "vmotion.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
