#!/usr/bin/env bash
# Set up a local CUPS with the cups-pdf virtual printer for tests/cups.rs.
# Idempotent: installs the packages if missing, starts cupsd if it is not
# running (no systemd needed), and (re)creates the station's test queues:
#
#   station-waybill, station-slip  cups-pdf queues: each job becomes a PDF in
#                                  the output directory printed at the end
#   station-broken                 a queue whose backend always fails; its
#                                  error policy aborts the job (a failed job)
#
# A stalled printer is made in the tests with `cupsdisable` (paused: the job
# waits) and a short printers.paused_wait_secs / job_timeout_secs.
#
# Usage: bash tests/cups/setup.sh    (as root; prints CUPS_PDF_OUT=<dir> last)
set -euo pipefail

OUT=/var/spool/cups-pdf/station

if ! command -v cupsd >/dev/null || ! command -v lpadmin >/dev/null \
    || [ ! -x /usr/lib/cups/backend/cups-pdf ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq cups cups-client printer-driver-cups-pdf >/dev/null
fi

# cups-pdf: every job to one directory, named after the job id ("job_N-title"),
# readable by the tests whoever runs them.
CONF=/etc/cups/cups-pdf.conf
set_conf() { # key value
    if grep -qE "^#?$1 " "$CONF"; then
        sed -i -E "s|^#?$1 .*|$1 $2|" "$CONF"
    else
        echo "$1 $2" >>"$CONF"
    fi
}
set_conf Out "$OUT"
set_conf AnonDirName "$OUT"
set_conf Label 1
set_conf TitlePref 1
set_conf UserUMask 0022
mkdir -p "$OUT"
chmod 1777 "$OUT"

# No printer discovery (no avahi here) and no idle exit.
sed -i -E 's/^Browsing .*/Browsing No/' /etc/cups/cupsd.conf

if ! lpstat -r 2>/dev/null | grep -q "is running"; then
    # Not answering: never started, or died (a crashed cupsd leaves its pid
    # file and socket behind, and a hung one holds the port). Clear what is
    # left and start a fresh scheduler.
    if pgrep -x cupsd >/dev/null; then
        echo "cupsd is not answering: restarting it" >&2
        pkill -x cupsd || true
        for _ in $(seq 1 25); do pgrep -x cupsd >/dev/null || break; sleep 0.2; done
        pkill -9 -x cupsd || true
    fi
    rm -f /run/cups/cups.sock /run/cups/cupsd.pid /var/run/cups/cups.sock
    mkdir -p /run/cups
    /usr/sbin/cupsd
    for _ in $(seq 1 50); do
        lpstat -r 2>/dev/null | grep -q "is running" && break
        sleep 0.2
    done
fi
lpstat -r | grep -q "is running" || { echo "cupsd did not start" >&2; exit 1; }

PPD=$(ls /usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd /usr/share/ppd/cups-pdf/*.ppd 2>/dev/null | head -1)
for q in station-waybill station-slip; do
    lpadmin -p "$q" -v cups-pdf:/ -P "$PPD" -E 2>/dev/null
    cupsenable "$q"
    cupsaccept "$q"
done
# A queue whose printer is always out of order: a test backend that fails
# every job, and an error policy that aborts the job (CUPS reports it aborted).
cat >/usr/lib/cups/backend/station-fail <<'SH'
#!/bin/sh
# Test backend (tests/cups/setup.sh): every job fails (CUPS_BACKEND_FAILED).
if [ $# -eq 0 ]; then echo 'direct station-fail "Unknown" "Station test: always fails"'; exit 0; fi
cat >/dev/null
echo "ERROR: station-fail: the printer is out of order (test backend)" >&2
exit 1
SH
chmod 0755 /usr/lib/cups/backend/station-fail
lpadmin -p station-broken -v station-fail:/ -P "$PPD" -E \
    -o printer-error-policy=abort-job 2>/dev/null
cupsenable station-broken
cupsaccept station-broken

echo "CUPS_PDF_OUT=$OUT"
