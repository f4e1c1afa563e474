#!/usr/bin/env bash
# Make the secrets of a new installation, one file each, in DIR (default docker/secrets/, mode 0700; never in
# an image, never in git). Existing files are kept, so running it again changes nothing. The containers read
# them as EGOV_<NAME>_FILE=/run/secrets/<name> (tenants/settings.py); back them up with `egov backup`.
#   docker/secrets.sh [DIR]
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"; chmod 700 "$dir"
random() { python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }
make() {  # make NAME VALUE
  [ -s "$dir/$1" ] || (umask 022; printf '%s\n' "$2" >"$dir/$1")
}
make postgres_password "$(random 24)"
make db_owner_password "$(random 24)"
make db_app_password "$(random 24)"
make db_benchmark_password "$(random 24)"
make secret_key "$(random 48)"
make encryption_keys "$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
make superset_secret_key "$(random 48)"
make superset_guest_secret "$(random 48)"
make superset_admin_password "$(random 24)"
make superset_oidc_secret "$(random 32)"
make superset_meta_password "$(random 24)"
# URLs with the passwords above; the host names are the compose services'.
pw() { tr -d '\n' <"$dir/$1"; }
make admin_database_url "postgresql://postgres:$(pw postgres_password)@postgres:5432/postgres"
make database_url "postgresql://egov_app:$(pw db_app_password)@postgres:5432/egovsad"
make migration_database_url "postgresql://egov_owner:$(pw db_owner_password)@postgres:5432/egovsad"
[ -s "$dir/oidc_signing_key.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out "$dir/oidc_signing_key.pem" 2>/dev/null
chmod 644 "$dir/oidc_signing_key.pem"   # openssl writes keys 0600; the portal's user must read it (see below)
# The directory (0700) keeps other users of this host out; the files themselves are readable (0644) because
# each is mounted into the containers singly, where services run under different users.
echo "Secrets in $dir"
