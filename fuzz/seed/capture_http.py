"""Records the HTTP requests real clients send (scripts/fuzz-seed).

Listens on 127.0.0.1:PORT (argv[2]) and writes each request head it receives
to OUT_DIR/<n> (argv[1]), answering each with an empty 404 so the client
goes on to its next request. Exits after IDLE seconds without a connection.
"""

import os
import socket
import sys
import threading

out_dir, port = sys.argv[1], int(sys.argv[2])
idle = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
os.makedirs(out_dir, exist_ok=True)
count = 0
lock = threading.Lock()


def serve(conn):
    global count
    data = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            with lock:
                count += 1
                n = count
            with open(os.path.join(out_dir, "request_%02d" % n), "wb") as f:
                f.write(head + b"\r\n\r\n")
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(16)
listener.settimeout(idle)
print("listening", flush=True)
try:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
except socket.timeout:
    pass
