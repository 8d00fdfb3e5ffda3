# Throwaway fake Kafka broker for manual interop checks with kcat/librdkafka (not run by the tests).
# Capture (produced the fixtures in LibrdkafkaFixtureTests.cs):
#   python3 capture_librdkafka_batches.py PORT OUTDIR &
#   kcat -P -b 127.0.0.1:PORT -t t -p 0 -z CODEC -K: -Z -H h1=x -H h2 -X linger.ms=200 -l input.txt
#   -> each produced batch appended to OUTDIR/codecN.bin. Advertises Produce 0-7 (librdkafka only
#   compresses and uses magic 2 when the broker claims those versions), Metadata v1, Fetch v4.
# Serve (checked that librdkafka decodes RecordBatchBuilder output, all codecs, check.crcs=true):
#   put batches in OUTDIR/serve.bin (base offsets from 0), then
#   kcat -C -b 127.0.0.1:PORT -t t -p 0 -o 0 -e -Z -X check.crcs=true
#   (high watermark is hard-coded to 15 below: adjust to your record count).
# Minimal fake Kafka broker: ApiVersions v0-3, Metadata v1, Produce v3. Saves produced record batches.
import socket, struct, sys, os
port = int(sys.argv[1]); outdir = sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(5); srv.settimeout(20)

def recvn(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: raise EOFError
        b += x
    return b

def uvarint(b, i):
    v = 0; s = 0
    while True:
        x = b[i]; i += 1; v |= (x & 0x7f) << s; s += 7
        if not x & 0x80: return v, i

def handle(c):
    while True:
        try: n = struct.unpack(">i", recvn(c, 4))[0]
        except EOFError: return
        req = recvn(c, n)
        key, ver, corr = struct.unpack(">hhi", req[:8])
        cl = struct.unpack(">h", req[8:10])[0]
        i = 10 + max(cl, 0)
        if key == 18:
            if ver >= 3:
                apis = [(0, 0, 7), (1, 4, 4), (3, 1, 1), (8, 0, 2), (9, 0, 1), (10, 0, 1), (11, 0, 1), (12, 0, 0), (13, 0, 0), (14, 0, 0), (16, 0, 0), (18, 0, 3)]
                body = struct.pack(">h", 0) + bytes([len(apis) + 1]) + b"".join(struct.pack(">hhh", *a) + b"\0" for a in apis) + struct.pack(">i", 0) + b"\0"
            else:
                apis = [(0, 0, 7), (1, 4, 4), (3, 1, 1), (8, 0, 2), (9, 0, 1), (10, 0, 1), (11, 0, 1), (12, 0, 0), (13, 0, 0), (14, 0, 0), (16, 0, 0), (18, 0, 3)]
                body = struct.pack(">hi", 0, len(apis)) + b"".join(struct.pack(">hhh", *a) for a in apis)
                if ver >= 1: body += struct.pack(">i", 0)
        elif key == 3:
            host = b"127.0.0.1"
            body = struct.pack(">i", 1) + struct.pack(">ih", 0, len(host)) + host + struct.pack(">ih", port, -1)
            body += struct.pack(">i", 0)  # controller
            body += struct.pack(">i", 1) + struct.pack(">hh", 0, 1) + b"t" + b"\0" + struct.pack(">i", 1)
            body += struct.pack(">hiii", 0, 0, 0, 1) + struct.pack(">i", 0) + struct.pack(">ii", 1, 0)
        elif key == 0:
            tl = struct.unpack(">h", req[i:i+2])[0]; i += 2 + max(tl, 0)
            acks, timeout = struct.unpack(">hi", req[i:i+6]); i += 6
            nt = struct.unpack(">i", req[i:i+4])[0]; i += 4
            resp = struct.pack(">i", nt)
            for _ in range(nt):
                l = struct.unpack(">h", req[i:i+2])[0]; name = req[i+2:i+2+l]; i += 2 + l
                npart = struct.unpack(">i", req[i:i+4])[0]; i += 4
                resp += struct.pack(">h", l) + name + struct.pack(">i", npart)
                for _ in range(npart):
                    p, rl = struct.unpack(">ii", req[i:i+8]); i += 8
                    recs = req[i:i+rl]; i += rl
                    codec = struct.unpack(">h", recs[21:23])[0] & 7
                    print("produce v", ver, "magic", recs[16], "codec", codec, file=sys.stderr)
                    open(os.path.join(outdir, f"codec{codec}.bin"), "ab").write(recs)
                    resp += struct.pack(">ihqq", p, 0, 0, -1) + (struct.pack(">q", 0) if ver >= 5 else b"")
            body = resp + struct.pack(">i", 0)
        elif key == 1:
            data = open(os.path.join(outdir, "serve.bin"), "rb").read()
            i += 4 + 4 + 4 + 4 + 1
            nt = struct.unpack(">i", req[i:i+4])[0]; i += 4
            l = struct.unpack(">h", req[i:i+2])[0]; i += 2 + l
            np_ = struct.unpack(">i", req[i:i+4])[0]; i += 4
            p, fo = struct.unpack(">iq", req[i:i+12])
            print("fetch v", ver, "offset", fo, file=sys.stderr)
            recs = data if fo == 0 else b""
            body = struct.pack(">i", 0) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 1)
            body += struct.pack(">ihqq", 0, 0, 15, 15) + struct.pack(">i", -1) + struct.pack(">i", len(recs)) + recs
            if fo != 0:
                import time; time.sleep(0.1)
        else:
            print("unexpected api", key, ver, file=sys.stderr); return
        out = struct.pack(">i", corr) + body
        c.sendall(struct.pack(">i", len(out)) + out)

try:
    while True:
        c, _ = srv.accept()
        import threading; threading.Thread(target=handle, args=(c,), daemon=True).start()
except socket.timeout:
    pass
