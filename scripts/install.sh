#!/usr/bin/env bash
# Installs everything hotline needs on a fresh Debian/Ubuntu machine: system packages, then a virtualenv.
#   scripts/install.sh          runtime only (make run)
#   scripts/install.sh --test   runtime + test peers and test Python packages (make test)
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

# Debian packages. Runtime: espeak-ng is the voice behind pyttsx3 (libespeak-ng1), flite an alternative voice.
APT_RUNTIME=(espeak-ng libespeak-ng1 flite python3-venv)
# Tests: real SIP peers (sipp, baresip), sox for audio checks, tcpdump for RTP timing in benchmarks, chromium for
# the chat page (driven by the playwright package with executable_path=/usr/bin/chromium; no browser download).
APT_TEST=(sip-tester baresip baresip-core sox tcpdump chromium)

wanted=("${APT_RUNTIME[@]}")
(( WITH_TEST )) && wanted+=("${APT_TEST[@]}")
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python: an isolated virtualenv in .venv (python3 >= 3.11).
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if (( WITH_TEST )); then
  .venv/bin/python -m pip install -q -e ".[test,asr-test]"
else
  .venv/bin/python -m pip install -q -e .
fi
echo "hotline installed in .venv"
