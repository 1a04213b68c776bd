#!/usr/bin/env python3
"""What a stranger's requests cost the server: resident memory and /metrics size, measured on
the real binary from outside, against the bars of the edge (docs/operations.md, "Limits").

1. Three 60 MiB `connection_init` messages at once on /graphql/ws without a token (one frame
   each, and one sent as 8 KiB fragments): the growth of the server's resident memory.
2. 400 requests without a token: 200 with invented 1,000-character HTTP methods, 200 with
   invented operation names (`Phone0912345…`): the growth of the /metrics page.
3. 200 unauthenticated POSTs of a 1 MiB JSON body against 200 of an empty body: the server's
   CPU time per request (the body is not read before the token is checked).

Usage: bench/edge.sh (builds the release binary, then runs this with it).
Stdlib only; Linux (/proc).
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("CNSCD_BIN", "target/release/cnscd")
SECRET = "bench-edge-secret-0123456789"


def start():
    d = tempfile.mkdtemp(prefix="cnscd-edge-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CNSCD_DATABASE_URL": f"sqlite://{d}/edge.db?mode=rwc",
        "CNSCD_LISTEN": "127.0.0.1:0",
        "CNSCD_JWT_SECRET": SECRET,
        "CNSCD_LOG": "warn,cnscd_api::startup=info",
        "CNSCD_LOG_FORMAT": "json",
    }
    p = subprocess.Popen([BIN, "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        try:
            address = json.loads(line).get("fields", {}).get("address")
        except ValueError:
            continue
        if address:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            host, port = address.rsplit(":", 1)
            return p, host, int(port)
    sys.exit("the server stopped before listening")


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ws_connect(host, port):
    s = socket.create_connection((host, port))
    s.sendall(
        (
            "GET /graphql/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head.split(b"\r\n", 1)[0].decode(errors="replace")


def frame_header(opcode, length, fin=True):
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, 0x80 | length]) + b"\0\0\0\0"
    if length < 65536:
        return bytes([first, 0x80 | 126]) + length.to_bytes(2, "big") + b"\0\0\0\0"
    return bytes([first, 0x80 | 127]) + length.to_bytes(8, "big") + b"\0\0\0\0"


def big_init(host, port, total, fragment, out):
    """Sends a `connection_init` of `total` bytes (mask 0: the payload is sent as is)."""
    s, line = ws_connect(host, port)
    prefix = b'{"type":"connection_init","payload":{"pad":"'
    sent = 0
    chunk = b"x" * 65536
    try:
        if fragment is None:
            s.sendall(frame_header(1, total) + prefix)
            sent = len(prefix)
            while sent < total:
                n = min(len(chunk), total - sent)
                s.sendall(chunk[:n])
                sent += n
        else:
            first = True
            while sent < total:
                n = min(fragment, total - sent)
                s.sendall(frame_header(1 if first else 0, n, fin=sent + n >= total) + chunk[:n])
                first = False
                sent += n
    except OSError:
        pass
    s.close()
    out.append((line, sent))


def request(host, port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def main():
    p, host, port = start()
    try:
        # A few ordinary requests first, so that the baseline is a server that has served.
        for _ in range(20):
            request(host, port, "GET", "/healthz")
            request(host, port, "GET", "/metrics")
        time.sleep(0.5)
        base = status(p.pid, "VmRSS")

        peak = [base]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], status(p.pid, "VmRSS"))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        results = []
        senders = [
            threading.Thread(target=big_init, args=(host, port, 60 * 1024 * 1024, None, results)),
            threading.Thread(target=big_init, args=(host, port, 60 * 1024 * 1024, None, results)),
            threading.Thread(target=big_init, args=(host, port, 60 * 1024 * 1024, 8192, results)),
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        time.sleep(0.5)
        stop.set()
        watcher.join()
        after = status(p.pid, "VmRSS")
        print("1. three 60 MiB connection_init without a token (two single frames, one in 8 KiB fragments)")
        for line, sent in results:
            print(f"   upgrade: {line}; bytes the client got out before the server closed: {sent:,}")
        print(f"   resident memory: {base / 2**20:.1f} MiB before, peak {peak[0] / 2**20:.1f} MiB "
              f"(+{(peak[0] - base) / 2**20:.1f} MiB), {after / 2**20:.1f} MiB after   [bar: < +100 MB]")

        _, page = request(host, port, "GET", "/metrics")
        before = len(page)
        for i in range(200):
            try:
                request(host, port, f"X{i:04d}" + "M" * 995, "/healthz")
            except (OSError, http.client.HTTPException):
                pass
        for i in range(200):
            name = f"Phone0912345{i:03d}"
            body = json.dumps({"query": f"query {name} {{ me {{ subject }} }}", "operationName": name})
            request(host, port, "POST", "/graphql", body, {"Content-Type": "application/json"})
        _, page = request(host, port, "GET", "/metrics")
        print("2. 400 requests without a token: 200 invented 1,000-character methods, 200 invented operation names")
        print(f"   /metrics: {before:,} bytes before, {len(page):,} after (+{len(page) - before:,})   [bar: < +20 KB]")

        def cost(body, n=200):
            c0 = cpu_seconds(p.pid)
            t0 = time.perf_counter()
            cut = 0
            for _ in range(n):
                try:
                    request(host, port, "POST", "/graphql", body, {"Content-Type": "application/json"})
                except OSError:
                    # Answered 401 and closed before the body was all sent: it was not read.
                    cut += 1
            return (cpu_seconds(p.pid) - c0) / n * 1000, (time.perf_counter() - t0) / n * 1000, cut

        big = json.dumps({"query": "{ me { subject } }", "variables": {"pad": "x" * (1024 * 1024 - 64)}})
        small_cpu, small_wall, _ = cost("")
        big_cpu, big_wall, cut = cost(big)
        print("3. POST /graphql without a token: empty body vs 1 MiB JSON body, 200 each")
        print(f"   server CPU per request: {small_cpu:.3f} ms vs {big_cpu:.3f} ms; wall {small_wall:.2f} ms vs {big_wall:.2f} ms "
              f"(the client's own sending included); {cut} of the 1 MiB sends cut off by the server's 401")
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
