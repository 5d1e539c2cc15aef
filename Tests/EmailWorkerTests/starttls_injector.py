"""A deliberately broken relay for one test: it offers STARTTLS and sends a forged reply in clear in the same
packet as its 220 to STARTTLS (the command injection of CVE-2011-0411's kind), which a client must refuse
rather than read as the first reply under TLS. It forks into the background, writes its port to PORTFILE and
every command it receives to PORTFILE.log and its pid to PORTFILE.pid (the test stops it with SIGTERM when done),
and exits by itself after 120 s at most.
Run: /usr/bin/python3 starttls_injector.py PORTFILE"""
import os, socket, sys, threading, time

portfile = sys.argv[1]
os.closerange(3, 4096)
if os.fork():
    sys.exit(0)
os.setsid()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(16)
server.settimeout(1)
log = open(portfile + ".log", "a", buffering=1)
with open(portfile + ".pid", "w") as f:
    f.write(str(os.getpid()))
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)


def serve(conn):
    with conn, conn.makefile("rb") as lines:
        conn.sendall(b"220 injector ESMTP\r\n")
        for line in lines:
            command = line.strip().decode("ascii", "replace")
            log.write(command + "\n")
            verb = command.split(" ")[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-injector\r\n250-STARTTLS\r\n250 SIZE 10000000\r\n")
            elif verb == "STARTTLS":
                conn.sendall(b"220 go ahead\r\n250 forged in clear\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


deadline = time.time() + 120
while time.time() < deadline:
    try:
        conn, _ = server.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
