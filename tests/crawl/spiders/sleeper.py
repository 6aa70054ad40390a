"""A command spider for the tests: reports progress, sleeps `args.seconds`, exits 0."""

import json
import os
import time
import urllib.request

args = json.loads(os.environ["SHOPKEEPER_JOB_ARGS"])
job = os.environ["SHOPKEEPER_JOB_ID"]
request = urllib.request.Request(
    f"{os.environ['SHOPKEEPER_API_URL']}/crawl/jobs/{job}/progress",
    data=json.dumps({"stats": {"pid": os.getpid()}, "message": "sleeping"}).encode(),
    headers={
        "Authorization": f"Bearer {os.environ['SHOPKEEPER_JOB_TOKEN']}",
        "Content-Type": "application/json",
    },
    method="POST",
)
if args.get("report"):
    urllib.request.urlopen(request, timeout=10).read()
if args.get("pidfile"):
    with open(f"{args['pidfile']}.{os.environ['SHOPKEEPER_JOB_ATTEMPT']}", "w") as out:
        out.write(str(os.getpid()))
print(f"attempt {os.environ['SHOPKEEPER_JOB_ATTEMPT']} sleeping", flush=True)
time.sleep(float(args.get("seconds", 1)))
print("done", flush=True)
