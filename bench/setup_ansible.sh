#!/usr/bin/env bash
# The Ansible contender's venv, outside the repo (idempotent). Usage:
#     bench/setup_ansible.sh [DIR]        # default /srv/regwizard-bench/ansible
#
# Why /srv and /usr/bin/python3: the playbook runs modules on the lab nodes with this
# venv's python (ansible_python_interpreter), so the venv must be visible inside the
# nodes. Lab nodes share this machine's /usr and /srv but get their own /etc, /root,
# /home and /opt (regwizard/lab.py), so a venv under /opt, or one made from a python
# under /root (pyenv), would not exist on node1/node2.
set -euo pipefail
dir=${1:-/srv/regwizard-bench/ansible}
py=${BASE_PYTHON:-/usr/bin/python3}
if [[ ! -x "$dir/bin/python" ]]; then
  mkdir -p "$(dirname "$dir")"
  "$py" -m venv "$dir"
fi
# ansible 12.3.0 is ansible-core 2.19 plus the bundled collections (community.docker,
# community.crypto, community.general); docker is the Python SDK some community.docker
# modules use on the target (with requests); bcrypt for the htpasswd line (cost 10, as
# baseline.sh; see registry.yml for why not community.general.htpasswd); cryptography for
# community.crypto.
"$dir/bin/pip" install -q ansible==12.3.0 docker bcrypt cryptography
"$dir/bin/ansible" --version | sed -n 1p
for c in community.docker community.crypto community.general; do
  "$dir/bin/ansible-galaxy" collection list "$c" 2>/dev/null | grep "^$c "
done
