# Shared by scripts/testenv.sh and scripts/release-tools.sh (sourced, not run): installing
# the Debian packages they need, as root or through sudo, only those missing.

deb_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Prints the packages of "$@" that are not installed, one per line.
missing_debs() {
  local pkg
  for pkg in "$@"; do
    deb_installed "$pkg" || printf '%s\n' "$pkg"
  done
}

apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
