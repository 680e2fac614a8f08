import httpx, trio, json, os, signal, subprocess
from trio_websocket import open_websocket_url, ConnectionClosed
async def main():
    c=httpx.AsyncClient(base_url="http://127.0.0.1:8845")
    a=(await c.post("/api/v1/auth/token", json={"grant_type":"password","username":"admin","password":"admin-password-123"})).json()["access_token"]
    A={"Authorization":f"Bearer {a}"}
    cr=(await c.post("/api/v1/admin/vehicles/wc_manual/rotate-secret", headers=A)).json()
    v=(await c.post("/api/v1/auth/token", json={"client_id":cr["client_id"],"client_secret":cr["client_secret"]})).json()["access_token"]
    async with open_websocket_url(f"ws://127.0.0.1:8845/ws/v1/vehicle/wc_manual?token={v}") as veh, open_websocket_url(f"ws://127.0.0.1:8845/ws/v1/fleet?token={a}") as fleet:
        print("vehicle:", (await veh.get_message())[:60])
        await fleet.send_message(json.dumps({"type":"subscribe","vehicle_ids":["*"]}))
        print("fleet:", (await fleet.get_message())[:80])
        pid=int(subprocess.check_output(["pgrep","-f","TVM_PORT=8845|tvm-hub serve"]).split()[0])
        os.kill(pid, signal.SIGTERM)
        for name, ws in (("vehicle", veh), ("fleet", fleet)):
            try:
                while True: await ws.get_message()
            except ConnectionClosed as e:
                print(name, "closed", e.reason.code, e.reason.reason)
trio.run(main)
