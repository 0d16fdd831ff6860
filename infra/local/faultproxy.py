#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between trailvault and the emulator (aws.endpoint_url points
at it). Standard library only.

It forwards every request to --upstream, except where a rule in the --rules file (JSON,
re-read whenever it changes, so a test can turn faults on and off while trailvault runs)
says otherwise. Each request is named by its AWS operation (SQS and KMS by X-Amz-Target, STS
by its Action, S3 by method and query) and, for S3, its bucket. A rule:

    {"op": "PutObject", "bucket": "archive", "contains": "role/x", "probability": 0.5,
     "limit": 10, "fault": "status", "status": 403, "code": "AccessDenied"}

`op`, `bucket` (path-style first segment), `contains` (substring of the path or body) filter;
`probability` (default 1) draws from a generator seeded by --seed; `limit` caps injections.
Faults:
  status           answer `status` with `code` in the protocol's error shape, never forwarded
  delay            wait `delay_ms`, then forward
  reset_mid_body   forward, send the status line, headers and half the body, then reset
  reset_after      forward (the request takes effect), then reset without answering
  partial          a batch call (SQS JSON protocol: DeleteMessageBatch, ...): withhold every
                   other entry (the first included), forward the rest, and answer 200 with the
                   withheld ones under Failed (InternalError, not the sender's fault)

Every injection is counted by "op:fault[:code]" in the --stats file (JSON), and logged; every
request, by "op" (S3 ones by "op:bucket"), in the --requests file (JSON), for benchmarks and
tests that count what a design costs.
The chosen port is written to --port-file. Listens on 127.0.0.1 only.
"""

import argparse
import http.client
import http.server
import json
import os
import random
import socket
import struct
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
STATE = {"rules": [], "mtime": None, "used": {}, "stats": {}, "requests": {}}


def load_rules(path):
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        STATE["rules"], STATE["mtime"] = [], None
        return
    if mtime != STATE["mtime"]:
        with open(path) as f:
            text = f.read()
        STATE["rules"] = json.loads(text) if text.strip() else []
        STATE["mtime"] = mtime
        STATE["used"] = {}


def operation(method, path, query, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1], None
    if body[:7] == b"Action=" or b"&Action=" in body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        return form.get("Action", ["?"])[0], None
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    if "Action" in q:
        return q["Action"][0], None
    parts = path.lstrip("/").split("/", 1)
    bucket = urllib.parse.unquote(parts[0]) if parts[0] else None
    has_key = len(parts) > 1 and parts[1] != ""
    if method == "PUT":
        if "partNumber" in q:
            return "UploadPart", bucket
        for sub, name in (("retention", "PutObjectRetention"), ("legal-hold", "PutObjectLegalHold"),
                          ("lifecycle", "PutBucketLifecycleConfiguration"), ("tagging", "PutObjectTagging")):
            if sub in q:
                return name, bucket
        return ("PutObject" if has_key else "CreateBucket"), bucket
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload", bucket
        if "uploadId" in q:
            return "CompleteMultipartUpload", bucket
        if "delete" in q:
            return "DeleteObjects", bucket
        return "PostObject", bucket
    if method == "DELETE":
        return ("AbortMultipartUpload" if "uploadId" in q else "DeleteObject"), bucket
    if method == "HEAD":
        return ("HeadObject" if has_key else "HeadBucket"), bucket
    if method == "GET":
        if has_key:
            for sub, name in (("retention", "GetObjectRetention"), ("legal-hold", "GetObjectLegalHold")):
                if sub in q:
                    return name, bucket
            return "GetObject", bucket
        if "versions" in q:
            return "ListObjectVersions", bucket
        if "object-lock" in q:
            return "GetObjectLockConfiguration", bucket
        if "uploads" in q:
            return "ListMultipartUploads", bucket
        for sub in ("lifecycle", "versioning", "encryption", "policy", "publicAccessBlock",
                    "notification", "tagging", "location"):
            if sub in q:
                return f"GetBucket{sub[0].upper()}{sub[1:]}", bucket
        return "ListObjects", bucket
    return method, bucket


def error_body(op, headers, status, code):
    message = f"injected by trailvault's fault proxy ({code} on {op})"
    if headers.get("X-Amz-Target"):
        body = json.dumps({"__type": code, "message": message}).encode()
        return "application/x-amz-json-1.0", body, {"x-amzn-query-error": f"{code};Sender"}
    if op in ("AssumeRole", "GetCallerIdentity", "GetSessionToken"):
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>")
        return "text/xml", body.encode(), {}
    body = f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return "application/xml", body.encode(), {}


def failed_entry(entry, op):
    return {"Id": entry.get("Id"), "SenderFault": False, "Code": "InternalError",
            "Message": f"injected by trailvault's fault proxy (partial failure of {op})"}


def count(op, bucket):
    if not ARGS.requests:
        return
    name = f"{op}:{bucket}" if bucket else op
    with LOCK:
        STATE["requests"][name] = STATE["requests"].get(name, 0) + 1
        tmp = ARGS.requests + ".tmp"
        with open(tmp, "w") as f:
            json.dump(STATE["requests"], f, sort_keys=True)
        os.replace(tmp, ARGS.requests)


def choose(op, bucket, path, body, rng):
    with LOCK:
        load_rules(ARGS.rules)
        for i, rule in enumerate(STATE["rules"]):
            if rule.get("op") not in (None, op):
                continue
            if rule.get("bucket") is not None and rule["bucket"] != bucket:
                continue
            needle = rule.get("contains")
            if needle and needle not in path and needle.encode() not in body:
                continue
            if rule.get("limit") is not None and STATE["used"].get(i, 0) >= rule["limit"]:
                continue
            if rng.random() >= rule.get("probability", 1.0):
                continue
            STATE["used"][i] = STATE["used"].get(i, 0) + 1
            name = f"{op}:{rule['fault']}" + (f":{rule['code']}" if rule.get("code") else "")
            STATE["stats"][name] = STATE["stats"].get(name, 0) + 1
            if ARGS.stats:
                tmp = ARGS.stats + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(STATE["stats"], f, sort_keys=True)
                os.replace(tmp, ARGS.stats)
            print(f"faultproxy: {name}", file=sys.stderr, flush=True)
            return rule
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reset(self):
        # SO_LINGER 0: close with RST, as a dropped connection looks to the client.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        op, bucket = operation(self.command, url.path, url.query, self.headers, body)
        count(op, bucket)
        rule = choose(op, bucket, self.path, body, RNG)
        if rule and rule["fault"] == "status":
            ctype, payload, extra = error_body(op, self.headers, rule["status"], rule["code"])
            self.send_response(rule["status"])
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        withheld = []
        if rule and rule["fault"] == "partial" and self.headers.get("X-Amz-Target"):
            request = json.loads(body or b"{}")
            entries = request.get("Entries", [])
            withheld, kept = entries[0::2], entries[1::2]
            if not kept:
                answer = {"Successful": [], "Failed": []}
            else:
                request["Entries"] = kept
                body = json.dumps(request).encode()
        if withheld and not kept:
            answer["Failed"] = [failed_entry(e, op) for e in withheld]
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if rule and rule["fault"] == "delay":
            threading.Event().wait(rule.get("delay_ms", 1000) / 1000)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=600)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
            payload = resp.read()
        finally:
            upstream.close()
        if rule and rule["fault"] == "reset_after":
            self.reset()
            return
        if withheld and resp.status == 200:
            answer = json.loads(payload)
            answer["Failed"] = answer.get("Failed", []) + [failed_entry(e, op) for e in withheld]
            payload = json.dumps(answer).encode()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                self.send_header(k, v)
        if self.command == "HEAD":
            # A HEAD answer's length is the object's, not of its (empty) body.
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if rule and rule["fault"] == "reset_mid_body" and len(payload) > 1:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.reset()
            return
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS, RNG, UPSTREAM
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--rules", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats")
    p.add_argument("--requests")
    ARGS = p.parse_args()
    RNG = random.Random(ARGS.seed)
    UPSTREAM = urllib.parse.urlsplit(ARGS.upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, ARGS.port_file)
    print(f"faultproxy: 127.0.0.1:{server.server_address[1]} -> {ARGS.upstream}, seed {ARGS.seed}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
