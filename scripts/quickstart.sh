#!/usr/bin/env bash
# The quickstart `make run` runs: a bot that answers from a dataset, on the embedded default
# (one SQLite file under OBK_HOME, bundled local models, no server, no network).
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

say "create a dataset and three records"
DATASET=$(run create_dataset '{"name": "Robot facts", "searchMaxRecords": 2}' | id_of)
for text in \
  "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms." \
  "The Zephyr-9 charges in 90 minutes and runs for 8 hours on a full battery." \
  "Our office is open Monday to Friday, 9am to 5pm."; do
  run create_dataset_record "{\"datasetId\": \"$DATASET\", \"text\": \"$text\"}" >/dev/null
done
"$OBK" connector run chatbotkit --action list_dataset_records --data "{\"datasetId\": \"$DATASET\"}"

say "create a bot that answers from it"
BOT=$(run create_bot "{\"name\": \"Robot helper\", \"backstory\": \"Answer briefly from the facts given.\", \"datasetId\": \"$DATASET\"}" | id_of)
"$OBK" connector run chatbotkit --action fetch_bot --data "{\"botId\": \"$BOT\"}"

say "start a conversation"
CONVERSATION=$(run create_conversation "{\"botId\": \"$BOT\"}" | id_of)
echo "conversation $CONVERSATION"

say "usage"
"$OBK" connector run chatbotkit --action fetch_usage

say "every run above was recorded"
"$OBK" connector executions --limit 5
