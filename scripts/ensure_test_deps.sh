#!/usr/bin/env bash
# System packages the tests use where this machine can install them:
# Debian's chromium + chromedriver for the real-browser UI test.
# Without apt (or root) the browser test skips with a reason.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium + chromium-driver for the browser test" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "could not install chromium; the browser test will skip" >&2
fi
exit 0
