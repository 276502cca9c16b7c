#!/usr/bin/env bash
# Tesseract for OCR of scanned PDFs and images (Debian tesseract-ocr, English data included).
# Installed with apt-get where this machine can (root); elsewhere a file that needs OCR
# fails with one line saying how to install it, and every other file ingests as usual.
set -u
if command -v tesseract >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing tesseract-ocr for OCR of scanned PDFs and images" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr) >/dev/null 2>&1 \
    || echo "could not install tesseract-ocr; scanned PDFs and images will fail until it is installed" >&2
else
  echo "note: Tesseract is not installed (run  apt-get install tesseract-ocr  as root); scanned PDFs and images need it" >&2
fi
exit 0
