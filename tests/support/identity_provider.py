"""A small OAuth2 identity provider for the tests, on 127.0.0.1 on a free port.

Endpoints (RFC 6749, 8628, 7662):
  POST /token       grant_type=refresh_token (rotates the refresh token on every use) and
                    grant_type=urn:ietf:params:oauth:grant-type:device_code
  POST /device      device authorization: a device code and a user code
  POST /introspect  token=ACCESS_TOKEN -> {"active": true, "username": USER} or {"active": false}
Test controls:
  POST /admin/approve?user_code=CODE   the person signs in
  POST /admin/revoke_refresh           every refresh token stops working
  POST /admin/revoke_access            every access token issued so far stops working
  GET  /admin/state                    JSON: current refresh token, counts of grants, introspections

Access tokens live --lifetime seconds. Prints "PORT <n>" on stdout once it listens.
"""

import argparse
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {
    "user": "",
    "lifetime": 3,
    "client_id": "",
    "client_secret": "",
    "refresh_tokens": set(),  # the valid ones
    "current_refresh": "",
    "last_access": "",
    "access_tokens": {},  # token -> expiry (epoch seconds)
    "devices": {},  # device_code -> {"user_code", "approved"}
    "refresh_grants": 0,
    "device_grants": 0,
    "introspections": 0,
    "refused_refresh": 0,
    "bad_clients": 0,
}


def issue(with_refresh=True):
    access = "at-" + secrets.token_urlsafe(24)
    STATE["access_tokens"][access] = time.time() + STATE["lifetime"]
    STATE["last_access"] = access
    answer = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": STATE["lifetime"],
    }
    if with_refresh:
        refresh = "rt-" + secrets.token_urlsafe(24)
        STATE["refresh_tokens"] = {refresh}
        STATE["current_refresh"] = refresh
        answer["refresh_token"] = refresh
    return answer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}

    def client_ok(self, form):
        if form.get("client_id") != STATE["client_id"]:
            return False
        if STATE["client_secret"] and form.get("client_secret") != STATE["client_secret"]:
            return False
        return True

    def do_GET(self):
        if self.path.startswith("/admin/state"):
            with LOCK:
                self.reply(200, {
                    "current_refresh": STATE["current_refresh"],
                    "last_access": STATE["last_access"],
                    "refresh_grants": STATE["refresh_grants"],
                    "device_grants": STATE["device_grants"],
                    "introspections": STATE["introspections"],
                    "refused_refresh": STATE["refused_refresh"],
                    "bad_clients": STATE["bad_clients"],
                })
            return
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        form = self.form()
        with LOCK:
            if url.path == "/token":
                self.token(form)
            elif url.path == "/device":
                if not self.client_ok(form):
                    STATE["bad_clients"] += 1
                    return self.reply(401, {"error": "invalid_client"})
                device_code = "dc-" + secrets.token_urlsafe(16)
                user_code = secrets.token_hex(3).upper()
                STATE["devices"][device_code] = {"user_code": user_code, "approved": False}
                port = self.server.server_address[1]
                self.reply(200, {
                    "device_code": device_code,
                    "user_code": user_code,
                    "verification_uri": "http://127.0.0.1:%d/activate" % port,
                    "expires_in": 300,
                    "interval": 1,
                })
            elif url.path == "/introspect":
                STATE["introspections"] += 1
                expiry = STATE["access_tokens"].get(form.get("token", ""))
                if expiry is not None and expiry > time.time():
                    self.reply(200, {"active": True, "username": STATE["user"]})
                else:
                    self.reply(200, {"active": False})
            elif url.path == "/admin/approve":
                for device in STATE["devices"].values():
                    if device["user_code"] == query.get("user_code"):
                        device["approved"] = True
                        return self.reply(200, {"ok": True})
                self.reply(404, {"error": "no such user code"})
            elif url.path == "/admin/revoke_refresh":
                STATE["refresh_tokens"] = set()
                self.reply(200, {"ok": True})
            elif url.path == "/admin/revoke_access":
                STATE["access_tokens"] = {}
                self.reply(200, {"ok": True})
            else:
                self.reply(404, {"error": "not_found"})

    def token(self, form):
        if not self.client_ok(form):
            STATE["bad_clients"] += 1
            return self.reply(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if form.get("refresh_token") not in STATE["refresh_tokens"]:
                STATE["refused_refresh"] += 1
                return self.reply(400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                })
            STATE["refresh_grants"] += 1
            return self.reply(200, issue())
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            device = STATE["devices"].get(form.get("device_code", ""))
            if device is None:
                return self.reply(400, {"error": "expired_token"})
            if not device["approved"]:
                return self.reply(400, {"error": "authorization_pending"})
            del STATE["devices"][form["device_code"]]
            STATE["device_grants"] += 1
            return self.reply(200, issue())
        self.reply(400, {"error": "unsupported_grant_type"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", required=True)
    parser.add_argument("--lifetime", type=int, default=3)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--refresh-token", default="")
    args = parser.parse_args()
    STATE["user"] = args.user
    STATE["lifetime"] = args.lifetime
    STATE["client_id"] = args.client_id
    STATE["client_secret"] = args.client_secret
    if args.refresh_token:
        STATE["refresh_tokens"] = {args.refresh_token}
        STATE["current_refresh"] = args.refresh_token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
