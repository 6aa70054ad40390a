"""A `command` spider for the tests, using nothing but the standard library and the API: queues
`args.urls` in its job's crawl, waits until each was fetched, stores one item per page and
reports its progress."""

import json
import os
import sys
import time
import urllib.request

API = os.environ["SHOPKEEPER_API_URL"]
JOB = os.environ["SHOPKEEPER_JOB_ID"]
HEADERS = {
    "Authorization": f"Bearer {os.environ['SHOPKEEPER_JOB_TOKEN']}",
    "Content-Type": "application/json",
}
args = json.loads(os.environ["SHOPKEEPER_JOB_ARGS"])


def call(method, path, body=None):
    request = urllib.request.Request(
        f"{API}/crawl/jobs/{JOB}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=HEADERS,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pages():
    found, cursor = [], None
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        body = call("GET", f"/pages{query}")
        found += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


added = call("POST", "/requests", {"urls": args["urls"]})["added"]
print(f"queued {added} URLs", flush=True)
deadline = time.monotonic() + 120
while len(fetched := pages()) < added:
    if time.monotonic() > deadline:
        sys.exit("pages never came")
    call("POST", "/progress", {"stats": {"fetched": len(fetched)}})
    time.sleep(0.5)
call("POST", "/items", {"items": [{"url": p["url"], "title": p["title"]} for p in fetched]})
call("POST", "/progress", {"stats": {"fetched": len(fetched)}, "message": "all fetched"})
print("done", flush=True)
