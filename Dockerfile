# The whole appliance in one image: JupyterHub + configurable-http-proxy, the
# participants' JupyterLab, and the services (dashboard, users sync, idle culler).
# Configuration and code under etc/ and services/ are bind-mounted at run time, so
# editing them needs no rebuild; only the two requirements files are baked in.
#
# Layer order matters on Docker's vfs storage (used where overlayfs is unavailable):
# every step copies the whole filesystem, so metadata comes first, while the image is
# small, and the heavy work is three steps.
FROM debian:trixie-slim

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /srv/hub/state
EXPOSE 880
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["jupyterhub", "--config", "/srv/hub/etc/jupyterhub/jupyterhub_config.py"]

# System packages. npm is only needed to install the proxy, so it goes again. Manuals,
# documentation and translations of Debian's packages are never read here (~75 MB).
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/locale/*' >/etc/dpkg/dpkg.cfg.d/01-workshop-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv nodejs npm tini ca-certificates git less procps \
 && npm install --global --no-fund --no-audit configurable-http-proxy@5.3.0 \
 && npm cache clean --force \
 && apt-get purge -y npm && apt-get autoremove -y --purge \
 && rm -rf /var/lib/apt/lists/* /root/.npm \
 && configurable-http-proxy --version

COPY etc/jupyterhub/hub-requirements.txt etc/jupyter/participant-requirements.txt /opt/requirements/
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir --disable-pip-version-check \
      -r /opt/requirements/hub-requirements.txt \
      -r /opt/requirements/participant-requirements.txt \
 # jsonschema imports rfc3987-syntax when present, which compiles a grammar on import:
 # a second of CPU at every server start, half of it, for an "iri" format nobody checks.
 # A whole class starting at once on two cores feels that (benchmarks/burst_login.py).
 && pip uninstall -y -q rfc3987-syntax \
 # The libraries' own test suites (pandas alone 43 MB) are never run here.
 && find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
 # JupyterLab reads settings overrides only from its own settings dir: point that at
 # the bind-mounted etc/jupyter so instructors can change them without a rebuild.
 && mkdir -p /opt/venv/share/jupyter/lab/settings/overrides.d \
 && ln -s /etc/jupyter/labsettings/workshop.json \
      /opt/venv/share/jupyter/lab/settings/overrides.d/workshop.json \
 # Everything private to the hub lives below /srv/hub, which participants cannot enter.
 && install -d -m 0700 /srv/hub /srv/hub/state /srv/hub/etc /srv/hub/tmp
