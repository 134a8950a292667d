#!/usr/bin/env bash
# Prints the machine's own Debian mirror (deb822 or one-line sources), else Debian's.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
echo "${mirror:-http://deb.debian.org/debian}"
