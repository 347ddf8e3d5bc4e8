#!/usr/bin/env bash
# Installs edge-gateway on a Debian / Raspberry Pi OS device (see docs/deploy.md).
# Idempotent: a second run with the same inputs changes nothing. Never overwrites an
# existing /etc/edge-gateway/gateway.yaml.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [options]
       scripts/install.sh --uninstall [--purge] [--root DIR]

Installs edge-gateway from this checkout (run `npm ci` in it first: that builds dist/):
  - Debian packages nats-server, python3, make, g++ (for the epoll native module);
    checks that Node.js >= 20 is on the PATH (Debian 12's nodejs is 18: too old)
  - users edge-gateway (groups dialout, gpio) and edge-gateway-nats (sysusers.d)
  - the app in /opt/edge-gateway (production node_modules, native modules built here)
  - /etc/edge-gateway/gateway.yaml, a sample, only if none exists (never overwritten)
  - /etc/edge-gateway/leaf.conf from `edge-gateway leaf-config`, when --hub is given
  - systemd units edge-gateway.service and edge-gateway-nats.service, enabled;
    (re)started when systemd runs and a leaf config exists

Options:
  --hub URL          hub leafnode URL, e.g. tls://hub.example.com:7422 (writes leaf.conf);
                     user/password go into the URL: nats-leaf://user:pass@host:7422
  --creds FILE       credentials file for the leaf link (copied to /etc/edge-gateway/leaf.creds)
  --tls-ca FILE      CA certificate of the hub (copied to /etc/edge-gateway/hub-ca.pem)
  --device-id ID     device id for a new sample gateway.yaml (default: short hostname)
  --region REGION    region for a new sample gateway.yaml (default: default)
  --source DIR       checkout to install from (default: the one holding this script)
  --root DIR         install into DIR instead of / (a throwaway root for tests or image
                     building): no apt-get, no talking to systemd; units are enabled
                     offline with `systemctl --root`
  --no-start         install and enable, but do not (re)start the services
  --uninstall        remove the units, the app and the sysusers file; keeps config, state
                     and users
  --purge            with --uninstall: also remove /etc/edge-gateway, the state
                     directories and the two users
  -h, --help         this text

Exit codes: 0 ok, 1 invalid arguments, 2 something needed is missing.
EOF
}

APP=/opt/edge-gateway
ROOT=""
HUB="" CREDS="" TLS_CA="" DEVICE_ID="" REGION="default" SOURCE="" MODE=install
PURGE=0 NO_START=0

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $1"; exit "${2:-1}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hub) HUB="${2:?--hub needs a URL}"; shift 2 ;;
    --creds) CREDS="${2:?--creds needs a file}"; shift 2 ;;
    --tls-ca) TLS_CA="${2:?--tls-ca needs a file}"; shift 2 ;;
    --device-id) DEVICE_ID="${2:?--device-id needs an id}"; shift 2 ;;
    --region) REGION="${2:?--region needs a name}"; shift 2 ;;
    --source) SOURCE="${2:?--source needs a directory}"; shift 2 ;;
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --no-start) NO_START=1; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" 1 ;;
  esac
done

[ "$PURGE" = 1 ] && [ "$MODE" != uninstall ] && die "--purge only goes with --uninstall" 1
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" = / ] && ROOT=""
fi
SOURCE="${SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
[ -f "$SOURCE/package.json" ] || die "--source $SOURCE is not an edge-gateway checkout (no package.json)" 1

# Path of a target file inside the root we install into.
r() { printf '%s%s' "$ROOT" "$1"; }

IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
# Talk to systemd only on the live system it manages.
LIVE_SYSTEMD=0; [ -z "$ROOT" ] && [ -d /run/systemd/system ] && LIVE_SYSTEMD=1
CHANGED=0

# uid/gid by name from the target root's own files (not the host's NSS).
id_of() { # file name
  awk -F: -v n="$2" '$1 == n { print $3; found = 1 } END { exit !found }' "$(r "$1")" 2>/dev/null
}

# Sets mode and (when we are root and the owner is known) ownership; reports a change.
set_attrs() { # path mode user group
  local path="$1" mode="$2" user="$3" group="$4" uid gid
  if [ "$(stat -c %a "$path")" != "${mode#0}" ]; then chmod "$mode" "$path"; CHANGED=1; fi
  [ "$IS_ROOT" = 1 ] || return 0
  uid="$(id_of /etc/passwd "$user")" || uid=0
  gid="$(id_of /etc/group "$group")" || gid=0
  if [ "$(stat -c %u:%g "$path")" != "$uid:$gid" ]; then chown "$uid:$gid" "$path"; CHANGED=1; fi
}

# Copies src to dest (a target path) only when the content differs.
put_file() { # src dest mode [user group]
  local src="$1" dest; dest="$(r "$2")"
  mkdir -p "$(dirname "$dest")"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    :
  else
    log "$([ -e "$dest" ] && echo updated || echo installed) $2"
    cp "$src" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
    CHANGED=1
  fi
  set_attrs "$dest" "$3" "${4:-root}" "${5:-root}"
}

# Like put_file, content from stdin.
put_text() { # dest mode [user group]
  local tmp; tmp="$(mktemp)"
  cat > "$tmp"
  put_file "$tmp" "$@"
  rm -f "$tmp"
}

put_dir() { # dir mode [user group]
  local d; d="$(r "$1")"
  [ -d "$d" ] || { mkdir -p "$d"; log "created $1"; CHANGED=1; }
  set_attrs "$d" "$2" "${3:-root}" "${4:-root}"
}

# Replaces a target directory tree with src's when they differ (stale files go too).
sync_tree() { # src dest
  local dest; dest="$(r "$2")"
  if [ -d "$dest" ] && diff -rq "$1" "$dest" >/dev/null 2>&1; then return 0; fi
  log "$([ -d "$dest" ] && echo updated || echo installed) $2/"
  rm -rf "$dest.new.$$"
  cp -R "$1" "$dest.new.$$"
  chmod -R u=rwX,go=rX "$dest.new.$$"
  rm -rf "$dest"
  mv "$dest.new.$$" "$dest"
  CHANGED=1
}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

systemd_version() { local v; v="$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 + 0 }')"; echo "${v:-0}"; }

uninstall() {
  if [ "$LIVE_SYSTEMD" = 1 ]; then
    systemctl disable --now edge-gateway.service edge-gateway-nats.service 2>/dev/null || true
  elif [ -e "$(r /etc/systemd/system/edge-gateway.service)" ]; then
    systemctl --root="${ROOT:-/}" disable edge-gateway.service edge-gateway-nats.service >/dev/null 2>&1 || true
  fi
  local p
  for p in /etc/systemd/system/edge-gateway.service /etc/systemd/system/edge-gateway-nats.service \
           /etc/systemd/system/edge-gateway.service.d/restart-backoff.conf \
           /usr/lib/sysusers.d/edge-gateway.conf; do
    if [ -e "$(r "$p")" ]; then rm -f "$(r "$p")"; log "removed $p"; fi
  done
  rmdir "$(r /etc/systemd/system/edge-gateway.service.d)" 2>/dev/null || true
  if [ -d "$(r "$APP")" ]; then rm -rf "$(r "$APP")"; log "removed $APP"; fi
  [ "$LIVE_SYSTEMD" = 1 ] && systemctl daemon-reload
  if [ "$PURGE" = 1 ]; then
    for p in /etc/edge-gateway /var/lib/edge-gateway /var/lib/edge-gateway-nats; do
      if [ -e "$(r "$p")" ]; then rm -rf "$(r "$p")"; log "purged $p"; fi
    done
    local u
    for u in edge-gateway edge-gateway-nats; do
      if id_of /etc/passwd "$u" >/dev/null; then
        if [ -n "$ROOT" ]; then userdel --prefix "$ROOT" "$u"; else userdel "$u"; fi
        log "removed user $u"
      fi
    done
    log "kept group gpio (it may be Raspberry Pi OS's own)"
  else
    log "kept /etc/edge-gateway, /var/lib/edge-gateway, /var/lib/edge-gateway-nats and the users (--purge removes them)"
  fi
}

if [ "$MODE" = uninstall ]; then
  [ "$IS_ROOT" = 1 ] || [ -n "$ROOT" ] || die "run as root (sudo) to uninstall" 1
  uninstall
  exit 0
fi

# ---------------------------------------------------------------------------------------
# Preconditions

[ "$IS_ROOT" = 1 ] || [ -n "$ROOT" ] || die "run as root (sudo), or pass --root DIR" 1
[ -f "$SOURCE/dist/bundle/main.js" ] || die "$SOURCE/dist/bundle/main.js is missing: run 'npm ci' in $SOURCE first (it builds dist/)" 2
[ -z "$CREDS" ] || [ -r "$CREDS" ] || die "--creds $CREDS: cannot read the file" 1
[ -z "$TLS_CA" ] || [ -r "$TLS_CA" ] || die "--tls-ca $TLS_CA: cannot read the file" 1
if [ "$(node_major)" -lt 20 ]; then
  die "Node.js >= 20 is needed on the PATH (found: $(node -v 2>/dev/null || echo none)). Debian 12 ships 18; install 20 or newer (e.g. from NodeSource) as /usr/bin/node or /usr/local/bin/node" 2
fi
case "$(command -v node)" in
  /usr/bin/node|/usr/local/bin/node) ;;
  *) log "warning: node is $(command -v node): the unit runs '#!/usr/bin/env node' with systemd's PATH (/usr/local/bin:/usr/bin:…); make sure a node >= 20 is found there" ;;
esac

if [ -z "$ROOT" ]; then
  need=()
  [ -x /usr/sbin/nats-server ] || need+=(nats-server)
  command -v python3 >/dev/null || need+=(python3)
  command -v make >/dev/null || need+=(make)
  command -v g++ >/dev/null || need+=(g++)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian's package enables its own nats-server on 0.0.0.0:4222; the leaf replaces it.
    if [[ " ${need[*]} " == *" nats-server "* ]] && [ "$LIVE_SYSTEMD" = 1 ]; then
      systemctl disable --now nats-server.service >/dev/null 2>&1 || true
      log "disabled Debian's own nats-server.service (the leaf edge-gateway-nats.service takes its place)"
    fi
  elif [ "$LIVE_SYSTEMD" = 1 ] && systemctl is-active --quiet nats-server.service; then
    log "warning: Debian's nats-server.service is running and may hold port 4222 that the leaf needs: 'systemctl disable --now nats-server'"
  fi
else
  log "--root: not installing Debian packages (nats-server, python3, make, g++) into $ROOT"
fi

# ---------------------------------------------------------------------------------------
# Users, directories

put_file "$SOURCE/systemd/edge-gateway.sysusers" /usr/lib/sysusers.d/edge-gateway.conf 0644
if [ -n "$ROOT" ]; then
  mkdir -p "$(r /etc)"
  systemd-sysusers --root="$ROOT" "$(r /usr/lib/sysusers.d/edge-gateway.conf)" >/dev/null 2>&1
else
  systemd-sysusers /usr/lib/sysusers.d/edge-gateway.conf >/dev/null 2>&1
fi || die "systemd-sysusers could not create the users (is systemd installed?)" 2

put_dir /etc/edge-gateway 0755
put_dir /var/lib/edge-gateway 0750 edge-gateway edge-gateway
put_dir /var/lib/edge-gateway-nats 0750 edge-gateway-nats edge-gateway-nats

# ---------------------------------------------------------------------------------------
# The app: compiled JS from the checkout, production dependencies built on this machine

put_dir "$APP" 0755
put_file "$SOURCE/package.json" "$APP/package.json" 0644
put_file "$SOURCE/package-lock.json" "$APP/package-lock.json" 0644
sync_tree "$SOURCE/bin" "$APP/bin"
sync_tree "$SOURCE/dist" "$APP/dist"
set_attrs "$(r "$APP/bin/edge-gateway.js")" 0755 root root

# The lock file, Node major and CPU decide what node_modules holds; rebuild when one changed.
stamp="$(sha256sum < "$SOURCE/package-lock.json" | cut -d' ' -f1) node$(node_major) $(uname -m)"
if [ -d "$(r "$APP/node_modules")" ] && [ "$(cat "$(r "$APP/.deps-stamp")" 2>/dev/null)" = "$stamp" ]; then
  :
else
  log "installing production dependencies into $APP/node_modules (npm ci --omit=dev)"
  # --ignore-scripts: the package's own `prepare` (tsc) needs dev dependencies, and this
  # way npm 10 and npm 11 (install-script policy) behave the same. Then build exactly the
  # native modules we need; serialport uses its bundled prebuilds when they fit.
  ( cd "$(r "$APP")" &&
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2 &&
    npm rebuild epoll @serialport/bindings-cpp --loglevel=error >&2 ) ||
    die "npm could not install the production dependencies in $(r "$APP")" 2
  printf '%s\n' "$stamp" > "$(r "$APP/.deps-stamp")"
  CHANGED=1
fi

# ---------------------------------------------------------------------------------------
# Configuration

if [ -e "$(r /etc/edge-gateway/gateway.yaml)" ]; then
  log "kept existing /etc/edge-gateway/gateway.yaml"
else
  if [ -z "$DEVICE_ID" ]; then
    DEVICE_ID="$(hostname -s 2>/dev/null || echo device)"
    DEVICE_ID="$(printf '%s' "$DEVICE_ID" | tr -c 'A-Za-z0-9_-' '-')"
  fi
  [[ "$DEVICE_ID" =~ ^[A-Za-z0-9_-]+$ ]] || die "--device-id '$DEVICE_ID': use only letters, digits, '-' and '_'" 1
  [[ "$REGION" =~ ^[A-Za-z0-9_-]+$ ]] || die "--region '$REGION': use only letters, digits, '-' and '_'" 1
  put_text /etc/edge-gateway/gateway.yaml 0640 root edge-gateway <<EOF
# edge-gateway bootstrap file, written once by scripts/install.sh (never overwritten).
# Reference: docs/configuration.md; check it with:
#   edge-gateway check --config /etc/edge-gateway/gateway.yaml
device: { id: $DEVICE_ID, region: $REGION }
nats:
  servers: [nats://127.0.0.1:4222]      # the local leaf (edge-gateway-nats.service)
  hubDomain: hub
buffer: { stream: TELEMETRY, maxBytes: 512MiB, maxAge: 7d }
# Sensors come from the KV bucket (edge-gateway config push $DEVICE_ID FILE).
remoteConfig: { bucket: gateway-config }
# state: defaults to /var/lib/edge-gateway (systemd's StateDirectory).
http: { listen: 127.0.0.1:9464 }
log: { level: info }
sensors: []
EOF
fi

leaf_args=()
if [ -n "$CREDS" ]; then
  put_file "$CREDS" /etc/edge-gateway/leaf.creds 0640 root edge-gateway-nats
  leaf_args+=(--creds /etc/edge-gateway/leaf.creds)
fi
if [ -n "$TLS_CA" ]; then
  put_file "$TLS_CA" /etc/edge-gateway/hub-ca.pem 0644
  leaf_args+=(--tls-ca /etc/edge-gateway/hub-ca.pem)
fi
if [ -n "$HUB" ]; then
  leaf_conf="$(mktemp)"
  # Paths inside the config are the device's own (no --root prefix).
  if ! node "$(r "$APP/bin/edge-gateway.js")" leaf-config --config "$(r /etc/edge-gateway/gateway.yaml)" \
      --hub "$HUB" --store-dir /var/lib/edge-gateway-nats/jetstream "${leaf_args[@]}" > "$leaf_conf"; then
    rm -f "$leaf_conf"
    die "edge-gateway leaf-config failed (see above); fix /etc/edge-gateway/gateway.yaml or --hub" 1
  fi
  put_file "$leaf_conf" /etc/edge-gateway/leaf.conf 0640 root edge-gateway-nats
  rm -f "$leaf_conf"
elif [ ! -e "$(r /etc/edge-gateway/leaf.conf)" ]; then
  log "no leaf config yet: run again with --hub URL (edge-gateway-nats.service is skipped until /etc/edge-gateway/leaf.conf exists)"
fi

# ---------------------------------------------------------------------------------------
# systemd units

put_file "$SOURCE/systemd/edge-gateway.service" /etc/systemd/system/edge-gateway.service 0644
put_file "$SOURCE/systemd/edge-gateway-nats.service" /etc/systemd/system/edge-gateway-nats.service 0644
if [ "$(systemd_version)" -ge 254 ]; then
  put_file "$SOURCE/systemd/restart-backoff.conf" /etc/systemd/system/edge-gateway.service.d/restart-backoff.conf 0644
fi

if [ "$LIVE_SYSTEMD" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --quiet edge-gateway-nats.service edge-gateway.service
  if [ "$NO_START" = 1 ]; then
    log "installed; not started (--no-start)"
  elif [ -e /etc/edge-gateway/leaf.conf ]; then
    if [ "$CHANGED" = 1 ]; then
      systemctl restart edge-gateway-nats.service edge-gateway.service
      log "restarted edge-gateway-nats and edge-gateway"
    else
      systemctl start edge-gateway-nats.service edge-gateway.service
    fi
    log "follow the logs: journalctl -u edge-gateway -o cat -f"
  fi
else
  # Offline: symlinks only, no running systemd involved.
  systemctl --root="${ROOT:-/}" enable edge-gateway-nats.service edge-gateway.service >/dev/null 2>&1 ||
    log "warning: could not enable the units offline (systemctl --root)"
  log "systemd not managing this root: units enabled, not started"
fi
log "done$([ "$CHANGED" = 0 ] && echo ': nothing changed')"
