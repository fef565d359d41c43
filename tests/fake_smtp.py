"""A minimal SMTP server on loopback (EHLO, MAIL, RCPT, DATA, QUIT): enough for
smtplib, so the real sending code path is exercised without a relay."""
from __future__ import annotations

import socket
import threading
from typing import Dict, List


class FakeSMTP:
    def __init__(self) -> None:
        self.messages: List[Dict] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "FakeSMTP":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn, conn.makefile("rwb") as stream:
            def say(line: str) -> None:
                stream.write((line + "\r\n").encode())
                stream.flush()

            say("220 fake ESMTP")
            message = {"rcpt": [], "data": ""}
            while True:
                line = stream.readline().decode().rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 fake")
                elif verb == "MAIL":
                    say("250 OK")
                elif verb == "RCPT":
                    message["rcpt"].append(line.split("<", 1)[1].rstrip(">"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 go ahead")
                    body = []
                    while True:
                        data = stream.readline().decode()
                        if data in (".\r\n", ".\n", ""):
                            break
                        body.append(data)
                    message["data"] = "".join(body)
                    self.messages.append(message)
                    message = {"rcpt": [], "data": ""}
                    say("250 queued")
                elif verb == "QUIT" or not line:
                    say("221 bye")
                    return
                else:
                    say("250 OK")
