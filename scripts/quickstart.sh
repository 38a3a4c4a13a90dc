#!/usr/bin/env bash
# The quickstart `make run` runs: a file synced into a dataset, searched, and a bot answering
# from it, all on the embedded default (one SQLite file under OBK_HOME, bundled local models,
# no server, no network).
set -euo pipefail
OBK="${OBK:-$(dirname "$0")/../.venv/bin/obk}"
export HF_HUB_OFFLINE=1

run() { # run ACTION JSON -> prints the data of the {"data", "meta"} envelope
  "$OBK" connector run chatbotkit --action "$1" --data "$2" --json |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"]))'
}
id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

echo "openbotkit quickstart; data in ${OBK_HOME:-the default data directory}"

say "a dataset with one record typed in, and a Markdown file synced into it"
DATASET=$(run create_dataset '{"name": "Robot facts", "alias": "robots"}' | id_of)
run create_dataset_record "{\"datasetId\": \"$DATASET\", \"text\": \"Our office is open Monday to Friday, 9am to 5pm.\"}" >/dev/null
MANUAL="$(mktemp -d)/zephyr-9.md"
cat > "$MANUAL" <<'DOC'
# Zephyr-9 manual

## Payload
The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.

## Charging
The Zephyr-9 charges in 90 minutes and runs for 8 hours on a full battery.
DOC
FILE=$(run create_file '{"name": "zephyr-9.md"}' | id_of)
run upload_file "{\"fileId\": \"$FILE\", \"path\": \"$MANUAL\"}" >/dev/null
run attach_dataset_file "{\"datasetId\": \"$DATASET\", \"fileId\": \"$FILE\", \"type\": \"source\"}" >/dev/null
"$OBK" files sync "$FILE" --wait
"$OBK" connector run chatbotkit --action list_dataset_records --data "{\"datasetId\": \"$DATASET\"}"

say "search it by meaning"
"$OBK" connector run chatbotkit --action search_dataset --data '{"datasetId": "@robots", "search": "How much weight can the robot carry?"}'

say "a bot that answers from it (the bundled Qwen2.5 1.5B, on this machine; default settings)"
BOT=$(run create_bot "{\"name\": \"Robot helper\", \"datasetId\": \"$DATASET\"}" | id_of)
ask() {
  local conversation
  conversation=$(run create_conversation "{\"botId\": \"$BOT\"}" | id_of)
  echo "Q: $1"
  printf 'A: '
  "$OBK" connector run chatbotkit --action complete_conversation --stream \
    --data "{\"conversationId\": \"$conversation\", \"text\": \"$1\"}"
}
ask "What is the maximum payload of the Zephyr-9 robot?"
ask "What colour is the Zephyr-9 robot?"   # the records do not say: it says so

say "usage"
"$OBK" connector run chatbotkit --action fetch_usage

say "every run above was recorded"
"$OBK" connector executions --limit 5
