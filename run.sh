#!/usr/bin/env bash
# One command for everything:
#   ./run.sh          set up .venv, then run the embedded demo (python -m experiments.demo)
#   ./run.sh test     set up .venv, then the whole test suite (pytest)
#   ./run.sh bench    set up .venv with the bench extra, then every benchmark and a table
# Extra arguments go to the command (e.g. ./run.sh test -k config, ./run.sh --train.steps=200).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

setup() {  # $1: extras, e.g. "dev" or "dev,bench"
  local extras=$1
  local stamp="$VENV/.installed-$extras"
  local want
  want=$(cat setup.cfg pyproject.toml run.sh | sha256sum | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "run.sh: installing audiolm-jax[$extras] into $VENV" >&2
    # basic-pitch ships the piano transcriber's weights (ONNX) used by evaluation; its
    # metadata pins an old TensorFlow, so it goes in without dependencies (transcribe.py).
    if ! { "$VENV/bin/python" -m pip install -e ".[$extras]" &&
           "$VENV/bin/python" -m pip install --no-deps "basic-pitch==0.4.0"; } > "$VENV/install.log" 2>&1; then
      tail -n 40 "$VENV/install.log" >&2
      echo "run.sh: installation failed; the full log is $VENV/install.log" >&2
      exit 1
    fi
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-demo}
case "$cmd" in
  test)
    shift
    setup dev
    # Two worker processes, each test module on one (its module-scoped fixtures built once):
    # most tests are bound by XLA's single-threaded compilation, so a second worker uses the
    # second core; a later -n in the arguments wins (./run.sh test -n 0: one process).
    exec "$VENV/bin/python" -m pytest -n 2 --dist loadfile "$@"
    ;;
  bench)
    shift
    setup dev,bench
    exec "$VENV/bin/python" -m benchmarks "$@"
    ;;
  demo)
    [ $# -gt 0 ] && shift
    setup dev
    exec "$VENV/bin/python" -m experiments.demo "$@"
    ;;
  --*)
    setup dev
    exec "$VENV/bin/python" -m experiments.demo "$@"
    ;;
  *)
    echo "usage: ./run.sh [demo|test|bench] [args...]" >&2
    exit 2
    ;;
esac
