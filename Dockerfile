# One image for the web server, the RQ workers and the scheduler. It holds the product only:
# each COPY names what runs in production (the lab, dev tools, tests and benchmark stay out).
# Two stages: the builder compiles libvirt-python against libvirt's headers; the image that
# runs keeps only the wheels, libvirt's client library and ssh, with no compiler, and runs as
# an unprivileged user.

FROM python:3.11-slim-bookworm AS builder

# libvirt from backports, through the archive the image's own apt sources name.
COPY scripts/add-backports.sh /tmp/add-backports.sh
RUN bash /tmp/add-backports.sh \
    && apt-get update \
    && apt-get install -y --no-install-recommends -t bookworm-backports libvirt-dev \
    && apt-get install -y --no-install-recommends gcc pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY vmotion vmotion
COPY core core
COPY hypervisor hypervisor
COPY inventory inventory
COPY migrations_app migrations_app
COPY api api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .


FROM python:3.11-slim-bookworm

# libvirt0 (which libvirt-python links) from the same backports release it was built against;
# ssh for qemu+ssh hosts.
COPY scripts/add-backports.sh /tmp/add-backports.sh
RUN bash /tmp/add-backports.sh \
    && apt-get update \
    && apt-get install -y --no-install-recommends -t bookworm-backports libvirt0 libvirt-clients \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/* /tmp/add-backports.sh

# A fixed uid: the SSH keys and TLS client files mounted from the host must be readable by it
# (README: "Deploy with docker-compose").
RUN groupadd --system --gid 10001 vmotion \
    && useradd --system --uid 10001 --gid vmotion --create-home --home-dir /home/vmotion --shell /usr/sbin/nologin vmotion

COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels

WORKDIR /app
COPY manage.py ./
COPY templates templates
COPY static static
# The web service collects static files again at start, into a volume that takes this
# directory's owner when it is created.
RUN mkdir staticfiles && chown vmotion:vmotion staticfiles

USER vmotion:vmotion
RUN DEBUG=1 python manage.py collectstatic --no-input -v 0

ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "vmotion.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
