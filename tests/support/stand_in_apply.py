#!/usr/bin/env python3
"""A stand-in for local_distd's cli/apply.php, for the C++ suites that test distd's inbox without
a Moodle (tests/test_forum.cpp). It keeps the adapter's contract (docs/formats/post.md): one answer
line per post, an idempotency table keyed by (site, uuid), and nothing answered when "the database
is down". The real adapter is tested against a real Moodle in tests/moodle/test_forum_*.py.

Behaviour, from the file named by $STAND_IN_STATE (JSON, created if missing):
  {"mode": "apply" | "refuse" | "down" | "die_after", "n": N, "reason": "...", "applied": {...}}
"""
import json
import os
import sys
import time

path = os.environ["STAND_IN_STATE"]
state = {"mode": "apply", "applied": {}, "next": 100}
if os.path.exists(path):
    state.update(json.load(open(path)))


def save():
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


mode = state["mode"]
if mode == "down":
    print("Error: Database connection failed", flush=True)
    sys.exit(1)
answered = 0
for line in sys.stdin:
    p = json.loads(line)
    key = p["site"] + "/" + p["uuid"]
    if mode == "die_after" and answered >= state.get("n", 0):
        os.kill(os.getpid(), 9)
    if key in state["applied"]:
        a = dict(state["applied"][key], duplicate=True)
    elif mode == "refuse":
        a = {"uuid": p["uuid"], "site": p["site"], "state": "refused", "reason": state.get("reason", "discussion_locked"),
             "reason_text": "This discussion has been locked so you can no longer reply to it."}
    else:
        now = int(time.time())
        a = {"uuid": p["uuid"], "site": p["site"], "state": "applied", "postid": state["next"], "discussion": 1,
             "created": min(p["created"], now), "modified": now, "message": p["message"], "userid": p["userid"]}
        state["next"] += 1
        state["applied"][key] = a
        save()
    print(json.dumps({k: v for k, v in a.items() if k not in ("message", "userid")}), flush=True)
    answered += 1
