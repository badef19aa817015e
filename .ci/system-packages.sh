#!/usr/bin/env bash
# Install the Debian packages the notebooks and tests use, when run as root on a machine with apt-get:
#   dataset-fashion-mnist        real Fashion-MNIST (MIT) in /usr/share/datasets/fashion-mnist (chapters 3, 4, 6)
#   asterisk-core-sounds-en-wav  real English speech prompts (CC-BY-SA-3.0) (chapters 3, 6)
#   espeak-ng                    speech synthesiser (chapter 6 extra speech)
#   redis-server                 the Redis server the chapter 8 tests start
#   cmake g++                    build the chapter 8 C++ TorchScript loader
# Without root or apt, it says what is missing and carries on: the notebooks then use the offline data in data/.
set -u
packages=(dataset-fashion-mnist asterisk-core-sounds-en-wav espeak-ng redis-server cmake g++)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "apt-get install ${missing[*]} failed" >&2; exit 1; }
else
  echo "note: not installing system packages ${missing[*]} (needs root and apt-get);" \
       "notebooks fall back to the offline data in data/, and tests that need them are skipped." >&2
fi
