#!/usr/bin/env bash
# The tutorial's procedure as a plain bash + ssh + docker CLI script, with the
# SAN fix (otherwise today's Docker rejects it). It is the baseline regwizard's
# "apply from zero" is compared with. Usage: baseline.sh KEY KNOWN_HOSTS NODE1_IP NODE2_IP PASSWORD
set -euo pipefail
key=$1 known=$2 n1=$3 n2=$4 pw=$5
dom=reg.lab.test
ssh_() { local h=$1; shift; ssh -i "$key" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o BatchMode=yes "root@$h" "$@"; }
scp_() { scp -q -i "$key" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o BatchMode=yes "$@"; }

# 1. hosts on every machine
grep -q " $dom" /etc/hosts || echo "$n1 $dom" >> /etc/hosts
for h in "$n1" "$n2"; do ssh_ "$h" "grep -q ' $dom' /etc/hosts || echo '$n1 $dom' >> /etc/hosts"; done
# 2. certificate on node1 (with SANs)
ssh_ "$n1" "mkdir -p ~/certs ~/auth && cd ~/certs && openssl req -newkey rsa:4096 -nodes -sha256 -keyout $dom.key -x509 -days 365 -out $dom.crt -subj '/C=CN/ST=JS/L=NJ/O=ITMUCH/OU=ITMUCH/CN=$dom' -addext 'subjectAltName=DNS:$dom,IP:$n1' 2>/dev/null"
# 3. trust on every Docker host
tmp=$(mktemp -d)
scp_ "root@$n1:/root/certs/$dom.crt" "$tmp/ca.crt"
mkdir -p "/etc/docker/certs.d/$dom" && cp "$tmp/ca.crt" "/etc/docker/certs.d/$dom/ca.crt"
for h in "$n1" "$n2"; do ssh_ "$h" "mkdir -p /etc/docker/certs.d/$dom"; scp_ "$tmp/ca.crt" "root@$h:/etc/docker/certs.d/$dom/ca.crt"; done
rm -rf "$tmp"
# 4. htpasswd (htpasswd -Bbn testuser PASSWORD); no httpd-tools here, so bcrypt from python,
# at cost 10 as regwizard's default (BCRYPT_COST=5 is what `htpasswd -B` itself uses)
line=$(printf '%s' "$pw" | "${PYTHON:-python3}" -c 'import os,sys,bcrypt; print("testuser:"+bcrypt.hashpw(sys.stdin.read().encode(), bcrypt.gensalt(int(os.environ.get("BCRYPT_COST","10")))).decode())')
ssh_ "$n1" "cat > ~/auth/htpasswd" <<<"$line"
# 5. the registry
ssh_ "$n1" "cd ~ && docker run -d -p 443:5000 --restart=always --name registry2 \
  -v /opt/docker-image:/var/lib/registry -v \$(pwd)/certs:/certs \
  -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/$dom.crt -e REGISTRY_HTTP_TLS_KEY=/certs/$dom.key \
  -v \$(pwd)/auth:/auth -e REGISTRY_AUTH=htpasswd -e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm' \
  -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd registry:2 >/dev/null"
for _ in $(seq 50); do
  if docker login "$dom" -u testuser --password-stdin <<<"$pw" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
# 6. login, tag, push, pull
docker login "$dom" -u testuser --password-stdin <<<"$pw" >/dev/null 2>&1
ctx=$(mktemp -d); printf 'FROM scratch\nCOPY f /f\n' > "$ctx/Dockerfile"; date +%s%N > "$ctx/f"
docker build -q -t "$dom/baseline/probe" "$ctx" >/dev/null; rm -rf "$ctx"
docker push -q "$dom/baseline/probe" >/dev/null
docker rmi "$dom/baseline/probe" >/dev/null
docker pull -q "$dom/baseline/probe" >/dev/null
docker logout "$dom" >/dev/null 2>&1
